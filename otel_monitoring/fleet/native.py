"""Native (exponential) histograms in fleet queries: the Collector route's shape.

Instances that send OTLP export **delta exponential** histograms. Through the Collector
(``deltatocumulative``, then ``prometheusremotewrite``) they arrive in Prometheus as
**native histograms**: one series per stream named after the metric with its unit suffix
(``http_server_request_duration_seconds``, no ``_bucket``/``_count``/``_sum``), the schema
capped at 8 (the exporter merges finer buckets: at most 2^(1/256), 0.27 %, between a bucket's
bounds), ``job``/``instance`` from ``service.name``/``service.instance.id``. Prometheus stores
them with ``--enable-feature=native-histograms`` (2.40+) and accepts them with
``--web.enable-remote-write-receiver``.

What this module builds, for a native series selector ``S``:

- :func:`native_increase`: per-series count (``histogram_count``) or sum (``histogram_sum``)
  over a window, exact in the same cases as :func:`otel_monitoring.fleet.stats.exact_increase`
  (last sample minus the sample at the window's start; from zero for a series born inside the
  window; ``increase()``, approximate, for a series that reset or stopped inside the window).
  Prometheus 2.42's ``resets()`` ignores histogram samples, so resets are looked for in
  ``histogram_count`` through a subquery of :data:`RESET_CHECK_POINTS` steps.
- :func:`window_parts`: the histograms whose bucket-wise difference is the window's histogram
  (Prometheus 2.42 cannot subtract histograms in PromQL: ``h - h offset w`` answers a float 0),
  summed per group; :class:`WindowHistogram` does the difference client-side and reads
  quantiles and "how many were at or below ``v``" from it, with linear interpolation inside a
  bucket as ``histogram_quantile`` does. A quantile therefore lies in the bucket of the true
  value: within one bucket's width, 2^(2^-schema) - 1 relative (0.27 % at schema 8, 0.54 %
  at 7). A latency threshold inside a bucket is interpolated the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from otel_monitoring.fleet.prometheus import NativeHistogram

__all__ = [
    "RESET_CHECK_POINTS",
    "WindowHistogram",
    "native_increase",
    "promql_range",
    "window_parts",
]


def promql_range(seconds: float) -> str:
    """A PromQL duration of whole milliseconds, rounded up (a window never shrinks)."""
    ms = max(1, math.ceil(seconds * 1000.0 - 1e-6))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


#: Points per window of the subquery that looks for counter resets.
RESET_CHECK_POINTS = 60
# Its shortest step: bounds the cost in charts (one subquery per chart step).
_RESET_CHECK_MIN_STEP_S = 5.0


def _reset(series: str, window_s: float) -> str:
    # A counter reset inside the window. Prometheus 2.42's resets() ignores histogram samples,
    # so it reads the counts through a subquery (RESET_CHECK_POINTS steps of at least 5 s: a
    # reset is missed only if the count climbs back above its old value within one step),
    # plus the end count below the start count.
    w = promql_range(window_s)
    step = promql_range(max(window_s / RESET_CHECK_POINTS, _RESET_CHECK_MIN_STEP_S))
    return (
        f"(histogram_count({series}) < histogram_count({series} offset {w}))"
        f" or (resets(histogram_count({series})[{w}:{step}]) > 0)"
    )


def native_increase(series: str, window_s: float | None, fn: str = "histogram_count") -> str:
    """PromQL for the per-series ``fn`` (``histogram_count`` or ``histogram_sum``) of the
    native histograms ``series`` over the last ``window_s`` seconds; their current value for
    the whole lifetime (``window_s is None``). Empty when ``series`` has no native samples."""
    if fn not in ("histogram_count", "histogram_sum"):
        raise ValueError(f"fn must be histogram_count or histogram_sum, not {fn!r}")
    if window_s is None:
        return f"{fn}({series})"
    w = promql_range(window_s)
    return (
        f"(({fn}({series}) - {fn}({series} offset {w})) unless ({_reset(series, window_s)}))"
        f" or ({fn}({series}) unless {fn}({series} offset {w}))"
        f" or {fn}(increase({series}[{w}]))"
    )


def window_parts(series: str, window_s: float | None, by: Sequence[str]) -> dict[str, str]:
    """Queries of the histograms (summed ``by`` the labels) whose difference is each group's
    histogram over the window: ``add`` (every live series without a reset, at the end),
    ``sub`` (the same series at the window's start, for those that existed then) and ``inc``
    (``increase()`` of the rest: reset or stopped inside the window). Whole lifetime
    (``window_s is None``): ``add`` only. Feed the results to :class:`WindowHistogram`."""
    group = f"sum by ({', '.join(by)})"
    if window_s is None:
        return {"add": f"{group} ({series})"}
    w = promql_range(window_s)
    clean = f"({series} unless ({_reset(series, window_s)}))"
    return {
        "add": f"{group} ({clean})",
        "sub": f"{group} (({series} offset {w}) and {clean})",
        "inc": f"{group} (increase({series}[{w}]) unless {clean})",
    }


def _below_at(histogram: NativeHistogram, points: Sequence[float]) -> list[float]:
    """Observations ``<= x`` for each ascending ``x`` in ``points``: exact at bucket bounds,
    linear inside a bucket. One pass over the buckets."""
    found: list[float] = []
    buckets = histogram.buckets
    j, base = 0, 0.0
    for x in points:
        while j < len(buckets) and buckets[j][1] <= x:
            base += buckets[j][2]
            j += 1
        partial = 0.0
        if j < len(buckets):
            lower, upper, count = buckets[j]
            if lower < x < upper:
                partial = count * (x - lower) / (upper - lower)
        found.append(base + partial)
    return found


@dataclass(frozen=True, slots=True)
class WindowHistogram:
    """One group's histogram over a window: ``sum(add) - sum(sub) + sum(inc)``, bucket-wise.

    The parts may use different schemas (a Collector lowers a stream's schema when its range
    grows); the difference is taken on the cumulative counts at every bound of every part, so
    no bucket has to line up.
    """

    add: tuple[NativeHistogram, ...] = ()
    sub: tuple[NativeHistogram, ...] = ()
    inc: tuple[NativeHistogram, ...] = ()

    def _parts(self) -> list[tuple[float, NativeHistogram]]:
        return [
            *((1.0, h) for h in self.add),
            *((-1.0, h) for h in self.sub),
            *((1.0, h) for h in self.inc),
        ]

    @property
    def count(self) -> float:
        """Observations in the window."""
        return sum(sign * h.count for sign, h in self._parts())

    def below(self, value: float) -> float:
        """Observations ``<= value`` (exact at a bucket bound, interpolated inside one)."""
        return sum(sign * _below_at(h, [value])[0] for sign, h in self._parts())

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1), as ``histogram_quantile`` computes it on one histogram:
        the bucket where the cumulative count reaches ``q * count``, interpolated linearly.
        ``None`` when the window holds no observation."""
        parts = self._parts()
        total = self.count
        if not total > 0 or not parts:
            return None
        points = sorted(
            {b for _, h in parts for lower, upper, _c in h.buckets for b in (lower, upper)}
        )
        if not points:
            return None
        cumulative = [0.0] * len(points)
        for sign, h in parts:
            for i, below in enumerate(_below_at(h, points)):
                cumulative[i] += sign * below
        rank = min(max(q, 0.0), 1.0) * total
        for i, c in enumerate(cumulative):
            if c >= rank - 1e-9 * total:
                if i == 0:
                    return points[0]
                low, low_c = points[i - 1], cumulative[i - 1]
                if c <= low_c:
                    return points[i]
                return low + (points[i] - low) * (rank - low_c) / (c - low_c)
        return points[-1]
