"""Streaming anomaly detection: one score in [0, 1] per point, alarms de-duplicated.

The detector looks at every new point through five *views* of the series:

* **value** - distance of the value from a robust (winsorised) exponentially weighted baseline,
  in units of a robust scale (1.2533 x mean absolute deviation, which equals sigma for a
  Gaussian);
* **level** - distance of a fast moving average from that baseline (catches level shifts and
  slow drifts that no single point reveals);
* **seasonal** - residual against a per time-of-day profile (catches a value that is normal for
  the series but not for the hour, e.g. a flat middle of a day); it starts once a time of day
  repeats;
* **difference** - size of the step from the previous value against the typical step.
* **deseasonalised level** - the level view on the value less its time-of-day profile, in
  that residual's own scale: a strong daily cycle inflates the raw scale, so without this a
  shift of a few sigma would hide inside the cycle; it starts 50 points after the profile.

Before the views, a **weekly** check: offsets per hour of the week and per hour of the day
(against a week-long mean) both predict each point; once two weeks have passed and the weekly
one is clearly better (see :meth:`AnomalyDetector._week`), the views see the value less its
day-of-week deviation, so a weekend like the earlier weekends is not news.

Each view's raw distance is smoothed and then turned into a *surprise*: how unlikely the recent
smoothed distance is under that view's own long-run distribution (the "anomaly likelihood" idea
of Ahmad et al. 2017), expressed as ``-log10`` of a Gaussian tail probability. Surprise is made
comparable across series this way, so one threshold fits all of them. A surprise whose smoothed
distance stays well below the largest one the view has recently seen is damped (a repeated
pattern stops being news).

A fifth, **range** check needs no statistics: a value beyond the range the series has shown so
far (by more than ``range_margin`` of its width) is news by itself, with a surprise of
``range_weight`` x the excess. The range shrinks slowly towards the baseline
(``range_decay`` per point, proportionally less for points closer than 5 minutes apart), so
old extremes are forgotten over ~10,000 points (~35 days of 5-min points, and no faster in
time for finer series).

A sixth, **fast** view catches short excursions that the views' ~50-point smoothing dilutes:
the value view's distance smoothed over only ~3 points (``fast_view_rate``), calibrated
against the series' own history of it rather than a Gaussian: it is news only when it exceeds
the largest fast distance seen so far (forgotten by ``fast_view_decay`` per point, ~2,000
points) by more than ``fast_view_margin`` (50 %), with a surprise of ``fast_view_weight`` x
the relative excess beyond that margin. A noisy series has large fast distances all the time,
so its blips do not page; a quiet one's first large excursion does. ``fast_view_rate=0``
switches it off. The point's surprise ``S`` is the largest of all; its score is
``S / (S + score_half)``.

**Resolution.** Every scale above (value, step, seasonal, deseasonalised) is floored at
``quantum_floor`` x the series' *quantum*, the smallest nonzero step seen so far: for a series
of whole counts (quantum 1) a scale cannot shrink below the 1/sqrt(12) = 0.29 standard deviation
of rounding to a whole number, so a quiet stretch of 0s with an occasional 1 does not make the
next 1 look like a many-sigma event. Series of real-valued measurements have a tiny quantum and
keep the plain floor (1e-3 x the baseline).

**De-duplication.** An incident raises the surprise for many consecutive points; only the first
point of an incident gets a score, later points get 0 unless their surprise is several times
larger (``realarm_factor``) than the one that opened the incident. Within
``realarm_gap_points`` of the opening only a surprise ``realarm_jump`` times the opening one
alarms again: a noise blip that opened an incident just before a real one (a p95 of 7 ms over a
5 ms baseline, then 400 ms) must not swallow it, while the few points of one incident's onset
stay one alarm. An opening is remembered as a surprise of at most ``realarm_cap`` (100, a score
of 0.95): the range check's surprise grows with the excess in range widths, so on a flat chart
(a p95 within 0.02 ms for a minute) a 1-ms blip scored tens of thousands and the 400-ms
incident after it fell short of ``realarm_jump`` times that. The incident lasts
``refractory_points`` after its opening, and longer while it goes on: it ends only once
``incident_hold_points`` points have passed without a surprise above ``incident_min_surprise``
and at least ``incident_hold_ratio`` (0.1) x the opening one, so a long burst yields one alarm,
not one per ``refractory_points``. The ratio is low because the tail of a burst (a level
average still high, the step back to normal) is the same incident and must not open a new one;
only an incident opened by a far new record, with its huge surprise, needs strong surprises to
go on. So at any threshold a flagged point means "a new incident starts here", which is what
alarm consumers (and the NAB score, which charges every flagged point outside a labelled
window) want.

**Recurring incidents.** An incident opening strong enough for ``HIGH`` sensitivity
(``echo_min_score``) is remembered per hour of the day. One that comes within an hour of the
time of day of openings on each of the previous ``echo_days`` (2) days is expected - a
nightly job's spike, a daily batch - and scores only by how much its surprise exceeds the
largest of those earlier openings: it alarms on its first two nights, then only when it is
stronger than before. Series sampled less often than hourly skip this.

**Level shifts.** The baseline is winsorised so outliers do not drag it, and it jumps to the new
level once the series has stayed on one side of it for ``shift_points`` consecutive points.

Guarantees: ``update`` is O(1) time (no loops over history) and O(1) memory (at most 288
daily and 192 weekly bins, 24 hourly incident records and a fixed number of floats); each
score depends only on the points up to and including its own; :func:`score_series` gives
exactly the scores of repeated ``update`` calls.
Scores are 0 during the first ``warmup_points`` points, while the detector learns.

**Speed.** Installed with a C compiler at hand, this module is compiled by mypyc (the repository's
``setup.py``): the same source, the same bits (``tests/analyzers/test_anomaly_compiled.py``),
about 3x faster (``benchmarks/score_speed.py``: ~215,000-235,000 points/s on one core against
~73,000 as Python). The code is written for both: plain ``math.*`` calls, which mypyc turns
into C calls, and per-view state in small slotted objects rather than parallel lists.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers._validation import as_float_array, check_same_length, check_timestamps
from analyzers.errors import InvalidInputError

__all__ = [
    "Anomaly",
    "AnomalyDetector",
    "AnomalyReport",
    "DetectorSettings",
    "Sensitivity",
    "detect_anomalies",
    "score_series",
]

_LN10 = math.log(10.0)
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_MAD_TO_SIGMA = 1.2533  # sqrt(pi/2): mean absolute deviation -> sigma for a Gaussian
_MAX_ABS_VALUE = 1e150  # larger magnitudes are ignored like NaN (their squares overflow)
_DAY_S = 86400.0
_MAX_SEASONAL_BINS = 288
_N_VIEWS = 5
_SEASONAL = 2  # index of the seasonal view in the distance tuple
_SEASONAL_LEVEL = 4  # index of the deseasonalised level view
_SEASONAL_LEVEL_WARMUP = 50  # points with a time-of-day profile before that view counts
_PLAIN_VIEWS: tuple[int, ...] = (0, 1, 3)  # value, level, difference: before a bin repeats
_VIEWS_BUT_SEASONAL_LEVEL: tuple[int, ...] = (0, 1, _SEASONAL, 3)
_ALL_VIEWS: tuple[int, ...] = tuple(range(_N_VIEWS))
_ECHO_MIN_S = 20 * 3600.0  # "the previous day": an opening 20-28 h earlier
_ECHO_MAX_S = 28 * 3600.0
_VIEW_WARMUP = 20  # points a view must see before its surprise counts
_WEEK_S = 7 * _DAY_S
_MAX_WEEKLY_BIN_S = 3 * 3600.0


class Sensitivity(enum.Enum):
    """How readily the detector raises an alarm.

    The value is the score threshold: a point is an alarm when ``score >= value``. ``MEDIUM`` is
    about the threshold that maximises the NAB standard score on its development corpus;
    ``LOW`` keeps mostly values outside the range seen so far and very strong surprises;
    ``HIGH`` raises more alarms. On 40,000 points of white noise 5 minutes apart they raised 29,
    52 and 80 false alarms; 10 s apart, 4, 19 and 32 (``benchmarks/false_alarms.py``).
    """

    LOW = 0.6
    MEDIUM = 0.34
    HIGH = 0.26


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Tuning constants of :class:`AnomalyDetector` (defaults are the tested configuration).

    Rates are per point (an exponential moving average with rate ``a`` remembers about ``1/a``
    points). Change them only with a benchmark at hand (``benchmarks/nab.py``).
    """

    warmup_points: int = 150
    baseline_rate: float = 0.01
    winsor_k: float = 2.5
    fast_rate: float = 0.0667
    diff_rate: float = 0.0133
    smooth_rate: float = 0.02
    longrun_rate: float = 0.002
    season_bin_rate: float = 0.375
    season_level_rate: float = 0.075
    refractory_points: int = 120
    realarm_factor: float = 3.0
    realarm_gap_points: int = 6
    realarm_jump: float = 20.0
    shift_points: int = 100
    distance_cap: float = 50.0
    record_decay: float = 0.9996
    record_power: float = 4.0
    record_ratio: float = 0.44
    incident_min_surprise: float = 0.75
    score_half: float = 5.0
    range_margin: float = 0.045
    range_weight: float = 1000.0
    range_decay: float = 1e-4
    range_min_distance: float = 0.0
    weekly: bool = True
    weekly_bin_rate: float = 0.5
    weekly_gate: float = 0.45
    weekly_release: float = 0.6
    weekly_min_days: float = 14.0
    weekly_bin_s: float = 3600.0
    quantum_floor: float = 1.0 / math.sqrt(12.0)
    incident_hold_ratio: float = 0.1
    incident_hold_points: int = 30
    echo_days: int = 2
    echo_min_score: float = Sensitivity.HIGH.value
    fast_view_rate: float = 0.3
    fast_view_margin: float = 0.5
    fast_view_weight: float = 10.0
    fast_view_decay: float = 0.9995
    realarm_cap: float = 100.0

    def __post_init__(self) -> None:
        rates = (
            self.baseline_rate,
            self.fast_rate,
            self.diff_rate,
            self.smooth_rate,
            self.longrun_rate,
            self.season_bin_rate,
            self.season_level_rate,
        )
        if not all(0.0 < r <= 1.0 for r in rates):
            raise InvalidInputError("every *_rate must be in (0, 1]")
        if self.warmup_points < 2 or self.refractory_points < 0 or self.shift_points < 1:
            raise InvalidInputError("warmup_points >= 2, refractory_points >= 0, shift_points >= 1")
        if self.range_margin < 0 or self.range_weight < 0 or not 0.0 <= self.range_decay < 1.0:
            raise InvalidInputError("range_margin, range_weight >= 0 and 0 <= range_decay < 1")
        if not (
            0.0 < self.weekly_bin_rate <= 1.0
            and 0.0 < self.weekly_gate <= self.weekly_release
            and self.weekly_min_days >= 7.0
            and self.weekly_bin_s >= 3600.0
        ):
            raise InvalidInputError(
                "weekly_bin_rate in (0, 1], 0 < weekly_gate <= weekly_release,"
                " weekly_min_days >= 7, weekly_bin_s >= 3600"
            )
        if not self.quantum_floor >= 0.0:
            raise InvalidInputError("quantum_floor must be >= 0")
        if not (self.incident_hold_ratio >= 0.0 and self.incident_hold_points >= 0):
            raise InvalidInputError("incident_hold_ratio and incident_hold_points must be >= 0")
        if not (self.echo_days >= 0 and 0.0 < self.echo_min_score < 1.0):
            raise InvalidInputError("echo_days must be >= 0 and echo_min_score in (0, 1)")
        if not (
            0.0 <= self.fast_view_rate <= 1.0
            and self.fast_view_margin >= 0.0
            and self.fast_view_weight >= 0.0
            and 0.0 < self.fast_view_decay <= 1.0
        ):
            raise InvalidInputError(
                "fast_view_rate in [0, 1], fast_view_margin and fast_view_weight >= 0,"
                " fast_view_decay in (0, 1]"
            )
        if not 0.0 < self.record_decay <= 1.0:
            raise InvalidInputError("record_decay must be in (0, 1]")
        if (
            min(
                self.winsor_k,
                self.distance_cap,
                self.score_half,
                self.realarm_factor,
                self.realarm_cap,
            )
            <= 0
            or self.realarm_jump < self.realarm_factor
        ):
            raise InvalidInputError(
                "winsor_k, distance_cap, score_half, realarm_factor, realarm_cap must be > 0"
                " and realarm_jump >= realarm_factor"
            )


