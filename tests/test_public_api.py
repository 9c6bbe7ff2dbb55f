"""Pins the public surface: a change here is a change users see."""

from pathlib import Path

import otel_monitoring


def test_public_names() -> None:
    assert sorted(otel_monitoring.__all__) == sorted(
        [
            "CacheStats",
            "Clock",
            "ConfigError",
            "DbStatementStats",
            "EndpointSort",
            "EndpointStats",
            "ErrorSample",
            "Exemplar",
            "ExternalStats",
            "HealthState",
            "HealthStatus",
            "LatencyStats",
            "MetricStats",
            "Monitor",
            "MonitoringError",
            "NPlusOnePattern",
            "SelfTelemetry",
            "ServiceStats",
            "Settings",
            "Stats",
            "SystemClock",
            "Window",
            "__version__",
            "instrument_app",
            "record_cache",
        ]
    )
    for name in otel_monitoring.__all__:
        assert hasattr(otel_monitoring, name), name


def test_import_does_not_pull_scipy() -> None:
    import subprocess
    import sys

    code = "import sys, otel_monitoring; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_HEAVY = ("scipy", "fastapi", "sqlalchemy", "opentelemetry.sdk", "numpy", "otel_monitoring.monitor")


def _loaded_after(code: str) -> set[str]:
    """The heavy modules in ``sys.modules`` of a fresh interpreter once ``code`` has run."""
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {_HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.splitlines()[-1].split()[1:])


def test_import_loads_no_heavy_module_until_a_name_is_used() -> None:
    assert _loaded_after("import otel_monitoring") == set()
    # first use of a name loads what it needs, and only then
    assert "fastapi" in _loaded_after("import otel_monitoring; otel_monitoring.instrument_app")
    assert "scipy" not in _loaded_after("from otel_monitoring import Monitor")


def test_every_public_name_imports_from_a_fresh_process() -> None:
    names = ", ".join(n for n in otel_monitoring.__all__ if n != "__version__")
    code = f"from otel_monitoring import {names}, __version__\nimport otel_monitoring as m\n"
    code += "assert all(getattr(m, n) is not None for n in m.__all__)\n"
    code += "assert sorted(set(dir(m)) & set(m.__all__)) == sorted(m.__all__)\n"
    code += (
        "try:\n    m.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)"
    )
    assert "fastapi" in _loaded_after(code)


def test_cli_help_and_anomalies_load_neither_scipy_nor_the_api(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n" + "".join(f"{i * 60},{i % 7}\n" for i in range(50)))
    run = (
        "import sys\nfrom otel_monitoring.cli import main\nsys.argv = {argv!r}\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    )
    help_loaded = _loaded_after(run.format(argv=["otel-monitoring", "--help"]))
    assert help_loaded == set()
    argv = ["otel-monitoring", "analyze", "anomalies", str(src), "-o", str(tmp_path / "o.csv")]
    assert _loaded_after(run.format(argv=argv)) == {"numpy"}
    assert (tmp_path / "o.csv").exists()


def test_analyzers_insights_stays_the_function_after_its_module_loads() -> None:
    import importlib

    import analyzers

    module = importlib.import_module("analyzers.insights")  # binds the submodule on analyzers
    assert callable(analyzers.insights) and analyzers.insights is module.insights


_ROOT = Path(__file__).resolve().parent.parent
#: Import paths users were shown before the package's folders followed its data path; they
#: keep working through short re-export modules.
_OLD_PATHS = {
    "otel_monitoring.rules": ("AnomalyRule", "SloRule", "Statistic", "ThresholdRule", "Rule"),
    "otel_monitoring.persist": ("SqliteStore", "PersistStats", "parse_store_url"),
}


def _documented_imports() -> set[str]:
    """Every ``from otel_monitoring... import a, b`` line in the README and ``docs/*.md``."""
    import re

    lines: set[str] = set()
    for doc in [_ROOT / "README.md", *sorted((_ROOT / "docs").glob("*.md"))]:
        for match in re.finditer(
            r"^\s*(from (?:otel_monitoring|analyzers)[\w.]* import [\w, ]+)$",
            doc.read_text(),
            flags=re.M,
        ):
            lines.add(match.group(1).rstrip(", "))
    return lines


def test_documented_and_old_import_paths_import_from_a_fresh_process() -> None:
    import subprocess
    import sys

    documented = _documented_imports()
    assert any("otel_monitoring.fleet" in line for line in documented), documented
    old = {f"from {module} import {', '.join(names)}" for module, names in _OLD_PATHS.items()}
    code = "\n".join(sorted(documented | old))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
