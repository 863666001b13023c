"""Mending and retention: retry, cancel and prune, the operations an operator runs on tasks.

:class:`MendingOperations` is mixed into :class:`~queue_core.task_queue.TaskQueue`, so they are
called as ``queue.retry(7)``, ``queue.cancel(8)``, ``queue.prune(...)``. The SQL is in the
"Operations" section of ``queries.sql``; this module holds the rules:

- **retry** moves a ``failed`` or ``cancelled`` task back to ``queued``, due now, with
  ``attempts`` reset to 0, so it gets its full ``max_attempts`` again. ``error_message`` keeps
  the last error until the next attempt ends. A task cancelled while it ran becomes due only
  when the cancelled lease would have ended: its handler may run on until then.
- **cancel** applies to ``queued`` and ``processing`` tasks; the task becomes ``cancelled``
  (final) at once. A worker that is running it is not interrupted (the queue cannot reach into
  another process), but from then on its ``complete``, ``fail`` and ``extend_lease`` are refused
  with :class:`~queue_core.exceptions.LeaseLostError`, exactly as for a lost lease, so its result
  is discarded. The task keeps ``lease_until_utc``, the latest its handler may run on. Workers
  that want to stop early can check the status when they heartbeat.
- **prune** deletes finished tasks (and their ``task_logs``) older than a cut-off, in short
  transactions. An idempotency key belongs to its task: once the task is pruned the key is free,
  and enqueueing it again creates a new task. Keys therefore deduplicate for as long as finished
  tasks are retained; keep retention longer than any producer's retry window.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from queue_core.exceptions import TaskNotFoundError, TaskStateError
from queue_core.models import Task, TaskStatus
from queue_core.timestamps import to_db_text
from queue_core.validation import check_count, check_int, check_text, duration

if TYPE_CHECKING:
    from queue_core.backend import QueueBackend

DEFAULT_PRUNE_BATCH: Final = 500
"""The most tasks one prune transaction deletes. Smaller batches protect claim latency, larger
ones prune faster; the README has the measured figures."""
DEFAULT_PRUNE_LOCK_TARGET: Final = 0.020
"""Prune halves its batch after a transaction that held the write lock longer than this (and
grows it back, up to the batch size, while transactions stay well under it)."""

_log = logging.getLogger(__name__)

PruneProgress = Callable[[int, int], None]
"""Called after each prune transaction with (tasks deleted so far, tasks to delete in all)."""


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`MendingOperations.prune` deleted, and how long it held the write lock."""

    tasks: dict[TaskStatus, int] = field(default_factory=dict)
    """Tasks deleted, per status."""
    logs: int = 0
    """``task_logs`` rows deleted with them."""
    transactions: int = 0
    longest_lock_seconds: float = 0.0
    """The longest time one prune transaction held the write lock (BEGIN to COMMIT)."""
    lock_seconds: float = 0.0
    """The total time prune held the write lock."""
    elapsed_seconds: float = 0.0
    lock_holds: tuple[float, ...] = field(default=(), repr=False)
    """How long each transaction held the write lock, in order (seconds)."""

    @property
    def lock_p99_seconds(self) -> float:
        """The 99th percentile of :attr:`lock_holds` (0 when there were none)."""
        if not self.lock_holds:
            return 0.0
        ordered = sorted(self.lock_holds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def total(self) -> int:
        """Tasks deleted in all."""
        return sum(self.tasks.values())

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "tasks": {status.value: count for status, count in self.tasks.items()},
            "total": self.total,
            "logs": self.logs,
            "transactions": self.transactions,
            "longest_lock_ms": round(self.longest_lock_seconds * 1000, 3),
            "lock_p99_ms": round(self.lock_p99_seconds * 1000, 3),
            "lock_ms": round(self.lock_seconds * 1000, 3),
            "elapsed_s": round(self.elapsed_seconds, 3),
        }


