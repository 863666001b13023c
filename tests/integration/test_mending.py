"""Retry, cancel and prune: the operator's operations on tasks, and idempotency under pruning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from queue_core import (
    LeaseLostError,
    QueueBackend,
    QueueDatabase,
    TaskNotFoundError,
    TaskQueue,
    TaskStateError,
    TaskStatus,
)
from queue_core.maintenance import integrity_check
from tests.conftest import FakeClock


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def _failed(queue: TaskQueue, task_type: str = "t", count: int = 1) -> list[int]:
    ids = queue.enqueue_many(
        [{"type": task_type, "payload": i, "max_attempts": 1} for i in range(count)]
    )
    for task in queue.claim("w", types=[task_type], limit=count):
        queue.fail(task.id, "w", "boom")
    return ids


def test_retry_requeues_a_failed_task_with_attempts_reset(queue: TaskQueue) -> None:
    (task_id,) = _failed(queue)
    task = queue.retry(task_id)
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 0
    assert task.finished_at_utc is None and task.locked_by is None
    assert task.error_message == "boom"  # the last error stays until the next attempt ends
    assert task.run_after_utc == queue.now()
    assert [t.id for t in queue.claim("w2")] == [task_id]


def test_retry_of_a_task_in_another_status_changes_nothing(queue: TaskQueue) -> None:
    (failed,) = _failed(queue)
    queued = queue.enqueue("t", 1)
    with pytest.raises(TaskStateError, match=f"task {queued} is queued"):
        queue.retry_many([failed, queued])
    assert queue.get(failed).status is TaskStatus.FAILED  # all or nothing
    with pytest.raises(TaskNotFoundError):
        queue.retry(999)
    with pytest.raises(ValueError):
        queue.retry_many([])
    with pytest.raises(TypeError):
        queue.retry("1")  # type: ignore[arg-type]


def test_retry_failed_by_type_works_in_batches(queue: TaskQueue) -> None:
    _failed(queue, "a", 5)
    (other,) = _failed(queue, "b", 1)
    assert queue.retry_failed(type="a", batch_size=2) == 5
    assert queue.counts()[TaskStatus.FAILED] == 1
    assert queue.get(other).status is TaskStatus.FAILED
    assert queue.retry_failed() == 1
    assert queue.retry_failed() == 0
    with pytest.raises(ValueError):
        queue.retry_failed(type=" ")


def test_cancel_a_queued_task_takes_it_out_of_the_queue(queue: TaskQueue) -> None:
    task_id = queue.enqueue("t", 1)
    task = queue.cancel(task_id)
    assert task.status is TaskStatus.CANCELLED and task.finished_at_utc == queue.now()
    assert queue.claim("w") == []
    assert queue.stats().due_now == 0


def test_cancel_a_running_task_refuses_its_workers_later_calls(queue: TaskQueue) -> None:
    task_id = queue.enqueue("t", 1)
    [claimed] = queue.claim("w")
    task = queue.cancel(task_id)
    assert task.status is TaskStatus.CANCELLED
    # The lease is kept: a retry must not make the task claimable before it would have ended.
    assert task.locked_by == "w" and task.lease_until_utc == claimed.lease_until_utc
    assert task.error_message == "cancelled while held by w"
    for call in (
        lambda: queue.complete(task_id, "w"),
        lambda: queue.fail(task_id, "w", "x"),
        lambda: queue.extend_lease(task_id, "w", 30),
    ):
        with pytest.raises(LeaseLostError) as info:
            call()
        assert info.value.status == "cancelled" and info.value.holder is None
    assert queue.get(task_id).status is TaskStatus.CANCELLED


def test_cancel_of_a_finished_task_changes_nothing(queue: TaskQueue) -> None:
    done = queue.enqueue("t", 1)
    queue.claim("w")
    queue.complete(done, "w")
    waiting = queue.enqueue("t", 2)
    with pytest.raises(TaskStateError, match="completed"):
        queue.cancel_many([waiting, done])
    assert queue.get(waiting).status is TaskStatus.QUEUED
    with pytest.raises(TaskNotFoundError):
        queue.cancel(12345)


def test_cancelled_is_a_final_status() -> None:
    assert TaskStatus.CANCELLED.is_final and not TaskStatus.CANCELLED.is_live
    assert TaskStatus.PROCESSING.is_live and not TaskStatus.PROCESSING.is_final


def test_a_cancelled_task_can_be_retried(queue: TaskQueue) -> None:
    task_id = queue.enqueue("t", 1)
    queue.cancel(task_id)
    assert queue.retry(task_id).status is TaskStatus.QUEUED


def test_retry_right_after_cancel_waits_for_the_cancelled_lease(
    queue: TaskQueue, clock: FakeClock
) -> None:
    """The handler of a cancelled task may still run until its worker's next renewal finds the
    task gone: a retry makes it claimable only once that lease would have run out."""
    task_id = queue.enqueue("t", 1)
    [running] = queue.claim("w", lease_seconds=30)
    queue.cancel(task_id)
    clock.advance(1)
    retried = queue.retry(task_id)
    assert retried.status is TaskStatus.QUEUED and retried.lease_until_utc is None
    assert retried.run_after_utc == running.lease_until_utc
    assert queue.claim("other") == []  # the first handler may still be running
    clock.advance(29)
    assert [task.id for task in queue.claim("other")] == [task_id]


def test_retry_of_a_long_cancelled_task_is_due_now(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", 1)
    queue.claim("w", lease_seconds=30)
    queue.cancel(task_id)
    clock.advance(60)
    assert queue.retry(task_id).run_after_utc == clock.now
    queued = queue.enqueue("t", 2)
    queue.cancel(queued)  # never leased: due now
    assert queue.retry(queued).run_after_utc == clock.now


def _finish(queue: TaskQueue, clock: FakeClock, outcome: str, count: int) -> list[int]:
    ids = queue.enqueue_many(
        [{"type": outcome, "payload": i, "max_attempts": 1} for i in range(count)]
    )
    for task in queue.claim("w", types=[outcome], limit=count):
        queue.log(task.id, "INFO", "ran")
        if outcome == "completed":
            queue.complete(task.id, "w")
        elif outcome == "failed":
            queue.fail(task.id, "w", "x")
        else:
            queue.cancel(task.id)
    return ids


def test_prune_deletes_old_finished_tasks_and_their_logs_only(
    queue: TaskQueue, clock: FakeClock
) -> None:
    old_done = _finish(queue, clock, "completed", 5)
    old_failed = _finish(queue, clock, "failed", 2)
    old_cancelled = _finish(queue, clock, "cancelled", 1)
    clock.advance(8 * 86400)
    recent = _finish(queue, clock, "completed", 2)
    live = queue.enqueue("live", 1)
    seen: list[tuple[int, int]] = []
    result = queue.prune(
        completed_older_than=timedelta(days=7),
        failed_older_than=timedelta(days=7),
        batch_size=2,
        pause_seconds=0,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.tasks == {
        TaskStatus.COMPLETED: 5,
        TaskStatus.FAILED: 2,
        TaskStatus.CANCELLED: 1,
    }
    assert result.total == 8 and result.logs == 8
    assert result.transactions >= 5  # 5 completed in batches of 2 is three transactions alone
    assert 0 < result.longest_lock_seconds <= result.lock_seconds
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    for task_id in old_done + old_failed + old_cancelled:
        with pytest.raises(TaskNotFoundError):
            queue.get(task_id)
        assert queue.logs(task_id) == []
    assert all(queue.get(task_id).status is TaskStatus.COMPLETED for task_id in recent)
    assert queue.get(live).status is TaskStatus.QUEUED
    assert queue.counts()[TaskStatus.COMPLETED] == 2
    assert_integrity(queue.db)


def test_prune_keeps_a_kind_whose_cutoff_is_none(queue: TaskQueue, clock: FakeClock) -> None:
    _finish(queue, clock, "completed", 1)
    (failed,) = _finish(queue, clock, "failed", 1)
    clock.advance(60)
    result = queue.prune(completed_older_than=timedelta(seconds=1), failed_older_than=None)
    assert result.total == 1 and TaskStatus.FAILED not in result.tasks
    assert queue.get(failed).status is TaskStatus.FAILED


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"completed_older_than": None, "failed_older_than": None}, ValueError),
        ({"completed_older_than": 7, "failed_older_than": None}, TypeError),
        ({"completed_older_than": timedelta(days=-1), "failed_older_than": None}, ValueError),
        (
            {"completed_older_than": timedelta(1), "failed_older_than": None, "batch_size": 0},
            ValueError,
        ),
        (
            {"completed_older_than": timedelta(1), "failed_older_than": None, "pause_seconds": -1},
            ValueError,
        ),
    ],
)
def test_prune_refuses_bad_arguments(queue: TaskQueue, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        queue.prune(**kwargs)


def test_a_pruned_tasks_idempotency_key_is_free_again(queue: TaskQueue, clock: FakeClock) -> None:
    first = queue.enqueue("t", 1, idempotency_key="k")
    assert queue.enqueue("t", 2, idempotency_key="k") == first
    queue.claim("w")
    queue.complete(first, "w")
    clock.advance(10)
    queue.prune(completed_older_than=timedelta(seconds=1), failed_older_than=None)
    second = queue.enqueue("t", 3, idempotency_key="k")
    assert second != first
    assert queue.get(second).payload == 3


class _PruneBetweenInsertAndLookup(QueueDatabase):
    """Deletes the key's task right after the enqueue's insert lost, as a racing prune would."""

    armed = True

    def execute(self, sql: str, params: Any = ()) -> Any:
        cursor = super().execute(sql, params)
        if (
            self.armed
            and sql.lstrip().startswith("INSERT INTO task_queue")
            and cursor.rowcount == 0
        ):
            self.armed = False
            with self.transaction() as conn:
                conn.execute("DELETE FROM task_queue WHERE idempotency_key = ?", (params[6],))
        return cursor


@pytest.mark.sqlite_only(
    reason="wraps QueueDatabase; the PostgreSQL key race is in test_multiprocess"
)
def test_enqueue_survives_a_prune_between_its_insert_and_its_lookup(
    db: QueueDatabase, clock: FakeClock
) -> None:
    racing = _PruneBetweenInsertAndLookup(db.path)
    queue = TaskQueue(racing, clock=clock)
    first = queue.enqueue("t", 1, idempotency_key="k")
    second = queue.enqueue("t", 2, idempotency_key="k")  # lost, then the winner vanished
    assert not racing.armed
    assert second != first
    assert queue.get(second).payload == 2
    racing.close()


def assert_integrity(db: QueueBackend) -> None:
    """SQLite's integrity_check finds nothing (PostgreSQL checks its constraints on write)."""
    if isinstance(db, QueueDatabase):
        assert integrity_check(db) == []


