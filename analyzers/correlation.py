"""Correlation between metrics: Pearson and Spearman with p-values, best lag, and
Benjamini-Hochberg false-discovery-rate control when many pairs are tested at once.

p-values are those of ``scipy.stats.pearsonr`` / ``spearmanr`` (two-sided). Correlation is not
causation, and a lag search tests many hypotheses: its p-value is for the chosen lag alone.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from analyzers._validation import as_float_array, check_same_length
from analyzers.errors import InsufficientDataError, InvalidInputError

__all__ = [
    "Correlation",
    "LagCorrelation",
    "PairCorrelation",
    "benjamini_hochberg",
    "best_lag",
    "correlate",
    "correlate_many",
]

_MIN_POINTS = 3


@dataclass(frozen=True, slots=True)
class Correlation:
    """Pearson r and Spearman rho of two equally long series, with two-sided p-values."""

    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    n: int


@dataclass(frozen=True, slots=True)
class LagCorrelation:
    """Pearson correlation of ``x[t]`` with ``y[t + lag]`` at the lag with the largest |r|.

    A positive ``lag`` means ``x`` leads ``y`` by ``lag`` samples; ``n`` is the overlap used.
    """

    lag: int
    pearson_r: float
    pearson_p: float
    n: int


@dataclass(frozen=True, slots=True)
class PairCorrelation:
    """One pair of :func:`correlate_many`: its correlation, the Benjamini-Hochberg adjusted
    Pearson p-value, and whether it is significant at the requested false discovery rate."""

    first: str
    second: str
    correlation: Correlation
    adjusted_p: float
    significant: bool


def _pair(x: object, y: object) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a = as_float_array(x, "x")
    b = as_float_array(y, "y")
    check_same_length(a, b, "x", "y")
    if len(a) < _MIN_POINTS:
        raise InsufficientDataError(
            f"correlation needs at least {_MIN_POINTS} points, got {len(a)}"
        )
    return a, b


def _check_not_constant(a: npt.NDArray[np.float64], name: str) -> None:
    if np.ptp(a) == 0.0:
        raise InsufficientDataError(f"{name} is constant; its correlation is undefined")


def correlate(
    x: Sequence[float] | npt.ArrayLike, y: Sequence[float] | npt.ArrayLike
) -> Correlation:
    """Pearson and Spearman correlation of ``x`` and ``y`` (finite, same length, >= 3 points,
    neither constant)."""
    a, b = _pair(x, y)
    _check_not_constant(a, "x")
    _check_not_constant(b, "y")
    with warnings.catch_warnings():
        # near-constant input: scipy warns, the numbers are still defined
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        pr = stats.pearsonr(a, b)
        sr = stats.spearmanr(a, b)
    return Correlation(
        float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue), len(a)
    )


def best_lag(
    x: Sequence[float] | npt.ArrayLike, y: Sequence[float] | npt.ArrayLike, max_lag: int
) -> LagCorrelation:
    """The lag in ``[-max_lag, max_lag]`` where ``corr(x[t], y[t + lag])`` has the largest |r|.

    Lags whose overlap is shorter than 3 points or constant are skipped; ties go to the
    smallest |lag|. Raises :class:`InsufficientDataError` when no lag can be evaluated.
    """
    a, b = _pair(x, y)
    if max_lag < 0:
        raise InvalidInputError(f"max_lag must be >= 0, got {max_lag}")
    best: LagCorrelation | None = None
    n = len(a)
    for lag in sorted(range(-max_lag, max_lag + 1), key=lambda k: (abs(k), k)):
        xs, ys = (a[: n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: n + lag])
        if len(xs) < _MIN_POINTS or np.ptp(xs) == 0.0 or np.ptp(ys) == 0.0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            res = stats.pearsonr(xs, ys)
        r = float(res.statistic)
        if best is None or abs(r) > abs(best.pearson_r):
            best = LagCorrelation(lag, r, float(res.pvalue), len(xs))
    if best is None:
        raise InsufficientDataError("no lag has 3 or more non-constant overlapping points")
    return best


def benjamini_hochberg(p_values: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (same as ``scipy.stats.false_discovery_control``).

    Reject the hypotheses whose adjusted p-value is <= the false discovery rate you accept.
    """
    p = as_float_array(p_values, "p_values")
    if ((p < 0) | (p > 1)).any():
        raise InvalidInputError("p_values must lie in [0, 1]")
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def correlate_many(
    series: Mapping[str, Sequence[float] | npt.ArrayLike], fdr: float = 0.05
) -> tuple[PairCorrelation, ...]:
    """Correlate every pair of equally long named series; Pearson p-values are adjusted with
    Benjamini-Hochberg and a pair is ``significant`` when its adjusted p-value <= ``fdr``.

    Constant series are skipped (their correlation is undefined). Result pairs are sorted by
    decreasing |Pearson r|.
    """
    if not 0.0 < fdr < 1.0:
        raise InvalidInputError(f"fdr must be in (0, 1), got {fdr}")
    arrays = {name: as_float_array(v, name, min_len=_MIN_POINTS) for name, v in series.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidInputError(f"series differ in length: {sorted(lengths)}")
    usable = [name for name, a in arrays.items() if np.ptp(a) > 0.0]
    pairs = [(f, s, correlate(arrays[f], arrays[s])) for f, s in itertools.combinations(usable, 2)]
    if not pairs:
        return ()
    adjusted = benjamini_hochberg([c.pearson_p for _, _, c in pairs])
    out = [
        PairCorrelation(f, s, c, float(q), bool(q <= fdr))
        for (f, s, c), q in zip(pairs, adjusted, strict=True)
    ]
    out.sort(key=lambda pc: -abs(pc.correlation.pearson_r))
    return tuple(out)
