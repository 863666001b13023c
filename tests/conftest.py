"""Shared fixtures: a fresh database per test, a controllable clock, and connection hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from queue_core import QueueDatabase, TaskQueue


class FakeClock:
    """A clock tests move by hand, so leases and backoff need no sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture(autouse=True)
def close_every_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[QueueDatabase]]:
    """Close every QueueDatabase a test opened, as Windows cannot delete open files."""
    opened: list[QueueDatabase] = []
    original_init = QueueDatabase.__init__

    def tracking_init(self: QueueDatabase, *args: object, **kwargs: object) -> None:
        opened.append(self)
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(QueueDatabase, "__init__", tracking_init)
    yield opened
    for db in opened:
        if hasattr(db, "_closed"):  # the constructor may have raised before setting it
            db.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def db(db_path: Path) -> QueueDatabase:
    database = QueueDatabase(db_path)
    database.initialize_schema()
    return database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db: QueueDatabase, clock: FakeClock) -> TaskQueue:
    import random

    return TaskQueue(db, clock=clock, rng=random.Random(1234))
