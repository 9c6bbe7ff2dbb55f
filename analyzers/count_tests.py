"""Count tests: how many requests exceeded the usual p95, and how many failed.

Both tests see a chart's requests rather than its points, share the machinery below, and
differ only in what they count:

* :class:`ExceedanceDetector` (latency): requests above the route's learnt usual p95;
* :class:`ErrorCountDetector` (errors): failed requests, against the route's learnt usual
  error share.

**Latency.** The p95 of a bucket that holds three requests is mostly noise, so a latency
chart's point detector (:mod:`analyzers.anomaly`) hears little on a quiet route. This detector
looks at the requests themselves instead. It learns the route's usual ``quantile`` (p95)
latency, the *reference*, and counts per bucket how many requests exceeded it: normally a share
``q = 1 - quantile`` (5 %) of them, a binomial count. Two one-sided CUSUM statistics (Page's
test on the binomial log-likelihood ratio) accumulate, request by request, the evidence that
the share has risen to one of ``alternatives`` (25 %: about a doubling of latency for a
log-normal spread of 0.5; 90 %: about five times). A request above the reference adds
``ln(p1 / q)``, one below it adds ``ln((1 - p1) / (1 - q))`` (negative); a statistic never
goes below 0. Evidence therefore builds up over as many buckets as it takes, whatever their
size.

**Errors.** An error ratio of one failed request out of one is 100 %, and a point detector
on the ratio pages on it; the number of failures against the usual share ``p0`` (learnt as
failures / requests over about ``baseline_memory_s``, a day, from a prior of ``prior_share``)
is a binomial count. Its CUSUMs look for the share rising to ``factors`` (5x, 20x) times
``p0``, with the same log-likelihood ratio per request.

**Surprise.** A CUSUM of ``h`` nats is exceeded under normal traffic about once in ``e^h``
requests or less (Lorden's bound on its run length), so the detector's surprise is
``(h - ln N) / ln 10`` with ``N`` the route's requests per day: ``-log10`` of the expected
number of such excursions a day. That makes one threshold mean the same on a route with a
thousand requests a day and one with a million. The score is ``S / (S + score_half)``, as
for :class:`~analyzers.anomaly.AnomalyDetector`, so the same :class:`Sensitivity` applies.

**Reference.** Learnt from the first ``warmup_requests`` requests (the count-weighted mean of
the log of their buckets' quantile values), then by stochastic approximation of the quantile
in log space: each bucket moves it by ``spread x (k - q n) / (q x R)`` with ``k`` of ``n``
requests above it and ``R`` the requests expected in ``level_memory_s``. At equilibrium a
share ``q`` exceeds it, and a sustained shift is followed over about ``level_memory_s``
(12 h): a 10-minute incident moves it a few percent, a deploy that slows the route for good
stops counting after some hours. An offset per hour of the day, learnt the same way (as a
mean over the hour's first visits, then over about ``profile_visits`` days of it), follows a
daily cycle of latency (busier hours are slower) that a 12-hour level would lag.

**Joint with the point detector.** ``point_score`` is the chart's point detector's score of
the same bucket: within 10 minutes of its alarm a point scores only when its surprise is
``realarm_factor`` times that alarm's, so one incident seen by both is one alarm.

**De-duplication.** An incident opens when the surprise passes ``incident_min_surprise``;
while any statistic stays above 0 it goes on, and a later point scores only when its
surprise is ``realarm_factor`` times the last one scored. Scores are 0 until
``warmup_s`` after the first request.

**Recurring incidents.** An incident that opens within an hour of the time of day of
incidents on ``echo_days`` (2) earlier days, each 20-28 h (or 44-52 h: a day may be missing,
as a nightly job's incident on a quiet weekend is) after the one before, is expected - a
nightly job - and scores only by how much its surprise exceeds the largest of theirs, as in
:class:`~analyzers.anomaly.AnomalyDetector`.

**Busy routes.** With ``max_requests_per_min`` set, the test scores nothing while the route's
day-long average rate is above it (the p95 of a busy route's bucket is already precise).

Guarantees: ``update`` is O(number of alternatives) time and O(1) memory; each score depends
only on the buckets up to its own; timestamps must not decrease.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from analyzers.errors import InvalidInputError

__all__ = [
    "BucketCounts",
    "CountTestSettings",
    "ErrorCountDetector",
    "ErrorCountSettings",
    "ExceedanceDetector",
    "ExceedanceSettings",
    "SortedBucket",
]

_LN10 = math.log(10.0)
_DAY_S = 86400.0
_HOUR_S = 3600.0
_YESTERDAY_S = (20 * _HOUR_S, 28 * _HOUR_S)  # an incident "at the same time" the day before
_DAY_BEFORE_S = (44 * _HOUR_S, 52 * _HOUR_S)  # ... or two days before, yesterday having none
_POINT_WINDOW_S = 600.0  # a point detector's alarm covers the incident for 10 minutes


def _hour_of_day(t: float) -> int:
    """Hour of the (UTC) day of ``t`` seconds, 0-23."""
    return int((t % _DAY_S) // _HOUR_S)


class BucketCounts(Protocol):
    """The requests of one bucket, as a latency histogram gives them."""

    @property
    def count(self) -> int:
        """Requests in the bucket."""
        ...

    def count_above(self, value: float) -> int:
        """Requests whose latency exceeds ``value`` (same unit as :meth:`quantile`)."""
        ...

    def quantile(self, q: float) -> float:
        """The bucket's ``q``-quantile latency (NaN when empty)."""
        ...


