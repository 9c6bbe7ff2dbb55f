"""``otel-monitoring analyze``: run the analyzers on CSV files of ``timestamp,value``.

Importing this module is cheap: numpy, rich and :mod:`analyzers` load inside the commands.
"""

from __future__ import annotations

import csv
import enum
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["analyze_app"]

analyze_app = typer.Typer(
    help="Analyze CSV files of timestamp,value rows (anomaly scores, trends).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs ~0.15 s of imports
    pretty_exceptions_enable=False,
)


@analyze_app.callback()
def _group() -> None:
    """Analyze CSV files of timestamp,value rows (anomaly scores, trends)."""


_EPOCH = datetime(1970, 1, 1)
_PROGRESS_MIN_ROWS = 200_000  # below this the work takes well under a second


class SensitivityChoice(enum.StrEnum):
    """Alarm sensitivity names accepted on the command line."""

    low = "low"
    medium = "medium"
    high = "high"


class InputError(Exception):
    """A CSV file cannot be analysed; ``str()`` is the one-line message for the user."""


@dataclass(frozen=True, slots=True)
class _Table:
    """A CSV file read for scoring, one entry per data row, in file order.

    ``timestamps_s`` never decrease: each row is the row before it plus the time between them in
    the file, and a clock step back counts as 0 s (the rows after it keep their spacing).
    ``values`` holds NaN where the row is not scored (empty or NaN cell).
    """

    header: list[str]
    rows: list[list[str]]
    timestamps_s: list[float]
    values: list[float]
    steps_back: int = 0
    duplicates: int = 0
    skipped: int = 0

    def warning(self, path: Path) -> str | None:
        """The one warning line for what was tolerated in this file, or None if nothing was."""
        parts: list[str] = []
        if self.steps_back:
            parts.append(f"{self.steps_back} clock step(s) back (a gap of 0 s)")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate timestamp(s)")
        if self.skipped:
            parts.append(f"{self.skipped} empty or NaN cell(s) (rows kept with score 0)")
        if not parts:
            return None
        return (
            f"{path}: scored in file order with {', '.join(parts)}; "
            "--strict refuses step backs and empty cells"
        )


@dataclass(frozen=True, slots=True)
class _Job:
    source: Path
    target: Path


@dataclass(frozen=True, slots=True)
class _Outcome:
    source: Path
    rows: int
    alarms: int
    error: str | None
    warning: str | None = None


def _timestamp_parser(text: str) -> Callable[[str], float]:
    """Pick a parser from the first timestamp: epoch seconds or ISO 8601 (naive = UTC)."""
    try:
        float(text)
    except ValueError:
        pass
    else:
        return float

    def parse_iso(s: str) -> float:
        dt = datetime.fromisoformat(s.strip())
        if dt.tzinfo is None:
            return (dt - _EPOCH).total_seconds()
        return dt.timestamp()

    return parse_iso


def read_series(path: Path, *, strict: bool = True) -> _Table:
    """Read and validate a ``timestamp,value`` CSV; raises :class:`InputError` on bad input.

    With ``strict`` (the ``trend`` command, ``anomalies --strict``) a timestamp earlier than the
    row before it, an empty cell and a NaN value are errors. Without it, as real exports come:
    a step back (DST change, NTP correction) is a gap of 0 s, and a row with
    an empty timestamp or an empty/NaN value is kept unscored (its value is NaN in the table);
    the counts are on the table. Unparsable text and infinite values are errors either way.
    """
    try:
        fh = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    nan = float("nan")
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file (expected a header with timestamp,value)")
            names = [h.strip() for h in header]
            missing = [c for c in ("timestamp", "value") if c not in names]
            if missing:
                raise InputError(
                    f"{path}:1: missing column(s) {', '.join(missing)} "
                    f"(header is {','.join(names) or '<empty>'})"
                )
            i_ts, i_val = names.index("timestamp"), names.index("value")
            width = max(i_ts, i_val) + 1
            rows: list[list[str]] = []
            ts_out: list[float] = []
            vals: list[float] = []
            parse_ts: Callable[[str], float] | None = None
            prev = -float("inf")  # the file's timestamp of the row before
            shift = 0.0  # total of the steps back so far, added to the file's timestamps
            steps_back = duplicates = skipped = 0
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                if len(row) < width:
                    raise InputError(
                        f"{path}:{line}: expected {len(names)} columns, got {len(row)}"
                    )
                ts_text, val_text = row[i_ts], row[i_val]
                if not ts_text.strip():
                    if strict:
                        raise InputError(f"{path}:{line}: timestamp is empty")
                    skipped += 1
                    rows.append(row)
                    ts_out.append(ts_out[-1] if ts_out else 0.0)
                    vals.append(nan)
                    continue
                if parse_ts is None:
                    parse_ts = _timestamp_parser(ts_text)
                try:
                    t = parse_ts(ts_text)
                except (ValueError, OverflowError):
                    raise InputError(
                        f"{path}:{line}: cannot parse timestamp {ts_text!r} "
                        "(expected ISO 8601 or epoch seconds)"
                    ) from None
                if t != t or t in (float("inf"), -float("inf")):
                    raise InputError(f"{path}:{line}: timestamp {ts_text!r} is not finite")
                if t < prev:
                    if strict:
                        raise InputError(
                            f"{path}:{line}: timestamp {ts_text!r} is earlier than the row "
                            "before it (rows must be in time order)"
                        )
                    steps_back += 1
                    shift += prev - t
                elif t == prev:
                    duplicates += 1
                prev = t
                t += shift
                if not val_text.strip():
                    if strict:
                        raise InputError(f"{path}:{line}: value is empty")
                    v = nan
                else:
                    try:
                        v = float(val_text)
                    except ValueError:
                        raise InputError(
                            f"{path}:{line}: value {val_text!r} is not a number"
                        ) from None
                    if v in (float("inf"), -float("inf")) or (v != v and strict):
                        raise InputError(
                            f"{path}:{line}: value {val_text!r} is not a finite number"
                        )
                if v != v:
                    skipped += 1
                rows.append(row)
                ts_out.append(t)
                vals.append(v)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file") from None
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise InputError(f"{path}: no data rows after the header")
    return _Table(names, rows, ts_out, vals, steps_back, duplicates, skipped)


