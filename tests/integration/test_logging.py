"""queue_core logs through logging.getLogger("queue_core"): errors once, events, quiet hot paths."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from queue_core import (
    LeaseLostError,
    QueueBusyError,
    QueueDatabase,
    QueueSchemaError,
    TaskQueue,
    schema,
    sql,
)
from queue_core.database import sqlite_error_name
from tests.conftest import FakeClock


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="queue_core")
    return caplog


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("queue_core")]


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("queue_core").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_successful_hot_paths_log_nothing(queue: TaskQueue, logs: pytest.LogCaptureFixture) -> None:
    task_id = queue.enqueue("t", 1, idempotency_key="k")
    queue.enqueue("t", 1, idempotency_key="k")
    queue.enqueue_many([{"type": "t", "payload": 2}])
    (task,) = queue.claim("w")
    queue.extend_lease(task.id, "w", 30)
    queue.complete(task_id, "w")
    queue.claim("w")
    queue.stats()
    assert _records(logs) == []


def test_a_busy_error_is_logged_once_with_operation_wait_and_name(
    db_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    with QueueDatabase(db_path) as setup:
        setup.initialize_schema()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with QueueDatabase(db_path, busy_timeout_ms=50) as db, pytest.raises(QueueBusyError):
            TaskQueue(db).enqueue("t", 1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    (record,) = [r for r in _records(logs) if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("INSERT INTO task_queue failed after ")
    assert "SQLITE_BUSY" in message and "database is locked" in message
    waited_ms = float(message.split("failed after ")[1].split(" ms")[0])
    assert waited_ms >= 40


def test_an_error_inside_a_transaction_is_logged_once(
    db: QueueDatabase, logs: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(QueueSchemaError), db.transaction() as conn:
        with db.transaction() as inner:  # a savepoint: translated there, not again outside
            inner.execute("SELECT * FROM no_such_table")
        conn.execute("SELECT 1")
    assert len(_records(logs)) == 1
    assert _records(logs)[0].levelno == logging.ERROR


def test_fenced_refusals_and_lease_releases_are_warnings(
    queue: TaskQueue, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    task_id = queue.enqueue("t", 1)
    queue.claim("dead", lease_seconds=5)
    clock.advance(10)
    queue.claim("alive")
    with pytest.raises(LeaseLostError):
        queue.complete(task_id, "dead")
    messages = [(r.levelno, r.getMessage()) for r in _records(logs)]
    assert messages == [
        (logging.WARNING, "released 1 expired lease(s) (found by alive's claim)"),
        (
            logging.WARNING,
            f"refused dead's call on task {task_id}: it is processing and held by alive",
        ),
    ]


def test_migrations_are_logged_at_info(db_path: Path, logs: pytest.LogCaptureFixture) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        db.initialize_schema()  # already current: nothing to log
    applied = [r.getMessage() for r in _records(logs) if r.levelno == logging.INFO]
    names = [f"{m.version:04d}_{m.name}" for m in sql.migrations()]
    assert len(applied) == len(names)
    assert schema.latest_version() == sql.migrations()[-1].version
    for message, name in zip(applied, names, strict=True):
        assert message.endswith(f"applying migration {name}")


def test_sqlite_error_names_without_error_codes() -> None:
    """Python 3.10 exceptions carry no error name; it is read from the message."""
    assert sqlite_error_name(sqlite3.OperationalError("database is locked")) == "SQLITE_BUSY"
    assert sqlite_error_name(sqlite3.IntegrityError("x")) == "SQLITE_CONSTRAINT"
    assert sqlite_error_name(sqlite3.OperationalError("strange")) == "OperationalError"
