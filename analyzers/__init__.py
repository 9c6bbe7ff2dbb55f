"""Analysis of metric series on plain numbers (numpy/scipy); knows nothing of OpenTelemetry.

Every function takes arrays or plain frozen dataclasses and returns frozen dataclasses; bad input
raises :class:`~analyzers.errors.AnalysisError`, a :class:`ValueError`. See docs/analyzers.md.
"""

from __future__ import annotations

from analyzers.anomaly import (
    Anomaly,
    AnomalyDetector,
    AnomalyReport,
    DetectorSettings,
    Sensitivity,
    detect_anomalies,
    score_series,
)
from analyzers.changepoint import ChangePoint, find_change_points
from analyzers.correlation import (
    Correlation,
    LagCorrelation,
    PairCorrelation,
    benjamini_hochberg,
    best_lag,
    correlate,
    correlate_many,
)
from analyzers.errors import AnalysisError, InsufficientDataError, InvalidInputError
from analyzers.forecast import ForecastStatus, ThresholdForecast, forecast_crossing
from analyzers.insights import (
    CacheSummary,
    EndpointSummary,
    Evidence,
    Insight,
    InsightKind,
    LatencySeries,
    QuerySummary,
    Severity,
    Thresholds,
    insights,
    recommend,
)
from analyzers.trend import (
    MannKendallResult,
    PercentChange,
    TheilSenSlope,
    TrendDirection,
    TrendResult,
    analyze_trend,
    exponential_moving_average,
    mann_kendall,
    percent_change,
    simple_moving_average,
    theil_sen,
)

__all__ = [
    "AnalysisError",
    "Anomaly",
    "AnomalyDetector",
    "AnomalyReport",
    "CacheSummary",
    "ChangePoint",
    "Correlation",
    "DetectorSettings",
    "EndpointSummary",
    "Evidence",
    "ForecastStatus",
    "Insight",
    "InsightKind",
    "InsufficientDataError",
    "InvalidInputError",
    "LagCorrelation",
    "LatencySeries",
    "MannKendallResult",
    "PairCorrelation",
    "PercentChange",
    "QuerySummary",
    "Sensitivity",
    "Severity",
    "TheilSenSlope",
    "ThresholdForecast",
    "Thresholds",
    "TrendDirection",
    "TrendResult",
    "analyze_trend",
    "benjamini_hochberg",
    "best_lag",
    "correlate",
    "correlate_many",
    "detect_anomalies",
    "exponential_moving_average",
    "find_change_points",
    "forecast_crossing",
    "insights",
    "mann_kendall",
    "percent_change",
    "recommend",
    "score_series",
    "simple_moving_average",
    "theil_sen",
]
