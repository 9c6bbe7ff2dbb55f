"""``FleetStats``: the statistics of :class:`~otel_monitoring.stats.local.Stats`, from Prometheus.

Same method names, arguments and frozen dataclasses as ``Stats`` (``endpoints``,
``endpoint``, ``top_endpoints``, ``service``, ``health``, ``db_statements``, plus
``timeseries``), computed over every instance that Prometheus (or Thanos, Mimir,
VictoriaMetrics) scrapes: the series the OTel Prometheus exporter writes, e.g.
``http_server_request_duration_seconds_{bucket,count,sum}``, and the **native histograms**
that a Collector's ``prometheusremotewrite`` stores from the OTLP exponential histograms
(``http_server_request_duration_seconds``; see :mod:`otel_monitoring.fleet.native`).

**Counts are exact** when Prometheus holds the samples. ``increase(x[w])`` is *not* used for
them: it extrapolates the first and last samples to the window's edges, so 10 requests can
read as 10.8, and a series born inside the window loses its first sample's value. Instead,
per series, the count over the window ending at ``t`` is

- ``x - x offset w`` (last sample at ``t`` minus last sample at ``t - w``) when the series
  existed at both ends and did not reset (an instance restart) within the window;
- ``x`` when the series did not exist at ``t - w`` (instance started, or route first hit,
  inside the window: cumulative counters start at 0);
- ``increase(x[w])`` (extrapolated, not exact) for the rest: a reset inside the window, or
  an instance that stopped inside the window (its series went stale before ``t``).

Both ends read the last sample at or before that instant (within Prometheus's 5 min
look-back), so requests served after an instance's last scrape are counted at the next one.
Window ``all`` sums the counters' current values: since each live instance started.

**Percentiles** come from ``histogram_quantile`` over the per-bucket counts computed the same
way: linear interpolation inside the bucket holding the quantile, so they lie within that
bucket (see :data:`otel_monitoring.fleet.exposition.SECONDS_BUCKETS`), not within 1 % as the
in-process exponential histograms. Minimum and maximum are not in Prometheus histograms and
are ``None``; averages are ``_sum / _count`` (exact). Native histograms: counts and sums
are exact in the same way (``histogram_count``/``histogram_sum``), percentiles are computed
here from the window's native buckets, within one bucket (at most 0.27 % wide at schema 8).

Errors are 5xx responses or requests with ``error.type`` set; 4xx are reported apart, as in
``Stats``. Each method issues one query (``health``: four), plus up to three per
histogram read when native series exist. Failures raise
:class:`~otel_monitoring.fleet.prometheus.PrometheusError` (the API answers 503 with its
message); nothing here is on an application's request path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from otel_monitoring.clock import Clock, SystemClock
from otel_monitoring.errors import ConfigError
from otel_monitoring.fleet.native import (
    WindowHistogram,
    native_increase,
    promql_range,
    window_parts,
)
from otel_monitoring.fleet.prometheus import PrometheusClient, Sample
from otel_monitoring.semconv import UNMATCHED_ROUTE, status_class
from otel_monitoring.stats.timeseries import Point, Series, TimeseriesMetric
from otel_monitoring.stats.view import (
    EndpointSort,
    StatsView,
    health_status,
    ms,
    pct,
    request_figures,
    slowest_first,
    sort_endpoints,
    window_minutes,
    worst_endpoints,
)
from otel_monitoring.types import (
    DbStatementStats,
    EndpointStats,
    HealthStatus,
    LatencyStats,
    SelfTelemetry,
    ServiceStats,
    Window,
)

__all__ = ["SELECTOR_ENV", "FleetMetricNames", "FleetStats", "exact_increase"]

SELECTOR_ENV = "OTEL_MONITORING_PROMETHEUS_SELECTOR"

_QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
_PART = "otel_monitoring_part"
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^(?:{_MATCHER}(?:,{_MATCHER})*,?)?\s*$")
_MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series


@dataclass(frozen=True, slots=True)
class FleetMetricNames:
    """Prometheus names of the metrics read (the OTel exporter's; change ``prefix`` if the
    exposition or the Collector adds a namespace)."""

    http_duration: str = "http_server_request_duration_seconds"
    http_response_size: str = "http_server_response_body_size_bytes"
    db_duration: str = "db_client_operation_duration_seconds"
    process_start: str = "process_start_time_seconds"
    prefix: str = ""

    def __getitem__(self, name: str) -> str:
        value: str = getattr(self, name)
        return f"{self.prefix}_{value}" if self.prefix else value


def _q(value: str) -> str:
    """A PromQL string literal (JSON escaping is valid PromQL escaping)."""
    return json.dumps(value)


_range = promql_range  # whole milliseconds, rounded up: a window never shrinks
_NATIVE = ("add", "sub", "inc")


def exact_increase(series: str, window_s: float | None) -> str:
    """PromQL for the per-series count over the last ``window_s`` seconds (see the module
    docstring): exact unless a series reset or went stale inside the window; ``series``
    alone for the whole lifetime (``window_s is None``). ``series`` is a selector such as
    ``x_count{job="shop"}``."""
    if window_s is None:
        return f"({series})"
    w = _range(window_s)
    return (
        f"((({series}) - ({series} offset {w})) unless (resets({series}[{w}]) > 0))"
        f" or (({series}) * 1 unless ({series} offset {w}))"
        f" or increase({series}[{w}])"
    )


def _cumulative_at(buckets: list[tuple[float, float]], value: float) -> float:
    """How many observations were ``<= value``, from cumulative ``(le, count)`` buckets in
    ascending ``le`` order: exact at a boundary, linear inside a bucket (from 0 below the
    first boundary), the total above the last finite one."""
    low_le, low_count = 0.0, 0.0
    for le, count in buckets:
        if not math.isfinite(count):
            continue
        if value <= le:
            if math.isinf(le) or le <= low_le:
                return low_count
            return low_count + (count - low_count) * (value - low_le) / (le - low_le)
        low_le, low_count = le, count
    return low_count


@dataclass(slots=True)
class _Group:
    """Accumulated numbers of one group (a route and method, a DB statement, the service)."""

    requests: float = 0.0
    errors: float = 0.0
    client_errors: float = 0.0
    duration_sum_s: float = 0.0
    size_sum_bytes: float = 0.0
    size_count: float = 0.0
    quantiles_s: dict[str, float] = field(default_factory=dict)
    classes: dict[str, float] = field(default_factory=dict)


def _count(value: float) -> int:
    return round(value) if math.isfinite(value) else 0


class FleetStats:
    """Statistics of a fleet of instances read from a Prometheus-compatible API.

    Args:
        client: the query API client.
        selector: label matchers that pick this service's series, e.g. ``job="shop"``
            (empty: every series with the metric names). Env
            ``OTEL_MONITORING_PROMETHEUS_SELECTOR``.
        latency_threshold_ms: p95 above which :meth:`health` reports a route (ms).
        names: metric names as stored in Prometheus.
        clock: queries are evaluated at ``clock.now_s()``; without one, at the server's now.
        self_telemetry: the local monitor's own counters for :meth:`health` (zeros if absent).
        histograms: which histogram shapes to read: ``"both"`` (default: classic
            ``_bucket``/``_count``/``_sum`` series as ``/metrics`` serves them, and native
            histograms as the Collector's remote write stores them; needs ``histogram_count``,
            Prometheus 2.40+), ``"classic"`` (backends without native-histogram functions)
            or ``"native"``.

    Example::

        fleet = FleetStats(PrometheusClient("http://127.0.0.1:9090"), selector='job="shop"')
        fleet.service("5m").requests

    Raises:
        ConfigError: ``selector`` is not a comma-separated list of label matchers.
    """

    def __init__(
        self,
        client: PrometheusClient,
        *,
        selector: str = "",
        latency_threshold_ms: float = 1000.0,
        names: FleetMetricNames | None = None,
        clock: Clock | None = None,
        self_telemetry: Callable[[], SelfTelemetry] | None = None,
        histograms: str = "both",
    ) -> None:
        if histograms not in ("both", "classic", "native"):
            raise ConfigError(f"histograms must be both, classic or native, not {histograms!r}")
        self.histograms = histograms
        if not _SELECTOR.match(selector) or "{" in selector:
            raise ConfigError(
                f"invalid {SELECTOR_ENV}={selector!r}: use label matchers without braces,"
                ' e.g. job="shop" or job="shop",env=~"prod|canary"'
            )
        self.client = client
        self.selector = selector.strip().rstrip(",")
        self.latency_threshold_ms = latency_threshold_ms
        self.names = names or FleetMetricNames()
        self.clock = clock
        self._self_telemetry = self_telemetry
        self._started_s = (clock or SystemClock()).now_s()

    # -- query building --------------------------------------------------------------------
    def _sel(self, metric: str, suffix: str = "", filters: Mapping[str, str] | None = None) -> str:
        """``<name><suffix>{selector,filters}``; ``filters`` maps a label to ``op"value"``."""
        parts = [self.selector] if self.selector else []
        parts += [f"{label}{op}" for label, op in (filters or {}).items()]
        return f"{self.names[metric]}{suffix}{{{','.join(parts)}}}"

    def _counted(
        self,
        metric: str,
        kind: str,
        window_s: float | None,
        filters: Mapping[str, str] | None = None,
    ) -> str:
        """Per-series count (``kind="count"``) or sum (``"sum"``) of a histogram metric over
        the window, from classic series (``<name>_count``/``_sum``, what ``/metrics`` serves)
        or native ones (``<name>``, what the Collector's remote write stores), whichever
        exist; a series of both shapes with the same labels counts once (classic)."""
        classic = exact_increase(self._sel(metric, f"_{kind}", filters), window_s)
        if self.histograms == "classic":
            return classic
        native = native_increase(self._sel(metric, "", filters), window_s, f"histogram_{kind}")
        if self.histograms == "native":
            return native
        return f"({classic}) or ({native})"

    def _native_parts(
        self,
        metric: str,
        window_s: float | None,
        by: tuple[str, ...],
        filters: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """``nh_add``/``nh_sub``/``nh_inc``: the native histograms per group whose difference
        is the window's (:func:`~otel_monitoring.fleet.native.window_parts`), and ``native_n``,
        how many native series there are (the ``nh_*`` queries run only when some exist)."""
        if self.histograms == "classic":
            return {}
        series = self._sel(metric, "", filters)
        parts = {f"nh_{name}": e for name, e in window_parts(series, window_s, by).items()}
        parts["native_n"] = f"count(histogram_count({series}))"
        return parts

    @staticmethod
    def _windows(
        found: Mapping[str, list[Sample]], key: Callable[[Mapping[str, str]], tuple[str, ...]]
    ) -> dict[tuple[str, ...], WindowHistogram]:
        """Each group's native window histogram from the ``nh_*`` parts of a query."""
        parts: dict[tuple[str, ...], dict[str, list[object]]] = {}
        for name in _NATIVE:
            for sample in found.get(f"nh_{name}", ()):
                if sample.histogram is not None:
                    by_part = parts.setdefault(key(sample.labels), {n: [] for n in _NATIVE})
                    by_part[name].append(sample.histogram)
        return {
            k: WindowHistogram(*(tuple(v[n]) for n in _NATIVE))  # type: ignore[arg-type]
            for k, v in parts.items()
        }

    def _at(self) -> float | None:
        return None if self.clock is None else self.clock.now_s()

    def _query_parts(self, parts: Mapping[str, str], at_s: float | None) -> dict[str, list[Sample]]:
        """Run several expressions in one query, each tagged with a label naming its part.

        Parts named ``..nh_*`` return native histograms, which ``label_replace`` turns into
        a float 0 (Prometheus 2.42): each is its own query, run only when the part
        ``..native_n`` with the same prefix counted native series (so a fleet with classic
        series only still costs one query)."""
        native = {name: e for name, e in parts.items() if "nh_" in name}
        expr = " or ".join(
            f'label_replace({e}, "{_PART}", "{name}", "", "")'
            for name, e in parts.items()
            if name not in native
        )
        found: dict[str, list[Sample]] = {name: [] for name in parts}
        for sample in self.client.query(expr, at_s):
            part = sample.labels.get(_PART)
            if part in found:
                found[part].append(sample)
        for name, e in native.items():
            if found.get(name[: name.index("nh_")] + "native_n"):
                found[name] = self.client.query(e, at_s)
        return found

    def _http_parts(
        self, window_s: float | None, by: tuple[str, ...], filters: Mapping[str, str]
    ) -> dict[str, str]:
        group = ", ".join(by)
        count = self._counted("http_duration", "count", window_s, filters)
        total = self._counted("http_duration", "sum", window_s, filters)
        bucket = exact_increase(self._sel("http_duration", "_bucket", filters), window_s)
        size_sum = self._counted("http_response_size", "sum", window_s, filters)
        size_count = self._counted("http_response_size", "count", window_s, filters)
        detail = ", ".join((*by, "http_response_status_code", "error_type"))
        parts = {
            "count": f"sum by ({detail}) ({count})",
            "duration_sum": f"sum by ({group}) ({total})",
            "size_sum": f"sum by ({group}) ({size_sum})",
            "size_count": f"sum by ({group}) ({size_count})",
        }
        by_le = ", ".join((*by, "le"))
        if self.histograms != "native":
            for name, q in _QUANTILES:
                parts[name] = f"histogram_quantile({q}, sum by ({by_le}) ({bucket}))"
        parts.update(self._native_parts("http_duration", window_s, by, filters))
        return parts

    def _age_part(self) -> str:
        return f"time() - min({self._sel('process_start')})"

    @staticmethod
    def _filters(route: str | None, method: str | None) -> dict[str, str]:
        filters: dict[str, str] = {}
        if route is not None:
            filters["http_route"] = "=" + _q("" if route == UNMATCHED_ROUTE else route)
        if method is not None:
            filters["http_request_method"] = "=" + _q(method)
        return filters

    @staticmethod
    def _fold(
        found: Mapping[str, list[Sample]], key: Callable[[Mapping[str, str]], tuple[str, ...]]
    ) -> dict[tuple[str, ...], _Group]:
        groups: dict[tuple[str, ...], _Group] = {}
        for sample in found.get("count", ()):
            g = groups.setdefault(key(sample.labels), _Group())
            code = sample.labels.get("http_response_status_code", "")
            klass = status_class(code)
            g.requests += sample.value
            g.classes[klass] = g.classes.get(klass, 0.0) + sample.value
            if sample.labels.get("error_type") or klass == "5xx":
                g.errors += sample.value
            if klass == "4xx":
                g.client_errors += sample.value
        for part, attr in (
            ("duration_sum", "duration_sum_s"),
            ("size_sum", "size_sum_bytes"),
            ("size_count", "size_count"),
        ):
            for sample in found.get(part, ()):
                found_g = groups.get(key(sample.labels))
                if found_g is not None and math.isfinite(sample.value):
                    setattr(found_g, attr, getattr(found_g, attr) + sample.value)
        for name, _ in _QUANTILES:
            for sample in found.get(name, ()):
                found_g = groups.get(key(sample.labels))
                if found_g is not None and math.isfinite(sample.value):
                    found_g.quantiles_s[name] = sample.value
        # Groups with native histograms only (the Collector route): quantiles client-side.
        for k, window in FleetStats._windows(found, key).items():
            found_g = groups.get(k)
            if found_g is None or found_g.quantiles_s:
                continue
            for name, q in _QUANTILES:
                value = window.quantile(q)
                if value is not None and math.isfinite(value):
                    found_g.quantiles_s[name] = value
        return groups

    @staticmethod
    def _latency(g: _Group, requests: int) -> LatencyStats:
        if requests == 0:
            return LatencyStats(None, None, None, None, None, None, None)
        q = g.quantiles_s
        return LatencyStats(
            min_ms=None,
            avg_ms=ms(g.duration_sum_s / requests),
            max_ms=None,
            p50_ms=ms(q.get("p50")),
            p90_ms=ms(q.get("p90")),
            p95_ms=ms(q.get("p95")),
            p99_ms=ms(q.get("p99")),
        )

    def _minutes(self, window: Window, age: list[Sample]) -> float:
        """The window's minutes, cut to the oldest live instance's age (when Prometheus has
        ``process_start_time_seconds``; else, for window ``all``, this view's age)."""
        fleet_age_s = age[0].value if age and math.isfinite(age[0].value) else None
        if fleet_age_s is None and window.seconds is None:
            fleet_age_s = self.uptime_s
        return window_minutes(window.seconds, fleet_age_s)

    @property
    def uptime_s(self) -> float:
        """Seconds since this ``FleetStats`` was created (the local view's age)."""
        return max(0.0, (self.clock or SystemClock()).now_s() - self._started_s)

    # -- HTTP server -----------------------------------------------------------------------
    def endpoints(
        self,
        window: Window | str = Window.H1,
        *,
        sort: EndpointSort | str = EndpointSort.REQUESTS,
        limit: int | None = None,
        route: str | None = None,
        method: str | None = None,
    ) -> list[EndpointStats]:
        """Statistics per route template and method over the fleet, busiest or worst first.

        ``exemplars`` are empty (traces are not in Prometheus). Raises
        :class:`~otel_monitoring.fleet.prometheus.PrometheusError`.
        """
        window, sort = Window(window), EndpointSort(sort)
        by = ("http_route", "http_request_method")
        parts = self._http_parts(window.seconds, by, self._filters(route, method))
        parts["age"] = self._age_part()
        found = self._query_parts(parts, self._at())
        groups = self._fold(
            found,
            lambda labels: (labels.get("http_route", ""), labels.get("http_request_method", "")),
        )
        minutes = self._minutes(window, found["age"])
        result = []
        for (r, m), g in groups.items():
            requests = _count(g.requests)
            if requests == 0:
                continue
            size_count = _count(g.size_count)
            result.append(
                EndpointStats(
                    route=r or UNMATCHED_ROUTE,
                    method=m,
                    window=window,
                    **request_figures(
                        requests=requests,
                        errors=_count(g.errors),
                        client_errors=_count(g.client_errors),
                        latency=self._latency(g, requests),
                        minutes=minutes,
                    ),
                    response_size_avg_bytes=(
                        round(g.size_sum_bytes / size_count, 1) if size_count else None
                    ),
                    response_size_max_bytes=None,
                    status_classes=tuple(
                        sorted((k, _count(v)) for k, v in g.classes.items() if _count(v))
                    ),
                )
            )
        return sort_endpoints(result, sort, limit)

    def endpoint(
        self, route: str, method: str | None = None, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """Statistics of one route template over the fleet (every method, or just ``method``).
        Raises ``PrometheusError``."""
        return self.endpoints(window, route=route, method=method.upper() if method else None)

    def top_endpoints(
        self, window: Window | str = Window.H1, *, limit: int = 10
    ) -> list[EndpointStats]:
        """The fleet's worst endpoints: by error rate, then p95 latency.
        Raises ``PrometheusError``."""
        return worst_endpoints(self.endpoints(window), limit)

    def service(self, window: Window | str = Window.H1) -> ServiceStats:
        """Statistics over all routes of all instances. Raises ``PrometheusError``."""
        window = Window(window)
        return self._service(window, self._query_parts(self._service_parts(window), self._at()))

    def _service_parts(self, window: Window) -> dict[str, str]:
        parts = self._http_parts(window.seconds, (), {})
        parts["routes"] = (
            "count(sum by (http_route, http_request_method) ("
            + self._counted("http_duration", "count", window.seconds)
            + ") > 0)"
        )
        parts["age"] = self._age_part()
        return parts

    def _service(self, window: Window, found: Mapping[str, list[Sample]]) -> ServiceStats:
        g = self._fold(found, lambda labels: ()).get((), _Group())
        requests = _count(g.requests)
        routes = found.get("routes") or []
        return ServiceStats(
            window=window,
            **request_figures(
                requests=requests,
                errors=_count(g.errors),
                client_errors=_count(g.client_errors),
                latency=self._latency(g, requests),
                minutes=self._minutes(window, list(found.get("age", ()))),
            ),
            endpoints_count=_count(routes[0].value) if routes else 0,
        )

    def slo_counts(
        self,
        window_s: float,
        *,
        route: str | None = None,
        method: str | None = None,
        latency_threshold_ms: float | None = None,
    ) -> tuple[int, int]:
        """Requests of every instance over the last ``window_s`` seconds and how many were bad:
        errors, or (given ``latency_threshold_ms``) slower than the threshold. For SLO rules.

        Counts are exact (see the module docstring). Prometheus histograms only know their
        buckets, so "slower than" is exact when the threshold is a bucket boundary
        (:data:`~otel_monitoring.fleet.exposition.SECONDS_BUCKETS`) and otherwise linearly
        interpolated inside its bucket, as ``histogram_quantile`` does.
        Raises ``PrometheusError``."""
        filters = self._filters(route, method)
        count = self._counted("http_duration", "count", window_s, filters)
        parts = {"count": f"sum by (http_response_status_code, error_type) ({count})"}
        if latency_threshold_ms is not None:
            bucket = exact_increase(self._sel("http_duration", "_bucket", filters), window_s)
            parts["le"] = f"sum by (le) ({bucket})"
            parts.update(self._native_parts("http_duration", window_s, (), filters))
        found = self._query_parts(parts, self._at())
        g = self._fold(found, lambda labels: ()).get((), _Group())
        requests = _count(g.requests)
        if latency_threshold_ms is None:
            return requests, _count(g.errors)
        threshold_s = latency_threshold_ms / 1000.0
        buckets = sorted(
            (float(sample.labels.get("le", "nan")), sample.value) for sample in found["le"]
        )
        faster = _cumulative_at(buckets, threshold_s)
        native = self._windows(found, lambda labels: ()).get(())
        if native is not None:  # the Collector route's instances (both shapes: both counted)
            faster += native.below(threshold_s)
        return requests, max(0, requests - _count(faster))

    # -- dependencies ----------------------------------------------------------------------
    def db_statements(self, window: Window | str = Window.H1) -> list[DbStatementStats]:
        """DB operations per statement summary over the fleet, slowest (by p95) first.

        ``example`` is the summary itself (statement texts are not in Prometheus)."""
        window = Window(window)
        by = ("db_query_summary", "db_system_name")
        count = self._counted("db_duration", "count", window.seconds)
        total = self._counted("db_duration", "sum", window.seconds)
        bucket = exact_increase(self._sel("db_duration", "_bucket"), window.seconds)
        group = ", ".join(by)
        parts = {
            "count": f"sum by ({group}, error_type) ({count})",
            "duration_sum": f"sum by ({group}) ({total})",
            "p95": f"histogram_quantile(0.95, sum by ({group}, le) ({bucket}))",
        }
        parts.update(self._native_parts("db_duration", window.seconds, by))
        found = self._query_parts(parts, self._at())
        groups = self._fold(
            found,
            lambda labels: (labels.get("db_query_summary", ""), labels.get("db_system_name", "")),
        )
        result = []
        for (summary, system), g in groups.items():
            count_n = _count(g.requests)
            if count_n == 0:
                continue
            result.append(
                DbStatementStats(
                    summary=summary,
                    system=system,
                    count=count_n,
                    errors=_count(g.errors),
                    avg_ms=ms(g.duration_sum_s / count_n),
                    p95_ms=ms(g.quantiles_s.get("p95")),
                    max_ms=None,
                    example=summary,
                )
            )
        return slowest_first(result)

    # -- charts ----------------------------------------------------------------------------
    def timeseries(
        self,
        metric: TimeseriesMetric | str,
        *,
        window_s: float = 3600.0,
        step_s: float | None = None,
        route: str | None = None,
        method: str | None = None,
    ) -> Series:
        """Chart points of ``metric`` over the last ``window_s`` seconds, oldest first.

        One point per ``step_s`` (default: ``window_s / 60``, at least 10 s); each covers
        the step ending at its time plus ``step_s`` (``Point.t`` is the step's start, as in
        :func:`otel_monitoring.stats.timeseries.http_series`), counted exactly as the module
        docstring says. Throughput is requests per minute, error rate a percentage,
        latencies milliseconds; ``value`` is ``None`` for a step with no requests.
        """
        metric = TimeseriesMetric(metric)
        step = step_s if step_s is not None else max(10.0, window_s / 60.0)
        if not step > 0 or window_s / step > _MAX_POINTS:
            raise ValueError(f"step {step} s is too small for a {window_s} s window")
        filters = self._filters(route, method.upper() if method else None)
        count = self._counted("http_duration", "count", step, filters)
        exprs = {"count": f"sum({count})"}
        native: dict[str, str] = {}
        q = 0.0
        if metric is TimeseriesMetric.ERROR_RATE:
            failed = {**filters, "error_type": '!=""'}
            server = {**filters, "http_response_status_code": '=~"5.."'}
            errors = (
                self._counted("http_duration", "count", step, failed)
                + " or "
                + self._counted("http_duration", "count", step, server)
            )
            exprs["value"] = f"sum({errors})"
        elif metric is TimeseriesMetric.LATENCY_AVG:
            total = self._counted("http_duration", "sum", step, filters)
            exprs["value"] = f"sum({total})"
        elif metric is not TimeseriesMetric.THROUGHPUT:
            q = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}[metric.value]
            bucket = exact_increase(self._sel("http_duration", "_bucket", filters), step)
            if self.histograms != "native":
                exprs["value"] = f"histogram_quantile({q}, sum by (le) ({bucket}))"
            native = self._native_parts("http_duration", step, (), filters)
        end = self._at()
        if end is None:
            end_s = self.client.query_value("time()")
            end = end_s if end_s is not None else SystemClock().now_s()
        end = math.ceil(end / step) * step  # the last point includes the current step
        start = end - math.floor(window_s / step) * step + step
        by_time: dict[str, dict[float, float]] = {}
        for name, expr in exprs.items():
            series = self.client.query_range(expr, start_s=start, end_s=end, step_s=step)
            by_time[name] = dict(series[0].points) if series else {}
        if native and not by_time.get("value"):  # native histograms only: quantiles here
            by_time["value"] = self._native_quantiles(native, q, start, end, step)
        points = []
        t = start
        while t <= end + 1e-9:
            n = _count(by_time["count"].get(t, 0.0))
            points.append(
                Point(t=t - step, value=self._point(metric, n, by_time, t, step), count=n)
            )
            t += step
        return Series(
            metric=metric,
            unit=metric.unit,
            window_s=window_s,
            step_s=step,
            route=route,
            method=method,
            points=tuple(points),
        )

    def _native_quantiles(
        self, parts: Mapping[str, str], q: float, start: float, end: float, step: float
    ) -> dict[float, float]:
        """The ``q``-quantile at each step from native histograms (one range query per part)."""
        at_t: dict[float, dict[str, list[object]]] = {}
        for name, expr in parts.items():
            if not name.startswith("nh_"):
                continue
            for series in self.client.query_range(expr, start_s=start, end_s=end, step_s=step):
                for t, histogram in series.histograms:
                    by_part = at_t.setdefault(t, {n: [] for n in _NATIVE})
                    by_part[name.removeprefix("nh_")].append(histogram)
        found: dict[float, float] = {}
        for t, by_part in at_t.items():
            window = WindowHistogram(*(tuple(by_part[n]) for n in _NATIVE))  # type: ignore[arg-type]
            value = window.quantile(q)
            if value is not None:
                found[t] = value
        return found

    @staticmethod
    def _point(
        metric: TimeseriesMetric,
        n: int,
        by_time: Mapping[str, Mapping[float, float]],
        t: float,
        step: float,
    ) -> float | None:
        if metric is TimeseriesMetric.THROUGHPUT:
            return round(n / (step / 60.0), 3)
        if n == 0:
            return None
        raw = by_time.get("value", {}).get(t)
        if metric is TimeseriesMetric.ERROR_RATE:
            return pct(_count(raw or 0.0), n)
        if raw is None or not math.isfinite(raw):
            return None
        if metric is TimeseriesMetric.LATENCY_AVG:
            return ms(raw / n)
        return ms(raw)

    # -- health ----------------------------------------------------------------------------
    def health(self, active_alerts: int = 0) -> HealthStatus:
        """Fleet health, with :meth:`otel_monitoring.stats.local.Stats.health`'s rules (errors over
        5 min, p95 per route, active alerts) plus: degraded while a scraped instance is down
        (``up == 0``). ``uptime_seconds`` is the oldest live instance's age when Prometheus
        has ``process_start_time_seconds``, else this view's age. Raises ``PrometheusError``.
        """
        at = self._at()
        recent_parts = self._service_parts(Window.M5)
        found = self._query_parts(
            {
                **{f"recent_{k}": v for k, v in recent_parts.items()},
                **{f"total_{k}": v for k, v in self._service_parts(Window.ALL).items()},
                "down": f"up{{{self.selector}}} == 0",
            },
            at,
        )

        def part(prefix: str) -> dict[str, list[Sample]]:
            n = len(prefix)
            return {k[n:]: v for k, v in found.items() if k.startswith(prefix)}

        recent = self._service(Window.M5, part("recent_"))
        total = self._service(Window.ALL, part("total_"))
        endpoints = self.endpoints(Window.M5)
        down = sorted(s.labels.get("instance", "?") for s in found["down"])
        age = part("total_").get("age") or []
        return health_status(
            recent=recent,
            total=total,
            endpoints=endpoints,
            latency_threshold_ms=self.latency_threshold_ms,
            active_alerts=active_alerts,
            uptime_s=age[0].value if age and math.isfinite(age[0].value) else self.uptime_s,
            degraded_by=[f"{len(down)} instance(s) down: {', '.join(down[:5])}"] if down else [],
            self_telemetry=(
                self._self_telemetry()
                if self._self_telemetry is not None
                else SelfTelemetry(0, 0, 0, 0, 0, 0, None)
            ),
        )

    def instances(self) -> list[tuple[str, bool]]:
        """Scraped instances of the selector and whether each is up, sorted by name."""
        samples: Iterable[Sample] = self.client.query(f"up{{{self.selector}}}", self._at())
        return sorted((s.labels.get("instance", "?"), s.value == 1.0) for s in samples)


_IS_A_VIEW: type[StatsView] = FleetStats  # mypy proves that FleetStats satisfies StatsView