def _score_one(job: _Job, sensitivity: str, strict: bool = False) -> _Outcome:
    """Read, score and write one file (runs in a worker process for several files)."""
    from analyzers import AnomalyDetector, Sensitivity

    try:
        table = read_series(job.source, strict=strict)
    except InputError as exc:
        return _Outcome(job.source, 0, 0, str(exc))
    det = AnomalyDetector(Sensitivity[sensitivity.upper()])
    update = det.update
    threshold = det.sensitivity.value
    alarms = 0
    lines: list[str] = []
    header = [*table.header, "anomaly_score"]
    append = lines.append
    for row, t, v in zip(table.rows, table.timestamps_s, table.values, strict=True):
        s = update(t, v) if v == v else 0.0
        if s >= threshold:
            alarms += 1
        row.append(f"{s:.6g}")
        append(row)  # type: ignore[arg-type]
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        with job.target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(lines)
    except OSError as exc:
        return _Outcome(job.source, 0, 0, f"{job.target}: cannot write: {exc.strerror or exc}")
    return _Outcome(job.source, len(table.rows), alarms, None, table.warning(job.source))


def _plan(inputs: list[Path], output: Path) -> list[_Job]:
    """Map inputs (files or folders of *.csv) to output files, mirroring relative paths."""
    if len(inputs) == 1 and not inputs[0].is_dir():
        src = inputs[0]
        job = _Job(src, output / src.name if output.is_dir() else output)
        _refuse_overwriting_inputs([job])
        return [job]
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: must be a folder when several files or a folder are given")
    jobs: list[_Job] = []
    seen: dict[Path, Path] = {}
    for src in inputs:
        if src.is_dir():
            pairs = [(f, f.relative_to(src)) for f in sorted(src.rglob("*.csv")) if f.is_file()]
            if not pairs:
                raise InputError(f"{src}: folder holds no .csv files")
        else:
            pairs = [(src, Path(src.name))]
        for f, rel in pairs:
            target = output / rel
            if target in seen:
                raise InputError(f"{f}: would overwrite the output of {seen[target]} ({target})")
            seen[target] = f
            jobs.append(_Job(f, target))
    _refuse_overwriting_inputs(jobs)
    return jobs


def _refuse_overwriting_inputs(jobs: list[_Job]) -> None:
    """Raise :class:`InputError` when an output file is one of the input files.

    Files are compared by device and inode, so any spelling of the path (relative, ``..``, a
    symbolic or hard link) counts as the same file.
    """
    inputs: dict[tuple[int, int], Path] = {}
    for job in jobs:
        try:
            st = job.source.stat()
        except OSError:
            continue  # a missing input is reported on its own
        inputs[(st.st_dev, st.st_ino)] = job.source
    for job in jobs:
        try:
            st = job.target.stat()
        except OSError:
            continue  # not there yet: cannot be an input
        src = inputs.get((st.st_dev, st.st_ino))
        if src is not None:
            raise InputError(
                f"{job.target}: -o is the input file {src} and would overwrite it; "
                "write the scores to another path"
            )