class SortedBucket:
    """:class:`BucketCounts` over the exact latencies of a bucket (for tests and benchmarks)."""

    __slots__ = ("_values",)

    def __init__(self, values: list[float]) -> None:
        self._values = sorted(values)

    @property
    def count(self) -> int:
        return len(self._values)

    def count_above(self, value: float) -> int:
        import bisect

        return len(self._values) - bisect.bisect_right(self._values, value)

    def quantile(self, q: float) -> float:
        if not self._values:
            return math.nan
        rank = max(1, math.ceil(q * len(self._values)))
        return self._values[rank - 1]


@dataclass(frozen=True, slots=True)
class CountTestSettings:
    """What both count tests share (see the module docstring)."""

    warmup_s: float = 6 * 3600.0
    rate_memory_s: float = 3600.0
    incident_min_surprise: float = 0.75
    realarm_factor: float = 1.5
    score_half: float = 5.0
    day_weight: float = 1.0
    echo_days: int = 2
    max_requests_per_min: float = math.inf

    def __post_init__(self) -> None:
        if min(self.rate_memory_s, self.score_half) <= 0 or self.warmup_s < 0:
            raise InvalidInputError("rate_memory_s and score_half must be > 0, warmup_s >= 0")
        if self.realarm_factor < 1.0 or self.day_weight < 0 or self.echo_days < 0:
            raise InvalidInputError("realarm_factor >= 1, day_weight >= 0 and echo_days >= 0")


@dataclass(frozen=True, slots=True)
class ExceedanceSettings(CountTestSettings):
    """Tuning constants of :class:`ExceedanceDetector`."""

    quantile: float = 0.95
    alternatives: tuple[float, ...] = (0.25, 0.9)
    level_memory_s: float = 43200.0
    profile_visits: float = 4.0
    spread: float = 0.5
    warmup_requests: int = 40

    def __post_init__(self) -> None:
        CountTestSettings.__post_init__(self)
        q = 1.0 - self.quantile
        if not 0.5 <= self.quantile < 1.0:
            raise InvalidInputError("quantile must be in [0.5, 1)")
        if not self.alternatives or not all(q < p < 1.0 for p in self.alternatives):
            raise InvalidInputError("alternatives must be exceedance shares in (1 - quantile, 1)")
        if min(self.level_memory_s, self.spread, self.profile_visits) <= 0:
            raise InvalidInputError("level_memory_s, spread and profile_visits must be > 0")
        if self.warmup_requests < 1:
            raise InvalidInputError("warmup_requests must be >= 1")


