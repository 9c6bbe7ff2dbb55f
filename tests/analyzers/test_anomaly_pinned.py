"""Bit-exact pin of the anomaly scores: any change of a single bit of any score fails.

The digests below were recorded on the detector before ``AnomalyDetector.update`` was split
into its phases (issue #12, point 7c). A refactor or speed-up of ``analyzers/anomaly.py`` must
keep every one of them; a deliberate change of the scores must re-record them and say why.

The inputs are built from seeded uniform draws with plain arithmetic only (no ``sin``, ``exp``
or normal draws, whose last bits may depend on the CPU's vector code), so they are the same
bits on every IEEE-754 float64 machine. The scores themselves use ``math.erfc``, ``log10``,
``log`` and ``pow``; the digests were recorded with glibc's libm on x86-64.

Each case is hashed (SHA-256 of the little-endian float64 scores); the alarm indices at each
:class:`Sensitivity` are pinned as well, through :func:`detect_anomalies`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from analyzers import AnomalyDetector, DetectorSettings, Sensitivity, detect_anomalies, score_series

FloatArray = npt.NDArray[np.float64]
Case = tuple[FloatArray, FloatArray, DetectorSettings | None]

_DAY_S = 86400.0


def _noise(rng: np.random.Generator, n: int, sigma: float) -> FloatArray:
    """Roughly Gaussian noise of standard deviation ``sigma`` (sum of 12 uniforms, less 6)."""
    draws: FloatArray = rng.random((n, 12)).sum(axis=1) - 6.0
    return sigma * draws


def _times(start_s: float, step_s: float, n: int) -> FloatArray:
    """``n`` timestamps (seconds) from ``start_s``, ``step_s`` apart."""
    return np.asarray(start_s + step_s * np.arange(n), dtype=np.float64)


def _triangle_day(ts: FloatArray) -> FloatArray:
    """A daily cycle in [-1, 1] from arithmetic alone: a triangle wave with a 24-h period."""
    phase: FloatArray = (ts % _DAY_S) / _DAY_S
    return 4.0 * np.abs(phase - 0.5) - 1.0


def _seasonal_spike_shift(seed: int) -> Case:
    """5-min points, daily cycle, a spike, a level shift and a slow drift."""
    rng = np.random.default_rng(seed)
    n = 4000
    ts = _times(1_400_000_000.0, 300.0, n)
    vs = 50.0 + 10.0 * _triangle_day(ts) + _noise(rng, n, 1.0)
    vs[1800] += 25.0
    vs[2600:] += 15.0
    vs[3300:] += np.arange(n - 3300) * 0.02
    return ts, vs, None


def _nan_gaps_and_huge_values() -> Case:
    """NaN gaps (single and long), infinities and values beyond 1e150, which score 0."""
    rng = np.random.default_rng(21)
    n = 3000
    ts = _times(1_500_000_000.0, 60.0, n)
    vs = 200.0 + 30.0 * _triangle_day(ts) + _noise(rng, n, 4.0)
    vs[100:140] = np.nan
    vs[rng.integers(0, n, 60)] = np.nan
    vs[700] = np.inf
    vs[701] = -np.inf
    vs[702] = 1e200
    vs[1500:1700] = np.nan
    vs[1701] += 150.0
    vs[2400] -= 120.0
    return ts, vs, None


def _integer_counts() -> Case:
    """Whole counts, mostly 0 with an occasional 1 (the quantum floor), then a burst."""
    rng = np.random.default_rng(5)
    n = 3000
    ts = _times(1_600_000_000.0, 10.0, n)
    vs = (rng.random(n) < 0.03).astype(np.float64)
    vs[2000:2010] = 6.0
    vs[2500] = 2.0
    return ts, vs, None


def _weekly(weekly: bool) -> Case:
    """Five weeks of 10-min points from a Monday, weekends 60 lower, one spike late on."""
    rng = np.random.default_rng(3)
    n = 5 * 7 * 144
    monday = 1_700_438_400.0
    ts = _times(monday, 600.0, n)
    weekday = (ts - monday) // _DAY_S % 7
    vs = 100.0 + 20.0 * _triangle_day(ts) + _noise(rng, n, 5.0)
    vs -= 60.0 * (weekday >= 5)
    vs[4 * 7 * 144 + 300] += 60.0
    return ts, vs, None if weekly else DetectorSettings(weekly=False)


def _nightly_spikes(echo_days: int) -> Case:
    """12 days of 5-min points with a spike every night at about 02:00 (the echo rule)."""
    rng = np.random.default_rng(9)
    per_day = 288
    ts = _times(1_700_438_400.0, 300.0, 12 * per_day)
    vs = 50.0 + _noise(rng, ts.size, 2.0)
    for day in range(12):
        vs[day * per_day + 24 + int(rng.integers(-2, 3))] += 200.0 if day == 10 else 40.0
    vs[9 * per_day + 150] += 40.0
    return ts, vs, DetectorSettings(echo_days=echo_days)


def _irregular_bursts(fast_view_rate: float) -> Case:
    """Irregular 10-s-ish timestamps with repeats, short bursts (the fast view), a constant
    stretch (the scale floors) and a step up."""
    rng = np.random.default_rng(13)
    n = 5000
    gaps = np.where(rng.random(n) < 0.05, 0.0, 5.0 + 10.0 * rng.random(n))
    ts = np.asarray(1_650_000_000.0 + np.cumsum(gaps), dtype=np.float64)
    vs = 20.0 + _noise(rng, n, 0.5) * (1.0 + 0.5 * rng.random(n))
    for start in (900, 1900, 3100):
        vs[start : start + 3] += 6.0
    vs[2200:2600] = 20.0
    vs[2600] = 20.5
    vs[4200:] += 8.0
    return ts, vs, DetectorSettings(fast_view_rate=fast_view_rate, range_min_distance=2.0)


def _tuned() -> Case:
    """Non-default settings: short warm-up and refractory, no weekly view, tighter rates."""
    ts, vs, _ = _seasonal_spike_shift(4)
    settings = DetectorSettings(
        warmup_points=40,
        refractory_points=10,
        shift_points=20,
        baseline_rate=0.05,
        smooth_rate=0.1,
        weekly=False,
        incident_hold_points=0,
        quantum_floor=0.0,
    )
    return ts, vs, settings


CASES: dict[str, Callable[[], Case]] = {
    "seasonal_seed1": lambda: _seasonal_spike_shift(1),
    "seasonal_seed2": lambda: _seasonal_spike_shift(2),
    "nan_gaps_huge_values": _nan_gaps_and_huge_values,
    "integer_counts": _integer_counts,
    "weekly": lambda: _weekly(True),
    "weekly_off": lambda: _weekly(False),
    "nightly_echo": lambda: _nightly_spikes(2),
    "nightly_no_echo": lambda: _nightly_spikes(0),
    "irregular_bursts": lambda: _irregular_bursts(0.3),
    "irregular_no_fast_view": lambda: _irregular_bursts(0.0),
    "tuned_settings": _tuned,
}

# SHA-256 of the scores (float64, little-endian), recorded on the unsplit detector.
SCORE_DIGESTS: dict[str, str] = {
    "integer_counts": ("9c54639b1d99751a6bb652480a97f9462d1187d1a258f071956b41550e9c1b9f"),
    "irregular_bursts": ("5ea36b09963c1df26e8953f64253bd8dc79fd5331327054efde30534b48580b8"),
    "irregular_no_fast_view": ("daa72c75ae2d4a77c53cf20f95ca25c45eecffc3905e53fec528befd2b4a5f25"),
    "nan_gaps_huge_values": ("bbeda24e196273dc3d6d55d94ccbbaacc6572c1ba4e5ae939a4c006b147a5d5c"),
    "nightly_echo": ("cb0efa1cb525cc836d4d8df8a45ade736059187031166266200e6c4055f9c0a4"),
    "nightly_no_echo": ("c19b84eb32539285ad4e4c953515db6659a57ed8e12809686514b585a706d937"),
    "seasonal_seed1": ("245ee7bc104f0ee4e88c07dd379b56b7c1243b7ed0392e73ac43700d7f579125"),
    "seasonal_seed2": ("8283e338b97d0f588e53c90b50dfa9480ee8642606b661b2e0b0bee0b2e34b96"),
    "tuned_settings": ("94c40f555cc357b48a104389477912b1b17eadf13b8b6b8491f2aea26c1f9097"),
    "weekly": ("f5e0d4036d8f3e2d5f4c0f293b0ef4492f68b58acc006af6020c48fa10560229"),
    "weekly_off": ("a9b61169d38c27ff67868dcf3362b1d0546d19a9de1f0c26f5089d6349bf0c75"),
}

# Alarm indices at each sensitivity, recorded on the unsplit detector.
ALARMS: dict[str, dict[str, list[int]]] = {
    "integer_counts": {
        "LOW": [721, 2000],
        "MEDIUM": [721, 1818, 2000],
        "HIGH": [551, 721, 996, 1818, 2000],
    },
    "irregular_bursts": {
        "LOW": [900, 2607],
        "MEDIUM": [167, 900, 1901, 2607, 4211],
        "HIGH": [167, 900, 1405, 1901, 2601, 2607, 4211],
    },
    "irregular_no_fast_view": {
        "LOW": [900, 2607],
        "MEDIUM": [167, 900, 1901, 2607, 4211],
        "HIGH": [167, 900, 1405, 1901, 2601, 2607, 4211],
    },
    "nan_gaps_huge_values": {
        "LOW": [209, 498, 1272, 1701, 2400],
        "MEDIUM": [209, 498, 1272, 1701, 2400],
        "HIGH": [192, 209, 498, 786, 1272, 1396, 1701, 2400],
    },
    "nightly_echo": {
        "LOW": [312, 888, 2906],
        "MEDIUM": [312, 602, 888, 2742, 2906],
        "HIGH": [312, 602, 888, 2742, 2906],
    },
    "nightly_no_echo": {
        "LOW": [312, 888, 2616, 2906],
        "MEDIUM": [312, 602, 888, 1176, 1754, 2042, 2326, 2616, 2742, 2906],
        "HIGH": [312, 602, 881, 888, 1176, 1463, 1754, 2042, 2326, 2616, 2742, 2906],
    },
    "seasonal_seed1": {
        "LOW": [171, 1523, 1800, 2606, 3826],
        "MEDIUM": [171, 1523, 1800, 2606, 3826],
        "HIGH": [171, 957, 1523, 1800, 2393, 2600, 2606, 3826],
    },
    "seasonal_seed2": {
        "LOW": [175, 1381, 1800, 2606],
        "MEDIUM": [175, 1381, 1800, 2600, 2606],
        "HIGH": [175, 1027, 1381, 1800, 2600, 2606],
    },
    "tuned_settings": {
        "LOW": [43, 53, 63, 79, 170, 185, 198, 216, 1800, 1810, 2600, 2606, 2616],
        "MEDIUM": [
            43,
            53,
            63,
            79,
            170,
            185,
            198,
            216,
            636,
            1116,
            1271,
            1281,
            1725,
            1800,
            1810,
            1820,
            2600,
            2606,
            2616,
            2626,
        ],
        "HIGH": [
            43,
            53,
            63,
            79,
            170,
            185,
            198,
            216,
            636,
            1116,
            1271,
            1281,
            1585,
            1709,
            1725,
            1800,
            1810,
            1820,
            2600,
            2606,
            2616,
            2626,
            3498,
        ],
    },
    "weekly": {
        "LOW": [285, 645, 720, 4332],
        "MEDIUM": [285, 645, 720, 4332],
        "HIGH": [285, 645, 720, 1744, 3962, 4332],
    },
    "weekly_off": {
        "LOW": [285, 645, 720, 2801, 4332],
        "MEDIUM": [285, 645, 720, 2736, 2801, 3752, 4332, 4763],
        "HIGH": [285, 645, 720, 1744, 2736, 2801, 3024, 3752, 4032, 4332, 4763],
    },
}


def _digest(scores: FloatArray) -> str:
    return hashlib.sha256(np.ascontiguousarray(scores, dtype="<f8").tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_scores_bit_identical(name: str) -> None:
    ts, vs, settings = CASES[name]()
    assert _digest(score_series(ts, vs, settings)) == SCORE_DIGESTS[name]


@pytest.mark.parametrize("name", ["seasonal_seed1", "nan_gaps_huge_values", "nightly_echo"])
def test_streaming_update_bit_identical(name: str) -> None:
    ts, vs, settings = CASES[name]()
    detector = AnomalyDetector(Sensitivity.HIGH, settings)
    scores = np.array([detector.update(t, v) for t, v in zip(ts, vs, strict=True)])
    assert _digest(scores) == SCORE_DIGESTS[name]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("sensitivity", list(Sensitivity), ids=lambda s: s.name)
def test_alarms_pinned(name: str, sensitivity: Sensitivity) -> None:
    ts, vs, settings = CASES[name]()
    report = detect_anomalies(ts, vs, sensitivity, settings)
    assert [a.index for a in report.anomalies] == ALARMS[name][sensitivity.name]
