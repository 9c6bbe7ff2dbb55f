"""Count tests: how many requests exceeded the usual p95, how many failed, how many came.

The three tests see a chart's requests rather than its points, share the machinery below, and
differ only in what they count:

* :class:`ExceedanceDetector` (latency): requests above the route's learnt usual p95;
* :class:`ErrorCountDetector` (errors): failed requests, against the route's learnt usual
  error share;
* :class:`RateCountDetector` (traffic): requests, against the route's learnt usual rate.

**Latency.** The p95 of a bucket that holds three requests is mostly noise, so a latency
chart's point detector (:mod:`analyzers.anomaly`) hears little on a quiet route and pages on
noise. This detector looks at the requests themselves instead. It learns the route's usual
``quantile`` (p95) latency, the *reference*, and counts per bucket how many requests exceeded
it: normally a share ``q = 1 - quantile`` (5 %) of them, a binomial count. Two one-sided CUSUM
statistics (Page's test on the binomial log-likelihood ratio) accumulate, request by request,
the evidence that the share has risen to one of ``alternatives`` (25 %: about a doubling of
latency for a log-normal spread of 0.5; 90 %: about five times). A request above the
reference adds ``ln(p1 / q)``, one below it adds ``ln((1 - p1) / (1 - q))`` (negative); a
statistic never goes below 0. Evidence therefore builds up over as many buckets as it takes,
whatever their size. A third statistic counts the requests above the usual
``extreme_quantile`` (p99) against ``extreme_alternatives`` (80 % above it: about five
times): each adds ``ln(0.8 / 0.01)`` = 4.4 nats where above the p95 it adds 2.9, so on a
quiet route three slow requests are a page rather than four. Two more (``shift_factors``:
every latency twice, five times the usual) look at where each request falls among the
route's usual p50, p75 (``shift_quantiles``), p95, p99 and p99.9 (``tail_quantile``), not
only whether it passed the p95: normally 50, 25, 20, 4, 0.9 and 0.1 % of requests fall in
those six bins; under "every latency times f" a log-normal of the route's spread (read off
its learnt p50-p95 gap) puts other shares there, and a request adds the log of its bin's
share under that alternative over its usual share. The p99.9 bin tells a request far above
the p99 from one just above it (under x5 with a spread of 0.5: 6.3 nats against 3.4, where
both got 4.4): a quiet route's 3-minute x5 incident holds three or four requests, and
where they land is most of its evidence. A doubling moves most requests up a bin or two
while few pass the p95: about 0.9 nats a request for a log-normal spread of 0.5, where the
p95 count gets 0.3, so a 10-minute doubling on a route with two requests a minute (some 20
requests) is a page.
The assumed shape sets only the alternative's shares; the usual ones are the learnt
quantiles', so a wrong shape slows detection and does not add false alarms.

**Errors.** An error ratio of one failed request out of one is 100 %, and a point detector
on the ratio pages on it; the number of failures against the usual share ``p0`` (learnt as
failures / requests over about ``baseline_memory_s``, a day, from a prior of ``prior_share``)
is a binomial count. Its CUSUMs look for the share rising to ``factors`` (5x, 20x) times
``p0``, with the same log-likelihood ratio per request.

**Traffic.** The requests of a bucket are a Poisson count around the usual rate. The CUSUMs
look for the rate multiplied by ``factors`` (0.3: a drop, 3: a surge); a request adds
``ln f`` and an expected request ``1 - f``, so only a rate below 58 % or above 182 % of the
usual adds evidence. Buckets a caller skips count as empty: a route that goes silent is a
drop. The usual rate is a weekly profile times a level:

* the profile holds each hour of the week's traffic as a share of the route's day-long mean
  rate, learnt over the hour's first visits, then over about ``profile_visits`` weeks, from
  the buckets outside incidents (a nightly job stays a recurring incident, see below, and a
  15-minute drop does not teach next week's hour to expect less);
* the level is the requests over what the profile expected, summed over about
  ``level_memory_s`` (2 h): it follows a lasting step within hours, and learns an eighth of
  a 15-minute drop while it lasts.

Until an hour of the week has been seen, the mean over the last ``expect_memory_s`` (30
minutes) stands for the profile, as it does throughout with ``level_memory_s=None``. That
mean follows a daily cycle within about an hour, but learns a third of a 15-minute drop while
it lasts and, on a few requests a minute, is noisy: judged against it a quiet route's drops
were found about 60 % of the time, where the route's true usual rate finds 81 %
(``docs/benchmarks.md``). A surge is judged against the higher of the usual rate and that
30-minute mean (this bucket included): a quiet hour's share learnt from one visit is some
10 % off, and bursts judged against an hour's share learnt too low paged; traffic that has
been high for half an hour is not a surge any more.

**Surprise.** A CUSUM of ``h`` nats is exceeded under normal traffic about once in ``e^h``
requests or less (Lorden's bound on its run length), so the detector's surprise is
``(h - ln N) / ln 10`` with ``N`` the route's requests per day: ``-log10`` of the expected
number of such excursions a day. That makes one threshold mean the same on a route with a
thousand requests a day and one with a million. Sharper, for a statistic whose excursions
can start only at some requests (a binomial one's: at a request above the reference, or a
failure): an excursion starts at such a request, from its own increment ``ln(p1 / p0)``, and
reaches ``h`` with probability at most ``e^(ln(p1 / p0) - h)`` (``e^S`` is a martingale under
the usual traffic); with ``p0 N`` of them a day, at most ``p1 N e^-h`` excursions a day reach
``h``. So each statistic's surprise is ``(h - ln(s N)) / ln 10`` with ``s`` the share its
alternative puts on those requests (25 % and 90 % above the p95, 80 % above the p99; for the
error test 5 and 20 times the usual share; the bins a shift statistic favours); the rate
test's ``s`` is 1. The bound does not move; it is only less loose, most for errors: the 5x
statistic of a route failing 1 % of its requests gains ``ln 20`` = 3 nats. The score is
``S / (S + score_half)``, so the same :class:`Sensitivity` applies: with ``score_half`` 1.94
``MEDIUM`` (0.34) is a surprise of 1, an excursion expected at most once in ten days (the 0.1
false alarm per chart and day an on-call rota can live with; from the bound, not tuned),
``LOW`` (0.6) a surprise of 2.9. A statistic stops at ``max_surprise`` (30), so that it
drains within minutes of a large incident's end and the next incident is seen.

**Requests that move together.** That bound holds for independent requests. A real
service's are not: the requests of one bucket share a moment of contention, a slow cache or
a GC pause, and clients send in bursts, so a statistic's increment varies more than the
binomial or Poisson count says (about ``1 + (n - 1) rho`` times, ``rho`` the correlation of
two requests of a bucket), and on a busy route the CUSUMs paged on that noise. Each
statistic's increment is divided by that factor, learnt per statistic over about
``dispersion_memory_s`` (a day) of buckets outside incidents (a quasi-likelihood, which keeps
the bound): 1 for independent requests, 3-4 for a busy route's minute whose requests share a
latency factor of spread 0.1. ``dispersion_memory_s=0`` takes requests as independent.

**Reference.** Learnt from the first ``warmup_requests`` requests (the count-weighted mean of
the log of their buckets' quantile values), then by stochastic approximation of the quantile
in log space: each bucket moves it by ``spread x (k - q n) / (q x R)`` with ``k`` of ``n``
requests above it and ``R`` the requests expected in ``level_memory_s``. At equilibrium a
share ``q`` exceeds it, and a sustained shift is followed over about ``level_memory_s``
(12 h): a 10-minute incident moves it a few percent, a deploy that slows the route for good
stops counting after some hours. An offset per hour of the day, learnt the same way (as a
mean over the hour's first visits, then over about ``profile_visits`` days of it, but over
at least ``profile_min_requests`` requests: a quiet route's hour holds too few for its p95),
follows a daily cycle of latency (busier hours are slower) that a 12-hour level would lag.
Each ``slot_s`` (10-minute) slot of the day has an offset over its hour's, learnt from the
share of its requests above the usual p50 (the shift that puts that share there, for a
log-normal of the route's spread), as a mean over its first days, then over about
``profile_visits``, from buckets outside incidents; it applies once learnt on
``slot_min_days`` days, shrunk towards 0 by the requests behind it (``slot_prior_requests``):
a nightly job that slows a quiet route for 20 minutes is learnt there, where an hourly
offset learns a third of it over 1,000 requests and, staying below an incident most nights,
it never counts as a recurring one.
The p50, p75 and p99 references are learnt the same way, with the same hourly offsets; the
p99.9 as its gap over the p99, over about ``tail_memory_s`` (a week: a route with three
requests a minute passes its p99.9 four times a day), so that its usual share is learnt, not
assumed, and a heavy tail (GC pauses, retries) adds no evidence.
An incident's requests are not the usual ones: once the hour's offset has been learnt over
``profile_visits`` days, the references learn nothing from the buckets of an incident under
way (not a recurring one) for its first ``learn_pause_s`` (1 h). Before that the references
learn from everything: frozen while still wrong, they would page on. An incident still under
way after the pause is a lasting change (a slower release, a slower dependency), and the
references catch up with it as one: the level alone learns, ``catch_up`` (3) times as fast as
usual, and the p50 and p75 move with the p95. Left to the usual learning, the hour's offset
(which learns over fewer requests than the level) would take up most of the change, so that
each later hour of the day met it afresh; and the p50 would lag the p95 (a quantile's gradient
is its density over its exceedance share: the p50's a third of the p95's) and read as a
shift. Either paged again 5-24 hours after the change, once the incident had closed
(``benchmarks/lasting_change.py``).

**Joint with the point detector.** ``point_score`` is the chart's point detector's score of
the same bucket: within 10 minutes of its alarm a point scores only when its surprise is
``realarm_factor`` times that alarm's, so one incident seen by both is one alarm.

**De-duplication.** An incident opens when the surprise passes ``incident_min_surprise``;
it goes on until each statistic has been back at 0 since it opened (each excursion over, not
necessarily at once: on a quiet route's 10-s buckets the rate test's drop and surge
statistics are never both at 0, an empty bucket feeding one and a request the other, so that
the incident of a Saturday's traffic step went on all weekend, muting the weekend's real
drops and, as a recurrence, the next weekend's), and a later point scores only when its
surprise is ``realarm_factor`` times the last one scored. Scores are 0, and the
statistics gather no evidence against what is still being learnt, until ``warmup_s`` after
the first request (6 h for latency; 1 h for errors and traffic, whose
usual share and rate are learnt within it).

**Recurring incidents.** An incident that opens within an hour of the time of day of
incidents under way on at least ``echo_days`` (3) of the previous 7 days is expected - a
nightly job, which need not show every night - and scores only by how much its surprise
exceeds ``echo_factor`` (2) times the largest of theirs: evidence grows with traffic, so the
same job on a busier night is still the same job. With ``weekly_echo`` (the rate test's
default: traffic has weekends) an incident under way at the same time a week before (within
30 minutes) damps it the same way.

**Local clock.** Hours of the day and of the week, the 10-minute slots and the recurring
incidents' times of day are those of the local clock of ``timezone`` (an IANA name; None:
UTC, :mod:`analyzers.local_clock`): a service's traffic and nightly jobs follow its people's
and crons' clock, which moves an hour for daylight saving time. Durations stay seconds of UTC.

**Busy routes.** With ``max_requests_per_min`` set, the test scores nothing while the route's
day-long average rate is above it (the p95 of a busy route's bucket is already precise).

Guarantees: ``update`` is O(number of alternatives) time (O(incidents of the last 8 days)
when an incident opens) and O(1) memory (at most 256 incidents remembered; the rate test's
profile is 2 x 168 floats, the latency test's slots 3 x 144); each score
depends only on the buckets up to its own; timestamps must not decrease.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Protocol

from analyzers.errors import InvalidInputError
from analyzers.local_clock import LocalClock

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "BucketCounts",
    "CountTestSettings",
    "ErrorCountDetector",
    "ErrorCountSettings",
    "ExceedanceDetector",
    "ExceedanceSettings",
    "RateCountDetector",
    "RateSettings",
    "SortedBucket",
]

_LN10 = math.log(10.0)
_DAY_S = 86400.0
_HOUR_S = 3600.0
_WEEK_S = 7 * _DAY_S
_MIN_DAY_AGO_S = 20 * _HOUR_S  # an incident as long ago is an earlier day's
_WEEK_TOLERANCE_S = 1800.0  # "the same time a week before": within 30 minutes
_ECHO_DAYS_BACK = 7  # the days an incident may recur on
_ECHO_MEMORY_S = _WEEK_S + _HOUR_S  # incidents remembered for their echoes
_PROFILE_PRIOR = 2.0  # requests: a nearly empty hour is not a traffic share of 0
_POINT_WINDOW_S = 600.0  # a point detector's alarm covers the incident for 10 minutes
_STANDARD_NORMAL = NormalDist()


def _bin_shares(cumulative: list[float]) -> list[float]:
    """The shares of the bins between consecutive values of a distribution function."""
    return [b - a for a, b in itertools.pairwise(cumulative)]


def _binomial_null(n: int, q: float, up: float, down: float) -> tuple[float, float]:
    """Mean and variance of ``k x up + (n - k) x down`` for ``k`` binomial(``n``, ``q``)."""
    return n * (q * up + (1.0 - q) * down), n * q * (1.0 - q) * (up - down) ** 2


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
    score_half: float = 1.94
    day_weight: float = 1.0
    echo_days: int = 3
    weekly_echo: bool = False
    echo_factor: float = 2.0
    max_surprise: float = 30.0
    max_requests_per_min: float = math.inf
    dispersion_memory_s: float = _DAY_S
    timezone: str | None = None

    def __post_init__(self) -> None:
        LocalClock(self.timezone)  # a bad name raises InvalidInputError here
        if min(self.rate_memory_s, self.score_half) <= 0 or self.warmup_s < 0:
            raise InvalidInputError("rate_memory_s and score_half must be > 0, warmup_s >= 0")
        if self.realarm_factor < 1.0 or self.day_weight < 0 or self.echo_days < 0:
            raise InvalidInputError("realarm_factor >= 1, day_weight >= 0 and echo_days >= 0")
        if self.echo_factor < 0 or self.max_surprise <= self.incident_min_surprise:
            raise InvalidInputError("echo_factor >= 0 and max_surprise > incident_min_surprise")
        if not self.dispersion_memory_s >= 0:
            raise InvalidInputError("dispersion_memory_s must be >= 0 (0: requests independent)")


@dataclass(frozen=True, slots=True)
class ExceedanceSettings(CountTestSettings):
    """Tuning constants of :class:`ExceedanceDetector`."""

    quantile: float = 0.95
    alternatives: tuple[float, ...] = (0.25, 0.9)
    extreme_quantile: float = 0.99
    extreme_alternatives: tuple[float, ...] = (0.8,)
    shift_quantiles: tuple[float, ...] = (0.5, 0.75)
    shift_factors: tuple[float, ...] = (2.0, 5.0)
    tail_quantile: float | None = 0.999
    tail_memory_s: float = _WEEK_S
    level_memory_s: float = 43200.0
    profile_visits: float = 4.0
    profile_min_requests: float = 1000.0
    spread: float = 0.5
    warmup_requests: int = 40
    learn_pause_s: float = 3600.0
    catch_up: float = 3.0
    slot_s: float | None = 600.0
    slot_min_days: int = 3
    slot_prior_requests: float = 25.0

    def __post_init__(self) -> None:
        CountTestSettings.__post_init__(self)
        if self.slot_s is not None and not (
            60.0 <= self.slot_s <= _HOUR_S and _DAY_S % self.slot_s == 0
        ):
            raise InvalidInputError("slot_s must divide a day, 1 min to 1 h")
        q = 1.0 - self.quantile
        if not 0.5 <= self.quantile < 1.0:
            raise InvalidInputError("quantile must be in [0.5, 1)")
        if not (self.alternatives or self.extreme_alternatives or self.shift_factors):
            raise InvalidInputError("at least one of alternatives, shift_factors")
        if not all(q < p < 1.0 for p in self.alternatives):
            raise InvalidInputError("alternatives must be exceedance shares in (1 - quantile, 1)")
        qx = 1.0 - self.extreme_quantile
        if not self.quantile < self.extreme_quantile < 1.0 or not all(
            qx < p < 1.0 for p in self.extreme_alternatives
        ):
            raise InvalidInputError(
                "extreme_quantile in (quantile, 1), extreme_alternatives in (1 - it, 1)"
            )
        bounds = (0.0, *self.shift_quantiles, self.quantile)
        if not all(a < b for a, b in itertools.pairwise(bounds)) or not all(
            f > 1.0 for f in self.shift_factors
        ):
            raise InvalidInputError(
                "shift_quantiles increasing in (0, quantile), shift_factors > 1"
            )
        if self.tail_quantile is not None and not (
            self.extreme_quantile < self.tail_quantile < 1.0 and self.tail_memory_s > 0
        ):
            raise InvalidInputError("tail_quantile in (extreme_quantile, 1), tail_memory_s > 0")
        if min(self.level_memory_s, self.spread, self.profile_visits) <= 0:
            raise InvalidInputError("level_memory_s, spread and profile_visits must be > 0")
        if not (self.learn_pause_s >= 0 and self.catch_up >= 1):
            raise InvalidInputError("learn_pause_s must be >= 0 and catch_up >= 1")
        if self.warmup_requests < 1:
            raise InvalidInputError("warmup_requests must be >= 1")


@dataclass(frozen=True, slots=True)
class ErrorCountSettings(CountTestSettings):
    """Tuning constants of :class:`ErrorCountDetector`."""

    warmup_s: float = 3600.0  # the prior stands for the usual share meanwhile
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


@dataclass(frozen=True, slots=True)
class RateSettings(CountTestSettings):
    """Tuning constants of :class:`RateCountDetector`."""

    warmup_s: float = 3600.0  # twice the memory of the usual rate
    factors: tuple[float, ...] = (0.3, 3.0)
    expect_memory_s: float = 1800.0
    weekly_echo: bool = True
    level_memory_s: float | None = 7200.0
    profile_visits: float = 4.0

    def __post_init__(self) -> None:
        CountTestSettings.__post_init__(self)
        if not self.factors or not all(f > 0.0 and f != 1.0 for f in self.factors):
            raise InvalidInputError("factors must be > 0 and not 1")
        if self.expect_memory_s <= 0:
            raise InvalidInputError("expect_memory_s must be > 0")
        if self.level_memory_s is not None and not self.level_memory_s > 0:
            raise InvalidInputError("level_memory_s must be > 0 (None: no weekly profile)")
        if not self.profile_visits >= 1:
            raise InvalidInputError("profile_visits must be >= 1")


class _CountTest:
    """The machinery both tests share: request rates, CUSUMs, the per-day surprise,
    de-duplication, recurring incidents and the joint with the chart's point detector."""

    __slots__ = (
        "_clock",
        "_common",
        "_cusum",
        "_day_mass",
        "_day_rate",
        "_dispersion",
        "_drained",
        "_echo_before",
        "_first_t",
        "_gap",
        "_incidents",
        "_last_t",
        "_mass",
        "_noted",
        "_open",
        "_point",
        "_point_t",
        "_scored",
        "_surprise",
    )

    def __init__(self, common: CountTestSettings, statistics: int) -> None:
        self._common = common
        self._clock = LocalClock(common.timezone)  # the phase of daily and weekly cycles
        self._cusum = [0.0] * statistics
        # per statistic: whether it has been back at 0 since the incident under way opened
        self._drained = [True] * statistics
        # requests in the last ~rate_memory_s and ~day (exponentially weighted), for rates
        # that count the buckets a caller never feeds (no request) as empty
        self._mass = 0.0
        self._day_mass = 0.0
        self._day_rate = 0.0
        self._first_t = math.nan
        self._last_t = -math.inf
        self._gap = 0.0  # seconds from the bucket before to the last one
        # per statistic, the sums (exponentially weighted over dispersion_memory_s) that
        # estimate how far its increments vary beyond independent requests (see _dispersed)
        self._dispersion = [[0.0, 0.0] for _ in range(statistics)]
        # (opening time, last time above incident_min_surprise, largest surprise) of the
        # incidents of the last 8 days, oldest first
        self._incidents: deque[tuple[float, float, float]] = deque()
        self._echo_before = 0.0
        self._noted = False  # the incident under way is in _incidents
        self._open = False
        self._scored = 0.0
        self._surprise = 0.0  # of the last bucket with requests, once ready
        self._point = 0.0  # surprise of the point detector's last alarm, at _point_t
        self._point_t = -math.inf

    @property
    def ready(self) -> bool:
        """Whether the test scores: ``warmup_s`` has passed since its first bucket (until
        then every score is 0, and a chart is better served by another detector)."""
        return self._last_t - self._first_t >= self._common.warmup_s

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
        self._gap = gap
        memory = common.rate_memory_s
        self._mass = self._mass * math.exp(-gap / memory) + n
        self._day_mass = self._day_mass * math.exp(-gap / _DAY_S) + n
        seen = t - self._first_t + step_s  # seconds of traffic seen so far
        self._day_rate = self._day_mass / (_DAY_S * -math.expm1(-seen / _DAY_S))
        return self._mass / (memory * -math.expm1(-seen / memory))

    def _evidence(
        self,
        t: float,
        rate: float,
        hits: float,
        misses: float,
        llr: list[tuple[float, float]],
        null: list[tuple[float, float]],
        pairs: float,
        starts: list[float] | None = None,
    ) -> float:
        """Add ``hits`` and ``misses`` to each CUSUM (``llr``: per statistic, the log
        likelihood ratio of a hit and of a miss; the rate test's "misses" are the requests
        it expected) and score the largest; ``null``, ``pairs`` and ``starts`` as for
        :meth:`_accumulate`."""
        increments = [hits * up + misses * down for up, down in llr]
        return self._accumulate(t, rate, increments, null, pairs, starts)

    def _accumulate(
        self,
        t: float,
        rate: float,
        increments: list[float],
        null: list[tuple[float, float]],
        pairs: float,
        starts: list[float] | None = None,
    ) -> float:
        """Add each statistic its increment (nats), divided by its dispersion (see
        :meth:`_dispersed`), and score the largest surprise. ``null``: per statistic, the
        mean and variance of the increment if the requests were independent and usual;
        ``pairs``: how many pairs of requests per request the bucket holds (``n - 1`` for
        ``n`` requests, the expected count for the rate test); ``starts``: per statistic,
        the usual share of requests that can start an excursion times the likelihood ratio
        they start it at (a binomial statistic's alternative share; None: 1 for each). A
        statistic stops at ``max_surprise``, so that it drains within minutes of a large
        incident's end and the next one is seen."""
        if not self.ready:  # no evidence against what is still being learnt
            return self._score(t, 0.0)
        increments = self._dispersed(increments, null, pairs)
        common = self._common
        floor = common.day_weight * math.log(max(rate * _DAY_S, 1.0))  # nats of surprise 0
        top = -math.inf
        cusum = self._cusum
        for i, step in enumerate(increments):
            # excursions start only at requests that add evidence: at most N x starts a day
            # reach h nats or more per e^h (see the module docstring)
            share = starts[i] if starts is not None else 1.0
            mine = floor + common.day_weight * math.log(share) if 0.0 < share < 1.0 else floor
            cap = mine + common.max_surprise * _LN10
            c = cusum[i] + step
            c = c if c > 0.0 else 0.0
            c = c if c < cap else cap
            cusum[i] = c
            if c <= 0.0:
                self._drained[i] = True
            if c - mine > top:
                top = c - mine
        if self._day_rate * 60.0 > common.max_requests_per_min:
            top = -floor
        self._surprise = top / _LN10
        return self._score(t, self._surprise)

    def _dispersed(
        self, increments: list[float], null: list[tuple[float, float]], pairs: float
    ) -> list[float]:
        """Each increment divided by its statistic's dispersion ``1 + pairs x rho``.

        The CUSUMs' bound on false alarms holds for independent requests. A real service's
        are not: requests of one bucket share a moment of contention, a slow cache, a GC
        pause (their latencies move together), and clients send in bursts (the counts vary
        beyond Poisson). Then a statistic's increment varies ``1 + pairs x rho`` times as much
        as independence says, and a quasi-likelihood divides it by that factor, which keeps
        the bound. ``rho`` is learnt per statistic, over about ``dispersion_memory_s`` of
        buckets outside incidents, as the excess of the squared deviation from the null mean
        over the null variance, per pair (each bucket's capped at 16 times what the current
        estimate expects, so that a stray incident teaches it little); it starts at 0
        (independence), and is called once the test is ready (its references learnt). Each
        bucket is divided by the estimate from the buckets before it.
        """
        memory = self._common.dispersion_memory_s
        if memory <= 0.0 or pairs <= 0.0:
            return increments
        keep = math.exp(-self._gap / memory)
        usual = not self._in_incident
        out = []
        for x, (mean, var), sums in zip(increments, null, self._dispersion, strict=True):
            rho = sums[0] / sums[1] if sums[0] > 0.0 else 0.0
            phi = 1.0 + pairs * rho
            if usual and var > 0.0:
                sums[0] = sums[0] * keep + min((x - mean) ** 2, 16.0 * var * phi) - var
                sums[1] = sums[1] * keep + var * pairs
            out.append(x / phi)
        return out

    @property
    def _in_incident(self) -> bool:
        """Whether the last bucket left an incident under way (its surprise above
        ``incident_min_surprise``)."""
        return self._surprise > self._common.incident_min_surprise

    def _in_new_incident(self, t: float, limit_s: float) -> bool:
        """Whether the last bucket left an incident under way that is not a recurring one
        and opened at most ``limit_s`` before ``t`` (its requests are not the usual ones)."""
        return (
            self._in_incident
            and self._echo_before == 0.0
            and bool(self._incidents)
            and t - self._incidents[-1][0] <= limit_s
        )

    def _score(self, t: float, surprise: float) -> float:
        """One score per incident step (see the module docstring)."""
        settings = self._common
        if all(self._drained):  # each statistic's excursion is over: so is the incident
            self._open = self._noted = False
        if not self.ready or surprise <= settings.incident_min_surprise:
            return 0.0
        if not self._noted:
            self._drained = [c <= 0.0 for c in self._cusum]
            self._open_echo(t)
            self._noted = True
        first, _, largest = self._incidents[-1]  # for the days to come: its span and size
        self._incidents[-1] = (first, t, surprise if surprise > largest else largest)
        if self._open and surprise <= settings.realarm_factor * self._scored:
            return 0.0
        flagged = t - self._point_t <= _POINT_WINDOW_S  # by the point detector, lately
        if flagged and surprise <= settings.realarm_factor * self._point:
            return 0.0
        self._open = True
        self._scored = surprise
        surprise = max(surprise - settings.echo_factor * self._echo_before, 0.0)
        return surprise / (surprise + settings.score_half)

    def _open_echo(self, t: float) -> None:
        """A new incident at ``t``: remember it, and damp it by the largest of the earlier
        incidents it recurs (see the module docstring)."""
        common = self._common
        days: set[int] = set()
        daily = weekly = 0.0
        phase = self._clock.phase
        local_t = phase(t)
        for utc_first, utc_last, largest in self._incidents:
            if t - utc_first < _MIN_DAY_AGO_S:  # the same day's
                continue
            first, last = phase(utc_first), phase(utc_last)  # times of day: local ones
            # under way at this time a week before, or of an earlier day (give or take)
            week_before = local_t - _WEEK_S
            if first - _WEEK_TOLERANCE_S <= week_before <= last + _WEEK_TOLERANCE_S:
                weekly = max(weekly, largest)
            day = round((local_t - first) / _DAY_S)
            day_before = local_t - day * _DAY_S
            if day <= _ECHO_DAYS_BACK and first - _HOUR_S <= day_before <= last + _HOUR_S:
                days.add(day)
                daily = max(daily, largest)
        recurring = 0 < common.echo_days <= len(days)
        self._echo_before = max(daily if recurring else 0.0, weekly if common.weekly_echo else 0.0)
        incidents = self._incidents
        while incidents and (t - incidents[0][1] > _ECHO_MEMORY_S or len(incidents) >= 256):
            incidents.popleft()
        incidents.append((t, t, 0.0))


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
        "_level_x",
        "_llr",
        "_llr_x",
        "_profile",
        "_q",
        "_qx",
        "_shift_levels",
        "_shift_null",
        "_shift_z",
        "_sigma",
        "_slot_cur",
        "_slot_days",
        "_slot_mass",
        "_slot_mean",
        "_slot_n",
        "_slot_over",
        "_tail_gap",
        "_visits",
        "_warm_n",
        "_warm_sum",
        "settings",
    )

    def __init__(self, settings: ExceedanceSettings | None = None) -> None:
        self.settings = settings if settings is not None else ExceedanceSettings()
        settings = self.settings
        super().__init__(
            settings,
            len(settings.alternatives)
            + len(settings.extreme_alternatives)
            + len(settings.shift_factors),
        )
        self._q = q = 1.0 - settings.quantile
        self._qx = qx = 1.0 - settings.extreme_quantile

        def llr(q: float, p: float) -> tuple[float, float]:
            return math.log(p / q), math.log((1.0 - p) / (1.0 - q))

        self._llr = [llr(q, p) for p in settings.alternatives]
        self._llr_x = [llr(qx, p) for p in settings.extreme_alternatives]
        self._level: float | None = None  # log of the reference latency
        self._level_x = 0.0  # log of the extreme reference, less the hour's offset
        # logs of the shift_quantiles' references, less the hour's offset
        self._shift_levels = [0.0] * len(settings.shift_quantiles)
        # the bins between them, the p95, the p99 and the tail quantile: their z and usual
        # shares of requests
        tail = () if settings.tail_quantile is None else (settings.tail_quantile,)
        bounds = (*settings.shift_quantiles, settings.quantile, settings.extreme_quantile, *tail)
        self._shift_z = [_STANDARD_NORMAL.inv_cdf(p) for p in bounds]
        self._shift_null = _bin_shares([0.0, *bounds, 1.0])
        # log of the tail quantile's reference over the p99's (learnt over tail_memory_s),
        # from the log-normal of the assumed spread
        z = self._shift_z
        self._tail_gap = settings.spread * (z[-1] - z[-2]) if tail else 0.0
        self._profile = [0.0] * 24  # per hour of day: log offset of the reference
        self._visits = [0] * 24  # per hour of day: days it has been seen
        slots = int(_DAY_S // settings.slot_s) if settings.slot_s is not None else 0
        self._slot_mean = array("d", bytes(8 * slots))  # per slot: its log offset over the hour's
        self._slot_mass = array("d", bytes(8 * slots))  # per slot: requests a day it saw
        self._slot_days = array("d", bytes(8 * slots))  # per slot: days it was learnt on
        self._slot_cur = -1  # the slot (since the epoch) being filled, its requests
        self._slot_n = self._slot_over = 0  # and those above the p50 reference
        self._sigma = settings.spread
        self._hour = -1
        self._warm_n = 0
        self._warm_sum = 0.0

    @property
    def reference(self) -> float | None:
        """The learnt usual ``quantile`` latency at the last bucket's hour of day (the
        bucket's unit), or None while learning."""
        if self._level is None:
            return None
        return math.exp(self._level + self._profile[_hour_of_day(self._clock.phase(self._last_t))])

    def _gradient(self, above: int, n: int, q: float) -> float:
        """The stochastic gradient of a quantile with exceedance share ``q`` (log units):
        + (1 - q) / q per request of ``n`` above it, - 1 per request below, times ``spread``."""
        return self.settings.spread * (above - q * n) / q

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
                # the other quantiles of a log-normal of that spread, to start from
                k = len(self._shift_levels)  # z: the shift quantiles', the p95's, the p99's...
                z = self._shift_z
                self._level_x = self._level + settings.spread * (z[k + 1] - z[k])
                self._shift_levels = [self._level + settings.spread * (x - z[k]) for x in z[:k]]
            return 0.0
        phase = self._clock.phase(t)  # local time: daily cycles follow the local clock
        hour = _hour_of_day(phase)
        if hour != self._hour:
            self._hour = hour
            self._visits[hour] += 1
        hourly = self._profile[hour]
        offset = hourly + self._slot_extra(phase)
        above = int(bucket.count_above(math.exp(self._level + offset)))
        # an incident's requests are not the usual ones: once this hour's offset is learnt
        # (a reference still learning would be frozen wrong, and page on), the references
        # learn nothing from them for its first learn_pause_s (then a lasting change is
        # followed)
        mature = self._visits[hour] > settings.profile_visits
        learn = 0.0 if mature and self._in_new_incident(t, settings.learn_pause_s) else 1.0
        gradient = learn * self._gradient(above, n, self._q)
        memory = max(rate * settings.level_memory_s, 1.0)
        self._warm_n += n  # requests since the start
        if learn and mature and self._in_new_incident(t, math.inf):
            # a lasting change, learnt once the pause is over (see the module docstring)
            memory /= settings.catch_up
            levels = self._shift_levels
            for i, level in enumerate(levels):
                levels[i] = level + gradient / memory
        else:
            visits = min(self._visits[hour], settings.profile_visits)  # a mean over the first
            profile_memory = max(rate * _HOUR_S * visits, settings.profile_min_requests, 1.0)
            self._profile[hour] = hourly + gradient / profile_memory
        self._level += gradient / memory
        increments = [above * up + (n - above) * down for up, down in self._llr]
        null = [_binomial_null(n, self._q, up, down) for up, down in self._llr]
        if self._llr_x or settings.shift_factors:  # the p99, with the same hourly offsets
            far = int(bucket.count_above(math.exp(self._level_x + offset)))
            self._level_x += learn * self._gradient(far, n, self._qx) / memory
            increments += [far * up + (n - far) * down for up, down in self._llr_x]
            null += [_binomial_null(n, self._qx, up, down) for up, down in self._llr_x]
        if settings.slot_s is not None and self._shift_levels:
            over = int(bucket.count_above(math.exp(self._shift_levels[0] + offset)))
            self._slot_learn(phase, n, over, learn)
        starts = [*settings.alternatives, *settings.extreme_alternatives]
        if settings.shift_factors:
            shifts = self._shift_evidence(bucket, n, above, far, offset, memory, learn)
            increments += [x for x, _, _ in shifts]
            null += [moments for _, moments, _ in shifts]
            starts += [share for _, _, share in shifts]
        return self._accumulate(t, rate, increments, null, n - 1.0, starts)

    def _slot_extra(self, t: float) -> float:
        """The log offset of local time ``t``'s slot of the day over its hour's, once learnt on
        ``slot_min_days`` days, shrunk towards 0 by the requests behind it."""
        settings = self.settings
        if settings.slot_s is None:
            return 0.0
        return self._slot_offset(int((t % _DAY_S) // settings.slot_s))

    def _slot_offset(self, s: int) -> float:
        """Slot ``s``'s offset as applied (see :meth:`_slot_extra`); it changes only when
        that slot's day is folded in."""
        settings = self.settings
        days = self._slot_days[s]
        if days < settings.slot_min_days:
            return 0.0
        behind = self._slot_mass[s] * min(days, settings.profile_visits)
        return self._slot_mean[s] * behind / (behind + settings.slot_prior_requests)

    def _slot_learn(self, t: float, n: int, over: int, learn: float) -> None:
        """Count the slot's requests above the usual p50 (``t``: local time); at a new slot,
        fold the last one's
        day into its offset: the shift that puts that share above the p50 (for a log-normal
        of the route's spread), a mean over its first days, then over ``profile_visits``."""
        settings = self.settings
        assert settings.slot_s is not None
        slot = int(t // settings.slot_s)
        if slot != self._slot_cur:
            if self._slot_cur >= 0 and self._slot_n > 0:
                s = int(self._slot_cur % (_DAY_S // settings.slot_s))
                share = (self._slot_over + 0.5) / (self._slot_n + 1.0)
                # the share was counted against the references with the slot's offset on
                day = self._sigma * _STANDARD_NORMAL.inv_cdf(share) + self._slot_offset(s)
                self._slot_days[s] += 1.0
                w = 1.0 / min(self._slot_days[s], settings.profile_visits)
                self._slot_mean[s] += (day - self._slot_mean[s]) * w
                self._slot_mass[s] += (self._slot_n - self._slot_mass[s]) * w
            self._slot_cur = slot
            self._slot_n = self._slot_over = 0
        if learn:
            self._slot_n += n
            self._slot_over += over

    def _shift_evidence(
        self,
        bucket: BucketCounts,
        n: int,
        above: int,
        far: int,
        offset: float,
        memory: float,
        learn: float,
    ) -> list[tuple[float, tuple[float, float], float]]:
        """Per ``shift_factors`` f, the log-likelihood ratio (nats) of the bucket's requests
        spread over the bins between the usual ``shift_quantiles``, p95, p99 and
        ``tail_quantile`` under "every latency times f" against the usual shares of those bins
        (a log-normal whose spread is read off the learnt p50-p95 gap), with its mean and
        variance for usual requests; then learns those quantiles' references (times ``learn``,
        0 or 1; the tail's over ``tail_memory_s`` where the others learn over
        ``level_memory_s``, catching up with a lasting change as they do)."""
        settings = self.settings
        levels = self._shift_levels
        counts = [int(bucket.count_above(math.exp(level + offset))) for level in levels]
        # learnt as a running mean over the requests since the start, then as the p95: their
        # start (the p95 less an assumed spread) is a guess, and a p50 is learnt from few
        # requests, so this is a sample quantile within hours even on a quiet route
        start_memory = min(memory, self._warm_n)
        for i, level in enumerate(levels):
            q = 1.0 - settings.shift_quantiles[i]
            levels[i] = level + learn * self._gradient(counts[i], n, q) / start_memory
        counts += [above, far]
        if settings.tail_quantile is not None:
            # the tail reference, as its gap over the p99: a quiet route's p99.9 is passed a
            # few times a day, so it is learnt over a week, while the p99 follows the level
            tail = int(bucket.count_above(math.exp(self._level_x + offset + self._tail_gap)))
            tail_memory = max(memory * settings.tail_memory_s / settings.level_memory_s, 1.0)
            q = 1.0 - settings.tail_quantile
            self._tail_gap += learn * self._gradient(tail, n, q) / tail_memory
            counts.append(tail)
        for i in range(1, len(counts)):  # references out of order: counts cumulative
            counts[i] = min(counts[i], counts[i - 1])
        bins = [a - b for a, b in itertools.pairwise([n, *counts, 0])]  # requests per bin
        z = self._shift_z
        assert self._level is not None
        # the route's log-normal spread, read off its usual p50 (or lowest bound) and p95
        sigma = (self._level - levels[0]) / (z[len(levels)] - z[0])
        sigma = min(max(sigma, 0.05), 5.0)
        self._sigma = sigma
        out = []
        for factor in settings.shift_factors:
            shift = math.log(factor) / sigma
            alternative = _bin_shares([0.0, *(_STANDARD_NORMAL.cdf(x - shift) for x in z), 1.0])
            ratios = [
                math.log(max(p1, 1e-9) / p0)
                for p1, p0 in zip(alternative, self._shift_null, strict=True)
            ]
            mean = sum(p0 * r for p0, r in zip(self._shift_null, ratios, strict=True))
            square = sum(p0 * r * r for p0, r in zip(self._shift_null, ratios, strict=True))
            x = sum(k * r for k, r in zip(bins, ratios, strict=True) if k)
            starts = sum(p1 for p1, r in zip(alternative, ratios, strict=True) if r > 0.0)
            out.append((x, (n * mean, n * max(square - mean * mean, 0.0)), starts))
        return out


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
        starts = []
        for factor in settings.factors:
            p1 = min(factor * p0, 0.99)
            if p1 <= p0:
                continue
            llr.append((math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))))
            starts.append(p1)
        llr += [(0.0, 0.0)] * (len(settings.factors) - len(llr))
        starts += [1.0] * (len(settings.factors) - len(starts))
        null = [_binomial_null(n, p0, up, down) for up, down in llr]
        return self._evidence(t, rate, k, n - k, llr, null, n - 1.0, starts)


class _WeekProfile:
    """A route's traffic per hour of the week, as a share of its day-long mean rate.

    Each hour's share is its requests over the day-long mean's expected requests (plus a
    prior of ``_PROFILE_PRIOR`` requests, so that a nearly empty hour is not a share of 0),
    learnt as a mean over the slot's first visits, then over about ``visits`` of them. Only
    the buckets outside incidents count, and an hour with less than a quarter of an hour of
    them teaches nothing. Memory: 2 x 168 floats.
    """

    __slots__ = ("_base", "_hour", "_n", "_rate", "_seen", "_share", "_visits")

    def __init__(self, visits: float) -> None:
        self._share = array("d", [1.0] * 168)
        self._seen = array("d", [0.0] * 168)
        self._visits = visits
        self._hour = -1  # hours since the epoch of the hour being summed
        self._n = 0.0  # its requests outside incidents
        self._base = 0.0  # and the day-long mean's expected requests for them
        self._rate = 0.0  # the day-long mean rate at the last bucket (per second)

    def share(self, t: float) -> float | None:
        """The learnt share at ``t`` (s), or None before its hour of the week was seen."""
        slot = int(t // _HOUR_S) % 168
        return self._share[slot] if self._seen[slot] > 0.0 else None

    def learn(self, hour: int, requests: float, expected: float) -> None:
        """Learn the ``hour`` (since the epoch) that held ``requests`` where the day-long
        mean expected ``expected``."""
        slot = hour % 168
        seen = self._seen[slot] + 1.0
        self._seen[slot] = seen
        share = (requests + _PROFILE_PRIOR) / (expected + _PROFILE_PRIOR)
        self._share[slot] += (share - self._share[slot]) / min(seen, self._visits)

    def add(self, t: float, n: int, span: float, day_rate: float, usual: bool) -> None:
        """Count the bucket at ``t`` (s): ``n`` requests over ``span`` seconds, where the
        day-long mean rate is ``day_rate`` (per second); ``usual``: outside an incident.
        An hour is learnt once ``t`` leaves it."""
        hour = int(t // _HOUR_S)
        if hour != self._hour:
            if self._hour >= 0 and self._base > 0.0 and self._base >= 900.0 * self._rate:
                self.learn(self._hour, self._n, self._base)
            self._hour, self._n, self._base = hour, 0.0, 0.0
        self._rate = day_rate
        if usual:
            self._n += n
            self._base += day_rate * span


class RateCountDetector(_CountTest):
    """Streaming count test for one request-rate chart: ``update(t, requests, step)``.

    Example::

        det = RateCountDetector()
        for t, requests in buckets:  # every bucket, the empty ones too
            if det.update(t, requests, 10.0) >= Sensitivity.MEDIUM.value:
                page_someone(t)

    Buckets a caller skips between two updates count as empty (no request).
    """

    __slots__ = ("_expected", "_level", "_llr", "_profile", "_usual", "settings")

    def __init__(self, settings: RateSettings | None = None) -> None:
        self.settings = settings if settings is not None else RateSettings()
        super().__init__(self.settings, len(self.settings.factors))
        # a request adds ln(factor), an expected request (1 - factor): Poisson likelihoods
        self._llr = [(math.log(f), 1.0 - f) for f in self.settings.factors]
        self._expected = math.nan  # requests per second, over about expect_memory_s
        self._usual = math.nan  # the expectation of the last bucket (per second)
        self._profile = _WeekProfile(self.settings.profile_visits)
        # requests and the profile's expected requests, exponentially weighted over about
        # level_memory_s: their ratio is the level
        self._level = [0.0, 0.0]

    @property
    def expected_rate(self) -> float | None:
        """The usual request rate (per second) the last bucket was judged against, or None
        before the first bucket."""
        return None if math.isnan(self._usual) else self._usual

    def learn_hours(self, hours: Iterable[tuple[float, int]]) -> int:
        """Learn the weekly profile from hourly request counts that came before the first
        bucket: ``(hour start, requests)``, seconds, oldest first, the hours with no request
        included (an hour left out is one nobody counted: it is not learnt). So a restarted
        process judges its traffic against the weeks its store kept, not against the last
        half hour. Each hour's share is taken against the day-long mean of the hours before
        it, as :meth:`update` takes it, from the second day of the counts on; unlike
        :meth:`update` it cannot leave out an incident's buckets. Returns the hours learnt;
        once the test has seen a bucket it learns nothing (0)."""
        if self.settings.level_memory_s is None or not math.isnan(self._expected):
            return 0
        learnt = 0
        mass = weight = 0.0  # requests and seconds, exponentially weighted over a day
        first = last = math.nan
        for start, requests in hours:
            t, n = float(start), max(int(requests), 0)
            if not math.isfinite(t) or t <= last:
                raise InvalidInputError("hour starts must be finite and increasing")
            if math.isnan(first):
                first = t
            else:
                keep = math.exp(-(t - last) / _DAY_S)
                if t - first >= _DAY_S and mass > 0.0:
                    hour = int(self._clock.phase(t) // _HOUR_S)
                    self._profile.learn(hour, n, mass / weight * _HOUR_S)
                    learnt += 1
                mass, weight = mass * keep, weight * keep
            mass += n
            weight += _HOUR_S
            last = t
        return learnt

    def update(
        self,
        timestamp_s: float,
        requests: int,
        step_s: float,
        point_score: float = 0.0,
    ) -> float:
        """Score the bucket starting at ``timestamp_s`` (seconds) of length ``step_s`` with
        ``requests`` requests; ``point_score`` as for :meth:`ExceedanceDetector.update`."""
        n = max(int(requests), 0)
        last = self._last_t
        day_rate = self._day_rate  # before this bucket
        rate = self._advance(timestamp_s, n, step_s, point_score)
        t = self._last_t
        settings = self.settings
        # the time these requests came in: this bucket and any skipped (empty) before it
        span = max(t - last, step_s) if last > -math.inf else step_s
        recent = self._expected
        learn = -math.expm1(-span / settings.expect_memory_s)
        if math.isnan(recent):
            self._expected = self._usual = n / span
            return self._score(t, 0.0)
        self._expected = recent + learn * (n / span - recent)
        if settings.level_memory_s is None:  # the last half hour's mean, for both
            usual = surge = recent
        else:
            usual = self._profiled(t, n, span, recent, day_rate, settings.level_memory_s)
            # a surge is judged against the higher of the usual rate and the last half
            # hour's mean, this bucket included (see the module docstring)
            surge = max(usual, self._expected)
        self._usual = usual
        llr = self._llr
        means = [(surge if up > 0.0 else usual) * span for up, _ in llr]  # Poisson means
        increments = [n * up + m * down for (up, down), m in zip(llr, means, strict=True)]
        null = [(m * (up + down), m * up * up) for (up, down), m in zip(llr, means, strict=True)]
        return self._accumulate(t, rate, increments, null, usual * span)

    def _profiled(
        self, t: float, n: int, span: float, recent: float, day_rate: float, memory_s: float
    ) -> float:
        """The usual rate at ``t`` (per second): the profile's share of the day-long mean
        (``recent``, the last half hour's mean, before the hour of the week was seen) times
        the level; then the level and the profile learn the bucket."""
        share = self._profile.share(self._clock.phase(t))
        predicted = recent if share is None else share * day_rate
        level = self._level
        usual = predicted * (level[0] / level[1] if level[1] > 0.0 else 1.0)
        keep = math.exp(-span / memory_s)
        level[0] = level[0] * keep + n
        level[1] = level[1] * keep + predicted * span
        self._profile.add(self._clock.phase(t), n, span, day_rate, not self._in_incident)
        return usual
