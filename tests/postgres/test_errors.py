"""psycopg errors raised by a real server become queue_core's typed errors."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from bench.postgres_server import free_port
from queue_core import (
    QueueBusyError,
    QueueConnectionError,
    QueueDatabaseError,
    QueueSchemaError,
)
from queue_core.postgres import schema
from queue_core.postgres.errors import ErrorKind, classify, translate_error


def test_a_refused_connection_is_a_connection_error() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=5)
    assert classify(caught.value) is ErrorKind.RECONNECT
    assert isinstance(translate_error(caught.value), QueueConnectionError)


def test_a_terminated_connection_is_a_connection_error(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url, autocommit=True) as victim,
        psycopg.connect(postgres_url, autocommit=True) as killer,
    ):
        pid = victim.info.backend_pid
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError) as caught:
            victim.execute("SELECT 1")
    error = translate_error(caught.value)
    assert isinstance(error, QueueConnectionError)


def test_the_migration_runner_translates_a_lost_connection(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url) as victim,
        psycopg.connect(postgres_url, autocommit=True) as killer,
    ):
        killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(QueueConnectionError) as caught:
            schema.migrate(victim)
    assert isinstance(caught.value.__cause__, psycopg.Error)


def test_a_serialization_failure_is_busy(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE counter (n integer)")
        setup.execute("INSERT INTO counter VALUES (0)")
    with (
        psycopg.connect(postgres_url) as late,
        psycopg.connect(postgres_url, autocommit=True) as early,
    ):
        late.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        late.execute("SELECT n FROM counter").fetchone()  # takes the snapshot
        early.execute("UPDATE counter SET n = n + 1")
        with pytest.raises(psycopg.errors.SerializationFailure) as caught:
            late.execute("UPDATE counter SET n = n + 1")
    error = translate_error(caught.value, waited_seconds=0.25)
    assert isinstance(error, QueueBusyError)
    assert error.waited_seconds == 0.25
    assert "[40001]" in str(error)


def test_a_missing_table_is_a_schema_error(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url) as conn,
        pytest.raises(psycopg.errors.UndefinedTable) as caught,
    ):
        conn.execute("SELECT * FROM task_queue")
    error = translate_error(caught.value)
    assert isinstance(error, QueueSchemaError)
    assert "schema is missing" in str(error)


@pytest.mark.parametrize(
    ("error_class", "kind", "raised"),
    [
        ("DeadlockDetected", ErrorKind.RETRY, QueueBusyError),
        ("LockNotAvailable", ErrorKind.RETRY, QueueBusyError),
        ("AdminShutdown", ErrorKind.RECONNECT, QueueConnectionError),
        ("CannotConnectNow", ErrorKind.RECONNECT, QueueConnectionError),
        ("ConnectionFailure", ErrorKind.RECONNECT, QueueConnectionError),
        ("UndefinedColumn", ErrorKind.SCHEMA, QueueSchemaError),
        ("DiskFull", ErrorKind.OTHER, QueueDatabaseError),
        ("DivisionByZero", ErrorKind.OTHER, QueueDatabaseError),
    ],
)
def test_classification_by_sqlstate(error_class: str, kind: ErrorKind, raised: type) -> None:
    exc: Any = getattr(psycopg.errors, error_class)("server said no\nDETAIL: more")
    assert classify(exc) is kind
    error = translate_error(exc)
    assert type(error) is raised
    assert "server said no" in str(error) and "DETAIL" not in str(error)


def test_disk_full_says_so() -> None:
    assert "disk is full" in str(translate_error(psycopg.errors.DiskFull("no space")))


def test_client_side_misuse_is_not_a_connection_error() -> None:
    exc = psycopg.InterfaceError("the cursor is closed")
    assert classify(exc) is ErrorKind.OTHER
    assert type(translate_error(exc)) is QueueDatabaseError