def _run_jobs(
    jobs: list[_Job], sensitivity: str, workers: int, progress: bool, strict: bool
) -> list[_Outcome]:
    if workers <= 1 or len(jobs) == 1:
        results_iter = (_score_one(j, sensitivity, strict) for j in jobs)
        return _with_progress(results_iter, jobs, progress)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        # largest files first keeps both workers busy until the end
        order = sorted(jobs, key=lambda j: -_size(j.source))
        futures = [pool.submit(_score_one, j, sensitivity, strict) for j in order]
        return _with_progress((f.result() for f in futures), order, progress)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _with_progress(results: Iterable[_Outcome], jobs: list[_Job], progress: bool) -> list[_Outcome]:
    if not progress:
        return list(results)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    out: list[_Outcome] = []
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("scoring", total=len(jobs))
        for res in results:
            out.append(res)
            bar.advance(task)
    return out


@analyze_app.command()
def anomalies(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="CSV files with timestamp,value columns, or folders of them."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output CSV (one input file) or folder (several files or a folder).",
        ),
    ],
    sensitivity: Annotated[
        SensitivityChoice,
        typer.Option(help="Alarm threshold used for the summary line: low, medium or high."),
    ] = SensitivityChoice.medium,
    jobs: Annotated[
        int, typer.Option(help="Worker processes for several files (0 = one per CPU).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse a file with a timestamp step back, an empty cell or a NaN value "
            "(by default they are scored in file order, skipped, and counted in a warning).",
        ),
    ] = False,
) -> None:
    """Write each row plus an anomaly_score column in [0, 1] (streaming: each score uses only
    the rows up to and including its own; see docs/analyzers.md)."""
    start = time.perf_counter()
    try:
        plan = _plan(inputs, output)
    except InputError as exc:
        _fail(str(exc))
    missing = [j.source for j in plan if not j.source.exists()]
    if missing:
        _fail(f"{missing[0]}: no such file")
    workers = jobs if jobs > 0 else min(len(plan), os.cpu_count() or 1)
    total_bytes = sum(_size(j.source) for j in plan)
    show = sys.stderr.isatty() and total_bytes > _PROGRESS_MIN_ROWS * 25
    results = _run_jobs(plan, sensitivity.value, workers, show, strict)
    for res in results:
        if res.warning:
            typer.echo(f"warning: {res.warning}", err=True)
    errors = [r.error for r in results if r.error]
    for err in errors:
        typer.echo(f"error: {err}", err=True)
    if errors:
        raise typer.Exit(code=1)
    rows = sum(r.rows for r in results)
    alarms = sum(r.alarms for r in results)
    elapsed = time.perf_counter() - start
    if not quiet:
        rate = rows / elapsed if elapsed > 0 else float("inf")
        typer.echo(
            f"scored {rows} rows in {len(results)} file(s), {alarms} alarm(s) at "
            f"{sensitivity.value} sensitivity, {elapsed:.2f}s ({rate:,.0f} rows/s) -> {output}",
            err=True,
        )


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@analyze_app.command()
def trend(
    inputs: Annotated[list[Path], typer.Argument(help="CSV files with timestamp,value columns.")],
    alpha: Annotated[float, typer.Option(help="Significance level of the trend test.")] = 0.05,
) -> None:
    """Print each file's trend: Mann-Kendall direction and p-value, Theil-Sen slope per hour
    with its confidence interval, and the first-half/second-half % change."""
    from analyzers import AnalysisError, analyze_trend

    if not 0.0 < alpha < 1.0:
        _fail(f"--alpha must be in (0, 1), got {alpha}")
    failed = False
    for path in inputs:
        try:
            table = read_series(path, strict=True)
            res = analyze_trend(table.timestamps_s, table.values, alpha)
        except (InputError, AnalysisError) as exc:
            typer.echo(
                f"error: {exc}" if isinstance(exc, InputError) else f"error: {path}: {exc}",
                err=True,
            )
            failed = True
            continue
        s = res.slope
        pct = "n/a" if res.change.percent is None else f"{res.change.percent:+.1f} %"
        typer.echo(
            f"{path}: {res.direction.value} (Mann-Kendall p={res.mann_kendall.p_value:.3g}, "
            f"tau={res.mann_kendall.tau:+.3f}, n={res.n}); slope {s.slope_per_hour:+.6g}/h "
            f"[{s.low_per_hour:+.6g}, {s.high_per_hour:+.6g}]; change {pct}"
        )
    if failed:
        raise typer.Exit(code=1)
