"""Typed errors raised by queue_core.

Every error the package raises on purpose derives from :class:`QueueDatabaseError`, so a caller
can catch the whole family with one ``except``. Errors that started as a ``sqlite3`` exception
keep it as ``__cause__`` (they are raised with ``raise ... from exc``).

Bad arguments are the one exception to the rule: they raise the built-in ``TypeError`` or
``ValueError``, as Python APIs do, before anything touches the database.
"""

from __future__ import annotations

from pathlib import Path


class QueueDatabaseError(Exception):
    """Unexpected error in the queue database."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class QueueBusyError(QueueDatabaseError):
    """The database stayed locked by another connection for the whole busy timeout (SQLITE_BUSY).

    ``waited_seconds`` is how long the failing call waited before it gave up. A caller may retry
    the whole operation; nothing was written.
    """

    def __init__(self, message: str | None = None, *, waited_seconds: float = 0.0) -> None:
        self.waited_seconds = waited_seconds
        super().__init__(
            f"{message or 'database is locked'} (waited {waited_seconds * 1000:.0f} ms)"
        )


class QueueSchemaError(QueueDatabaseError):
    """The database schema is missing, incomplete, or newer than this code understands."""


class QueueCorruptError(QueueDatabaseError):
    """The file is not a SQLite database, or it is damaged."""


class WalUnavailableError(QueueDatabaseError):
    """The database could not be switched to WAL journal mode.

    WAL needs shared memory between processes on one host; some filesystems (network shares,
    some FUSE mounts) cannot provide it.
    """


class QueueLocationError(QueueDatabaseError):
    """The database path cannot be used: a network share, or a place the process cannot write."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot use {self.path!r} for the queue database: {reason}")


class QueueClosedError(QueueDatabaseError):
    """The QueueDatabase was closed; open a new one."""


class QueueIntegrityError(QueueDatabaseError):
    """A write broke a database constraint (NOT NULL, CHECK, FOREIGN KEY or UNIQUE)."""


class TaskNotFoundError(QueueDatabaseError):
    """No task has the given id."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"no task with id {task_id}")


class TaskStateError(QueueDatabaseError):
    """The task exists but its status does not allow the operation (nothing changed).

    For example retrying a task that is not failed or cancelled, or cancelling one that already
    finished. ``status`` is the task's current status.
    """

    def __init__(self, task_id: int, status: str, wanted: str) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"task {task_id} is {status}; {wanted}")


class BackupError(QueueDatabaseError):
    """A backup could not be written, verified or restored; the queue file was not changed."""


class QueueInUseError(BackupError):
    """Another connection has the queue open, so it cannot be restored now."""


class LeaseLostError(QueueDatabaseError):
    """The worker no longer holds the task's lease, so the call changed nothing.

    This happens when the lease expired and another worker claimed the task, or when the task
    already finished. ``holder`` is the worker that holds it now (None if nobody does) and
    ``status`` the task's current status.
    """

    def __init__(self, task_id: int, worker_id: str, *, holder: str | None, status: str) -> None:
        self.task_id = task_id
        self.worker_id = worker_id
        self.holder = holder
        self.status = status
        held = f"held by {holder!r}" if holder else "not held by any worker"
        super().__init__(
            f"worker {worker_id!r} no longer holds the lease on task {task_id}: "
            f"it is {status} and {held}"
        )


class QueueConnectionError(QueueDatabaseError):
    """The connection to the database server failed, was lost, or the server is shutting down.

    Nothing is known to have been written by the failing call unless it says so. Opening a new
    connection (the next call does) may succeed once the server is back.
    """
