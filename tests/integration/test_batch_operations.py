"""TaskQueue's batch operations for one worker: complete_many, extend_leases, release_unstarted,
atomic, next_due and change_token (fenced, validated, all-or-nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queue_core import QueueBackend, QueueBusyError, QueueDatabase, TaskQueue, TaskStatus
from tests.conftest import FakeClock


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def claimed(queue: TaskQueue, count: int, worker: str = "w1") -> list[int]:
    queue.enqueue_many([{"type": "t", "payload": {"n": n}} for n in range(count)])
    return [task.id for task in queue.claim(worker, limit=count, lease_seconds=30)]


def test_complete_many_completes_held_tasks_and_returns_the_lost_ones(
    queue: TaskQueue, clock: FakeClock
) -> None:
    mine = claimed(queue, 3)
    theirs = claimed(queue, 1, worker="w2")
    queue.complete(mine[2], "w1")
    lost = queue.complete_many([mine[0], mine[1], mine[2], theirs[0]], "w1")
    assert lost == [mine[2], theirs[0]]  # already completed; held by another worker
    assert [queue.get(i).status for i in mine] == [TaskStatus.COMPLETED] * 3
    theirs_now = queue.get(theirs[0])
    assert (theirs_now.status, theirs_now.locked_by) == (TaskStatus.PROCESSING, "w2")
    assert queue.get(mine[0]).finished_at_utc == clock.now


def test_extend_leases_renews_every_held_lease_in_one_call(
    queue: TaskQueue, clock: FakeClock
) -> None:
    mine = claimed(queue, 2)
    theirs = claimed(queue, 1, worker="w2")
    clock.advance(20)
    lost = queue.extend_leases([*mine, *theirs], "w1", 30)
    assert lost == theirs
    for task_id in mine:
        assert queue.get(task_id).lease_until_utc == clock.now + timedelta(seconds=30)
    assert queue.get(theirs[0]).lease_until_utc == clock.now + timedelta(seconds=10)


def test_release_unstarted_requeues_without_counting_the_attempt(queue: TaskQueue) -> None:
    queue.enqueue("t", {"first": True})
    [task] = queue.claim("w1")
    queue.fail(task.id, "w1", "first try", retry_in=0)
    [again] = queue.claim("w1")
    assert again.attempts == 2
    assert queue.release_unstarted([again.id], "w1") == []
    released = queue.get(again.id)
    assert (released.status, released.attempts, released.locked_by) == (
        TaskStatus.QUEUED,
        1,
        None,
    )
    assert released.lease_until_utc is None
    assert released.run_after_utc == again.run_after_utc  # keeps its place in line
    assert queue.release_unstarted([again.id], "w1") == [again.id]  # not held any more


def test_batch_calls_validate_before_touching_the_database(queue: TaskQueue) -> None:
    mine = claimed(queue, 1)
    with pytest.raises(TypeError):
        queue.complete_many("12", "w1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.complete_many([mine[0], True], "w1")
    with pytest.raises(ValueError):
        queue.extend_leases(mine, "w1", 0)
    with pytest.raises(ValueError):
        queue.release_unstarted(mine, " ")
    assert queue.complete_many([], "w1") == []
    assert queue.get(mine[0]).status == TaskStatus.PROCESSING


def test_atomic_commits_everything_or_nothing(queue: TaskQueue) -> None:
    mine = claimed(queue, 2)
    with pytest.raises(RuntimeError), queue.atomic():
        queue.complete_many(mine, "w1")
        queue.enqueue("t", {"more": True})
        raise RuntimeError("crash inside the batch")
    assert queue.counts()[TaskStatus.PROCESSING] == 2
    assert queue.counts()[TaskStatus.QUEUED] == 0
    with queue.atomic():
        assert queue.complete_many(mine, "w1") == []
        assert queue.claim("w1") == []
    assert queue.counts()[TaskStatus.COMPLETED] == 2


@pytest.mark.sqlite_only(reason="SQLite's one write lock; PostgreSQL writers lock rows")
def test_atomic_holds_the_write_lock(queue: TaskQueue) -> None:
    other = QueueDatabase(queue.db.path, busy_timeout_ms=0)
    with queue.atomic(), pytest.raises(QueueBusyError):
        TaskQueue(other).enqueue("t", {})
    other.close()


def test_next_due_is_the_first_scheduled_task_or_expiring_lease(
    queue: TaskQueue, clock: FakeClock
) -> None:
    assert queue.next_due() is None
    later = clock.now + timedelta(minutes=5)
    queue.enqueue("t", {}, run_after=later)
    queue.enqueue("other", {}, run_after=clock.now + timedelta(minutes=1))
    queue.enqueue(
        "t", {}, run_after=clock.now + timedelta(minutes=2), compatibility={"region": "eu"}
    )
    assert queue.next_due(types=["t"]) == later
    assert queue.next_due(types=["t"], region="eu") == clock.now + timedelta(minutes=2)
    assert queue.next_due() == clock.now + timedelta(minutes=1)
    queue.enqueue("t", {})
    queue.claim("w1", types=["t"], lease_seconds=30)
    assert queue.next_due(types=["t"]) == clock.now + timedelta(seconds=30)  # the lease
    with pytest.raises(TypeError):
        queue.next_due(types="t")


@pytest.mark.sqlite_only(
    reason="data_version ignores own commits; tests/postgres tests the PostgreSQL token"
)
def test_change_token_moves_only_when_another_connection_commits(queue: TaskQueue) -> None:
    first = queue.change_token()
    queue.enqueue("t", {})
    assert queue.change_token() == first  # its own commit
    with QueueDatabase(queue.db.path) as other:
        TaskQueue(other).enqueue("t", {})
    assert queue.change_token() != first
