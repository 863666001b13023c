"""TaskQueue: the operations producers and workers call, on top of a QueueDatabase.

Producers ``enqueue``; workers ``claim`` a lease, then ``complete`` or ``fail`` (and
``extend_lease`` while a long task runs). Every call is one short transaction. Delivery is
at-least-once: a worker that dies loses its lease when it expires and the task is claimed again,
while the dead worker's late calls are refused (fencing) with :class:`LeaseLostError`.

The SQL is in ``queue_core/sql/queries.sql``; this module validates arguments, binds parameters
and turns results into models.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from queue_core.backend import QueueBackend
from queue_core.claiming import ClaimRequest, ClaimStrategy
from queue_core.exceptions import (
    LeaseLostError,
    QueueDatabaseError,
    QueueIntegrityError,
    TaskNotFoundError,
)
from queue_core.mending import MendingOperations
from queue_core.models import Task, TaskLog, TaskStatus, Worker
from queue_core.timestamps import Clock, optional_from_db_text, to_db_text, utc_now
from queue_core.validation import (
    check_count,
    check_int,
    check_log_level,
    check_mapping,
    check_optional_text,
    check_str,
    check_text,
    check_time,
    compatibility_json,
    non_negative_seconds,
    positive_seconds,
    to_json,
    type_names,
)

if TYPE_CHECKING:
    from queue_core.observability import QueueStats

DEFAULT_LEASE_SECONDS: Final = 30.0
_ENQUEUE_KEYS: Final = frozenset(
    {"type", "payload", "priority", "compatibility", "run_after", "max_attempts", "idempotency_key"}
)
# An enqueue that lost an idempotency race looks the winner up; prune may delete the winner in
# between, and then the insert is tried again. Two rounds suffice unless a pruner deletes a
# task with this key in every window, which would take a fresh completed task older than the
# retention; the bound only turns an impossible loop into an error.
_ENQUEUE_ROUNDS: Final = 8
_log = logging.getLogger(__name__)


class TaskQueue(MendingOperations):
    """The queue's operations on one database: a :class:`QueueDatabase` (SQLite) or a
    ``PostgresDatabase`` (see :func:`queue_core.connect`), through :mod:`queue_core.backend`.

    The operator's operations (``retry``, ``cancel``, ``prune``) come from
    :class:`~queue_core.mending.MendingOperations`; :meth:`stats` from
    :mod:`queue_core.observability`.

    Example::

        db = QueueDatabase("queue.db")
        db.initialize_schema()
        queue = TaskQueue(db)
        task_id = queue.enqueue("thumbnail", {"path": "a.png", "format": "webp"})
        for task in queue.claim("worker-1", lease_seconds=60):
            ...  # do the work, calling queue.extend_lease() if it takes long
            queue.complete(task.id, "worker-1")

    :param db: the database; its schema must be initialised.
    :param clock: returns the current aware UTC datetime; tests pass a fake to control time.
    :param rng: the random source of the retry jitter; tests pass a seeded one.
    :param retry_backoff_seconds: the delay before the first retry; each later retry doubles it.
    :param retry_backoff_max_seconds: the cap on that delay.
    :param retry_jitter: up to this fraction of the delay is added at random, so tasks that
        failed together do not all retry in the same instant.
    :param default_lease_seconds: the lease :meth:`claim` grants when none is given.
    :param claim_strategy: the order :meth:`claim` takes tasks in when the call names none:
        ``"priority"`` (default), ``"fifo"``, ``"lifo"`` or ``"weighted_random"`` (see
        :class:`~queue_core.claiming.ClaimStrategy`). ``rng`` also drives ``weighted_random``.
    """

    def __init__(
        self,
        db: QueueBackend,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        retry_backoff_seconds: float = 5.0,
        retry_backoff_max_seconds: float = 3600.0,
        retry_jitter: float = 0.25,
        default_lease_seconds: float = DEFAULT_LEASE_SECONDS,
        claim_strategy: ClaimStrategy | str = ClaimStrategy.PRIORITY,
    ) -> None:
        if not isinstance(db, QueueBackend):
            raise TypeError(f"db must be a QueueDatabase or PostgresDatabase, not {_type_name(db)}")
        self.db: QueueBackend = db
        self._queries = db.queries
        self._clock = clock or utc_now
        self._rng = rng or random.Random()
        self.retry_backoff_seconds = positive_seconds(
            retry_backoff_seconds, "retry_backoff_seconds"
        )
        self.retry_backoff_max_seconds = positive_seconds(
            retry_backoff_max_seconds, "retry_backoff_max_seconds"
        )
        self.retry_jitter = non_negative_seconds(retry_jitter, "retry_jitter")
        self.default_lease_seconds = positive_seconds(
            default_lease_seconds, "default_lease_seconds"
        )
        self.claim_strategy = ClaimStrategy.parse(claim_strategy)
        # The backend's claim algorithm (SQLite looks before it locks; PostgreSQL skips locked
        # rows), with its state for this queue.
        self._claimer = db.claimer(self._rng)

    def now(self) -> datetime:
        """The current time of this queue's clock."""
        return self._clock()

    # -- producers -------------------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Any,
        *,
        priority: int = 100,
        compatibility: Mapping[str, Any] | None = None,
        run_after: datetime | None = None,
        max_attempts: int = 5,
        idempotency_key: str | None = None,
    ) -> int:
        """Add a task and return its id. A lower ``priority`` value is claimed first.

        :param payload: any JSON-serialisable value; ``payload['format']`` feeds the indexed
            ``format`` column.
        :param compatibility: a JSON object; ``compatibility['region']`` restricts the task to
            workers that ask for that region.
        :param run_after: an aware datetime before which no worker may claim it (default: now).
        :param idempotency_key: if a task with this key exists, nothing is created and that
            task's id is returned; this holds across racing processes. A key is held by its
            task until :meth:`prune` deletes the task; then it is free again.
        :raises TypeError: an argument has the wrong type, the payload is not JSON, or
            ``compatibility['region']`` is not text.
        :raises ValueError: an empty type, ``max_attempts < 1``, a naive ``run_after``, NaN.
            The rules are those of :mod:`queue_core.validation`, which :class:`Task` applies
            too, so a value raises the same exception type from either.
        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout; nothing
            was written.
        """
        params = _enqueue_params(
            type,
            payload,
            priority,
            compatibility,
            run_after,
            max_attempts,
            idempotency_key,
            to_db_text(self._clock()),
        )
        for _ in range(_ENQUEUE_ROUNDS):
            rows = self.db.execute(self._queries["enqueue"], params).fetchall()
            if rows:
                return int(rows[0][0])
            # The key exists; return its task, unless prune deleted it since the insert.
            rows = self.db.execute(
                self._queries["task_id_by_idempotency_key"], {"idempotency_key": idempotency_key}
            ).fetchall()
            if rows:
                return int(rows[0][0])
        raise QueueDatabaseError(
            f"idempotency key {idempotency_key!r} kept being taken and pruned; nothing was added"
        )

    def enqueue_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[int]:
        """Add many tasks in one transaction and return their ids in input order.

        Each item is a mapping with the keyword arguments of :meth:`enqueue` (``type`` and
        ``payload`` required). Every item is validated before anything is written, so bad input
        anywhere writes nothing; a database error rolls the whole batch back.

        :raises TypeError, ValueError: as for :meth:`enqueue`, naming the item's index.
        :raises QueueBusyError: as for :meth:`enqueue`; nothing was written.
        """
        batch: list[tuple[Any, ...]] = []
        now_text = to_db_text(self._clock())
        for index, item in enumerate(tasks):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise TypeError(f"tasks[{index}] must be a mapping, not {type(item).__name__}")
            if not _ENQUEUE_KEYS.issuperset(item):
                unknown = sorted(map(str, set(item) - _ENQUEUE_KEYS))
                raise ValueError(f"tasks[{index}] has unknown keys {unknown}")
            if "type" not in item or "payload" not in item:
                raise ValueError(f"tasks[{index}] needs 'type' and 'payload'")
            try:
                batch.append(
                    _enqueue_params(
                        item["type"],
                        item["payload"],
                        item.get("priority", 100),
                        item.get("compatibility"),
                        item.get("run_after"),
                        item.get("max_attempts", 5),
                        item.get("idempotency_key"),
                        now_text,
                    )
                )
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"tasks[{index}]: {exc}") from exc
        if not batch:
            return []
        with self.db.transaction() as conn:
            if all(params[6] is None for params in batch):
                # No keys, so no conflicts: the backend's fastest batch insert.
                return self.db.insert_tasks(conn, batch)
            ids: list[int] = []
            for params in batch:
                rows = conn.execute(self._queries["enqueue"], params).fetchall()
                if not rows:
                    rows = conn.execute(
                        self._queries["task_id_by_idempotency_key"], {"idempotency_key": params[6]}
                    ).fetchall()
                ids.append(int(rows[0][0]))
            return ids

    # -- workers ---------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        *,
        types: Iterable[str] | None = None,
        region: str | None = None,
        lease_seconds: float | None = None,
        limit: int = 1,
        strategy: ClaimStrategy | str | None = None,
    ) -> list[Task]:
        """Lease up to ``limit`` due tasks to ``worker_id`` and return them in claim order.

        The order is the ``strategy`` (default: this queue's ``claim_strategy``, ``priority``:
        lower priority value first, then ``run_after_utc``, then id). The claim first releases
        expired leases (their workers died) back to the queue, or fails them on their last
        attempt, then leases the tasks (``status='processing'``, ``locked_by``, the lease, the
        reservation and start times, ``attempts + 1``). Tasks other workers take at the same
        moment are skipped, never leased twice: the call returns what it got (possibly
        ``[]``), with no error and no retry loop. How is the backend's
        (:meth:`QueueBackend.claimer`): SQLite looks without a lock first, so a poll that finds
        nothing writes nothing, then leases under its one write lock
        (:class:`~queue_core.claiming.LookThenLockClaimer`); PostgreSQL picks and leases in one
        ``FOR UPDATE SKIP LOCKED`` statement (:mod:`queue_core.postgres.claiming`).

        :param types: only claim these task types (default: any).
        :param region: also claim tasks for this region; tasks with no region match everyone.
        :param lease_seconds: how long the worker may hold each task before it can be
            reclaimed; extend it with :meth:`extend_lease`.
        :param strategy: ``"priority"``, ``"fifo"``, ``"lifo"`` or ``"weighted_random"``.
        :raises TypeError, ValueError: bad worker id, types, region, lease, limit or strategy.
        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout
            (SQLite), or a statement kept losing races (PostgreSQL); nothing was leased.
        """
        check_text(worker_id, "worker_id")
        names = None if types is None else type_names(types)
        check_optional_text(region, "region")
        lease = self.default_lease_seconds if lease_seconds is None else lease_seconds
        lease = positive_seconds(lease, "lease_seconds")
        check_count(limit, "limit", 1)
        order = self.claim_strategy if strategy is None else ClaimStrategy.parse(strategy)
        now_moment = self._clock()
        result = self._claimer.claim(
            ClaimRequest(
                worker_id=worker_id,
                types=names,
                region=region,
                strategy=order,
                now=to_db_text(now_moment),
                lease_until=to_db_text(now_moment + timedelta(seconds=lease)),
                limit=limit,
            )
        )
        if result.released:
            _log_released(result.released, worker_id)
        return [Task.from_row(row) for row in result.rows]

    def claim_one(
        self,
        worker_id: str,
        *,
        types: Iterable[str] | None = None,
        region: str | None = None,
        lease_seconds: float | None = None,
        strategy: ClaimStrategy | str | None = None,
    ) -> Task | None:
        """Claim at most one task; return it, or None when nothing is due. See :meth:`claim`."""
        tasks = self.claim(
            worker_id,
            types=types,
            region=region,
            lease_seconds=lease_seconds,
            limit=1,
            strategy=strategy,
        )
        return tasks[0] if tasks else None

    def complete(self, task_id: int, worker_id: str) -> None:
        """Mark a leased task completed.

        :raises LeaseLostError: ``worker_id`` does not hold the task (its lease expired and
            another worker claimed it, or it already finished); nothing changed.
        :raises TaskNotFoundError: no task has this id.
        """
        check_int(task_id, "task_id")
        check_text(worker_id, "worker_id")
        cursor = self.db.execute(
            self._queries["complete"],
            {"now": to_db_text(self._clock()), "task_id": task_id, "worker_id": worker_id},
        )
        if cursor.rowcount != 1:
            self._raise_not_held(task_id, worker_id)

    def fail(
        self, task_id: int, worker_id: str, error: str, *, retry_in: float | None = None
    ) -> Task:
        """Record a failed attempt and return the task as it is now.

        While attempts remain the task goes back to ``queued`` with ``run_after_utc`` pushed
        back by exponential backoff plus jitter (or exactly ``retry_in`` seconds); on the last
        attempt it becomes ``failed`` with ``finished_at_utc``. ``error`` is stored in
        ``error_message`` either way.

        :raises LeaseLostError: ``worker_id`` does not hold the task; nothing changed.
        :raises TaskNotFoundError: no task has this id.
        :raises TypeError, ValueError: bad arguments (a negative ``retry_in``, say).
        """
        check_int(task_id, "task_id")
        check_text(worker_id, "worker_id")
        check_str(error, "error")
        retry = None if retry_in is None else non_negative_seconds(retry_in, "retry_in")
        rows = self.db.execute(
            self._queries["fail"],
            {
                "now": to_db_text(self._clock()),
                "retry_in": retry,
                "backoff_max": self.retry_backoff_max_seconds,
                "backoff_base": self.retry_backoff_seconds,
                "jitter": self._rng.random() * self.retry_jitter,
                "error": error,
                "task_id": task_id,
                "worker_id": worker_id,
            },
        ).fetchall()
        if not rows:
            self._raise_not_held(task_id, worker_id)
        return Task.from_row(rows[0])

    def extend_lease(self, task_id: int, worker_id: str, lease_seconds: float) -> datetime:
        """Renew a lease so it ends ``lease_seconds`` from now; return the new end.

        The heartbeat of a long task. Fenced like :meth:`complete`.

        :raises LeaseLostError: ``worker_id`` does not hold the task; nothing changed.
        :raises TaskNotFoundError: no task has this id.
        """
        check_int(task_id, "task_id")
        check_text(worker_id, "worker_id")
        lease = positive_seconds(lease_seconds, "lease_seconds")
        now_moment = self._clock()
        until = now_moment + timedelta(seconds=lease)
        cursor = self.db.execute(
            self._queries["extend_lease"],
            {
                "lease_until": to_db_text(until),
                "now": to_db_text(now_moment),
                "task_id": task_id,
                "worker_id": worker_id,
            },
        )
        if cursor.rowcount != 1:
            self._raise_not_held(task_id, worker_id)
        return until

    def release_expired_leases(self) -> int:
        """Requeue (or, on their last attempt, fail) tasks whose lease has expired.

        :meth:`claim` does this itself; call it to bring the statuses up to date without
        claiming, for example before :meth:`counts`. Returns how many tasks changed.
        """
        now = to_db_text(self._clock())
        with self.db.transaction() as conn:
            released = int(
                conn.execute(self._queries["release_expired_leases"], {"now": now}).rowcount
            )
        if released:
            _log_released(released, None)
        return released

    def register_worker(self, worker_id: str, capabilities: Mapping[str, Any]) -> Worker:
        """Add or update a worker with its capabilities and a fresh heartbeat.

        :raises TypeError: capabilities are not a JSON object.
        :raises ValueError: an empty worker id.
        """
        check_text(worker_id, "worker_id")
        worker = Worker(worker_id, check_mapping(capabilities, "capabilities"), self._clock())
        self.db.execute(
            self._queries["upsert_worker"],
            {
                "worker_id": worker_id,
                "capabilities": to_json(worker.capabilities, "capabilities"),
                "heartbeat": to_db_text(self._clock()),
            },
        )
        return worker

    def worker_heartbeat(self, worker_id: str) -> None:
        """Record that the worker is alive; an unknown worker is registered with no capabilities.

        :raises TypeError, ValueError: an empty or non-text worker id.
        """
        check_text(worker_id, "worker_id")
        self.db.execute(
            self._queries["worker_heartbeat"],
            {"worker_id": worker_id, "heartbeat": to_db_text(self._clock())},
        )

    def get_worker(self, worker_id: str) -> Worker | None:
        """Return the registered worker, or None."""
        check_text(worker_id, "worker_id")
        row = self.db.execute(self._queries["get_worker"], {"worker_id": worker_id}).fetchone()
        return None if row is None else Worker.from_row(row)

    def workers(self) -> list[Worker]:
        """Every registered worker, by id."""
        return [Worker.from_row(row) for row in self.db.execute(self._queries["list_workers"])]

    # -- batches of one worker (the worker engine's single writer) --------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group several operations into one write transaction (``BEGIN IMMEDIATE``).

        Operations called inside the block join it: they all commit together when the block
        ends, or none does if it raises. The worker engine completes a batch of tasks and claims
        the next one in a single transaction this way.

        :raises QueueBusyError: the write lock was not free within the busy timeout.
        """
        with self.db.transaction():
            yield

    def complete_many(self, task_ids: Iterable[int], worker_id: str) -> list[int]:
        """Mark several leased tasks completed in one statement; return the ids that were not.

        Fenced like :meth:`complete`, task by task: a task ``worker_id`` no longer holds (its
        lease was lost, or it already finished) is left unchanged and its id is returned, so the
        caller can discard that result instead of completing the task twice.

        :raises TypeError, ValueError: a bad worker id or task id; nothing changed.
        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout.
        """
        return self._fenced_batch("complete_many", task_ids, worker_id, {})

    def extend_leases(
        self, task_ids: Iterable[int], worker_id: str, lease_seconds: float
    ) -> list[int]:
        """Renew several leases in one statement so they end ``lease_seconds`` from now.

        Returns the ids ``worker_id`` no longer holds (nothing changed for them).

        :raises TypeError, ValueError: a bad worker id, task id or lease; nothing changed.
        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout.
        """
        lease = positive_seconds(lease_seconds, "lease_seconds")
        until = to_db_text(self._clock() + timedelta(seconds=lease))
        return self._fenced_batch("extend_leases", task_ids, worker_id, {"lease_until": until})

    def release_unstarted(self, task_ids: Iterable[int], worker_id: str) -> list[int]:
        """Put claimed tasks that were never started back in the queue, uncounted.

        Each goes back to ``queued`` with its lease cleared and the attempt its claim counted
        given back, keeping its place in line. Use it for tasks a worker claimed ahead of time
        and will not run (it is shutting down). Returns the ids ``worker_id`` no longer held.

        :raises TypeError, ValueError: a bad worker id or task id; nothing changed.
        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout.
        """
        return self._fenced_batch("release_unstarted", task_ids, worker_id, {})

    def next_due(
        self, *, types: Iterable[str] | None = None, region: str | None = None
    ) -> datetime | None:
        """When a claim with these filters can next find work without anything new committed.

        The earlier of the first scheduled (``run_after_utc``) queued task matching the filters
        and the first lease anyone holds running out (a claim releases it); None if neither
        exists. A worker that found nothing to claim sleeps until then, unless something else
        is committed first (see :meth:`change_token`).

        :raises TypeError, ValueError: bad types or region.
        """
        names = None if types is None else type_names(types)
        check_optional_text(region, "region")
        queued = self._claimer.next_due(names, region)
        lease = self.db.execute(self._queries["next_lease_expiry"]).fetchone()[0]
        times = [text for text in (queued, lease) if text is not None]
        return optional_from_db_text(min(times)) if times else None

    def change_token(self) -> int:
        """A number that changes when another connection commits to the queue.

        Reading it takes no lock and costs microseconds, so an idle worker can look often and
        claim only when it changed. Its own commits do not change it.
        """
        return self.db.change_token()

    # -- logs and observation --------------------------------------------------------------

    def log(self, task_id: int, level: str, message: str, details: Any = None) -> int:
        """Append a log line to a task and return its ``log_id``.

        :param level: one of DEBUG, INFO, WARNING, ERROR, CRITICAL.
        :param details: any JSON-serialisable value, stored as JSON.
        :raises TaskNotFoundError: no task has this id.
        :raises TypeError, ValueError: bad level, message or details.
        """
        check_int(task_id, "task_id")
        level = check_log_level(level, "level")
        check_str(message, "message")
        details_json = None if details is None else to_json(details, "details")
        try:
            row = self.db.execute(
                self._queries["insert_log"],
                {
                    "task_id": task_id,
                    "at": to_db_text(self._clock()),
                    "level": level,
                    "message": message,
                    "details": details_json,
                },
            ).fetchone()
        except QueueIntegrityError as exc:
            raise TaskNotFoundError(task_id) from exc
        return int(row[0])

    def logs(self, task_id: int) -> list[TaskLog]:
        """A task's log lines, oldest first."""
        check_int(task_id, "task_id")
        rows = self.db.execute(self._queries["task_logs"], {"task_id": task_id})
        return [TaskLog.from_row(row) for row in rows]

    def get(self, task_id: int) -> Task:
        """Return a task by id.

        :raises TaskNotFoundError: no task has this id.
        """
        check_int(task_id, "task_id")
        row = self.db.execute(self._queries["get_task"], {"task_id": task_id}).fetchone()
        if row is None:
            raise TaskNotFoundError(task_id)
        return Task.from_row(row)

    def list_tasks(
        self, *, status: TaskStatus | None = None, type: str | None = None, limit: int = 20
    ) -> list[Task]:
        """Up to ``limit`` tasks, newest first, optionally of one status and one type.

        :raises TypeError, ValueError: a status that is not a TaskStatus, an empty type, a
            limit below 1.
        """
        if status is not None and not isinstance(status, TaskStatus):
            raise TypeError(f"status must be a TaskStatus, not {_type_name(status)}")
        if type is not None:
            check_text(type, "type")
        check_count(limit, "limit", 1)
        params = {"status": None if status is None else status.value, "type": type, "limit": limit}
        return [Task.from_row(row) for row in self.db.execute(self._queries["list_tasks"], params)]

    def counts(self) -> dict[TaskStatus, int]:
        """The number of tasks in each status (every status present, zeros included).

        Its cost grows with the live tasks (queued and processing), which are counted; the
        finished ones come from counters the schema keeps (see :mod:`queue_core.observability`).
        """
        from queue_core.observability import status_counts

        return status_counts(self.db)

    def stats(
        self,
        *,
        window: timedelta = timedelta(minutes=15),
        stale_after: timedelta = timedelta(seconds=60),
    ) -> QueueStats:
        """One consistent snapshot of the queue: see :func:`queue_core.observability.stats`."""
        from queue_core.observability import stats

        return stats(self.db, now=self._clock(), window=window, stale_after=stale_after)

    # -- internals -------------------------------------------------------------------------

    def _fenced_batch(
        self, name: str, task_ids: Iterable[int], worker_id: str, params: dict[str, Any]
    ) -> list[int]:
        """Run a ``WHERE locked_by = :worker_id AND id IN json_each(:task_ids) RETURNING id``
        statement; return the requested ids it did not return, in request order."""
        check_text(worker_id, "worker_id")
        if isinstance(task_ids, (str, bytes)):
            raise TypeError("task_ids must be a collection of ints, not a string")
        ids = list(task_ids)
        for task_id in ids:
            check_int(task_id, "task_id")
        if not ids:
            return []
        bound = {
            **params,
            "now": to_db_text(self._clock()),
            "worker_id": worker_id,
            "task_ids": json.dumps(ids),
        }
        done = {row[0] for row in self.db.execute(self._queries[name], bound)}
        return [task_id for task_id in ids if task_id not in done]

    def _raise_not_held(self, task_id: int, worker_id: str) -> None:
        row = self.db.execute(self._queries["task_holder"], {"task_id": task_id}).fetchone()
        if row is None:
            raise TaskNotFoundError(task_id)
        status, locked_by = row
        holder = locked_by if status == TaskStatus.PROCESSING.value else None
        _log.warning(
            "refused %s's call on task %d: it is %s and held by %s",
            worker_id,
            task_id,
            status,
            holder or "no worker",
        )
        raise LeaseLostError(task_id, worker_id, holder=holder, status=status)


