from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from analyzers import score_series
from otel_monitoring.cli.analyze import analyze_app
from tests.analyzers.conftest import make_series

runner = CliRunner()


def _write(path: Path, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ts, vs = make_series(seed, n, spike_at=n - 50)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t, v in zip(ts, vs, strict=True):
            stamp = np.datetime64(int(t), "s").astype(str).replace("T", " ")
            w.writerow([stamp, repr(float(v))])
    return ts, vs


def _scores(path: Path) -> np.ndarray:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["anomaly_score"]) for r in rows])


def test_single_file_gets_streaming_scores(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    ts, vs = _write(src)
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    with out.open() as fh:
        header = next(csv.reader(fh))
    assert header == ["timestamp", "value", "anomaly_score"]
    got = _scores(out)
    np.testing.assert_allclose(got, score_series(ts, vs), atol=1e-6, rtol=1e-5)
    assert ((got >= 0) & (got <= 1)).all()


def test_prefix_of_a_file_gets_the_same_scores(tmp_path: Path) -> None:
    _write(tmp_path / "full.csv", 400)
    lines = (tmp_path / "full.csv").read_text().splitlines()
    (tmp_path / "part.csv").write_text("\n".join(lines[:301]) + "\n")
    for name in ("full", "part"):
        res = runner.invoke(
            analyze_app,
            ["anomalies", str(tmp_path / f"{name}.csv"), "-o", str(tmp_path / f"{name}.out.csv")],
        )
        assert res.exit_code == 0, res.output
    full, part = _scores(tmp_path / "full.out.csv"), _scores(tmp_path / "part.out.csv")
    np.testing.assert_array_equal(part, full[:300])


def test_folder_and_files_mirror_relative_paths(tmp_path: Path) -> None:
    _write(tmp_path / "data" / "a" / "one.csv", seed=1)
    _write(tmp_path / "data" / "two.csv", seed=2)
    _write(tmp_path / "extra.csv", seed=3)
    out = tmp_path / "out"
    res = runner.invoke(
        analyze_app,
        [
            "anomalies",
            str(tmp_path / "data"),
            str(tmp_path / "extra.csv"),
            "-o",
            str(out),
            "--jobs",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        "a/one.csv",
        "extra.csv",
        "two.csv",
    ]


def test_epoch_seconds_and_extra_columns_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("host,timestamp,value\nh1,100,1.5\nh1,160,2.5\n")
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.csv").read_text().splitlines() == [
        "host,timestamp,value,anomaly_score",
        "h1,100,1.5,0",
        "h1,160,2.5,0",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("timestamp,value\n", "no data rows"),
        ("time,value\n1,2\n", ":1: missing column(s) timestamp"),
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n", ":3: value 'abc'"),
        ("timestamp,value\nyesterday,1\n", ":2: cannot parse timestamp 'yesterday'"),
        ("timestamp,value\n2024-01-02,1\n2024-01-01,2\n", ":3: timestamp '2024-01-01' is earlier"),
        ("timestamp,value\n1,nan\n", ":2: value 'nan' is not a finite number"),
        ("timestamp,value\n1\n", ":2: expected 2 columns"),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-column",
        "non-numeric",
        "bad-time",
        "decreasing",
        "nan",
        "short-row",
    ],
)
def test_bad_input_one_line_error(tmp_path: Path, content: str, expected: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 1
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert str(src) in lines[0] and expected in lines[0]
    assert "Traceback" not in res.output


def test_missing_file(tmp_path: Path) -> None:
    res = runner.invoke(
        analyze_app, ["anomalies", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 1
    assert "nope.csv: no such file" in res.output


def test_one_bad_file_among_several_fails_but_names_it(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "good.csv")
    (tmp_path / "in" / "bad.csv").write_text("timestamp,value\n1,x\n")
    res = runner.invoke(
        analyze_app, ["anomalies", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--jobs", "2"]
    )
    assert res.exit_code == 1
    assert "bad.csv:2: value 'x' is not a number" in res.output
    assert (tmp_path / "out" / "good.csv").exists()


def test_trend_command(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n" + "".join(f"{i * 60},{i * 2.0}\n" for i in range(30)))
    res = runner.invoke(analyze_app, ["trend", str(src)])
    assert res.exit_code == 0, res.output
    assert "increasing" in res.output and "120" in res.output  # 2 per minute = 120 per hour
