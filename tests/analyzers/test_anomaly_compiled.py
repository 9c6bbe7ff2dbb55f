"""The installed anomaly detector against its own source.

``setup.py`` compiles ``analyzers/anomaly.py`` with mypyc where a C compiler is at hand. These
tests load the source file itself as a plain Python module and check that the module the
package imports (compiled or not) gives the same bits on every pinned case, accepts the same
inputs and rejects the same mistakes; and that the build compiled it when it could. A stale
build (the source edited after the last install) fails here first: reinstall
(``pip install -e .``, or ``make test``, which does it when the file changed).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import analyzers
import analyzers.anomaly as installed
from analyzers.errors import InvalidInputError
from tests.analyzers.test_anomaly_pinned import CASES

SOURCE = Path(analyzers.__file__).with_name("anomaly.py")


@pytest.fixture(scope="module")
def source() -> Iterator[ModuleType]:
    """``analyzers/anomaly.py`` run as Python, whatever the package imports."""
    spec = importlib.util.spec_from_file_location("anomaly_from_source", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _is_compiled(module: ModuleType) -> bool:
    return not str(module.__file__).endswith(".py")


def test_compiled_when_a_compiler_is_at_hand() -> None:
    """The build compiles the detector when it can (a C compiler and Python's headers) and
    leaves it Python when it cannot or is told not to."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    can = shutil.which(compiler) is not None and headers.is_file()
    pure_asked = os.environ.get("OTEL_MONITORING_PURE_PYTHON", "") not in ("", "0")
    expected = can and not pure_asked
    assert _is_compiled(installed) == expected, (
        f"analyzers.anomaly is {installed.__file__}; with compiler {compiler!r}"
        f" {'found' if shutil.which(compiler) else 'missing'} and {headers}"
        f" {'present' if headers.is_file() else 'missing'} it should"
        f"{'' if expected else ' not'} be compiled: reinstall (pip install -e .)"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_scores_as_the_source(source: ModuleType, name: str) -> None:
    ts, vs, settings = CASES[name]()
    source_settings = None if settings is None else source.DetectorSettings(**asdict(settings))
    ours = installed.score_series(ts, vs, settings)
    theirs = source.score_series(ts, vs, source_settings)
    assert ours.tobytes() == theirs.tobytes(), (
        f"{installed.__file__} scores differ from {SOURCE}: reinstall (pip install -e .)"
    )


def test_same_inputs_accepted(source: ModuleType) -> None:
    """numpy scalars, ints and bools are values to both; NaN and huge values score 0."""
    values: list[object] = [
        np.float32(1.5),
        np.float64(2.0),
        np.int64(3),
        4,
        True,
        float("nan"),
        1e200,
        -np.inf,
    ]
    ours, theirs = installed.AnomalyDetector(), source.AnomalyDetector()
    for i, value in enumerate(values * 40):
        t = np.int64(10 * i) if i % 2 else float(10 * i)
        assert ours.update(t, value) == theirs.update(t, value)
    assert ours.points_seen == theirs.points_seen == 5 * 40  # the five finite values


def test_same_mistakes_rejected(source: ModuleType) -> None:
    for module in (installed, source):
        detector = module.AnomalyDetector()
        detector.update(100.0, 1.0)
        with pytest.raises(InvalidInputError, match="must not decrease"):
            detector.update(50.0, 1.0)
        with pytest.raises(InvalidInputError, match="finite"):
            detector.update(float("nan"), 1.0)
        with pytest.raises(TypeError):
            detector.update(200.0, None)
        with pytest.raises(InvalidInputError):
            module.DetectorSettings(smooth_rate=0.0)
