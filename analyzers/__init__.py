"""Analysis of metric series on plain numbers (numpy/scipy); knows nothing of OpenTelemetry.

Every function takes arrays or plain frozen dataclasses and returns frozen dataclasses; bad input
raises :class:`~analyzers.errors.AnalysisError`, a :class:`ValueError`. See docs/analyzers.md.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from analyzers._lazy import lazy_names

if TYPE_CHECKING:
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
    from analyzers.count_tests import (
        BucketCounts,
        CountTestSettings,
        ErrorCountDetector,
        ErrorCountSettings,
        ExceedanceDetector,
        ExceedanceSettings,
        RateCountDetector,
        RateSettings,
        SortedBucket,
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
    "BucketCounts",
    "CacheSummary",
    "ChangePoint",
    "Correlation",
    "CountTestSettings",
    "DetectorSettings",
    "EndpointSummary",
    "ErrorCountDetector",
    "ErrorCountSettings",
    "Evidence",
    "ExceedanceDetector",
    "ExceedanceSettings",
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
    "RateCountDetector",
    "RateSettings",
    "Sensitivity",
    "Severity",
    "SortedBucket",
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

# public name -> submodule that defines it; loaded on first access (PEP 562), so
# ``from analyzers import AnomalyDetector`` loads numpy but not scipy (trend, correlation and
# change points need it).
_LAZY: dict[str, str] = {
    "Anomaly": "anomaly",
    "AnomalyDetector": "anomaly",
    "AnomalyReport": "anomaly",
    "DetectorSettings": "anomaly",
    "Sensitivity": "anomaly",
    "detect_anomalies": "anomaly",
    "score_series": "anomaly",
    "ChangePoint": "changepoint",
    "find_change_points": "changepoint",
    "Correlation": "correlation",
    "LagCorrelation": "correlation",
    "PairCorrelation": "correlation",
    "benjamini_hochberg": "correlation",
    "best_lag": "correlation",
    "correlate": "correlation",
    "correlate_many": "correlation",
    "AnalysisError": "errors",
    "InsufficientDataError": "errors",
    "InvalidInputError": "errors",
    "BucketCounts": "count_tests",
    "CountTestSettings": "count_tests",
    "ErrorCountDetector": "count_tests",
    "ErrorCountSettings": "count_tests",
    "ExceedanceDetector": "count_tests",
    "ExceedanceSettings": "count_tests",
    "RateCountDetector": "count_tests",
    "RateSettings": "count_tests",
    "SortedBucket": "count_tests",
    "ForecastStatus": "forecast",
    "ThresholdForecast": "forecast",
    "forecast_crossing": "forecast",
    "CacheSummary": "insights",
    "EndpointSummary": "insights",
    "Evidence": "insights",
    "Insight": "insights",
    "InsightKind": "insights",
    "LatencySeries": "insights",
    "QuerySummary": "insights",
    "Severity": "insights",
    "Thresholds": "insights",
    "insights": "insights",
    "recommend": "insights",
    "MannKendallResult": "trend",
    "PercentChange": "trend",
    "TheilSenSlope": "trend",
    "TrendDirection": "trend",
    "TrendResult": "trend",
    "analyze_trend": "trend",
    "exponential_moving_average": "trend",
    "mann_kendall": "trend",
    "percent_change": "trend",
    "simple_moving_average": "trend",
    "theil_sen": "trend",
}


# Each public name loads its module on first access (PEP 562).
__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)


class _Package(types.ModuleType):
    """This package's module type: ``analyzers.insights`` stays the public function.

    The import system binds every loaded submodule on its package (``analyzers.insights = <the
    module>``), which would hide the function of the same name once anything imports the
    submodule; here the binding is replaced by the function.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "insights" and isinstance(value, types.ModuleType):
            value = value.insights
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
