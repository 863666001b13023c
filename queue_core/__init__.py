"""queue_core: PrismQ's task queue in one SQLite file, or on a PostgreSQL server.

- :func:`connect` opens either: a path gives SQLite's :class:`QueueDatabase`, a
  ``postgresql://`` URL a ``PostgresDatabase`` (:mod:`queue_core.postgres`, psycopg 3);
  both implement :class:`QueueBackend` (:mod:`queue_core.backend`), all the queue needs;
- :class:`QueueDatabase` owns the SQLite connection, its PRAGMAs and IMMEDIATE transactions;
- :class:`TaskQueue` holds the queue operations (enqueue, claim, complete, fail, ...);
- :class:`ClaimStrategy` the orders a claim can take tasks in (:mod:`queue_core.claiming`);
- :class:`WorkerEngine` runs handlers for claimed tasks in spawn child processes;
- :mod:`queue_core.models` the Task, Worker and TaskLog dataclasses, checked by the same
  field rules (:mod:`queue_core.validation`) as the TaskQueue arguments;
- :mod:`queue_core.tracing` the events a ``QueueDatabase(tracer=...)`` receives;
- :mod:`queue_core.exceptions` the typed errors, rooted at :class:`QueueDatabaseError`;
- :mod:`queue_core.observability` the ``stats()`` snapshot, :mod:`queue_core.maintenance`
  backups, restore, checkpoints and checks, and ``python -m queue_core`` the command line.

Everything logs through ``logging.getLogger("queue_core")`` (a ``NullHandler`` by default):
database errors once each where they are translated, lease releases, fenced refusals and
migrations; nothing on the successful hot paths.
"""

from __future__ import annotations

import logging

from queue_core.backend import QueueBackend
from queue_core.claiming import ClaimStrategy
from queue_core.connecting import connect
from queue_core.database import PRAGMAS, QueueDatabase, immediate_transaction
from queue_core.exceptions import (
    BackupError,
    LeaseLostError,
    QueueBusyError,
    QueueClosedError,
    QueueConnectionError,
    QueueCorruptError,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueInUseError,
    QueueLocationError,
    QueueSchemaError,
    TaskNotFoundError,
    TaskStateError,
    WalUnavailableError,
)
from queue_core.executor import Retry
from queue_core.location import ENV_VAR, default_db_path, resolve_db_path
from queue_core.models import LOG_LEVELS, Task, TaskLog, TaskStatus, Worker
from queue_core.task_queue import DEFAULT_LEASE_SECONDS, TaskQueue
from queue_core.worker_engine import WorkerEngine, WorkerEngineError

__version__ = "0.1.0"

# A library configures no output of its own: the application decides where "queue_core" logs go.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "ENV_VAR",
    "LOG_LEVELS",
    "PRAGMAS",
    "BackupError",
    "ClaimStrategy",
    "LeaseLostError",
    "QueueBackend",
    "QueueBusyError",
    "QueueClosedError",
    "QueueConnectionError",
    "QueueCorruptError",
    "QueueDatabase",
    "QueueDatabaseError",
    "QueueInUseError",
    "QueueIntegrityError",
    "QueueLocationError",
    "QueueSchemaError",
    "Retry",
    "Task",
    "TaskLog",
    "TaskNotFoundError",
    "TaskQueue",
    "TaskStateError",
    "TaskStatus",
    "WalUnavailableError",
    "Worker",
    "WorkerEngine",
    "WorkerEngineError",
    "connect",
    "default_db_path",
    "immediate_transaction",
    "resolve_db_path",
]