@dataclass(frozen=True, slots=True)
class ErrorCountSettings(CountTestSettings):
    """Tuning constants of :class:`ErrorCountDetector`."""

    factors: tuple[float, ...] = (5.0, 20.0)
    baseline_memory_s: float = 86400.0
    prior_share: float = 0.01
    prior_requests: float = 100.0
    min_share: float = 1e-4

    def __post_init__(self) -> None:
        CountTestSettings.__post_init__(self)
        if not self.factors or not all(f > 1.0 for f in self.factors):
            raise InvalidInputError("factors must be > 1")
        if not (
            self.baseline_memory_s > 0
            and 0.0 < self.min_share <= self.prior_share < 1.0
            and self.prior_requests > 0
        ):
            raise InvalidInputError(
                "baseline_memory_s > 0, 0 < min_share <= prior_share < 1, prior_requests > 0"
            )


class _CountTest:
    """The machinery both tests share: request rates, CUSUMs, the per-day surprise,
    de-duplication, recurring incidents and the joint with the chart's point detector."""

    __slots__ = (
        "_common",
        "_cusum",
        "_day_mass",
        "_day_rate",
        "_echo",
        "_echo_before",
        "_echo_hour",
        "_first_t",
        "_last_t",
        "_mass",
        "_open",
        "_point",
        "_point_t",
        "_scored",
    )

    def __init__(self, common: CountTestSettings, statistics: int) -> None:
        self._common = common
        self._cusum = [0.0] * statistics
        # requests in the last ~rate_memory_s and ~day (exponentially weighted), for rates
        # that count the buckets a caller never feeds (no request) as empty
        self._mass = 0.0
        self._day_mass = 0.0
        self._day_rate = 0.0
        self._first_t = math.nan
        self._last_t = -math.inf
        # per hour of day: (opening time, largest surprise, days in a row) of incidents
        self._echo: list[tuple[float, float, int]] = [(-math.inf, 0.0, 0)] * 24
        self._echo_hour = 0
        self._echo_before = 0.0
        self._open = False
        self._scored = 0.0
        self._point = 0.0  # surprise of the point detector's last alarm, at _point_t
        self._point_t = -math.inf

    def _advance(self, timestamp_s: float, n: int, step_s: float, point_score: float) -> float:
        """Check the time, note the point detector's alarm, count the requests; returns the
        request rate (per second) over about ``rate_memory_s``."""
        t = float(timestamp_s)
        if not math.isfinite(t) or t < self._last_t:
            raise InvalidInputError("timestamps must be finite and must not decrease")
        common = self._common
        if point_score > 0.0:
            point = common.score_half * point_score / max(1.0 - point_score, 1e-12)
            if t - self._point_t > _POINT_WINDOW_S or point > self._point:
                self._point = point
            self._point_t = t
        if math.isnan(self._first_t):
            self._first_t, gap = t, 0.0
        else:
            gap = t - self._last_t
        self._last_t = t
        memory = common.rate_memory_s
        self._mass = self._mass * math.exp(-gap / memory) + n
        self._day_mass = self._day_mass * math.exp(-gap / _DAY_S) + n
        seen = t - self._first_t + step_s  # seconds of traffic seen so far
        self._day_rate = self._day_mass / (_DAY_S * -math.expm1(-seen / _DAY_S))
        return self._mass / (memory * -math.expm1(-seen / memory))

    def _evidence(
        self, t: float, rate: float, hits: int, misses: int, llr: list[tuple[float, float]]
    ) -> float:
        """Add ``hits`` and ``misses`` to each CUSUM (``llr``: per statistic, the log
        likelihood ratio of a hit and of a miss) and score the largest."""
        top = 0.0
        cusum = self._cusum
        for i, (up, down) in enumerate(llr):
            c = cusum[i] + hits * up + misses * down
            c = c if c > 0.0 else 0.0
            cusum[i] = c
            if c > top:
                top = c
        common = self._common
        if self._day_rate * 60.0 > common.max_requests_per_min:
            top = 0.0
        per_day = max(rate * _DAY_S, 1.0)
        return self._score(t, (top - common.day_weight * math.log(per_day)) / _LN10)

    def _score(self, t: float, surprise: float) -> float:
        """One score per incident step (see the module docstring)."""
        settings = self._common
        if max(self._cusum) <= 0.0:
            self._open = False
        if t - self._first_t < settings.warmup_s or surprise <= settings.incident_min_surprise:
            return 0.0
        if not self._open:
            self._open_echo(t)
        hour = self._echo_hour
        et, es, ek = self._echo[hour]
        if surprise > es:  # the incident's largest surprise, for tomorrow's echo
            self._echo[hour] = (et, surprise, ek)
        if self._open and surprise <= settings.realarm_factor * self._scored:
            return 0.0
        flagged = t - self._point_t <= _POINT_WINDOW_S  # by the point detector, lately
        if flagged and surprise <= settings.realarm_factor * self._point:
            return 0.0
        self._open = True
        self._scored = surprise
        surprise = max(surprise - self._echo_before, 0.0)
        return surprise / (surprise + settings.score_half)

    def _open_echo(self, t: float) -> None:
        """A new incident at ``t``: remember it for its hour of the day, and damp it by the
        largest earlier one when incidents opened near this time of day on ``echo_days``
        earlier days, each a day (or two, one being skipped) after the one before."""
        hour = _hour_of_day(t)
        streak, before = 1, 0.0
        for h in (hour - 1, hour, hour + 1):
            et, es, ek = self._echo[h % 24]
            ago = t - et
            earlier_day = (
                _YESTERDAY_S[0] <= ago <= _YESTERDAY_S[1]
                or _DAY_BEFORE_S[0] <= ago <= _DAY_BEFORE_S[1]
            )
            if earlier_day and ek + 1 > streak:
                streak, before = ek + 1, es
            elif ago <= _HOUR_S and ek > streak:  # a later incident of today's recurrence
                streak, before = ek, es
        et, es, ek = self._echo[hour]
        if t - et < _YESTERDAY_S[0]:  # this hour already opened an incident today
            self._echo[hour] = (et, max(es, before), max(ek, streak))
        else:
            self._echo[hour] = (t, before, streak)
        self._echo_hour = hour
        self._echo_before = before if 0 < self._common.echo_days < streak else 0.0


