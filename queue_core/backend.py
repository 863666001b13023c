"""The seam between the queue and a database: what TaskQueue, the engine and the operations need.

:class:`~queue_core.task_queue.TaskQueue`, :class:`~queue_core.worker_engine.WorkerEngine`,
:mod:`queue_core.mending` and :mod:`queue_core.observability` talk to a database only through
:class:`QueueBackend`. Two classes implement it: :class:`~queue_core.database.QueueDatabase`
(SQLite, the standard library only) and ``queue_core.postgres.database.PostgresDatabase``
(PostgreSQL through psycopg 3, imported only when a ``postgresql://`` target is opened).

What the queue needs, and no more:

- **named statements**: :attr:`QueueBackend.queries` maps the names of ``queries.sql`` to this
  backend's text of them (each backend has its own file, with the same names where the queue
  code uses them), so the same Python binds the same parameters on either;
- **statements and transactions**: :meth:`~QueueBackend.execute` (one statement, committed on
  its own), :meth:`~QueueBackend.transaction` (one write transaction; a nested one is a
  savepoint), :meth:`~QueueBackend.snapshot` (reads that see one moment). Every database error
  reaches the caller as a :class:`~queue_core.exceptions.QueueDatabaseError` subclass;
- **where the algorithm differs**: :meth:`~QueueBackend.claimer` (SQLite looks before it takes
  its one write lock; PostgreSQL claims in one ``FOR UPDATE SKIP LOCKED`` statement) and
  :meth:`~QueueBackend.insert_tasks` (how a batch insert learns its ids);
- **waking**: :meth:`~QueueBackend.change_token`, a cheap number an idle worker compares, and
  :meth:`~QueueBackend.change_watch`, what an idle worker engine waits on (SQLite: the
  operating system's notice of a write to ``-wal``, confirmed by ``data_version``; PostgreSQL
  LISTENs for a queued task's NOTIFY; see :mod:`queue_core.waking`);
- **bulk-write pacing** (:meth:`~QueueBackend.checkpoints_between_transactions`,
  :meth:`~QueueBackend.checkpoint_passive`), which prune calls between its batches; a backend
  without a write-ahead log to keep short makes them cost nothing;
- :meth:`~QueueBackend.initialize_schema` and :meth:`~QueueBackend.close`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from queue_core.claiming import ClaimRequest, ClaimResult
from queue_core.waking import ChangeWatch

__all__ = ["ClaimRequest", "ClaimResult", "Claimer", "QueueBackend", "Result", "Session"]

Params = Sequence[Any] | Mapping[str, Any]
"""A statement's parameters: positional (a sequence) or named (a mapping)."""


class Result(Protocol):
    """The rows of one statement, all fetched already, and how many rows it changed.

    A row supports ``row[0]`` and ``row["column"]`` and unpacks like a tuple (``sqlite3.Row``
    on SQLite, an equivalent on PostgreSQL).
    """

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Session(Protocol):
    """What :meth:`QueueBackend.transaction` and :meth:`QueueBackend.snapshot` yield."""

    def execute(self, sql: str, parameters: Params = ..., /) -> Result: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Params], /) -> Any: ...


class Claimer(Protocol):
    """A backend's claim algorithm, with its state for one :class:`TaskQueue`."""

    def claim(self, request: ClaimRequest) -> ClaimResult:
        """Release expired leases, then lease up to ``request.limit`` due tasks.

        :raises QueueBusyError: the database stayed locked (SQLite) or the claim kept losing
            races (PostgreSQL); nothing was leased.
        :raises QueueDatabaseError: any other database error.
        """
        ...

    def next_due(self, types: list[str] | None, region: str | None) -> str | None:
        """When the first queued task this claim could take becomes due (stored UTC text), or
        None when there is none: how long an idle worker may sleep.

        :raises QueueDatabaseError: the database failed (a subclass says why).
        """
        ...


@runtime_checkable
class QueueBackend(Protocol):
    """What the queue needs from a database (see the module docstring)."""

    @property
    def backend_name(self) -> str:
        """``"sqlite"`` or ``"postgres"``: for messages and reports, never for branching."""
        ...

    @property
    def location(self) -> str:
        """Where the queue is, for people: the file path, or the URL without its password."""
        ...

    @property
    def queries(self) -> Mapping[str, str]:
        """This backend's named statements."""
        ...

    @property
    def closed(self) -> bool: ...

    def execute(self, sql: str, params: Params = ()) -> Result:
        """Run one statement (committed on its own outside a transaction); rows fetched.

        :raises QueueDatabaseError: a subclass says why (busy, integrity, schema, connection).
        """
        ...

    def execute_many(self, sql: str, param_list: Iterable[Params]) -> None:
        """Run ``sql`` once per parameter set, all in one transaction."""
        ...

    def transaction(self) -> AbstractContextManager[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        A nested call is a savepoint. Calls to :meth:`execute` from the same thread inside
        the block join it.
        """
        ...

    def snapshot(self) -> AbstractContextManager[Session]:
        """A block of reads that all see the same moment; joins an open transaction."""
        ...

    def claimer(self, rng: random.Random) -> Claimer:
        """A claim algorithm for one queue; ``rng`` drives ``weighted_random``."""
        ...

    def insert_tasks(self, session: Session, batch: Sequence[Sequence[Any]]) -> list[int]:
        """Insert tasks without idempotency keys (``enqueue`` parameters) inside ``session``'s
        transaction; return their ids in input order."""
        ...

    def change_token(self) -> int:
        """A number that changes when other connections commit (no lock, cheap)."""
        ...

    def change_watch(self) -> ChangeWatch:
        """A new :class:`~queue_core.waking.ChangeWatch` for one idle worker to wait on; the
        worker closes it."""
        ...

    @property
    def busy_timeout_ms(self) -> int:
        """How long a write waits for a lock before :class:`QueueBusyError`, in ms."""
        ...

    def without_busy_wait(self) -> AbstractContextManager[None]:
        """A block whose write transactions fail at once with :class:`QueueBusyError` when
        another connection holds the lock they need, instead of waiting (the worker engine
        retries on its own schedule meanwhile); a no-op where writers do not queue."""
        ...

    def checkpoints_between_transactions(self) -> AbstractContextManager[None]:
        """A block of bulk write transactions that pace themselves (prune)."""
        ...

    def checkpoint_passive(self) -> tuple[int, int, int]:
        """Between bulk transactions: let the log catch up without waiting for anyone."""
        ...

    def initialize_schema(self) -> int:
        """Create or migrate the schema; return its version."""
        ...

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        ...

    def __enter__(self) -> QueueBackend: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
