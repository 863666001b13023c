"""Shared fixtures: a fresh database per test, a controllable clock, and connection hygiene.

PostgreSQL: ``postgres_url`` is a fresh, empty database per test on one server per session
(``PRISMQ_TEST_POSTGRES_URL``, or a throwaway server). Tests using it are marked ``postgres``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.postgres_server import PostgresUnavailableError, find_postgres, throwaway_server
from queue_core import QueueDatabase, TaskQueue
from tests.postgres_support import (
    URL_VAR,
    may_leave_out,
    missing_client,
    missing_server,
    require_psycopg,
    unavailable,
    with_database,
)

_POSTGRES_LEFT_OUT = pytest.StashKey[str]()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs the PostgreSQL server ``postgres`` (``-m "not postgres"``).

    Without PostgreSQL (and not on CI) those tests are deselected, and the summary says why.
    """
    needing = [item for item in items if "postgres_server_url" in getattr(item, "fixturenames", ())]
    for item in needing:
        item.add_marker(pytest.mark.postgres)
    reason = missing_client() or (missing_server() if needing else None)
    if reason is None or not may_leave_out():
        return
    config.stash[_POSTGRES_LEFT_OUT] = reason
    if needing:
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items if item not in set(needing)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line when the PostgreSQL tier was left out."""
    reason = terminalreporter.config.stash.get(_POSTGRES_LEFT_OUT, None)
    if reason:
        terminalreporter.write_line(f"PostgreSQL tests left out: {reason}", yellow=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A superuser URL of the session's PostgreSQL server.

    ``PRISMQ_TEST_POSTGRES_URL`` when set (its user needs CREATEDB), else a throwaway server
    started once for the session and stopped at its end.
    """
    require_psycopg()
    given = os.environ.get(URL_VAR)
    if given:
        yield given
        return
    try:
        tools = find_postgres()
    except PostgresUnavailableError as exc:
        unavailable(exc.reason)
    with throwaway_server(tools=tools) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A ``postgresql://`` URL of a new, empty database that is dropped after the test."""
    psycopg = require_psycopg()
    from psycopg import sql

    name = f"prismq_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(postgres_server_url, name)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            # FORCE: a test that leaked a connection must not leak its database too.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
