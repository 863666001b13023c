"""stats() and counts(): one consistent snapshot, and costs that follow the live queue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queue_core import QueueBackend, QueueDatabase, TaskQueue, TaskStatus, sql
from tests.conftest import FakeClock


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def test_stats_of_an_empty_queue(queue: TaskQueue) -> None:
    stats = queue.stats()
    assert stats.counts == dict.fromkeys(TaskStatus, 0)
    assert stats.counts_by_type == {}
    assert stats.due_now == 0 and stats.oldest_due_age_seconds is None
    assert stats.in_flight == stats.expired_leases == stats.workers == 0
    assert stats.stale_workers == []


def test_stats_snapshot(queue: TaskQueue, clock: FakeClock) -> None:
    queue.register_worker("alive", {})
    queue.register_worker("silent", {})
    early = queue.enqueue("a", 1)
    clock.advance(30)
    queue.enqueue("a", 2)
    queue.enqueue("b", 3, run_after=clock.now + timedelta(hours=1))  # not due yet
    queue.enqueue_many([{"type": "b", "payload": i} for i in range(3)])
    claimed = queue.claim("alive", types=["b"], limit=3, lease_seconds=10)
    queue.complete(claimed[0].id, "alive")
    queue.fail(claimed[1].id, "alive", "x", retry_in=3600)
    clock.advance(20)  # the third lease (10 s) has expired; 'silent' last beat 50 s ago
    queue.worker_heartbeat("alive")
    stats = queue.stats(window=timedelta(minutes=5), stale_after=timedelta(seconds=40))
    assert stats.counts == {
        TaskStatus.QUEUED: 4,
        TaskStatus.PROCESSING: 1,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 0,
        TaskStatus.CANCELLED: 0,
    }
    assert stats.counts_by_type == {
        "a": {TaskStatus.QUEUED: 2},
        "b": {TaskStatus.QUEUED: 2, TaskStatus.PROCESSING: 1, TaskStatus.COMPLETED: 1},
    }
    assert stats.due_now == 2  # the two 'a' tasks; 'b' ones wait for run_after
    assert stats.oldest_due_age_seconds == pytest.approx(50.0)
    assert queue.get(early).status is TaskStatus.QUEUED
    assert stats.in_flight == 1 and stats.expired_leases == 1
    assert stats.workers == 2
    assert [worker.worker_id for worker in stats.stale_workers] == ["silent"]
    assert stats.completed_in_window == 1 and stats.failed_in_window == 0
    data = stats.to_dict()
    assert data["counts"]["queued"] == 4 and data["stale_workers"][0]["worker_id"] == "silent"


def test_finished_in_window_only_counts_the_window(queue: TaskQueue, clock: FakeClock) -> None:
    for _ in range(2):
        queue.enqueue("t", 1, max_attempts=1)
        (task,) = queue.claim("w")
        queue.fail(task.id, "w", "x")
        clock.advance(600)
    stats = queue.stats(window=timedelta(minutes=15))
    assert stats.failed_in_window == 1
    assert stats.counts[TaskStatus.FAILED] == 2


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(seconds=-1), 60])
def test_stats_refuses_a_bad_window(queue: TaskQueue, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        queue.stats(window=bad)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        queue.stats(stale_after=bad)  # type: ignore[arg-type]


@pytest.mark.sqlite_only(reason="SQLite's query plans")
@pytest.mark.parametrize("name", ["live_counts", "due_now", "leases", "finished_since"])
def test_stats_queries_never_scan_the_table(db: QueueDatabase, name: str) -> None:
    """Their cost must follow the live queue: every step is an index search, none a table scan."""
    query = sql.queries()[name]
    params = {"now": "2026-01-01 00:00:00", "since": "2026-01-01 00:00:00"}
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query, params)]
    assert not any(step.startswith("SCAN task_queue") and "INDEX" not in step for step in plan), (
        plan
    )
    assert not any(step == "SCAN task_queue" for step in plan), plan