class MendingOperations:
    """Retry, cancel and prune; mixed into :class:`~queue_core.task_queue.TaskQueue`."""

    db: QueueBackend

    def now(self) -> datetime:  # pragma: no cover - TaskQueue provides it
        raise NotImplementedError

    # -- retry -----------------------------------------------------------------------------

    def retry(self, task_id: int) -> Task:
        """Put a failed or cancelled task back in the queue, due now, with attempts reset to 0.

        A task cancelled while it ran is due when its cancelled lease would have run out
        instead, so no second handler starts beside one that still runs.

        :raises TaskNotFoundError: no task has this id.
        :raises TaskStateError: the task is queued, processing or completed; nothing changed.
        """
        return self.retry_many([task_id])[0]

    def retry_many(self, task_ids: Iterable[int]) -> list[Task]:
        """Retry several tasks in one transaction: all of them, or none if one cannot be.

        :raises TaskNotFoundError, TaskStateError: as for :meth:`retry`, for the first id that
            cannot be retried; nothing changed.
        """
        return self._transition_each(
            task_ids, "retry_task", "only failed or cancelled tasks can be retried"
        )

    def retry_failed(
        self, *, type: str | None = None, batch_size: int = DEFAULT_PRUNE_BATCH
    ) -> int:
        """Retry every failed task (of one ``type``, or of any); return how many.

        Works in transactions of up to ``batch_size`` tasks so a large backlog never holds the
        write lock for long. Tasks that fail again meanwhile are not retried twice in one call,
        because they go back to the queue first and fail only after a worker ran them.

        :raises TypeError, ValueError: a non-text or empty type, or a batch size below 1.
        """
        if type is not None:
            check_text(type, "type")
        check_count(batch_size, "batch_size", 1)
        retried = 0
        while True:
            now = to_db_text(self.now())
            with self.db.transaction() as conn:
                rows = conn.execute(
                    self.db.queries["retry_failed_batch"],
                    {"now": now, "type": type, "limit": batch_size},
                ).fetchall()
            retried += len(rows)
            if len(rows) < batch_size:
                break
        if retried:
            _log.info("retried %d failed task(s)%s", retried, f" of type {type!r}" if type else "")
        return retried

    # -- cancel ----------------------------------------------------------------------------

    def cancel(self, task_id: int) -> Task:
        """Cancel a queued task, or one being processed (see the module docstring).

        Returns the task as it is now (``cancelled``).

        :raises TaskNotFoundError: no task has this id.
        :raises TaskStateError: the task already finished (completed, failed or cancelled).
        """
        return self.cancel_many([task_id])[0]

    def cancel_many(self, task_ids: Iterable[int]) -> list[Task]:
        """Cancel several tasks in one transaction: all of them, or none if one cannot be.

        :raises TaskNotFoundError, TaskStateError: as for :meth:`cancel`; nothing changed.
        """
        tasks = self._transition_each(
            task_ids, "cancel_task", "only queued or processing tasks can be cancelled"
        )
        for task in tasks:
            if task.locked_by is not None:
                _log.info("cancelled task %d, which %s was processing", task.id, task.locked_by)
        return tasks

    # -- retention -------------------------------------------------------------------------

    def prune(
        self,
        *,
        completed_older_than: timedelta | None,
        failed_older_than: timedelta | None,
        batch_size: int = DEFAULT_PRUNE_BATCH,
        pause_seconds: float | None = None,
        lock_target_seconds: float = DEFAULT_PRUNE_LOCK_TARGET,
        progress: PruneProgress | None = None,
    ) -> PruneResult:
        """Delete finished tasks, and their logs, that finished longer ago than a cut-off.

        ``completed_older_than`` applies to completed tasks, ``failed_older_than`` to failed and
        cancelled ones; ``None`` keeps that kind. Each transaction deletes at most
        ``batch_size`` tasks, oldest first; after one that held the write lock longer than
        ``lock_target_seconds`` the batch is halved (and it grows back while transactions stay
        under a quarter of the target). Between transactions the call runs a PASSIVE checkpoint
        and pauses (``pause_seconds``; by default twice as long as the transaction held the
        lock, at least 10 ms) so that workers waiting in SQLite's busy handler, which sleeps
        between attempts instead of queueing, get the lock.
        A pruned task's idempotency key is free again (see the module docstring).

        :returns: what was deleted and how long each transaction held the write lock.
        :raises TypeError, ValueError: a cut-off that is not a non-negative timedelta, both
            cut-offs None, or a batch size below 1; nothing was deleted.
        :raises QueueBusyError: a transaction could not get the write lock within the busy
            timeout; the batches committed before it stay deleted.
        """
        cutoffs = _prune_cutoffs(self.now(), completed_older_than, failed_older_than)
        check_count(batch_size, "batch_size", 1)
        for value, name in ((pause_seconds, "pause_seconds"), (lock_target_seconds, "lock_target")):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
            ):
                raise ValueError(f"{name} must be a non-negative number, not {value!r}")
        started = time.perf_counter()
        total = 0
        if progress is not None:
            total = sum(
                int(
                    self.db.execute(
                        self.db.queries["prune_count"], {"status": status.value, "cutoff": cutoff}
                    ).fetchone()[0]
                )
                for status, cutoff in cutoffs
            )
            progress(0, total)
        deleted = dict.fromkeys((status for status, _ in cutoffs), 0)
        logs = 0
        holds: list[float] = []
        with self.db.checkpoints_between_transactions():
            for status, cutoff in cutoffs:
                limit = batch_size
                while True:
                    count, logs_deleted, held = self._prune_batch(status, cutoff, limit)
                    holds.append(held)
                    deleted[status] += count
                    logs += logs_deleted
                    if progress is not None and count:
                        done = sum(deleted.values())
                        progress(done, max(total, done))
                    if count < limit:
                        break
                    if held > lock_target_seconds:
                        limit = max(1, limit // 2)
                    elif held < lock_target_seconds / 4:
                        limit = min(batch_size, limit * 2)
                    self.db.checkpoint_passive()
                    time.sleep(max(2 * held, 0.010) if pause_seconds is None else pause_seconds)
            if holds:
                self.db.checkpoint_passive()  # what the last batch wrote, off workers' commits
        result = PruneResult(
            tasks=deleted,
            logs=logs,
            transactions=len(holds),
            longest_lock_seconds=max(holds, default=0.0),
            lock_seconds=sum(holds),
            elapsed_seconds=time.perf_counter() - started,
            lock_holds=tuple(holds),
        )
        if result.total:
            _log.info(
                "pruned %d task(s) and %d log line(s) in %d transaction(s), longest %.1f ms",
                result.total,
                logs,
                result.transactions,
                result.longest_lock_seconds * 1000,
            )
        return result

    def _prune_batch(self, status: TaskStatus, cutoff: str, limit: int) -> tuple[int, int, float]:
        """Delete up to ``limit`` tasks and their logs in one transaction.

        Returns (tasks deleted, log lines deleted, seconds the write lock was held).
        """
        logs = 0
        with self.db.transaction() as conn:
            locked = time.perf_counter()
            ids = [
                row[0]
                for row in conn.execute(
                    self.db.queries["prune_candidates"],
                    {"status": status.value, "cutoff": cutoff, "limit": limit},
                )
            ]
            if ids:
                id_list = json.dumps(ids)
                logs = conn.execute(self.db.queries["prune_logs"], {"ids": id_list}).rowcount
                conn.execute(self.db.queries["prune_tasks"], {"ids": id_list})
        # Measured after the block so that it includes the COMMIT, which writes the WAL.
        return len(ids), logs, time.perf_counter() - locked

    # -- internals -------------------------------------------------------------------------

    def _transition_each(self, task_ids: Iterable[int], query: str, wanted: str) -> list[Task]:
        ids = list(task_ids)
        for task_id in ids:
            check_int(task_id, "task_id")
        if not ids:
            raise ValueError("name at least one task id")
        now = to_db_text(self.now())
        tasks: list[Task] = []
        with self.db.transaction() as conn:
            for task_id in ids:
                rows = conn.execute(
                    self.db.queries[query], {"now": now, "task_id": task_id}
                ).fetchall()
                if not rows:
                    found = conn.execute(
                        self.db.queries["task_status"], {"task_id": task_id}
                    ).fetchone()
                    # Raising inside the transaction rolls back the ids already changed.
                    if found is None:
                        raise TaskNotFoundError(task_id)
                    raise TaskStateError(task_id, found[0], wanted)
                tasks.append(Task.from_row(rows[0]))
        return tasks


def _prune_cutoffs(
    now: datetime, completed: timedelta | None, failed: timedelta | None
) -> list[tuple[TaskStatus, str]]:
    for value, name in ((completed, "completed_older_than"), (failed, "failed_older_than")):
        if value is not None:
            duration(value, name, allow_zero=True)
    if completed is None and failed is None:
        raise ValueError("give completed_older_than, failed_older_than or both")
    cutoffs: list[tuple[TaskStatus, str]] = []
    if completed is not None:
        cutoffs.append((TaskStatus.COMPLETED, to_db_text(now - completed)))
    if failed is not None:
        failed_cutoff = to_db_text(now - failed)
        cutoffs += [(TaskStatus.FAILED, failed_cutoff), (TaskStatus.CANCELLED, failed_cutoff)]
    return cutoffs