class ExceedanceDetector(_CountTest):
    """Streaming count test for one latency chart: ``update(t, bucket, step) -> score``.

    Example::

        det = ExceedanceDetector()
        for t, hist in buckets:  # hist: count, count_above(x), quantile(q)
            if det.update(t, hist, 10.0) >= Sensitivity.MEDIUM.value:
                page_someone(t)
    """

    __slots__ = (
        "_hour",
        "_level",
        "_llr",
        "_profile",
        "_q",
        "_visits",
        "_warm_n",
        "_warm_sum",
        "settings",
    )

    def __init__(self, settings: ExceedanceSettings | None = None) -> None:
        self.settings = settings if settings is not None else ExceedanceSettings()
        super().__init__(self.settings, len(self.settings.alternatives))
        q = 1.0 - self.settings.quantile
        self._q = q
        self._llr = [
            (math.log(p / q), math.log((1.0 - p) / (1.0 - q))) for p in self.settings.alternatives
        ]
        self._level: float | None = None  # log of the reference latency
        self._profile = [0.0] * 24  # per hour of day: log offset of the reference
        self._visits = [0] * 24  # per hour of day: days it has been seen
        self._hour = -1
        self._warm_n = 0
        self._warm_sum = 0.0

    @property
    def reference(self) -> float | None:
        """The learnt usual ``quantile`` latency at the last bucket's hour of day (the
        bucket's unit), or None while learning."""
        if self._level is None:
            return None
        return math.exp(self._level + self._profile[_hour_of_day(self._last_t)])

    def update(
        self,
        timestamp_s: float,
        bucket: BucketCounts,
        step_s: float,
        point_score: float = 0.0,
    ) -> float:
        """Score the bucket starting at ``timestamp_s`` (seconds) of length ``step_s``.

        ``point_score`` is another detector's score of the same bucket (the chart's point
        detector): an incident it has just flagged is this test's too, so the test adds an
        alarm only once its own surprise is ``realarm_factor`` times that one's.
        """
        n = int(bucket.count)
        rate = self._advance(timestamp_s, n, step_s, point_score)
        t = self._last_t
        if n <= 0:
            return self._score(t, 0.0)
        settings = self.settings
        if self._level is None:
            value = bucket.quantile(settings.quantile)
            if value > 0.0 and math.isfinite(value):
                self._warm_n += n
                self._warm_sum += n * math.log(value)
            if self._warm_n >= settings.warmup_requests:
                self._level = self._warm_sum / self._warm_n
            return 0.0
        hour = _hour_of_day(t)
        if hour != self._hour:
            self._hour = hour
            self._visits[hour] += 1
        offset = self._profile[hour]
        above = int(bucket.count_above(math.exp(self._level + offset)))
        # the quantile's gradient: + (1 - q) / q per request above, - 1 per request below
        gradient = settings.spread * (above - self._q * n) / self._q
        self._level += gradient / max(rate * settings.level_memory_s, 1.0)
        visits = min(self._visits[hour], settings.profile_visits)  # a mean over the first
        self._profile[hour] = offset + gradient / max(rate * _HOUR_S * visits, 1.0)
        return self._evidence(t, rate, above, n - above, self._llr)


