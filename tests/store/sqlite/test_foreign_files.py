"""``OTEL_MONITORING_STORE`` pointed at a file that is not a monitoring store: refused before
anything is written, with one line naming the variable; empty files and files of the previous
version (no mark, same tables) are taken."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi import FastAPI
from persist_helpers import T0, sum_agg

import otel_monitoring
from otel_monitoring.errors import ConfigError
from otel_monitoring.store.memory import Kind, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore
from otel_monitoring.store.sqlite.schema import APPLICATION_ID


def _foreign_app_db(path: Path) -> None:
    """Another application's database, with tables named like the store's."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "CREATE TABLE series (id INTEGER PRIMARY KEY, title TEXT NOT NULL, season INTEGER);"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, who TEXT, what TEXT);"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO series (title, season) VALUES ('Dark', 1), ('Dark', 2);"
        "INSERT INTO audit (who, what) VALUES ('ann', 'login'), ('bob', 'logout');"
        "INSERT INTO users (name) VALUES ('ann'), ('bob');"
    )
    conn.close()


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _header(path: Path) -> tuple[int, int, int]:
    """(write version, read version, application id) from the file's header: 2/2 is WAL."""
    data = path.read_bytes()[:100]
    return data[18], data[19], int.from_bytes(data[68:72], "big")


def test_a_foreign_database_is_refused_and_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_db = tmp_path / "app.db"
    _foreign_app_db(app_db)
    before = _snapshot(tmp_path)

    with pytest.raises(ConfigError) as direct:
        SqliteStore(app_db)
    monkeypatch.setenv("OTEL_MONITORING_STORE", f"sqlite:///{app_db}")
    for signal in ("TRACES", "METRICS", "LOGS"):
        monkeypatch.setenv(f"OTEL_{signal}_EXPORTER", "none")
    with pytest.raises(ConfigError) as through_env:
        otel_monitoring.instrument_app(FastAPI())
    for error in (direct.value, through_env.value):
        message = str(error)
        assert "\n" not in message
        assert message.startswith("invalid setting OTEL_MONITORING_STORE:"), message
        assert "is not a monitoring store" in message and "audit, series, users" in message

    assert _snapshot(tmp_path) == before  # byte for byte, and no journal left beside it
    conn = sqlite3.connect(app_db, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert names == {"series", "audit", "users"}
        conn.execute("DELETE FROM audit")  # the app's own table stays its own
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    finally:
        conn.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, but someone's notes\n" * 20)
    with pytest.raises(ConfigError, match=r"OTEL_MONITORING_STORE: .* is not a monitoring store"):
        SqliteStore(notes)
    assert notes.read_text() == "not a database, but someone's notes\n" * 20


def test_a_foreign_file_swapped_in_later_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.db"
    store = SqliteStore(path)
    key = SeriesKey("hits", ())
    store.add(key, Kind.SUM, "1", T0, sum_agg(1))
    assert store.flush()
    foreign = tmp_path / "other.db"
    _foreign_app_db(foreign)
    foreign.replace(path)  # another program puts its database where the store's was
    replaced = path.read_bytes()
    store.add(key, Kind.SUM, "1", T0 + 10, sum_agg(2))
    store.add(key, Kind.SUM, "1", T0 + 20, sum_agg(4))
    assert store.flush() is False
    stats = store.persist_stats()
    assert stats.failing and stats.write_errors >= 1 and stats.backlog > 0
    # reads answer from this process's memory
    assert store.fold("hits", None, T0 + 20, lambda k: ("x",))[("x",)].value == 7
    store.close()
    assert path.read_bytes() == replaced
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DELETE FROM audit")
    finally:
        conn.close()


def test_an_empty_file_becomes_a_marked_store(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.db"
    path.touch()
    with SqliteStore(path) as store:
        store.add(SeriesKey("hits", ()), Kind.SUM, "1", T0, sum_agg(3))
        assert store.flush()
    assert _header(path) == (1, 1, APPLICATION_ID)  # a rollback journal, and the mark
    with SqliteStore(path) as again:
        assert again.fold("hits", None, T0, lambda k: ("x",))[("x",)].value == 3


@pytest.mark.parametrize("without_versions", [False, True])
def test_a_store_of_the_previous_version_is_recognised_and_marked(
    tmp_path: Path, without_versions: bool
) -> None:
    """The previous version wrote the same tables in WAL mode, without the mark (and an
    earlier one had no ``versions`` table yet)."""
    path = tmp_path / "monitoring.db"
    with SqliteStore(path) as old:
        old.add(SeriesKey("hits", ()), Kind.SUM, "1", T0, sum_agg(5))
        assert old.flush()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA application_id = 0")
    if without_versions:
        conn.execute("DROP TABLE versions")
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    conn.close()
    assert _header(path) == (2, 2, 0)

    with SqliteStore(path) as store:
        store.add(SeriesKey("hits", ()), Kind.SUM, "1", T0 + 10, sum_agg(1))
        assert store.flush()
        store.note_version("2.0.0", T0)
        assert [v for _, v in store.versions()] == ["2.0.0"]
    assert _header(path) == (1, 1, APPLICATION_ID)  # converted from WAL and marked
    with SqliteStore(path) as reader:
        assert reader.fold("hits", None, T0 + 10, lambda k: ("x",))[("x",)].value == 6


def test_a_marked_store_with_a_table_of_its_own_is_still_a_store(tmp_path: Path) -> None:
    """The mark decides: a store someone added a table to (a view for a report) opens."""
    path = tmp_path / "monitoring.db"
    with SqliteStore(path) as store:
        assert store.prepare()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE VIEW report AS SELECT count(*) FROM buckets")
    conn.close()
    with SqliteStore(path) as again:
        assert again.prepare()
