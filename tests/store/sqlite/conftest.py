"""Fixtures for the SQLite store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_monitoring.store.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitoring.db"


@pytest.fixture
def open_store(db_path: Path) -> Iterator[type[SqliteStore]]:
    """``open_store(**kwargs)``: a store on ``db_path``, closed after the test."""
    opened: list[SqliteStore] = []

    def factory(**kwargs: object) -> SqliteStore:
        store = SqliteStore(db_path, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory  # type: ignore[misc]
    for store in opened:
        store.close()
