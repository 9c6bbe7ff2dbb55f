"""A small client of the Prometheus HTTP query API (``/api/v1/query``, ``/api/v1/query_range``).

Works with anything that serves that API: Prometheus, Thanos Query, Grafana Mimir (give the
URL with its ``/prometheus`` prefix), VictoriaMetrics. Queries are sent as form-encoded POSTs
(no URL length limit), each bounded by ``timeout_s``.

Errors are split by what the caller can do about them (see :mod:`otel_monitoring.errors`):

- :class:`PrometheusUnavailableError`: the server could not be reached, timed out, or answered
  5xx / non-JSON. The API maps it to 503 with the message as the reason.
- :class:`PrometheusQueryError`: the server rejected the query (4xx, ``bad_data``); a bad
  selector in the configuration, or a bug here.

Both derive from :class:`PrometheusError`. A bad URL fails at construction with a
:class:`~otel_monitoring.errors.ConfigError` naming ``OTEL_MONITORING_PROMETHEUS_URL``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from otel_monitoring.errors import ConfigError, MonitoringError

__all__ = [
    "NativeHistogram",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailableError",
    "RangeSeries",
    "Sample",
]

URL_ENV = "OTEL_MONITORING_PROMETHEUS_URL"


class PrometheusError(MonitoringError):
    """A query to the Prometheus-compatible API failed; the message says why."""


class PrometheusUnavailableError(PrometheusError):
    """Prometheus is unreachable, too slow, or answered with a server error (retry later)."""


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query (HTTP 4xx or ``status: error`` with ``bad_data``)."""


