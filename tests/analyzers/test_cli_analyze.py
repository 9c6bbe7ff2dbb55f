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
    ("content", "expected", "flags"),
    [
        ("", "empty file", []),
        ("timestamp,value\n", "no data rows", []),
        ("time,value\n1,2\n", ":1: missing column(s) timestamp", []),
        (
            "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n",
            ":3: value 'abc'",
            [],
        ),
        ("timestamp,value\nyesterday,1\n", ":2: cannot parse timestamp 'yesterday'", []),
        (
            "timestamp,value\n2024-01-02,1\n2024-01-01,2\n",
            ":3: timestamp '2024-01-01' is earlier",
            ["--strict"],
        ),
        ("timestamp,value\n1,nan\n", ":2: value 'nan' is not a finite number", ["--strict"]),
        ("timestamp,value\n1,inf\n", ":2: value 'inf' is not a finite number", []),
        ("timestamp,value\n1,2\n2,\n", ":3: value is empty", ["--strict"]),
        ("timestamp,value\n1,2\n,3\n", ":3: timestamp is empty", ["--strict"]),
        ("timestamp,value\n1\n", ":2: expected 2 columns", []),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-column",
        "non-numeric",
        "bad-time",
        "decreasing-strict",
        "nan-strict",
        "inf",
        "empty-value-strict",
        "empty-time-strict",
        "short-row",
    ],
)
def test_bad_input_one_line_error(
    tmp_path: Path, content: str, expected: str, flags: list[str]
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(tmp_path / "o.csv"), *flags])
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


# Real exports, as they come: a clock step back (DST end in Europe/Paris, local time written
# without offset: 02:55 then 02:00), duplicate timestamps, empty cells and NaN.
_REAL_EXPORT = """timestamp,value,host
2024-10-27 02:45:00,10.5,web1
2024-10-27 02:50:00,11.0,web1
2024-10-27 02:55:00,10.8,web1
2024-10-27 02:00:00,10.9,web1
2024-10-27 02:05:00,,web1
2024-10-27 02:05:00,11.2,web1
2024-10-27 02:10:00,NaN,web1
,11.1,web1
2024-10-27 02:15:00,10.7,web1
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_export_is_scored_in_file_order_with_one_warning(tmp_path: Path) -> None:
    src, out = tmp_path / "export.csv", tmp_path / "scored.csv"
    src.write_text(_REAL_EXPORT)
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {src}: scored in file order with 1 clock step(s) back (a gap of 0 s), "
        "1 duplicate timestamp(s), 3 empty or NaN cell(s) (rows kept with score 0); "
        "--strict refuses step backs and empty cells"
    ]
    rows = _rows(out)
    assert len(rows) == len(_REAL_EXPORT.strip().splitlines()) - 1
    # every input row is kept, in order, with its cells as written
    assert [(r["timestamp"], r["value"], r["host"]) for r in rows] == [
        tuple(line.split(",")) for line in _REAL_EXPORT.strip().splitlines()[1:]
    ]
    by_value = {r["value"]: float(r["anomaly_score"]) for r in rows}
    assert by_value[""] == 0.0 and by_value["NaN"] == 0.0
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)


def test_step_back_scores_as_the_same_rows_with_a_gap_of_zero(tmp_path: Path) -> None:
    """A step back changes nothing but the clock: the scores equal those of the same values
    with the clock moved forward by the step (so the gap across it is 0 s)."""
    ts, vs = make_series(4, 600, spike_at=500)
    step = 3600.0
    cut = 300
    written = ts.copy()
    written[cut:] -= step + (ts[cut] - ts[cut - 1])  # row `cut` is `step` s before row cut-1
    src = tmp_path / "dst.csv"
    src.write_text(
        "timestamp,value\n"
        + "".join(f"{t:.0f},{float(v)!r}\n" for t, v in zip(written, vs, strict=True))
    )
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    assert "1 clock step(s) back" in res.stderr
    expected_ts = np.concatenate([ts[:cut], ts[cut:] - (ts[cut] - ts[cut - 1])])
    np.testing.assert_allclose(
        _scores(tmp_path / "o.csv"), score_series(expected_ts, vs), atol=1e-6, rtol=1e-5
    )


def test_empty_and_nan_values_leave_later_scores_unchanged(tmp_path: Path) -> None:
    """A skipped cell is as if the row were absent for the detector: later rows score the same."""
    ts, vs = make_series(5, 400, spike_at=350)
    lines = [f"{t:.0f},{float(v)!r}" for t, v in zip(ts, vs, strict=True)]
    holes = list(lines)
    holes.insert(100, f"{ts[99]:.0f},")
    holes.insert(200, f"{ts[198]:.0f},nan")
    (tmp_path / "holes.csv").write_text("timestamp,value\n" + "\n".join(holes) + "\n")
    res = runner.invoke(
        analyze_app, ["anomalies", str(tmp_path / "holes.csv"), "-o", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 0, res.output
    got = _scores(tmp_path / "o.csv")
    assert len(got) == len(lines) + 2
    assert got[100] == 0.0 and got[200] == 0.0
    kept = np.delete(got, [100, 200])
    np.testing.assert_allclose(kept, score_series(ts, vs), atol=1e-6, rtol=1e-5)


def test_strict_refuses_the_real_export_naming_file_and_line(tmp_path: Path) -> None:
    src, out = tmp_path / "export.csv", tmp_path / "scored.csv"
    src.write_text(_REAL_EXPORT)
    res = runner.invoke(analyze_app, ["anomalies", str(src), "-o", str(out), "--strict"])
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        f"error: {src}:5: timestamp '2024-10-27 02:00:00' is earlier than the row before it "
        "(rows must be in time order)"
    )
    assert not out.exists()


def _write_input(tmp_path: Path) -> tuple[Path, bytes]:
    src = tmp_path / "data" / "in.csv"
    _write(src, n=50)
    return src, src.read_bytes()


@pytest.mark.parametrize("spelling", ["same", "dot-dot", "symlink", "folder", "another-input"])
def test_output_equal_to_an_input_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    src, before = _write_input(tmp_path)
    monkeypatch.chdir(tmp_path / "data")
    if spelling == "same":
        args = [str(src), "-o", str(src)]
    elif spelling == "dot-dot":
        args = ["in.csv", "-o", "../data/./in.csv"]
    elif spelling == "symlink":
        (tmp_path / "link.csv").symlink_to(src)
        args = [str(tmp_path / "link.csv"), "-o", "in.csv"]
    elif spelling == "folder":
        args = [".", "-o", str(tmp_path / "data")]
    else:  # the folder's sub/in.csv would be written over another input, out/sub/in.csv
        _write(tmp_path / "all" / "sub" / "in.csv", n=50, seed=9)
        src = tmp_path / "out" / "sub" / "in.csv"
        src.parent.mkdir(parents=True)
        src.write_bytes(before)
        args = [str(tmp_path / "all"), str(src), "-o", str(tmp_path / "out")]
    res = runner.invoke(analyze_app, ["anomalies", *args])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "would overwrite it" in lines[0], res.stderr
    assert "Traceback" not in res.output
    assert src.read_bytes() == before


def test_output_next_to_the_input_is_accepted(tmp_path: Path) -> None:
    src, before = _write_input(tmp_path)
    res = runner.invoke(
        analyze_app, ["anomalies", str(src), "-o", str(src.with_suffix(".out.csv"))]
    )
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == before and len(_rows(src.with_suffix(".out.csv"))) == 50