class ErrorCountDetector(_CountTest):
    """Streaming count test for one error-rate chart: ``update(t, requests, errors, step)``.

    Example::

        det = ErrorCountDetector()
        for t, requests, errors in buckets:
            if det.update(t, requests, errors, 60.0) >= Sensitivity.MEDIUM.value:
                page_someone(t)
    """

    __slots__ = ("_errors_mass", "_requests_mass", "settings")

    def __init__(self, settings: ErrorCountSettings | None = None) -> None:
        self.settings = settings if settings is not None else ErrorCountSettings()
        super().__init__(self.settings, len(self.settings.factors))
        self._errors_mass = self.settings.prior_share * self.settings.prior_requests
        self._requests_mass = self.settings.prior_requests

    @property
    def usual_share(self) -> float:
        """The learnt usual share of failed requests (0-1)."""
        share = self._errors_mass / self._requests_mass
        return max(share, self.settings.min_share)

    def update(
        self,
        timestamp_s: float,
        requests: int,
        errors: int,
        step_s: float,
        point_score: float = 0.0,
    ) -> float:
        """Score the bucket starting at ``timestamp_s`` (seconds) of length ``step_s`` with
        ``errors`` failures among ``requests``; ``point_score`` as for
        :meth:`ExceedanceDetector.update`."""
        n = int(requests)
        k = min(max(int(errors), 0), max(n, 0))
        last = self._last_t
        rate = self._advance(timestamp_s, n, step_s, point_score)
        t = self._last_t
        settings = self.settings
        p0 = self.usual_share
        keep = math.exp(-(t - last) / settings.baseline_memory_s) if last > -math.inf else 1.0
        # forgetting keeps the prior's weight: the mass decays towards it, not to 0
        prior_n = settings.prior_requests
        self._requests_mass = prior_n + (self._requests_mass - prior_n) * keep + n
        self._errors_mass = (
            settings.prior_share * prior_n
            + (self._errors_mass - settings.prior_share * prior_n) * keep
            + k
        )
        if n <= 0:
            return self._score(t, 0.0)
        llr = []
        for factor in settings.factors:
            p1 = min(factor * p0, 0.99)
            if p1 <= p0:
                continue
            llr.append((math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))))
        llr += [(0.0, 0.0)] * (len(settings.factors) - len(llr))
        return self._evidence(t, rate, k, n - k, llr)
