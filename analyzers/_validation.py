"""Input checks shared by the analyzers; every failure is an :class:`InvalidInputError`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers.errors import InsufficientDataError, InvalidInputError

MAX_ABS = 1e150  # beyond this, squares and sums of values overflow float64


def as_float_array(
    data: Any, name: str, *, allow_nan: bool = False, min_len: int = 0
) -> npt.NDArray[np.float64]:
    """``data`` as a 1-D float64 array; rejects other shapes, non-numbers, arrays shorter than
    ``min_len`` and (unless ``allow_nan``) non-finite values or magnitudes beyond ``MAX_ABS``."""
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not allow_nan:
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{name} holds NaN or infinite values")
        if len(arr) and float(np.max(np.abs(arr))) > MAX_ABS:
            raise InvalidInputError(f"{name} holds values beyond +-{MAX_ABS:g} (not supported)")
    if len(arr) < min_len:
        raise InsufficientDataError(f"{name} needs at least {min_len} points, got {len(arr)}")
    return arr


def check_same_length(a: npt.NDArray[Any], b: npt.NDArray[Any], name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` have the same length."""
    if len(a) != len(b):
        raise InvalidInputError(f"{name_a} and {name_b} differ in length ({len(a)} != {len(b)})")


def check_timestamps(ts: npt.NDArray[np.float64], name: str) -> None:
    """Raise unless ``ts`` is finite and non-decreasing."""
    if not np.isfinite(ts).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    if len(ts) > 1:
        bad = np.flatnonzero(np.diff(ts) < 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise InvalidInputError(f"{name} decrease at index {i} ({ts[i - 1]!r} -> {ts[i]!r})")
