"""Build: the package as Python, with ``analyzers/anomaly.py`` compiled by mypyc when it can be.

mypyc compiles the same type-checked source to a C extension (about 3x faster; the scores
are the same bits, ``tests/analyzers/test_anomaly_compiled.py``). The extension is optional:
without a C compiler the compile fails, setuptools says so and the module stays Python, which
is slower but otherwise the same. ``OTEL_MONITORING_PURE_PYTHON=1`` at install time skips it.

Only the anomaly detector is compiled: it is the one loop over every point of a series
(``score_series``, the CLI, fleet mode); everything else is I/O-bound or numpy already.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup

COMPILED = ["analyzers/anomaly.py"]


def compiled_extensions() -> list[Extension]:
    """mypyc's extensions for :data:`COMPILED`, each optional; none when skipped or mypyc
    cannot type-check them (then the install goes on as pure Python, with a warning)."""
    if os.environ.get("OTEL_MONITORING_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify

        extensions = mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3")
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"otel-monitoring: not compiling {COMPILED} ({exc!r})", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True
    return extensions


setup(ext_modules=compiled_extensions())
