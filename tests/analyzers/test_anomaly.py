from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import (
    AnomalyDetector,
    DetectorSettings,
    InvalidInputError,
    Sensitivity,
    detect_anomalies,
    score_series,
)
from tests.analyzers.conftest import make_nightly_spikes, make_series, make_weekly_series


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_equals_streaming(seed: int) -> None:
    ts, vs = make_series(seed, 2500, spike_at=1800, shift_at=2200)
    det = AnomalyDetector()
    streamed = np.array([det.update(t, v) for t, v in zip(ts, vs, strict=True)])
    np.testing.assert_array_equal(score_series(ts, vs), streamed)


def test_prefix_scores_equal_full_scores_no_look_ahead() -> None:
    ts, vs = make_series(11, 3000, spike_at=2000)
    full = score_series(ts, vs)
    for cut in (1, 150, 1999, 2000, 2001, 2600):
        np.testing.assert_array_equal(score_series(ts[:cut], vs[:cut]), full[:cut])


def test_scores_in_unit_interval_and_zero_during_warmup() -> None:
    ts, vs = make_series(5, 2000, spike_at=1500)
    scores = score_series(ts, vs)
    assert ((scores >= 0.0) & (scores <= 1.0)).all()
    assert (scores[: DetectorSettings().warmup_points] == 0.0).all()


