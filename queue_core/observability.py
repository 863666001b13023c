"""What the queue looks like right now: status counts and the :func:`stats` snapshot.

Every figure costs time in proportion to the live queue (queued plus processing tasks), never
to the history: live tasks are counted through indexes that hold only them or start with their
status; finished tasks come from ``finished_task_counts``, which triggers keep (migration
0004); recent completions and failures come from the index of finished tasks, which visits only
the tasks of the window. All reads run in one read transaction, so the figures agree with each
other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from queue_core.models import TaskStatus, Worker
from queue_core.timestamps import from_db_text, to_db_text
from queue_core.validation import duration

if TYPE_CHECKING:
    from queue_core.backend import QueueBackend, Session


@dataclass(frozen=True)
class QueueStats:
    """One consistent snapshot of the queue (see :func:`stats`)."""

    taken_at: datetime
    counts: dict[TaskStatus, int]
    """Tasks per status, every status present."""
    counts_by_type: dict[str, dict[TaskStatus, int]]
    """Tasks per type and status (only the statuses a type has)."""
    due_now: int
    """Queued tasks whose ``run_after_utc`` has come: what workers could claim now."""
    oldest_due_age_seconds: float | None
    """How long the longest-waiting due task has been due (None when nothing is due)."""
    in_flight: int
    """Tasks being processed."""
    expired_leases: int
    """Of those, how many leases ran out (the worker died or stalled; the next claim frees them)."""
    workers: int
    """Registered workers."""
    stale_workers: list[Worker]
    """Workers whose last heartbeat is older than ``stale_after``, the longest silent first."""
    stale_after_seconds: float
    window_seconds: float
    finished_in_window: dict[TaskStatus, int] = field(default_factory=dict)
    """Completed, failed and cancelled tasks that finished within the window."""

    @property
    def completed_in_window(self) -> int:
        """Tasks completed within the window."""
        return self.finished_in_window.get(TaskStatus.COMPLETED, 0)

    @property
    def failed_in_window(self) -> int:
        """Tasks that failed for good within the window."""
        return self.finished_in_window.get(TaskStatus.FAILED, 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: statuses as their values, times as stored UTC text."""
        return {
            "taken_at": to_db_text(self.taken_at),
            "counts": {status.value: n for status, n in self.counts.items()},
            "counts_by_type": {
                task_type: {status.value: n for status, n in counts.items()}
                for task_type, counts in self.counts_by_type.items()
            },
            "due_now": self.due_now,
            "oldest_due_age_seconds": self.oldest_due_age_seconds,
            "in_flight": self.in_flight,
            "expired_leases": self.expired_leases,
            "workers": self.workers,
            "stale_workers": [worker.to_dict() for worker in self.stale_workers],
            "stale_after_seconds": self.stale_after_seconds,
            "window_seconds": self.window_seconds,
            "finished_in_window": {
                status.value: n for status, n in self.finished_in_window.items()
            },
        }


def status_counts(db: QueueBackend) -> dict[TaskStatus, int]:
    """Tasks per status, every status present (zeros included), from one snapshot."""
    with db.snapshot() as conn:
        by_type = _counts_by_type(conn, db.queries)
    return _total_counts(by_type)


def stats(
    db: QueueBackend,
    *,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    stale_after: timedelta = timedelta(seconds=60),
) -> QueueStats:
    """Take one snapshot of the queue. :meth:`TaskQueue.stats` calls this with its clock.

    :param now: the moment "due", "expired" and "stale" are judged against (aware).
    :param window: how far back ``finished_in_window`` looks.
    :param stale_after: a worker whose heartbeat is older than this is stale.
    :raises TypeError, ValueError: a window or threshold that is not a positive timedelta.
    :raises QueueDatabaseError: the database failed (``__cause__`` has why).
    """
    for value, name in ((window, "window"), (stale_after, "stale_after")):
        duration(value, name)
    now_text = to_db_text(now)
    queries = db.queries
    with db.snapshot() as conn:
        by_type = _counts_by_type(conn, queries)
        due, oldest = conn.execute(queries["due_now"], {"now": now_text}).fetchone()
        in_flight, expired = conn.execute(queries["leases"], {"now": now_text}).fetchone()
        finished = {
            TaskStatus(status): int(n)
            for status, n in conn.execute(
                queries["finished_since"], {"since": to_db_text(now - window)}
            ).fetchall()
        }
        stale = [
            Worker.from_row(row)
            for row in conn.execute(
                queries["stale_workers"], {"threshold": to_db_text(now - stale_after)}
            ).fetchall()
        ]
        workers = int(conn.execute(queries["worker_count"]).fetchone()[0])
    oldest_age = None
    if oldest is not None:
        oldest_age = max(0.0, (now - from_db_text(oldest)).total_seconds())
    return QueueStats(
        taken_at=now,
        counts=_total_counts(by_type),
        counts_by_type=by_type,
        due_now=int(due),
        oldest_due_age_seconds=oldest_age,
        in_flight=int(in_flight),
        expired_leases=int(expired),
        workers=workers,
        stale_workers=stale,
        stale_after_seconds=stale_after.total_seconds(),
        window_seconds=window.total_seconds(),
        finished_in_window={
            status: finished.get(status, 0)
            for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
        },
    )


def _counts_by_type(conn: Session, queries: Mapping[str, str]) -> dict[str, dict[TaskStatus, int]]:
    by_type: dict[str, dict[TaskStatus, int]] = {}
    for query in ("live_counts", "finished_counts"):
        for status, task_type, n in conn.execute(queries[query]).fetchall():
            by_type.setdefault(task_type, {})[TaskStatus(status)] = int(n)
    return dict(sorted(by_type.items()))


def _total_counts(by_type: dict[str, dict[TaskStatus, int]]) -> dict[TaskStatus, int]:
    totals = dict.fromkeys(TaskStatus, 0)
    for counts in by_type.values():
        for status, n in counts.items():
            totals[status] += n
    return totals
