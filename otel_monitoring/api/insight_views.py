"""HTTP views of analysis results: charts, trends, correlations and insights.

Translate the analyzers' frozen dataclasses into pydantic responses; when an analysis
cannot run (too few points), the response says so in ``reason`` rather than inventing one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from otel_monitoring.analysis.bridge import AnomalyPoint
from otel_monitoring.api.models import EvidenceOut, InsightOut
from otel_monitoring.stats.timeseries import Series
from otel_monitoring.types import Window

if TYPE_CHECKING:
    import analyzers
    from otel_monitoring.analysis.service import TrendReport

__all__ = [
    "CorrelationOut",
    "TimeseriesOut",
    "TrendOut",
    "correlation_out",
    "insight_out",
    "timeseries_out",
    "trend_out",
]


class PointOut(BaseModel):
    t: float
    value: float | None
    count: int


class MarkOut(BaseModel):
    t: float
    value: float
    score: float


class TimeseriesOut(BaseModel):
    """Chart points (oldest first) and the anomalies found on them."""

    metric: str
    unit: str
    window: str
    step_s: float
    route: str | None
    method: str | None
    points: list[PointOut]
    anomalies: list[MarkOut]


class TrendOut(BaseModel):
    """Trend of a statistic; ``available`` is false (with a reason) on too little data."""

    metric: str
    unit: str
    window: str
    route: str | None
    method: str | None
    points: int
    step_s: float
    available: bool
    reason: str | None = None
    direction: str | None = None
    significant: bool | None = None
    p_value: float | None = None
    slope_per_hour: float | None = None
    slope_low_per_hour: float | None = None
    slope_high_per_hour: float | None = None
    before_mean: float | None = None
    after_mean: float | None = None
    percent_change: float | None = None
    moving_average: list[float] = []


class CorrelationOut(BaseModel):
    """One pair of series: Pearson and Spearman with p-values, BH-adjusted significance."""

    first: str
    second: str
    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    adjusted_p: float
    significant: bool
    n: int


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such values become ``None``."""
    return value if value is not None and math.isfinite(value) else None


def timeseries_out(series: Series, window: Window, marks: list[AnomalyPoint]) -> TimeseriesOut:
    return TimeseriesOut(
        metric=series.metric.value,
        unit=series.unit,
        window=window.value,
        step_s=series.step_s,
        route=series.route,
        method=series.method,
        points=[PointOut(t=p.t, value=p.value, count=p.count) for p in series.points],
        anomalies=[MarkOut(t=m.t, value=m.value, score=m.score) for m in marks],
    )


def trend_out(
    report: TrendReport, window: Window, route: str | None, method: str | None
) -> TrendOut:
    """The trend of a chart series or of a live chart's finest points, as JSON (NaN and
    infinity become ``None``)."""
    base: dict[str, Any] = {
        "metric": report.metric.value,
        "unit": report.metric.unit,
        "window": window.value,
        "route": route,
        "method": method,
        "points": report.points,
        "step_s": report.step_s,
    }
    result = report.result
    if result is None:
        return TrendOut(**base, available=False, reason=report.reason)
    return TrendOut(
        **base,
        available=True,
        direction=result.direction.value,
        significant=result.significant,
        p_value=_finite(result.mann_kendall.p_value),
        slope_per_hour=_finite(result.slope.slope_per_hour),
        slope_low_per_hour=_finite(result.slope.low_per_hour),
        slope_high_per_hour=_finite(result.slope.high_per_hour),
        before_mean=_finite(result.change.before_mean),
        after_mean=_finite(result.change.after_mean),
        percent_change=_finite(result.change.percent),
        moving_average=report.moving_average,
    )


def correlation_out(pair: analyzers.PairCorrelation) -> CorrelationOut:
    c = pair.correlation
    return CorrelationOut(
        first=pair.first,
        second=pair.second,
        pearson_r=c.pearson_r,
        pearson_p=c.pearson_p,
        spearman_rho=c.spearman_rho,
        spearman_p=c.spearman_p,
        adjusted_p=pair.adjusted_p,
        significant=pair.significant,
        n=c.n,
    )


def insight_out(insight: analyzers.Insight) -> InsightOut:
    return InsightOut(
        kind=insight.kind.value,
        severity=insight.severity.name.lower(),
        title=insight.title,
        message=insight.message,
        recommendation=insight.recommendation,
        route=insight.route,
        trace_ids=list(insight.trace_ids),
        evidence=[
            EvidenceOut(name=e.name, value=e.value, unit=e.unit or None) for e in insight.evidence
        ],
    )