def _surprise(z: float) -> float:
    """-log10 of the upper Gaussian tail probability Q(z) (no underflow for large z)."""
    if z < 5.0:
        return -math.log10(0.5 * math.erfc(z / _SQRT2))
    # Asymptotic expansion Q(z) ~ phi(z)/z * (1 - 1/z^2); relative error < 1e-3 for z >= 5.
    return (0.5 * z * z + _LOG_SQRT_2PI + math.log(z) - math.log1p(-1.0 / (z * z))) / _LN10


class _View:
    """One view's running state: points seen, smoothed distance, the long-run mean and
    variance of the smoothed distance, and its slowly decaying record (robust sigmas)."""

    __slots__ = ("count", "mean", "record", "smoothed", "variance")

    def __init__(self) -> None:
        self.count = 0
        self.smoothed = 0.0
        self.mean = 0.0
        self.variance = 0.0
        self.record = 0.0


class AnomalyDetector:
    """Streaming detector for one series: ``update(timestamp_s, value) -> score in [0, 1]``.

    Example::

        det = AnomalyDetector(Sensitivity.MEDIUM)
        for ts, v in points:
            score = det.update(ts, v)
            if det.is_alarm(score):
                page_someone(ts, v, score)

    ``timestamp_s`` is seconds (any epoch); timestamps must not decrease. A non-finite value (or
    one beyond +-1e150) scores 0 and leaves the state untouched.
    """

    __slots__ = (
        "_base",
        "_binw",
        "_dscale",
        "_echo",
        "_echo_min",
        "_fast",
        "_fmax",
        "_fsmooth",
        "_hi",
        "_last_busy_n",
        "_last_open",
        "_last_open_n",
        "_last_t",
        "_level",
        "_lo",
        "_n",
        "_prev",
        "_profile",
        "_quantum",
        "_range_shrink",
        "_run",
        "_scale",
        "_sscale",
        "_step",
        "_t0",
        "_views",
        "_wadj",
        "_wbinw",
        "_wdaily",
        "_wday",
        "_weekly",
        "_werr",
        "_wprof",
        "_wrates",
        "_wref",
        "_ybase",
        "_yfast",
        "_yn",
        "_yscale",
        "sensitivity",
        "settings",
    )

    def __init__(
        self,
        sensitivity: Sensitivity = Sensitivity.MEDIUM,
        settings: DetectorSettings | None = None,
    ) -> None:
        self.sensitivity = sensitivity
        self.settings = settings if settings is not None else DetectorSettings()
        self._n = 0
        self._t0 = 0.0
        self._last_t = -math.inf
        self._binw = 300.0
        self._base = 0.0
        self._scale = 0.0
        self._fast = 0.0
        self._fsmooth = 0.0
        self._fmax = 0.0
        self._hi = 0.0
        self._lo = 0.0
        self._prev = 0.0
        self._quantum = math.inf
        # per hour of day: (time, largest surprise, days in a row) of that day's incident
        # openings there; only openings a HIGH-sensitivity score would flag are remembered
        self._echo: list[tuple[float, float, int]] = [(-math.inf, 0.0, 0)] * 24
        h = self.settings.echo_min_score
        self._echo_min = self.settings.score_half * h / (1.0 - h)
        self._dscale = 0.0
        self._level = 0.0
        self._sscale = 0.0
        self._profile: dict[int, float] = {}
        self._views = tuple(_View() for _ in range(_N_VIEWS))
        self._yn = 0
        self._ybase = self._yfast = self._yscale = 0.0
        self._run = 0
        self._last_open = 0.0
        self._last_open_n = -(10**12)
        self._last_busy_n = -(10**12)
        self._wbinw = 3600.0
        self._wref = 0.0
        self._wprof: dict[int, float] = {}
        self._wday: dict[int, float] = {}
        self._werr = 0.0
        self._wdaily = 0.0
        self._weekly = False
        self._wadj = 0.0
        self._step = 3600.0
        self._range_shrink = self.settings.range_decay
        self._wrates = (0.5, 1.0 / 7.0)

    def _week(self, t: float, x: float) -> float:
        """Weekly view: ``x`` less its day-of-week deviation once that explains the series.

        Two offset profiles against a week-long mean ``wref``: per hour of the week (recent
        weeks) and per hour of the day (about a week of days). Once ``weekly_min_days`` have
        passed and the weekly profile predicts clearly better (mean error below
        ``weekly_gate`` x the daily one), the detector sees ``x - (weekly - daily)`` so a
        weekend that looks like earlier weekends is not news.
        """
        p = self.settings
        binw = self._wbinw
        db = int((t % _DAY_S) // binw)
        wb = (int(t // _DAY_S) % 7) * 1000 + db
        r = x - self._wref
        wprof, wday = self._wprof, self._wday
        wo = wprof.get(wb)
        do = wday.get(db)
        ae = self._step / _WEEK_S
        adj = 0.0
        if wo is not None and do is not None:
            ew = abs(r - wo)
            cap = 3.0 * _MAD_TO_SIGMA * self._werr
            # an outlier moves the weekly profile by at most 3 sigma
            r_w = wo + (cap if r > wo else -cap) if 0.0 < cap < ew else r
            self._werr += ae * (ew - self._werr)
            self._wdaily += ae * (abs(r - do) - self._wdaily)
            adj = wo - do
            wprof[wb] = wo + self._wrates[0] * (r_w - wo)
        else:
            wprof[wb] = r
        wday[db] = r if do is None else do + self._wrates[1] * (r - do)
        mean_rate = 1.0 / self._n
        self._wref += (mean_rate if mean_rate > ae else ae) * (x - self._wref)  # max(ae, ...)
        scale = self._scale
        if abs(adj) <= scale or abs(self._wadj) <= scale:
            gate = p.weekly_release if self._weekly else p.weekly_gate
            self._weekly = (
                t - self._t0 >= p.weekly_min_days * _DAY_S and self._werr < gate * self._wdaily
            )
        self._wadj = adj
        return x - adj if self._weekly else x

    def _echo_damp(self, t: float, surprise: float) -> float:
        """Remember an incident opening at this hour of the day and return its surprise; when
        openings came within an hour of this time of day on each of the previous
        ``echo_days`` days, only its excess over the largest of those (a nightly job's spike
        alarms on its first nights, then only when it is stronger than before)."""
        hour = int((t % _DAY_S) // 3600.0)
        echo = self._echo
        streak, before = 1, 0.0
        for h in (hour - 1, hour, hour + 1):
            et, es, ek = echo[h % 24]
            if _ECHO_MIN_S <= t - et <= _ECHO_MAX_S and ek + 1 > streak:
                streak, before = ek + 1, es
        et, es, ek = echo[hour]
        top = max(surprise, before)  # the largest opening of the streak
        if t - et < _ECHO_MIN_S:  # this hour already opened an incident today
            echo[hour] = (et, max(es, top), max(ek, streak))
        else:
            echo[hour] = (t, top, streak)
        if streak > self.settings.echo_days:
            return max(surprise - before, 0.0)
        return surprise

    def _deseasonalised_level(self, y: float, floor: float) -> float:
        """Distance of a fast average of ``y`` (the value less its time-of-day profile) from
        a winsorised slow baseline of ``y``, in robust units of ``y``'s own scale.

        The plain level view measures in the raw series' scale, which a strong daily cycle
        inflates; without the cycle a shift of a few sigma stands out within ~15 points.
        """
        p = self.settings
        yn = self._yn + 1
        self._yn = yn
        if yn == 1:
            self._ybase = self._yfast = y
        scale = self._yscale if self._yscale > floor else floor
        dev = y - self._ybase
        self._yfast += p.fast_rate * (y - self._yfast)
        distance = abs(self._yfast - self._ybase) / scale
        a = p.baseline_rate if p.baseline_rate * yn > 1.0 else 1.0 / yn
        lim = p.winsor_k * scale if yn >= 10 else math.inf
        clipped = dev if -lim <= dev <= lim else (lim if dev > 0 else -lim)
        self._ybase += a * clipped
        self._yscale += a * (_MAD_TO_SIGMA * abs(clipped) - self._yscale)
        return distance

    @property
    def points_seen(self) -> int:
        """Number of finite points processed so far."""
        return self._n

    def is_alarm(self, score: float) -> bool:
        """True when ``score`` reaches this detector's sensitivity threshold."""
        return score >= self.sensitivity.value

    def update(self, timestamp_s: float, value: float) -> float:
        """Score one point (seconds, value) using it and the points before it; O(1).

        The phases, in order: check the point; on the first point start the state
        (:meth:`_start`) and on the second learn the sampling interval
        (:meth:`_learn_sampling_interval`); remove the weekly deviation (:meth:`_week`);
        measure the point in each view (:meth:`_view_distances`); turn the distances into one
        surprise (:meth:`_views_surprise`, :meth:`_fast_view_surprise`,
        :meth:`_range_surprise`); learn from the point (:meth:`_learn_baseline`,
        :meth:`_learn_step_scale`, :meth:`_learn_profile`); and score the surprise once per
        incident (:meth:`_deduplicated_score`). Each phase sees the state the phases before it
        left, so the scores are the same bits as when this was one function
        (``tests/analyzers/test_anomaly_pinned.py`` holds them).
        """
        time_s = float(timestamp_s)
        if not math.isfinite(time_s):
            raise InvalidInputError(f"timestamp must be finite, got {timestamp_s!r}")
        if time_s < self._last_t:
            raise InvalidInputError(
                f"timestamps must not decrease: {timestamp_s!r} after {self._last_t!r}"
            )
        x = float(value)
        if not (-_MAX_ABS_VALUE <= x <= _MAX_ABS_VALUE):  # NaN fails both comparisons
            return 0.0
        self._last_t = time_s
        settings = self.settings
        index = self._n  # finite points before this one
        self._n = index + 1
        if index == 0:
            self._start(time_s, x)
            return 0.0
        if index == 1:
            self._learn_sampling_interval(time_s)
        if settings.weekly and self._wbinw <= _MAX_WEEKLY_BIN_S:
            x = self._week(time_s, x)
        base = self._base
        floor = self._resolution_floor(base)
        scale = self._scale if self._scale > floor else floor
        fast = self._fast + settings.fast_rate * (x - self._fast)
        self._fast = fast
        step_size = abs(x - self._prev)
        step_scale = self._dscale if self._dscale > floor else floor
        season_bin = int((time_s % _DAY_S) // self._binw)
        profile_value = self._profile.get(season_bin)
        residual = 0.0 if profile_value is None else x - profile_value - self._level
        distances = self._view_distances(
            x, base, fast, scale, step_size, step_scale, profile_value, residual, floor
        )
        surprise = self._views_surprise(distances, profile_value is not None)
        if settings.fast_view_rate > 0.0:
            surprise = self._fast_view_surprise(index, distances[0], surprise)
        surprise = self._range_surprise(index, x, base, scale, surprise)
        baseline_rate = self._learn_baseline(index, x - base, base, scale, fast)
        self._learn_step_scale(index, step_size, step_scale)
        self._prev = x
        self._learn_profile(season_bin, x, profile_value, residual, baseline_rate)
        if index < settings.warmup_points:
            return 0.0
        return self._deduplicated_score(index, time_s, surprise)

    def _start(self, time_s: float, x: float) -> None:
        """First finite point: every baseline, the range and the weekly mean start at ``x``."""
        self._base = self._fast = self._prev = self._hi = self._lo = self._wref = x
        self._t0 = time_s

    def _learn_sampling_interval(self, time_s: float) -> None:
        """Second finite point: the interval since the first (seconds) sets the time-of-day
        bin width (at least 5 min), the weekly bin width and the weekly profiles' rates."""
        settings = self.settings
        interval_s = time_s - self._t0
        self._binw = max(_DAY_S / _MAX_SEASONAL_BINS, interval_s)
        self._wbinw = max(settings.weekly_bin_s, interval_s)
        self._step = min(max(interval_s, 1e-9), _WEEK_S)
        # the range's shrink per point: range_decay, less for points closer than 5 min
        self._range_shrink = settings.range_decay * min(self._step / 300.0, 1.0)
        visits = self._step / self._wbinw  # a bin holds 1/visits points per visit
        self._wrates = (
            1.0 - (1.0 - settings.weekly_bin_rate) ** visits,
            1.0 - (6.0 / 7.0) ** visits,
        )

    def _resolution_floor(self, base: float) -> float:
        """Smallest scale any view may use (units of the value): 1e-3 x ``|base|`` (at least
        1e-9), raised to ``quantum_floor`` x the series' quantum when that is larger."""
        floor = 1e-3 * abs(base)
        if floor < 1e-9:
            floor = 1e-9
        quantum_floor = self.settings.quantum_floor * self._quantum  # inf * 0 is nan: no floor
        if floor < quantum_floor < math.inf:
            floor = quantum_floor
        return floor

    def _view_distances(
        self,
        x: float,
        base: float,
        fast: float,
        scale: float,
        step_size: float,
        step_scale: float,
        profile_value: float | None,
        residual: float,
        floor: float,
    ) -> tuple[float, float, float, float, float]:
        """Raw distance of the point in each view (value, level, seasonal, difference,
        deseasonalised level), in robust sigmas, each capped at ``distance_cap``; the seasonal
        views are 0 until this time-of-day bin has a profile value (``profile_value``)."""
        cap = self.settings.distance_cap
        # ``cap if cap < d else d`` is ``min(d, cap)`` without the call
        value_distance = abs(x - base) / scale
        level_distance = abs(fast - base) / scale
        step_distance = step_size / step_scale
        if profile_value is None:
            return (
                cap if cap < value_distance else value_distance,
                cap if cap < level_distance else level_distance,
                0.0,
                cap if cap < step_distance else step_distance,
                0.0,
            )
        season_scale = self._sscale if self._sscale > floor else floor
        season_distance = abs(residual) / season_scale
        season_level_distance = self._deseasonalised_level(x - profile_value, floor)
        return (
            cap if cap < value_distance else value_distance,
            cap if cap < level_distance else level_distance,
            cap if cap < season_distance else season_distance,
            cap if cap < step_distance else step_distance,
            cap if cap < season_level_distance else season_level_distance,
        )

    def _views_surprise(
        self, distances: tuple[float, float, float, float, float], seasonal: bool
    ) -> float:
        """Largest surprise (``-log10`` of a tail probability) over the views: per view, smooth
        the distance, compare it with the view's long-run mean and variance (after
        ``_VIEW_WARMUP`` points), damp it below ``record_ratio`` x the view's slowly decaying
        record, then learn the long-run statistics and the record. ``seasonal`` is whether
        the time-of-day bin has a profile value; the deseasonalised level view waits a further
        ``_SEASONAL_LEVEL_WARMUP`` points."""
        settings = self.settings
        smooth_rate = settings.smooth_rate
        longrun_rate = settings.longrun_rate
        record_decay = settings.record_decay
        record_power = settings.record_power
        record_ratio = settings.record_ratio
        states = self._views
        if not seasonal:
            views = _PLAIN_VIEWS
        elif self._yn <= _SEASONAL_LEVEL_WARMUP:
            views = _VIEWS_BUT_SEASONAL_LEVEL
        else:
            views = _ALL_VIEWS
        surprise = 0.0
        for view in views:
            state = states[view]
            count = state.count + 1
            state.count = count
            longrun_weight = longrun_rate if longrun_rate * count > 1.0 else 1.0 / count
            smoothed = state.smoothed + smooth_rate * (distances[view] - state.smoothed)
            state.smoothed = smoothed
            mean = state.mean
            if count > _VIEW_WARMUP:
                z = (smoothed - mean) / (math.sqrt(state.variance) + 1e-3)
                # _surprise(z), its common branch inlined (the same expression)
                view_surprise = (
                    -math.log10(0.5 * math.erfc(z / _SQRT2)) if z < 5.0 else _surprise(z)
                )
                record_level = record_ratio * (state.record + 1e-12)
                if smoothed < record_level:
                    view_surprise *= (smoothed / record_level) ** record_power
                if view_surprise > surprise:
                    surprise = view_surprise
            decayed_record = state.record * record_decay
            state.record = smoothed if smoothed > decayed_record else decayed_record
            deviation = smoothed - mean
            state.mean = mean + longrun_weight * deviation
            state.variance = (1.0 - longrun_weight) * (
                state.variance + longrun_weight * deviation * deviation
            )
        return surprise

    def _fast_view_surprise(self, index: int, value_distance: float, surprise: float) -> float:
        """``surprise``, raised by the fast view: the value distance smoothed over ~3 points is
        news only beyond the series' own slowly forgotten largest one by more than
        ``fast_view_margin`` (after the warm-up); then learns that largest one."""
        settings = self.settings
        fast_smoothed = self._fsmooth + settings.fast_view_rate * (value_distance - self._fsmooth)
        self._fsmooth = fast_smoothed
        largest = self._fmax
        if index > settings.warmup_points and largest > 0.0:
            excess = fast_smoothed / largest - 1.0 - settings.fast_view_margin
            if excess > 0.0 and settings.fast_view_weight * excess > surprise:
                surprise = settings.fast_view_weight * excess
        largest *= settings.fast_view_decay
        self._fmax = fast_smoothed if fast_smoothed > largest else largest
        return surprise

    def _range_surprise(
        self, index: int, x: float, base: float, scale: float, surprise: float
    ) -> float:
        """``surprise``, raised by the range view: ``x`` beyond the range seen so far by more
        than ``range_margin`` of its width (after the warm-up); then shrinks the range towards
        ``base`` and widens it to hold ``x``."""
        settings = self.settings
        high, low = self._hi, self._lo
        width = high - low
        if index > settings.warmup_points and width > 0.0:
            beyond = x - high if x > high else low - x if x < low else 0.0
            excess = beyond / width
            if (
                excess > settings.range_margin
                and beyond > settings.range_min_distance * scale
                and settings.range_weight * excess > surprise
            ):
                surprise = settings.range_weight * excess
        shrink = self._range_shrink
        high -= shrink * (high - base)
        low += shrink * (base - low)
        self._hi = x if x > high else high
        self._lo = x if x < low else low
        return surprise

    def _learn_baseline(
        self, index: int, deviation: float, base: float, scale: float, fast: float
    ) -> float:
        """Learn the winsorised baseline and scale from ``deviation`` (the value less
        ``base``), and jump the baseline to the fast average after ``shift_points`` points on
        one side of it. Returns the baseline's rate for this point."""
        settings = self.settings
        rate = settings.baseline_rate if settings.baseline_rate * index > 1.0 else 1.0 / index
        limit = settings.winsor_k * scale if index >= 10 else math.inf
        clipped = (
            deviation if -limit <= deviation <= limit else (limit if deviation > 0 else -limit)
        )
        self._base = base + rate * clipped
        self._scale += rate * (_MAD_TO_SIGMA * abs(clipped) - self._scale)
        if abs(deviation) > settings.winsor_k * scale and deviation * (fast - base) > 0:
            self._run += 1
            if self._run >= settings.shift_points:
                self._base = fast
                self._run = 0
        else:
            self._run = 0
        return rate

    def _learn_step_scale(self, index: int, step_size: float, step_scale: float) -> None:
        """Learn the typical step (clipped at 3 x ``step_scale`` after 10 points) and the
        quantum, the smallest nonzero step so far."""
        settings = self.settings
        rate = settings.diff_rate if settings.diff_rate * index > 1.0 else 1.0 / index
        clipped = step_size if index <= 10 or step_size < 3.0 * step_scale else 3.0 * step_scale
        self._dscale += rate * (_MAD_TO_SIGMA * clipped - self._dscale)
        if 0.0 < step_size < self._quantum:
            self._quantum = step_size  # the value resolution: smallest nonzero step so far

    def _learn_profile(
        self,
        season_bin: int,
        x: float,
        profile_value: float | None,
        residual: float,
        baseline_rate: float,
    ) -> None:
        """Learn the time-of-day profile: a new bin starts at ``x`` less the level; a known one
        moves towards ``x`` by its residual clipped at 3 seasonal scales, shared with the
        level, and the seasonal scale learns at ``baseline_rate``."""
        if profile_value is None:
            self._profile[season_bin] = x - self._level
            return
        settings = self.settings
        limit = 3.0 * self._sscale
        clipped = (
            residual
            if limit <= 0.0 or -limit <= residual <= limit
            else (limit if residual > 0 else -limit)
        )
        self._profile[season_bin] = profile_value + settings.season_bin_rate * clipped
        self._level += settings.season_level_rate * clipped
        self._sscale += baseline_rate * (_MAD_TO_SIGMA * abs(clipped) - self._sscale)

    def _deduplicated_score(self, index: int, time_s: float, surprise: float) -> float:
        """Score in [0, 1] of ``surprise``: 0 inside an incident unless it is ``realarm_factor``
        (within ``realarm_gap_points`` of the opening, ``realarm_jump``) times the opening
        one; an opening is remembered, damped when it recurs daily (:meth:`_echo_damp`)."""
        settings = self.settings
        since_opening = index - self._last_open_n
        ongoing = (
            since_opening < settings.refractory_points
            or index - self._last_busy_n < settings.incident_hold_points
        )
        if (
            ongoing
            and surprise > settings.incident_min_surprise
            and surprise >= settings.incident_hold_ratio * self._last_open
        ):
            self._last_busy_n = index  # the incident goes on
        if ongoing and (
            surprise <= self._last_open * settings.realarm_factor
            or (
                since_opening < settings.realarm_gap_points
                and surprise <= self._last_open * settings.realarm_jump
            )
        ):
            return 0.0
        if surprise > settings.incident_min_surprise:
            cap = settings.realarm_cap
            self._last_open = surprise if surprise < cap else cap
            self._last_open_n = index
            if settings.echo_days and surprise > self._echo_min and self._step <= 3600.0:
                surprise = self._echo_damp(time_s, surprise)
        return surprise / (surprise + settings.score_half)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One alarm: the opening point of an incident (index into the input, its time and value)."""

    index: int
    timestamp_s: float
    value: float
    score: float


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    """Scores of a whole series plus the alarms at the chosen sensitivity.

    ``scores`` has one entry in [0, 1] per input point (a read-only array); ``anomalies`` lists
    the points with ``score >= threshold`` in time order.
    """

    scores: npt.NDArray[np.float64]
    anomalies: tuple[Anomaly, ...]
    sensitivity: Sensitivity
    threshold: float
    points: int


def score_series(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    settings: DetectorSettings | None = None,
) -> npt.NDArray[np.float64]:
    """Scores of a whole series, identical to feeding it point by point to a fresh detector.

    ``timestamps_s`` must be finite and non-decreasing (seconds); ``values`` may hold NaN (those
    points score 0). Returns a float64 array of the same length with values in [0, 1]. Causal:
    the scores of a prefix equal the first scores of the whole series.
    """
    ts = as_float_array(timestamps_s, "timestamps_s")
    vs = as_float_array(values, "values", allow_nan=True)
    check_same_length(ts, vs, "timestamps_s", "values")
    check_timestamps(ts, "timestamps_s")
    det = AnomalyDetector(settings=settings)
    update = det.update
    out = np.fromiter(
        (update(t, v) for t, v in zip(ts.tolist(), vs.tolist(), strict=True)),
        dtype=np.float64,
        count=len(ts),
    )
    return out


def detect_anomalies(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    sensitivity: Sensitivity = Sensitivity.MEDIUM,
    settings: DetectorSettings | None = None,
) -> AnomalyReport:
    """Score a series (see :func:`score_series`) and list its alarms at ``sensitivity``."""
    scores = score_series(timestamps_s, values, settings)
    ts = np.asarray(timestamps_s, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    thr = float(sensitivity.value)
    idx = np.flatnonzero(scores >= thr)
    alarms = tuple(
        Anomaly(int(i), float(ts[i]), float(vs[i]), float(scores[i])) for i in idx.tolist()
    )
    scores.setflags(write=False)
    return AnomalyReport(scores, alarms, sensitivity, thr, len(scores))