@dataclass(frozen=True, slots=True)
class NativeHistogram:
    """A native (sparse, exponential) histogram as the query API returns it.

    ``buckets`` are ``(lower, upper, count)`` in ascending order, counts per bucket (not
    cumulative); Prometheus omits empty buckets, so consecutive buckets may leave gaps.
    """

    count: float
    sum: float
    buckets: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant-query result: its labels and value at the query time.

    For a native histogram, ``histogram`` holds it and ``value`` is its count."""

    labels: Mapping[str, str]
    value: float
    histogram: NativeHistogram | None = None


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range-query result: labels and ``(unix_s, value)`` points, oldest first
    (for native histograms, ``histograms`` holds ``(unix_s, histogram)`` and ``points`` their
    counts)."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]
    histograms: tuple[tuple[float, NativeHistogram], ...] = ()


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"invalid {URL_ENV}={url!r}: use the base URL of a Prometheus-compatible query API,"
            " e.g. http://127.0.0.1:9090 (Mimir: http://mimir:8080/prometheus)"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"invalid {URL_ENV}={url!r}: no query string or fragment expected")
    return url.rstrip("/")


def _duration(seconds: float) -> str:
    # Prometheus durations take integers with units ("5s", "1500ms"), not "5.0s".
    return f"{max(1, round(seconds * 1000))}ms"


def _float(text: object) -> float:
    # Prometheus sends values as strings, including "NaN", "+Inf" and "-Inf".
    return float(str(text))


def _histogram(raw: Mapping[str, Any]) -> NativeHistogram:
    # {"count": "12", "sum": "3.4", "buckets": [[boundary_rule, "lower", "upper", "count"], ...]}
    buckets = tuple(
        (_float(lower), _float(upper), _float(count))
        for _rule, lower, upper, count in raw.get("buckets") or ()
    )
    return NativeHistogram(_float(raw.get("count", 0)), _float(raw.get("sum", 0)), buckets)


def _sample(item: Mapping[str, Any]) -> Sample:
    if "histogram" in item:
        histogram = _histogram(item["histogram"][1])
        return Sample(dict(item["metric"]), histogram.count, histogram)
    return Sample(dict(item["metric"]), _float(item["value"][1]))


def _range_series(item: Mapping[str, Any]) -> RangeSeries:
    histograms = tuple((float(t), _histogram(h)) for t, h in item.get("histograms") or ())
    points = tuple((float(t), _float(v)) for t, v in item.get("values") or ())
    if histograms and not points:
        points = tuple((t, h.count) for t, h in histograms)
    return RangeSeries(dict(item["metric"]), points, histograms)


class PrometheusClient:
    """Synchronous client of one Prometheus-compatible query API.

    Args:
        url: base URL (``http://host:9090``); ``/api/v1/...`` is appended.
        timeout_s: bound on each request, connect and read included (seconds). It is also
            sent as the query ``timeout`` so the server stops evaluating in time.
        headers: extra headers, e.g. ``{"X-Scope-OrgID": "team-a"}`` for Mimir or an
            ``Authorization`` header.
        transport: an httpx transport (tests: ``httpx.MockTransport``).

    Thread-safe (one pooled ``httpx.Client``). Close with :meth:`close` or use as a context
    manager.

    Example::

        with PrometheusClient("http://127.0.0.1:9090") as prom:
            prom.query('sum(up{job="shop"})')

    Raises:
        ConfigError: ``url`` is not an http(s) URL with a host.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 0 < timeout_s <= 300:
            raise ConfigError(f"Prometheus timeout must be in (0, 300] seconds, got {timeout_s}")
        self.url = _check_url(url)
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s),
            headers=dict(headers or {}),
            transport=transport,
        )

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool. Safe to call twice."""
        self._client.close()

    # -- queries ---------------------------------------------------------------------------
    def query(self, promql: str, at_s: float | None = None) -> list[Sample]:
        """Evaluate an instant query at ``at_s`` (Unix seconds; server's now when ``None``).

        A scalar result comes back as one sample with no labels.

        Raises:
            PrometheusUnavailableError: unreachable, timed out or a server error.
            PrometheusQueryError: the query was rejected.
        """
        form = {"query": promql, "timeout": _duration(self.timeout_s)}
        if at_s is not None:
            form["time"] = repr(float(at_s))
        data = self._post("/api/v1/query", form, promql)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector" and isinstance(result, list):
            return [_sample(item) for item in result]
        if kind == "scalar" and isinstance(result, list):
            return [Sample({}, _float(result[1]))]
        raise PrometheusQueryError(
            f"unexpected result type {kind!r} for an instant query: {promql}"
        )

    def query_value(self, promql: str, at_s: float | None = None) -> float | None:
        """The single value of a query that aggregates to one series; ``None`` when empty
        or NaN (no data). Raises as :meth:`query`; more than one series is a query error."""
        samples = self.query(promql, at_s)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusQueryError(f"expected one series, got {len(samples)}: {promql}")
        value = samples[0].value
        return None if math.isnan(value) else value

    def query_range(
        self, promql: str, *, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        """Evaluate ``promql`` at every ``step_s`` seconds from ``start_s`` to ``end_s``.

        Raises:
            PrometheusUnavailableError: unreachable, timed out or a server error.
            PrometheusQueryError: the query or the range was rejected.
        """
        if not step_s > 0 or end_s < start_s:
            raise ValueError(f"bad range: start {start_s}, end {end_s}, step {step_s}")
        form = {
            "query": promql,
            "start": repr(float(start_s)),
            "end": repr(float(end_s)),
            "step": repr(float(step_s)),
            "timeout": _duration(self.timeout_s),
        }
        data = self._post("/api/v1/query_range", form, promql)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise PrometheusQueryError(f"unexpected result for a range query: {promql}")
        return [_range_series(item) for item in result]

    def ready(self) -> bool:
        """``True`` when the server answers a trivial query (never raises)."""
        try:
            self.query("1")
        except PrometheusError:
            return False
        return True

    # -- transport -------------------------------------------------------------------------
    def _post(self, path: str, form: Mapping[str, str], promql: str) -> dict[str, Any]:
        where = f"Prometheus at {self.url}"
        try:
            response = self._client.post(path, data=dict(form))
        except httpx.TimeoutException:
            raise PrometheusUnavailableError(
                f"{where} did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise PrometheusUnavailableError(
                f"{where} is unreachable ({type(exc).__name__}: {exc})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusUnavailableError(
                f"{where} answered HTTP {response.status_code} with no Prometheus API response;"
                f" is {URL_ENV} the base URL of a Prometheus-compatible query API?"
            )
        if body.get("status") != "success":
            error = f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
            if response.status_code >= 500 or body.get("errorType") in ("timeout", "unavailable"):
                raise PrometheusUnavailableError(f"{where} failed the query ({error})")
            raise PrometheusQueryError(f"{where} rejected the query ({error}): {promql}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusUnavailableError(f"{where} answered without a data field")
        return data