def test_spike_raises_one_alarm_at_the_spike() -> None:
    ts, vs = make_series(3, 3000, spike_at=2500)
    report = detect_anomalies(ts, vs)
    near = [a for a in report.anomalies if 2500 <= a.index <= 2510]
    assert near, "the spike must be flagged"
    assert near[0].index == 2500
    assert len(near) == 1  # de-duplicated: one alarm per incident


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_blip_just_before_an_incident_does_not_swallow_it(seed: int) -> None:
    """A p95 of a few ms; a value a little past the range seen so far opens an incident, and
    two points later the real one starts (80x the baseline): it must alarm at its start."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(2.5, 6.5, 400)
    blip, start = 300, 302
    values[blip] = values[:blip].max() * 1.15
    values[start:] = rng.uniform(370.0, 420.0, 400 - start)
    ts = np.arange(400.0) * 10.0
    scores = score_series(ts, values)
    threshold = Sensitivity.MEDIUM.value
    assert scores[blip] >= threshold  # the blip opened an incident (the case under test)
    assert scores[start] >= threshold, "the incident was swallowed by the blip's"
    assert (scores[start + 1 :] < threshold).all()  # and is one alarm
    # what the jump rule adds: without it, the incident is inside the blip's re-alarm gap
    quiet = score_series(ts, values, DetectorSettings(realarm_jump=math.inf))
    assert quiet[start] < threshold


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_blip_on_a_flat_chart_does_not_swallow_the_incident(seed: int) -> None:
    """A 1-s fleet chart whose p95 sat within 0.02 ms of 2.4 ms: a 3.6-ms blip lies thousands
    of range widths past it (a surprise of tens of thousands), and the 460-ms incident one
    point later only some ten times further: remembered in full, the blip's opening kept the
    incident from re-alarming (a fleet test's failure, 2026-12-05). An opening is remembered
    as at most ``realarm_cap``."""
    rng = np.random.default_rng(seed)
    values = 2.40 + rng.uniform(0.0, 0.02, 60)
    blip, start = 40, 41
    values[blip] = 3.6
    values[start:] = rng.uniform(440.0, 490.0, 60 - start)
    ts = np.arange(60.0)
    threshold = Sensitivity.MEDIUM.value
    scores = score_series(ts, values, DetectorSettings(warmup_points=10))
    assert scores[blip] >= threshold  # the blip opened an incident (the case under test)
    assert scores[start] >= threshold, "the incident was swallowed by the blip's"
    assert (scores[start + 1 :] < threshold).all()  # and is one alarm
    uncapped = score_series(ts, values, DetectorSettings(warmup_points=10, realarm_cap=math.inf))
    assert uncapped[start] < threshold


def _spike_within_old_range(seed: int, spike: float) -> tuple[np.ndarray, np.ndarray]:
    """5-min noise (sigma 1.5) with an early +20 sigma excursion that widens the range, then,
    ~10 days later, a single-point spike of ``spike`` (still inside that range) at 3500."""
    rng = np.random.default_rng(seed)
    v = rng.normal(34.0, 1.5, 4000)
    v[500] += 30.0
    v[3500] += spike
    return np.arange(4000) * 300.0, v


def test_a_short_spike_inside_the_old_range_alarms_at_its_own_point() -> None:
    # the ~50-point smoothing dilutes a one-point spike; the fast view, calibrated against the
    # series' own fast distances, flags it (7 of 8 seeds; 5 of 8 with fast_view_rate=0)
    medium = Sensitivity.MEDIUM.value
    caught = sum(score_series(*_spike_within_old_range(s, 15.0))[3500] >= medium for s in range(8))
    assert caught >= 7


def test_the_fast_view_adds_no_alarms_on_plain_noise() -> None:
    medium = Sensitivity.MEDIUM.value
    off = DetectorSettings(fast_view_rate=0.0)
    with_fast = without = 0
    for seed in range(8):
        ts, v = _spike_within_old_range(seed, 0.0)
        with_fast += int((score_series(ts, v)[1000:] >= medium).sum())
        without += int((score_series(ts, v, off)[1000:] >= medium).sum())
    assert with_fast <= without + 1


def test_level_shift_is_flagged_once_and_then_adapted_to() -> None:
    ts, vs = make_series(4, 4000, shift_at=2500)
    report = detect_anomalies(ts, vs)
    at_shift = [a for a in report.anomalies if 2500 <= a.index < 2600]
    assert len(at_shift) == 1
    late = [a for a in report.anomalies if a.index >= 3200]
    assert len(late) <= 1  # the new level has become normal


def test_clean_seasonal_series_raises_few_alarms() -> None:
    alarms = [len(detect_anomalies(*make_series(seed, 4000)).anomalies) for seed in range(5)]
    # pure noise sets new records now and then; about one alarm per 700 points at MEDIUM
    assert sum(alarms) <= 50


def test_weekly_pattern_is_learned_after_two_weeks() -> None:
    # weekends 60 lower than weekdays (noise sigma 5), a spike on a Wednesday of week 5
    spike = 4 * 1008 + 2 * 144 + 84

    def weekend_alarms(drop: float, weekly: bool) -> int:
        """Alarms on Saturdays, Sundays and Mondays of weeks 3-5, over four seeds."""
        found = 0
        for seed in range(4):
            ts, vs, weekday = make_weekly_series(seed, weekend_drop=drop, spike_at=spike)
            report = detect_anomalies(ts, vs, settings=DetectorSettings(weekly=weekly))
            indexes = [a.index for a in report.anomalies]
            # at once, or a few points late when a weak incident opened just before it
            assert any(
                spike <= i <= spike + DetectorSettings().realarm_gap_points for i in indexes
            ), f"seed {seed}, drop {drop}: the spike must be flagged"
            found += sum(1 for i in indexes if i >= 2016 and weekday[i] in (5, 6, 0))
        return found

    noise = weekend_alarms(0.0, weekly=True)  # the same noise with no weekly pattern
    assert weekend_alarms(60.0, weekly=True) <= noise + 2
    assert weekend_alarms(60.0, weekly=False) >= noise + 8  # without the weekly view


@pytest.mark.parametrize("shift_sigma", [1.5, 3.0])
def test_small_level_shift_under_a_strong_daily_cycle_is_flagged_soon(shift_sigma: float) -> None:
    # a daily cycle of +-10 sigma hides a shift of a few sigma from the raw-scale views
    found = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        ts = 1_400_000_000.0 + 300.0 * np.arange(3000)
        values = 50.0 + 10.0 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0.0, 1.0, 3000)
        values[2000:] += shift_sigma
        report = detect_anomalies(ts, values)
        found.append(any(2000 <= a.index < 2040 for a in report.anomalies))
    assert sum(found) >= 9


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_single_count_after_a_quiet_stretch_is_not_news(seed: int) -> None:
    # whole counts: the scale cannot shrink below the rounding noise of one count
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.2, 2000).astype(float)
    values = np.concatenate([counts, np.zeros(400), [1.0], np.zeros(50)])
    scores = score_series(np.arange(len(values)) * 300.0, values)
    assert scores[2400:].max() < Sensitivity.HIGH.value


def test_a_spike_every_night_at_the_same_hour_stops_alarming() -> None:
    """A nightly job's spike alarms on its first nights, then no more; a much bigger one at
    that hour and a spike at another hour still alarm."""
    repeats = {True: 0, False: 0}
    for seed in range(8):
        alarms = {}
        for echo in (True, False):
            ts, vs, nightly, other = make_nightly_spikes(seed)
            report = detect_anomalies(ts, vs, settings=DetectorSettings(echo_days=2 if echo else 0))
            flagged = {a.index for a in report.anomalies}
            repeats[echo] += sum(nightly[day] in flagged for day in (4, 5, 6, 7, 8, 9, 11))
            alarms[echo] = flagged
            if echo:
                assert nightly[10] in flagged  # five times the usual spike
        assert (other in alarms[True]) == (other in alarms[False])
    assert repeats[True] <= 0.35 * repeats[False]


def test_sensitivity_orders_alarm_counts() -> None:
    ts, vs = make_series(8, 4000, spike_at=3000)
    counts = [len(detect_anomalies(ts, vs, s).anomalies) for s in Sensitivity]
    low, medium, high = counts
    assert low <= medium <= high
    det = AnomalyDetector(Sensitivity.HIGH)
    assert det.is_alarm(Sensitivity.HIGH.value)
    assert not det.is_alarm(Sensitivity.HIGH.value - 1e-9)


def test_nan_value_scores_zero_and_leaves_state_alone() -> None:
    ts, vs = make_series(9, 600)
    with_nan = vs.copy()
    with_nan[400] = np.nan
    a = score_series(ts, with_nan)
    b = score_series(np.delete(ts, 400), np.delete(vs, 400))
    assert a[400] == 0.0
    np.testing.assert_array_equal(np.delete(a, 400), b)


def test_decreasing_timestamp_is_rejected() -> None:
    det = AnomalyDetector()
    det.update(10.0, 1.0)
    with pytest.raises(InvalidInputError, match="must not decrease"):
        det.update(5.0, 1.0)
    with pytest.raises(InvalidInputError):
        score_series([2.0, 1.0], [1.0, 1.0])
    with pytest.raises(InvalidInputError):
        det.update(math.inf, 1.0)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        DetectorSettings(smooth_rate=0.0)
    with pytest.raises(ValueError):
        DetectorSettings(warmup_points=1)
    with pytest.raises(ValueError):
        DetectorSettings(quantum_floor=-1.0)
    with pytest.raises(ValueError):
        DetectorSettings(incident_hold_points=-1)
    with pytest.raises(ValueError):
        DetectorSettings(realarm_jump=2.0)  # below realarm_factor
    with pytest.raises(ValueError):
        DetectorSettings(fast_view_rate=1.5)


def test_empty_series_gives_empty_scores() -> None:
    assert score_series([], []).shape == (0,)
    with pytest.raises(InvalidInputError):
        score_series([1.0, 2.0], [1.0])


def test_update_is_fast_enough() -> None:
    # a loose guard against accidental O(n) work; the benchmark measures the real figure
    ts, vs = make_series(12, 20000)
    det = AnomalyDetector()
    start = time.perf_counter()
    for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
        det.update(t, v)
    per_point_us = (time.perf_counter() - start) / len(ts) * 1e6
    assert per_point_us < 200


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e300, -1e300, 1e-300, 5.0]),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite_or_not, min_size=0, max_size=400), step=st.floats(0, 1e6))
def test_hostile_values_never_crash(values: list[float], step: float) -> None:
    ts = np.arange(len(values)) * step
    scores = score_series(ts, values)
    assert scores.shape == (len(values),)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


@settings(max_examples=30, deadline=None)
@given(value=st.floats(-1e12, 1e12), n=st.integers(0, 500))
def test_constant_series_never_alarms(value: float, n: int) -> None:
    scores = score_series(np.arange(n) * 60.0, np.full(n, value))
    assert (scores == 0.0).all()