def _log_released(released: int, worker_id: str | None) -> None:
    # A lease runs out only when its worker died or stalled, so this is worth a warning.
    by = f" (found by {worker_id}'s claim)" if worker_id else ""
    _log.warning("released %d expired lease(s)%s", released, by)


def _enqueue_params(
    task_type: Any,
    payload: Any,
    priority: Any,
    compatibility: Any,
    run_after: Any,
    max_attempts: Any,
    idempotency_key: Any,
    now_text: str,
) -> tuple[Any, ...]:
    """Validate one task and return the parameters of the ``enqueue`` statement.

    Every field goes through its rule in :mod:`queue_core.validation`; the ``None`` defaults
    are decided here first, so the common task costs no call for them.
    """
    check_text(task_type, "type")
    payload_json = to_json(payload, "payload")
    check_int(priority, "priority")
    compatibility_text = (
        "{}" if compatibility is None else compatibility_json(compatibility, "compatibility")
    )
    check_count(max_attempts, "max_attempts", 1)
    if idempotency_key is not None:
        check_text(idempotency_key, "idempotency_key")
    if run_after is None:
        run_after_text = now_text
    else:
        check_time(run_after, "run_after")
        run_after_text = to_db_text(run_after)
    # Positional, in the order of the statement's column list (see queries.sql for why).
    return (
        task_type,
        priority,
        payload_json,
        compatibility_text,
        max_attempts,
        run_after_text,
        idempotency_key,
        now_text,
        now_text,
    )


def _type_name(value: object) -> str:
    return value.__class__.__name__
