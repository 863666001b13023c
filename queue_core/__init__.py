"""queue_core: PrismQ's task queue in one SQLite file.

- :class:`QueueDatabase` owns the connection, its PRAGMAs and IMMEDIATE transactions;
- :class:`TaskQueue` holds the queue operations (enqueue, claim, complete, fail, ...);
- :class:`ClaimStrategy` the orders a claim can take tasks in (:mod:`queue_core.claiming`);
- :class:`WorkerEngine` runs handlers for claimed tasks in spawn child processes;
- :mod:`queue_core.models` the Task, Worker and TaskLog dataclasses, checked by the same
  field rules (:mod:`queue_core.validation`) as the TaskQueue arguments;
- :mod:`queue_core.tracing` the events a ``QueueDatabase(tracer=...)`` receives;
- :mod:`queue_core.exceptions` the typed errors, rooted at :class:`QueueDatabaseError`.
"""

from __future__ import annotations

from queue_core.claiming import ClaimStrategy
from queue_core.database import PRAGMAS, QueueDatabase, immediate_transaction
from queue_core.exceptions import (
    LeaseLostError,
    QueueBusyError,
    QueueClosedError,
    QueueCorruptError,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueLocationError,
    QueueSchemaError,
    TaskNotFoundError,
    WalUnavailableError,
)
from queue_core.executor import Retry
from queue_core.location import ENV_VAR, default_db_path, resolve_db_path
from queue_core.models import LOG_LEVELS, Task, TaskLog, TaskStatus, Worker
from queue_core.task_queue import DEFAULT_LEASE_SECONDS, TaskQueue
from queue_core.worker_engine import WorkerEngine, WorkerEngineError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "ENV_VAR",
    "LOG_LEVELS",
    "PRAGMAS",
    "ClaimStrategy",
    "LeaseLostError",
    "QueueBusyError",
    "QueueClosedError",
    "QueueCorruptError",
    "QueueDatabase",
    "QueueDatabaseError",
    "QueueIntegrityError",
    "QueueLocationError",
    "QueueSchemaError",
    "Retry",
    "Task",
    "TaskLog",
    "TaskNotFoundError",
    "TaskQueue",
    "TaskStatus",
    "WalUnavailableError",
    "Worker",
    "WorkerEngine",
    "WorkerEngineError",
    "default_db_path",
    "immediate_transaction",
    "resolve_db_path",
]
