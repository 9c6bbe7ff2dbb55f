"""The service's local clock (analyzers/local_clock.py), and the count tests across a change
of it: a nightly job and a daily traffic cycle that follow Paris time move an hour earlier in
UTC on 2026-03-29; placed by its UTC hour the job pages on the nights after (5 times), placed
by the local hour it does not."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers import Sensitivity
from analyzers.count_tests import (
    ExceedanceDetector,
    ExceedanceSettings,
    RateCountDetector,
    RateSettings,
    SortedBucket,
)
from analyzers.errors import InvalidInputError
from analyzers.local_clock import LocalClock

CHANGE = 1774746000.0  # 2026-03-29T01:00:00Z: Paris moves from UTC+1 to UTC+2
START = 1773619200.0  # 2026-03-16T00:00:00Z, a Monday, 13 days before
STEP = 60.0
DAY = 86400.0
MEDIUM = Sensitivity.MEDIUM.value


def test_the_phase_is_the_local_wall_clock_on_both_sides_of_a_change() -> None:
    paris = LocalClock("Europe/Paris")
    assert paris.phase(CHANGE - 1.0) == CHANGE - 1.0 + 3600.0
    assert paris.phase(CHANGE) == CHANGE + 7200.0
    assert paris.phase(CHANGE - 1.0) == CHANGE - 1.0 + 3600.0  # back across it: no stale cache
    assert LocalClock(None).phase(CHANGE) == CHANGE
    autumn = 1792890000.0  # 2026-10-25T01:00:00Z: back to UTC+1
    assert paris.phase(autumn) - paris.phase(autumn - 60.0) == 60.0 - 3600.0


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd"])
def test_a_bad_zone_is_refused_by_name(name: str) -> None:
    with pytest.raises(InvalidInputError, match="time zone"):
        ExceedanceSettings(timezone=name)


def _local_hour(t: float) -> float:
    """Paris hour of the day at UTC time ``t``."""
    return (LocalClock("Europe/Paris").phase(t) % DAY) / 3600.0


def _alarms_after_change(timezone: str | None) -> tuple[int, int]:
    """Alarms of a latency and a traffic test, after the change, of a route whose nightly job
    (02:00-02:30 Paris time, latency x3) and traffic (40 to 160 a minute, peak at 14:00 Paris
    time) follow the local clock, for 3 weeks from START."""
    rng = np.random.default_rng(7)
    latency = ExceedanceDetector(ExceedanceSettings(timezone=timezone))
    traffic = RateCountDetector(RateSettings(timezone=timezone))
    alarms = [0, 0]
    for i in range(int(21 * DAY / STEP)):
        t = START + i * STEP
        hour = _local_hour(t)
        per_min = 100.0 + 60.0 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
        n = int(rng.poisson(per_min))
        factor = 3.0 if 2.0 <= hour < 2.5 else 1.0
        values = np.sort(50.0 * factor * np.exp(rng.normal(0.0, 0.5, n)))
        scores = (
            latency.update(t, SortedBucket(values.tolist()), STEP),
            traffic.update(t, n, STEP),
        )
        if t >= CHANGE:
            alarms[0] += scores[0] >= MEDIUM
            alarms[1] += scores[1] >= MEDIUM
    return alarms[0], alarms[1]


def test_cycles_on_the_local_clock_do_not_page_when_it_changes() -> None:
    utc_latency, utc_traffic = _alarms_after_change(None)
    local_latency, local_traffic = _alarms_after_change("Europe/Paris")
    # on UTC hours the job, an hour early, is new each night until learnt again (5 pages)
    assert utc_latency >= 2, (utc_latency, utc_traffic)
    assert (local_latency, local_traffic) == (0, 0)
