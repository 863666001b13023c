"""psycopg errors translated to queue_core's typed errors.

Every call into psycopg is wrapped so that no psycopg exception reaches a caller: the caller
raises ``translate_error(exc) from exc``, which keeps the original as ``__cause__``.
:func:`classify` tells what a caller may do about an error (retry the transaction, reconnect),
by the SQLSTATE class of the server's error:

========================  ===================================  ==========================
SQLSTATE                  meaning                              kind / raised as
========================  ===================================  ==========================
40001, 40P01, 55P03       serialization failure, deadlock,     RETRY / QueueBusyError
                          lock not available
08xxx, 57P01-57P03,       connection lost or refused, server   RECONNECT /
no SQLSTATE (client)      shutting down or starting            QueueConnectionError
23xxx                     unique, foreign key, not null...     INTEGRITY /
                                                               QueueIntegrityError
42P01, 42703, 42704,      missing table, column, object,       SCHEMA / QueueSchemaError
42883                     function
53100                     disk full                            OTHER / QueueDatabaseError
========================  ===================================  ==========================
"""

from __future__ import annotations

import enum

import psycopg

from queue_core.exceptions import (
    QueueBusyError,
    QueueConnectionError,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueSchemaError,
)

__all__ = ["ErrorKind", "classify", "translate_error"]

_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})
_RECONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})
_SCHEMA_STATES = frozenset({"42P01", "42703", "42704", "42883"})
_DISK_FULL = "53100"


class ErrorKind(enum.Enum):
    """What a caller can do about a database error."""

    RETRY = "retry"
    """The transaction lost a race (serialization failure, deadlock); running it again is safe."""
    RECONNECT = "reconnect"
    """The connection is gone or unusable; a new connection may work."""
    INTEGRITY = "integrity"
    """A constraint refused the write; retrying the same write fails the same way."""
    SCHEMA = "schema"
    """A table, column or function is missing: the database was not migrated."""
    OTHER = "other"
    """Anything else."""


def classify(exc: psycopg.Error) -> ErrorKind:
    """The :class:`ErrorKind` of ``exc``, from its SQLSTATE."""
    state = exc.sqlstate
    if state is None:
        # Raised by the client itself: a failed connection attempt or a broken connection is
        # an OperationalError; anything else (misuse, a closed cursor) is not the server's.
        return ErrorKind.RECONNECT if isinstance(exc, psycopg.OperationalError) else ErrorKind.OTHER
    if state in _RETRY_STATES:
        return ErrorKind.RETRY
    if state.startswith("08") or state in _RECONNECT_STATES:
        return ErrorKind.RECONNECT
    if state.startswith("23"):
        return ErrorKind.INTEGRITY
    if state in _SCHEMA_STATES:
        return ErrorKind.SCHEMA
    return ErrorKind.OTHER


def translate_error(exc: psycopg.Error, *, waited_seconds: float = 0.0) -> QueueDatabaseError:
    """Map a psycopg error to the queue_core error a caller can act on.

    ``waited_seconds`` is how long the failing call had been waiting, reported by
    :class:`QueueBusyError`. The caller raises the result ``from exc``.
    """
    message = _message(exc)
    kind = classify(exc)
    if kind is ErrorKind.RETRY:
        return QueueBusyError(message, waited_seconds=waited_seconds)
    if kind is ErrorKind.RECONNECT:
        return QueueConnectionError(f"{message}: the connection to PostgreSQL failed or was lost")
    if kind is ErrorKind.INTEGRITY:
        return QueueIntegrityError(message)
    if kind is ErrorKind.SCHEMA:
        return QueueSchemaError(f"{message}: the queue schema is missing or incomplete")
    if exc.sqlstate == _DISK_FULL:
        return QueueDatabaseError(f"{message}: the database server's disk is full")
    return QueueDatabaseError(message)


def _message(exc: psycopg.Error) -> str:
    """The error's first line with its SQLSTATE; psycopg's text can span several lines."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return f"{text} [{exc.sqlstate}]" if exc.sqlstate else text
