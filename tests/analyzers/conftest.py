"""Fixtures for the analyzers tests: seeded synthetic series (no external data needed)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

FIVE_MIN_S = 300.0


def make_series(
    seed: int, n: int = 3000, *, spike_at: int | None = None, shift_at: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Daily-seasonal noisy series sampled every 5 minutes, with an optional spike/level shift."""
    rng = np.random.default_rng(seed)
    ts = 1_400_000_000.0 + FIVE_MIN_S * np.arange(n)
    day = np.sin(2 * np.pi * ts / 86400.0)
    values = 50.0 + 10.0 * day + rng.normal(0.0, 1.0, n)
    if spike_at is not None:
        values[spike_at] += 25.0
    if shift_at is not None:
        values[shift_at:] += 15.0
    return ts, values


@pytest.fixture
def seasonal_series() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return make_series(7)


def make_weekly_series(
    seed: int, weeks: int = 5, *, weekend_drop: float = 60.0, spike_at: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Every 10 minutes for ``weeks`` weeks from a Monday: a daily cycle, weekends
    ``weekend_drop`` lower, noise sigma 5. Returns timestamps, values and ISO weekday - 1."""
    rng = np.random.default_rng(seed)
    n = weeks * 7 * 144
    monday = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday
    ts = monday + 600.0 * np.arange(n)
    weekday = ((ts - monday) // 86400.0 % 7).astype(np.int64)
    values = 100.0 + 20.0 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0.0, 5.0, n)
    values -= weekend_drop * (weekday >= 5)
    if spike_at is not None:
        values[spike_at] += 60.0
    return ts, values, weekday


def make_nightly_spikes(
    seed: int, days: int = 12, *, big_day: int = 10, other_day: int = 9
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[int], int]:
    """Every 5 minutes, level 50 with noise sigma 2, and a +40 spike at 02:00 +- 10 min every
    night (a nightly job), +200 on ``big_day``; plus one +40 spike at 12:30 on
    ``other_day``. Returns timestamps, values, the nightly spikes' indices and the other's."""
    rng = np.random.default_rng(seed)
    per_day = int(86400 / FIVE_MIN_S)
    ts = 1_700_438_400.0 + FIVE_MIN_S * np.arange(days * per_day)
    values = 50.0 + rng.normal(0.0, 2.0, ts.size)
    nightly = []
    for day in range(days):
        i = day * per_day + 24 + int(rng.integers(-2, 3))
        values[i] += 200.0 if day == big_day else 40.0
        nightly.append(i)
    other = other_day * per_day + 150
    values[other] += 40.0
    return ts, values, nightly, other
