"""Translation of sqlite3 errors into the queue_core hierarchy, on 3.10 and 3.11+."""

from __future__ import annotations

import sqlite3

import pytest

from queue_core import (
    LeaseLostError,
    QueueBusyError,
    QueueCorruptError,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueLocationError,
    QueueSchemaError,
    TaskNotFoundError,
    WalUnavailableError,
)
from queue_core.database import is_busy_error, translate_error


def with_code(exc: sqlite3.Error, code: int | None) -> sqlite3.Error:
    """Set (3.11+) or remove (as on 3.10) the extended error code."""
    if code is None:
        if hasattr(exc, "sqlite_errorcode"):
            # 3.11+ set it in C; a subclass without it stands in for 3.10's exceptions.
            legacy = type("Legacy" + type(exc).__name__, (type(exc),), {})
            exc = legacy(*exc.args)
    else:
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize("code", [5, 517, 261, None])  # BUSY, BUSY_SNAPSHOT, BUSY_RECOVERY
def test_busy_is_detected_with_or_without_error_codes(code: int | None) -> None:
    exc = with_code(sqlite3.OperationalError("database is locked"), code)
    assert is_busy_error(exc)
    translated = translate_error(exc, waited_seconds=1.25)
    assert isinstance(translated, QueueBusyError)
    assert translated.waited_seconds == 1.25
    assert "1250 ms" in str(translated)


def test_locked_table_is_not_busy() -> None:
    exc = with_code(sqlite3.OperationalError("database table is locked"), 6)
    assert not is_busy_error(exc)
    assert not is_busy_error(ValueError("database is locked"))
    assert type(translate_error(exc)) is QueueDatabaseError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sqlite3.DatabaseError("file is not a database"), QueueCorruptError),
        (with_code(sqlite3.DatabaseError("x"), 26), QueueCorruptError),
        (sqlite3.DatabaseError("database disk image is malformed"), QueueCorruptError),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), QueueIntegrityError),
        (sqlite3.OperationalError("no such table: task_queue"), QueueSchemaError),
        (sqlite3.OperationalError("no such column: nope"), QueueSchemaError),
        (sqlite3.OperationalError("disk I/O error"), QueueDatabaseError),
    ],
)
def test_translation(exc: sqlite3.Error, expected: type[QueueDatabaseError]) -> None:
    translated = translate_error(exc)
    assert type(translated) is expected
    assert str(exc) in str(translated)


def test_every_error_shares_one_root() -> None:
    errors = [
        QueueBusyError(waited_seconds=0.5),
        QueueSchemaError("x"),
        QueueCorruptError(),
        WalUnavailableError(),
        QueueLocationError("/x", "reason"),
        QueueIntegrityError(),
        TaskNotFoundError(3),
        LeaseLostError(1, "w", holder=None, status="queued"),
    ]
    assert all(isinstance(error, QueueDatabaseError) for error in errors)
    assert str(QueueCorruptError()) == "The file is not a SQLite database, or it is damaged."
    assert "'/x'" in str(QueueLocationError("/x", "reason"))
