"""Streaming anomaly scores of the fleet's charts, for anomaly rules in fleet mode.

In one process, :class:`~otel_monitoring.analysis.live_scores.LiveScores` feeds each chart's
detector from the local store. In fleet mode the numbers that matter are every instance's, so
anomaly rules read :class:`FleetScores` instead: when a rule is evaluated, its chart (the
service or one route, for one statistic) is brought up to date with the steps Prometheus
completed since the last evaluation, one range query per chart, and each new point is fed to
that chart's streaming detector once.

The first evaluation reads back ``history_points`` steps, so the detector starts with the
fleet's recent past instead of learning from nothing. A step counts as complete ``settle_s``
after its end (the scrape interval plus a margin: later samples would still change it).
Steps are at least ``min_step_s`` long: a step shorter than the scrape interval would hold
either nothing or two scrapes' worth of requests. Memory: ``history_points`` points per chart
(16 bytes each), and charts exist only for the configured anomaly rules.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from otel_monitoring.analysis.live_scores import History, ScoredChart
from otel_monitoring.fleet.stats import FleetStats
from otel_monitoring.stats.timeseries import TimeseriesMetric

__all__ = ["FleetScores"]

_Key = tuple[TimeseriesMetric, str | None, str | None, float]
_MAX_HISTORY = 10_000  # Prometheus answers at most 11,000 points per range query


class FleetScores:
    """Per-chart streaming detectors over the fleet's series in Prometheus. Thread-safe.

    Args:
        fleet: where the charts are read.
        min_step_s: the shortest step a chart uses (a rule asking for finer points gets this).
        settle_s: how long after its end a step is complete (the scrape interval and a margin).
        history_points: points kept per chart, and read back at the first evaluation.
        settings: detector settings (``analyzers.DetectorSettings``; default: the tested ones).
    """

    def __init__(
        self,
        fleet: FleetStats,
        *,
        min_step_s: float = 60.0,
        settle_s: float = 45.0,
        history_points: int = 1440,
        settings: Any = None,
    ) -> None:
        if not (min_step_s > 0 and settle_s >= 0 and 2 <= history_points <= _MAX_HISTORY):
            raise ValueError(
                f"min_step_s > 0, settle_s >= 0 and history_points in [2, {_MAX_HISTORY}]"
            )
        self.fleet = fleet
        self.min_step_s = min_step_s
        self.settle_s = settle_s
        self.history_points = history_points
        self.settings = settings
        self._charts: dict[_Key, ScoredChart] = {}
        self._lock = threading.Lock()

    def step_for(self, step_s: float) -> float:
        """The step a chart asked at ``step_s`` uses (seconds)."""
        return max(step_s, self.min_step_s)

    def histories(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> list[History]:
        """Bring the chart of ``metric`` for the service (``route`` None) or ``route`` (every
        method when ``method`` is None) up to date from Prometheus and return its points.

        Raises:
            PrometheusError: Prometheus could not answer (the chart is unchanged).
        """
        import analyzers

        step = self.step_for(step)
        key = (metric, route, method, step)
        with self._lock:
            chart = self._charts.get(key)
            now_s = self.fleet.clock.now_s() if self.fleet.clock else time.time()
            complete = math.floor((now_s - self.settle_s) / step) - 1  # last whole step
            first = complete - self.history_points + 1  # at most a ring's worth
            if chart is not None and chart.last_index is not None:
                first = max(first, chart.last_index + 1)
            if first <= complete:
                # the series ends with the step in progress at now_s; ask back to ``first``
                current = math.ceil(now_s / step) - 1
                series = self.fleet.timeseries(
                    metric,
                    window_s=(current - first + 1) * step,
                    step_s=step,
                    route=route,
                    method=method,
                )
                if chart is None:
                    detector = analyzers.AnomalyDetector(settings=self.settings)
                    chart = self._charts[key] = ScoredChart(detector, self.history_points, first)
                for point in series.points:
                    index = round(point.t / step)
                    if not first <= index <= complete:
                        continue
                    value = point.value
                    score = 0.0 if value is None else chart.detector.update(index * step, value)
                    chart.put(index, value, score, point.count)
            if chart is None or chart.last_index is None:
                return []
            return [chart.history(metric, step, chart.first_index, chart.last_index)]
