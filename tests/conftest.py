"""Shared fixtures: a fresh database per test, a controllable clock, and connection hygiene.

PostgreSQL: ``postgres_url`` is a fresh, empty database per test on one server per session
(``PRISMQ_TEST_POSTGRES_URL``, or a throwaway server). Tests using it are marked ``postgres``.

Both backends: ``queue_backend`` is parametrised ``sqlite`` / ``postgres``; ``queue_target`` is
then an empty queue's ``connect()`` target (a file path, or the URL of the session's migrated
PostgreSQL database, emptied before each test) and ``backend_db`` that queue opened. A module
runs its tests on both by overriding ``db`` with ``backend_db``; a test that is about SQLite
alone carries ``@pytest.mark.sqlite_only(reason=...)`` and its postgres variant is left out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bench.postgres_server import PostgresUnavailableError, find_postgres, throwaway_server
from queue_core import QueueBackend, QueueDatabase, TaskQueue, connect
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
    postgres_opened = _track_postgres_databases(monkeypatch)
    yield opened
    for db in opened:
        if hasattr(db, "_closed"):  # the constructor may have raised before setting it
            db.close()
    for postgres_db in postgres_opened:
        if hasattr(postgres_db, "_closed"):
            postgres_db.close()  # a leaked session would block the next test's TRUNCATE


def _track_postgres_databases(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every PostgresDatabase a test opens (none when psycopg is not installed)."""
    if missing_client():
        return []
    from queue_core.postgres.database import PostgresDatabase

    opened: list[Any] = []
    original_init = PostgresDatabase.__init__

    def tracking_init(self: PostgresDatabase, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(PostgresDatabase, "__init__", tracking_init)
    return opened


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
    sqlite_only = [item for item in items if _postgres_variant_of_sqlite_only(item)]
    if sqlite_only:
        config.hook.pytest_deselected(items=sqlite_only)
        items[:] = [item for item in items if item not in set(sqlite_only)]
    needing = [
        item
        for item in items
        if "postgres_server_url" in getattr(item, "fixturenames", ())
        or item.get_closest_marker("postgres") is not None
    ]
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


def _postgres_variant_of_sqlite_only(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("sqlite_only")
    if marker is None:
        return False
    if not marker.kwargs.get("reason"):
        raise pytest.UsageError(f"{item.nodeid}: sqlite_only needs reason=... (say why)")
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("queue_backend") == "postgres"


QUEUE_TABLES = ("task_logs", "task_queue", "workers", "finished_task_counts")


@pytest.fixture(scope="session")
def postgres_queue_url(postgres_server_url: str) -> Iterator[str]:
    """A migrated queue database for the session's backend-parametrised tests.

    Each test empties it (:func:`empty_postgres_queue`) rather than creating a database: a
    TRUNCATE costs milliseconds where CREATE DATABASE and the migrations cost a large part of
    a second, and the suite runs hundreds of these tests.
    """
    psycopg = require_psycopg()
    from psycopg import sql

    from queue_core.postgres.database import PostgresDatabase

    name = f"prismq_queue_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(postgres_server_url, name)
    try:
        with PostgresDatabase(url) as db:
            db.initialize_schema()
        yield url
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def empty_postgres_queue(url: str) -> None:
    """Delete every row of the queue's tables and restart its ids at 1, as a new file."""
    psycopg = require_psycopg()

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"TRUNCATE {', '.join(QUEUE_TABLES)} RESTART IDENTITY")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queue_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgres"``: the backend a parametrised test runs on."""
    return str(request.param)


@pytest.fixture
def queue_target(queue_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """What ``connect()`` opens for an empty queue on ``queue_backend`` (schema created)."""
    if queue_backend == "sqlite":
        path = tmp_path / "queue.db"
        with QueueDatabase(path) as db:
            db.initialize_schema()
        return str(path)
    url = str(request.getfixturevalue("postgres_queue_url"))
    empty_postgres_queue(url)
    return url


@pytest.fixture
def backend_db(queue_target: str) -> Iterator[QueueBackend]:
    """The queue at ``queue_target``, open, closed after the test."""
    database = connect(queue_target)
    database.initialize_schema()
    yield database
    database.close()