def test_counters_follow_every_transition(queue: TaskQueue, clock: FakeClock) -> None:
    _finish(queue, clock, "completed", 3)
    failed = _failed(queue, "f", 2)
    _finish(queue, clock, "cancelled", 1)
    queue.retry(failed[0])
    running = queue.enqueue("r", 1, max_attempts=1)
    queue.claim("w", types=["r"], lease_seconds=1)
    clock.advance(5)
    queue.release_expired_leases()  # the last attempt's lease ran out: failed
    assert queue.get(running).status is TaskStatus.FAILED
    assert queue.counts() == {
        TaskStatus.QUEUED: 1,
        TaskStatus.PROCESSING: 0,
        TaskStatus.COMPLETED: 3,
        TaskStatus.FAILED: 2,
        TaskStatus.CANCELLED: 1,
    }
    assert_integrity(queue.db)


@pytest.mark.sqlite_only(reason="SQLite's WAL checkpoints")
def test_the_bulk_block_does_not_hold_the_connection_lock(db: QueueDatabase) -> None:
    """prune's pauses must let other threads sharing the QueueDatabase in."""
    import threading

    done = threading.Event()
    with db.checkpoints_between_transactions():
        other = threading.Thread(target=lambda: (db.execute("SELECT 1"), done.set()))
        other.start()
        other.join(30)
        assert done.is_set(), "another thread waited for the whole bulk block"
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
