"""TaskQueue operations in one process, with the clock under the test's control."""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from queue_core import (
    LeaseLostError,
    QueueBackend,
    QueueBusyError,
    QueueDatabase,
    QueueDatabaseError,
    TaskNotFoundError,
    TaskQueue,
    TaskStatus,
)
from tests.conftest import FakeClock


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def dump(db: QueueBackend) -> list[tuple[Any, ...]]:
    """Every row of every table (and the id counters), to prove a refused call changed nothing."""
    rows: list[tuple[Any, ...]] = []
    for table in ("task_queue", "workers", "task_logs", *ID_COUNTERS[db.backend_name]):
        rows += [(table, *row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]
    return rows


# Where each backend keeps the next id (a refused insert must not consume one on SQLite).
ID_COUNTERS = {"sqlite": ("sqlite_sequence",), "postgres": ()}


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_stores_every_field(queue: TaskQueue, clock: FakeClock) -> None:
    later = clock.now + timedelta(minutes=5)
    task_id = queue.enqueue(
        "render",
        {"format": "webp", "size": 3},
        priority=7,
        compatibility={"region": "eu", "gpu": True},
        run_after=later,
        max_attempts=3,
        idempotency_key="k-1",
    )
    task = queue.get(task_id)
    assert (task.type, task.priority, task.max_attempts, task.attempts) == ("render", 7, 3, 0)
    assert task.payload == {"format": "webp", "size": 3}
    assert task.compatibility == {"region": "eu", "gpu": True}
    assert task.status is TaskStatus.QUEUED
    assert task.run_after_utc == later
    assert task.created_at_utc == clock.now
    assert task.idempotency_key == "k-1"
    row = queue.db.execute("SELECT region, format, run_after_utc FROM task_queue").fetchone()
    assert tuple(row) == ("eu", "webp", "2026-01-01 12:05:00.000")


def test_idempotency_key_returns_the_existing_task(queue: TaskQueue) -> None:
    first = queue.enqueue("t", {"n": 1}, idempotency_key="same")
    second = queue.enqueue("t", {"n": 2}, idempotency_key="same")
    assert first == second
    assert queue.get(first).payload == {"n": 1}
    assert queue.counts()[TaskStatus.QUEUED] == 1
    assert queue.enqueue("t", {}) != queue.enqueue("t", {})  # no key: always new


def test_enqueue_many_returns_ids_in_order(queue: TaskQueue) -> None:
    ids = queue.enqueue_many({"type": "t", "payload": {"i": i}} for i in range(100))
    assert len(ids) == 100 and ids == sorted(ids) and len(set(ids)) == 100
    assert [queue.get(i).payload["i"] for i in ids[:3]] == [0, 1, 2]
    assert queue.enqueue_many([]) == []


def test_enqueue_many_with_idempotency_keys(queue: TaskQueue) -> None:
    existing = queue.enqueue("t", {}, idempotency_key="a")
    ids = queue.enqueue_many(
        [
            {"type": "t", "payload": 1, "idempotency_key": "a"},
            {"type": "t", "payload": 2, "idempotency_key": "b"},
            {"type": "t", "payload": 3},
            {"type": "t", "payload": 4, "idempotency_key": "b"},
        ]
    )
    assert ids[0] == existing
    assert ids[1] == ids[3] != ids[2]
    assert queue.counts()[TaskStatus.QUEUED] == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "t", "payload": {1, 2}},
        {"type": "", "payload": 1},
        {"type": "t"},
        {"type": "t", "payload": 1, "colour": "red"},
        {"type": "t", "payload": 1, "priority": "high"},
        {"type": "t", "payload": float("nan")},
        "not a mapping",
    ],
)
def test_enqueue_many_bad_item_writes_nothing(queue: TaskQueue, bad: Any) -> None:
    before = dump(queue.db)
    with pytest.raises((TypeError, ValueError), match=r"tasks\[2\]"):
        queue.enqueue_many([{"type": "t", "payload": 1}, {"type": "t", "payload": 2}, bad])
    assert dump(queue.db) == before


def test_enqueue_many_database_error_rolls_back(queue: TaskQueue) -> None:
    queue.enqueue("t", 0)
    before = dump(queue.db)
    for statement in REFUSE_TYPE_X[queue.db.backend_name]:
        queue.db.execute(statement)
    with pytest.raises(QueueDatabaseError, match="x refused"):
        queue.enqueue_many([{"type": "t", "payload": 1}, {"type": "x", "payload": 2}])
    queue.db.execute("DROP TRIGGER no_x ON task_queue" if queue.db.backend_name == "postgres"
                     else "DROP TRIGGER no_x")  # fmt: skip
    assert dump(queue.db) == before


# A trigger that refuses tasks of type 'x' in each backend's dialect.
REFUSE_TYPE_X = {
    "sqlite": (
        "CREATE TRIGGER no_x BEFORE INSERT ON task_queue WHEN NEW.type = 'x' "
        "BEGIN SELECT RAISE(ABORT, 'x refused'); END",
    ),
    "postgres": (
        "CREATE FUNCTION refuse_x() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.type = 'x' THEN RAISE EXCEPTION 'x refused'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER no_x BEFORE INSERT ON task_queue FOR EACH ROW EXECUTE FUNCTION refuse_x()",
    ),
}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"payload": object()}, TypeError),
        ({"payload": {"b": b"bytes"}}, TypeError),
        ({"payload": math.inf}, ValueError),
        ({"type": ""}, ValueError),
        ({"type": "   "}, ValueError),
        ({"type": 3}, TypeError),
        ({"priority": 1.5}, TypeError),
        ({"priority": True}, TypeError),
        ({"priority": 2**63}, ValueError),
        ({"compatibility": ["eu"]}, TypeError),
        ({"compatibility": {"region": 5}}, TypeError),
        ({"compatibility": {"x": {1}}}, TypeError),
        ({"run_after": "2026-01-01"}, TypeError),
        ({"run_after": datetime(2026, 1, 1)}, ValueError),  # naive
        ({"max_attempts": 0}, ValueError),
        ({"idempotency_key": ""}, ValueError),
        ({"idempotency_key": 5}, TypeError),
    ],
)
def test_bad_enqueue_input_is_refused_and_changes_nothing(
    queue: TaskQueue, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    queue.enqueue("existing", {})
    before = dump(queue.db)
    arguments: dict[str, Any] = {"type": "t", "payload": {}, **kwargs}
    with pytest.raises(error):
        queue.enqueue(arguments.pop("type"), arguments.pop("payload"), **arguments)
    assert dump(queue.db) == before


# -- claim -----------------------------------------------------------------------------------


def test_claim_order_is_priority_then_run_after_then_id(queue: TaskQueue, clock: FakeClock) -> None:
    t0 = clock.now
    a = queue.enqueue("t", "a", priority=5, run_after=t0 - timedelta(seconds=1))
    b = queue.enqueue("t", "b", priority=5, run_after=t0 - timedelta(seconds=9))
    c = queue.enqueue("t", "c", priority=1, run_after=t0)
    d = queue.enqueue("t", "d", priority=5, run_after=t0 - timedelta(seconds=9))
    e = queue.enqueue("t", "e", priority=0, run_after=t0 + timedelta(seconds=60))  # not due
    claimed = [task.id for task in queue.claim("w", limit=10)]
    assert claimed == [c, b, d, a]
    assert queue.claim("w") == []
    clock.advance(60)
    assert [task.id for task in queue.claim("w")] == [e]


def test_claim_one_at_a_time_follows_the_same_order(queue: TaskQueue) -> None:
    ids = [queue.enqueue("t", i, priority=p) for i, p in enumerate([3, 1, 2, 1])]
    order = [queue.claim_one("w").id for _ in ids]  # type: ignore[union-attr]
    assert order == [ids[1], ids[3], ids[2], ids[0]]
    assert queue.claim_one("w") is None


def test_claim_sets_the_lease_fields(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", {})
    clock.advance(2)
    task = queue.claim_one("worker-a", lease_seconds=45)
    assert task is not None and task.id == task_id
    assert task.status is TaskStatus.PROCESSING
    assert task.locked_by == "worker-a"
    assert task.attempts == 1
    assert task.reserved_at_utc == task.processing_started_utc == clock.now
    assert task.lease_until_utc == clock.now + timedelta(seconds=45)
    assert queue.get(task_id) == task


def test_claim_default_lease(db: QueueDatabase, clock: FakeClock) -> None:
    queue = TaskQueue(db, clock=clock, default_lease_seconds=12)
    queue.enqueue("t", {})
    task = queue.claim_one("w")
    assert task is not None
    assert task.lease_until_utc == clock.now + timedelta(seconds=12)


def test_region_filter(queue: TaskQueue) -> None:
    anywhere = queue.enqueue("t", {})
    eu = queue.enqueue("t", {}, compatibility={"region": "eu"})
    us = queue.enqueue("t", {}, compatibility={"region": "us"})
    # A worker without a region gets only tasks without one.
    assert [t.id for t in queue.claim("w0", limit=10)] == [anywhere]
    assert [t.id for t in queue.claim("w1", region="eu", limit=10)] == [eu]
    assert [t.id for t in queue.claim("w2", region="us", limit=10)] == [us]
    fresh = queue.enqueue("t", {})
    assert [t.id for t in queue.claim("w3", region="asia", limit=10)] == [fresh]


def test_type_filter(queue: TaskQueue) -> None:
    a = queue.enqueue("alpha", {})
    b = queue.enqueue("beta", {})
    c = queue.enqueue("gamma", {})
    assert [t.id for t in queue.claim("w", types=["beta", "gamma"], limit=10)] == [b, c]
    assert [t.id for t in queue.claim("w", types=("alpha",), limit=10)] == [a]
    assert queue.claim("w", types={"delta"}) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"worker_id": ""}, ValueError),
        ({"worker_id": None}, TypeError),
        ({"worker_id": 7}, TypeError),
        ({"lease_seconds": -1}, ValueError),
        ({"lease_seconds": 0}, ValueError),
        ({"lease_seconds": math.nan}, ValueError),
        ({"lease_seconds": "30"}, TypeError),
        ({"limit": 0}, ValueError),
        ({"limit": 2.0}, TypeError),
        ({"types": "alpha"}, TypeError),
        ({"types": []}, ValueError),
        ({"types": [""]}, ValueError),
        ({"region": ""}, ValueError),
        ({"region": 1}, TypeError),
    ],
)
def test_bad_claim_input_is_refused_and_changes_nothing(
    queue: TaskQueue, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    queue.enqueue("alpha", {})
    before = dump(queue.db)
    arguments: dict[str, Any] = {"worker_id": "w", **kwargs}
    with pytest.raises(error):
        queue.claim(arguments.pop("worker_id"), **arguments)
    assert dump(queue.db) == before


# -- complete, fail, leases ------------------------------------------------------------------


def test_complete(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", {})
    queue.claim_one("w")
    clock.advance(3)
    queue.complete(task_id, "w")
    task = queue.get(task_id)
    assert task.status is TaskStatus.COMPLETED
    assert task.finished_at_utc == clock.now
    assert task.lease_until_utc is None
    assert task.locked_by == "w"
    with pytest.raises(LeaseLostError) as info:
        queue.complete(task_id, "w")
    assert info.value.status == "completed" and info.value.holder is None


def test_dead_workers_lease_expires_and_its_late_calls_are_refused(
    queue: TaskQueue, clock: FakeClock
) -> None:
    task_id = queue.enqueue("t", {})
    queue.claim_one("dead", lease_seconds=10)
    clock.advance(9)
    assert queue.claim_one("other") is None  # still leased
    clock.advance(2)
    retaken = queue.claim_one("other", lease_seconds=10)
    assert retaken is not None and retaken.id == task_id
    assert retaken.attempts == 2
    assert retaken.error_message is not None and "lease expired" in retaken.error_message
    before = dump(queue.db)
    for late_call in (
        lambda: queue.complete(task_id, "dead"),
        lambda: queue.fail(task_id, "dead", "too late"),
        lambda: queue.extend_lease(task_id, "dead", 30),
    ):
        with pytest.raises(LeaseLostError) as info:
            late_call()
        assert info.value.holder == "other"
        assert info.value.status == "processing"
        assert "other" in str(info.value)
    assert dump(queue.db) == before
    queue.complete(task_id, "other")


def test_lease_expired_on_the_last_attempt_fails_for_good(
    queue: TaskQueue, clock: FakeClock
) -> None:
    task_id = queue.enqueue("t", {}, max_attempts=2)
    for _ in range(2):
        assert queue.claim_one("w", lease_seconds=5) is not None
        clock.advance(6)
    assert queue.claim_one("w") is None
    task = queue.get(task_id)
    assert task.status is TaskStatus.FAILED
    assert task.attempts == 2
    assert task.finished_at_utc == clock.now
    assert task.error_message is not None
    assert "final attempt (2 of 2)" in task.error_message
    clock.advance(3600)
    assert queue.claim_one("w") is None  # never runs again


def test_release_expired_leases_without_claiming(queue: TaskQueue, clock: FakeClock) -> None:
    queue.enqueue("t", {})
    queue.enqueue("t", {}, max_attempts=1)
    queue.claim("w", limit=2, lease_seconds=1)
    assert queue.release_expired_leases() == 0
    clock.advance(2)
    assert queue.release_expired_leases() == 2
    counts = queue.counts()
    assert counts[TaskStatus.QUEUED] == 1 and counts[TaskStatus.FAILED] == 1


def test_extend_lease_keeps_a_long_task(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", {})
    queue.claim_one("w", lease_seconds=10)
    for _ in range(5):
        clock.advance(8)
        until = queue.extend_lease(task_id, "w", 10)
        assert until == clock.now + timedelta(seconds=10)
        assert queue.claim_one("thief") is None
    assert queue.get(task_id).lease_until_utc == until
    queue.complete(task_id, "w")


def test_fail_retries_with_exponential_backoff_then_fails(
    db: QueueDatabase, clock: FakeClock
) -> None:
    queue = TaskQueue(
        db, clock=clock, rng=random.Random(7), retry_backoff_seconds=2, retry_jitter=0.25
    )
    task_id = queue.enqueue("t", {}, max_attempts=4)
    delays = []
    for attempt in range(1, 4):
        task = queue.claim_one("w")
        assert task is not None and task.attempts == attempt
        failed = queue.fail(task_id, "w", f"error {attempt}")
        assert failed.status is TaskStatus.QUEUED
        assert failed.error_message == f"error {attempt}"
        assert failed.locked_by is None and failed.lease_until_utc is None
        assert failed.run_after_utc is not None
        delay = (failed.run_after_utc - clock.now).total_seconds()
        base = 2 * 2 ** (attempt - 1)
        assert base <= delay <= base * 1.25 + 0.001, (attempt, delay)
        delays.append(delay)
        clock.advance(delay - 0.5)
        assert queue.claim_one("w") is None  # backoff not over yet
        clock.advance(0.5)
    assert delays == sorted(delays)
    queue.claim_one("w")
    final = queue.fail(task_id, "w", "gave up")
    assert final.status is TaskStatus.FAILED
    assert final.attempts == 4
    assert final.finished_at_utc == clock.now
    assert final.error_message == "gave up"
    clock.advance(10_000)
    assert queue.claim_one("w") is None


def test_backoff_is_capped(db: QueueDatabase, clock: FakeClock) -> None:
    queue = TaskQueue(
        db, clock=clock, retry_backoff_seconds=10, retry_backoff_max_seconds=15, retry_jitter=0
    )
    task_id = queue.enqueue("t", {}, max_attempts=10)
    for _ in range(4):
        queue.claim_one("w")
        task = queue.fail(task_id, "w", "x")
        clock.now = task.run_after_utc  # type: ignore[assignment]
    assert task.run_after_utc - task.updated_at_utc == timedelta(seconds=15)  # type: ignore[operator]


def test_retry_in_overrides_the_backoff(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", {})
    queue.claim_one("w")
    task = queue.fail(task_id, "w", "rate limited", retry_in=0.25)
    assert task.run_after_utc == clock.now + timedelta(seconds=0.25)
    assert queue.claim_one("w") is None
    clock.advance(0.25)
    assert queue.claim_one("w") is not None
    task = queue.fail(task_id, "w", "now", retry_in=0)
    assert task.run_after_utc == clock.now


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda q, t: q.complete(t, ""), ValueError),
        (lambda q, t: q.complete(t, 5), TypeError),
        (lambda q, t: q.complete("1", "w"), TypeError),
        (lambda q, t: q.complete(t + 100, "w"), TaskNotFoundError),
        (lambda q, t: q.fail(t + 100, "w", "x"), TaskNotFoundError),
        (lambda q, t: q.fail(t, "w", 42), TypeError),
        (lambda q, t: q.fail(t, "w", "x", retry_in=-1), ValueError),
        (lambda q, t: q.extend_lease(t, "w", -5), ValueError),
        (lambda q, t: q.extend_lease(t + 100, "w", 5), TaskNotFoundError),
        (lambda q, t: q.get(t + 100), TaskNotFoundError),
        (lambda q, t: q.log(t + 100, "INFO", "x"), TaskNotFoundError),
        (lambda q, t: q.log(t, "LOUD", "x"), ValueError),
        (lambda q, t: q.log(t, "INFO", 5), TypeError),
        (lambda q, t: q.log(t, "INFO", "x", {"bad": {1}}), TypeError),
        (lambda q, t: q.register_worker("", {}), ValueError),
        (lambda q, t: q.register_worker("w", ["gpu"]), TypeError),
        (lambda q, t: q.register_worker("w", {"f": lambda: 1}), TypeError),
        (lambda q, t: q.worker_heartbeat(None), TypeError),
    ],
)
def test_bad_input_to_other_operations_changes_nothing(
    queue: TaskQueue, call: Any, error: Any
) -> None:
    task_id = queue.enqueue("t", {})
    queue.claim_one("w")
    before = dump(queue.db)
    with pytest.raises(error):
        call(queue, task_id)
    assert dump(queue.db) == before


def test_task_not_found_error_names_the_id(queue: TaskQueue) -> None:
    with pytest.raises(TaskNotFoundError, match="no task with id 999") as info:
        queue.get(999)
    assert info.value.task_id == 999


# -- workers, logs, counts -------------------------------------------------------------------


def test_workers_and_heartbeats(queue: TaskQueue, clock: FakeClock) -> None:
    worker = queue.register_worker("w1", {"gpu": True, "region": "eu"})
    assert worker.heartbeat_utc == clock.now
    clock.advance(30)
    queue.worker_heartbeat("w1")
    stored = queue.get_worker("w1")
    assert stored is not None
    assert stored.capabilities == {"gpu": True, "region": "eu"}
    assert stored.heartbeat_utc == clock.now
    queue.worker_heartbeat("w2")  # unknown: registered with no capabilities
    queue.register_worker("w1", {"gpu": False})  # upsert replaces capabilities
    assert [(w.worker_id, w.capabilities) for w in queue.workers()] == [
        ("w1", {"gpu": False}),
        ("w2", {}),
    ]
    assert queue.get_worker("nobody") is None


def test_logs_round_trip(queue: TaskQueue, clock: FakeClock) -> None:
    task_id = queue.enqueue("t", {})
    first = queue.log(task_id, "info", "started", {"step": 1, "of": [1, 2]})
    clock.advance(1)
    second = queue.log(task_id, "ERROR", "broke")
    logs = queue.logs(task_id)
    assert [log.log_id for log in logs] == [first, second]
    assert logs[0].level == "INFO" and logs[0].details == {"step": 1, "of": [1, 2]}
    assert logs[1].details is None and logs[1].at_utc == clock.now
    assert queue.logs(task_id + 1) == []


def test_counts_cover_every_status(queue: TaskQueue) -> None:
    ids = queue.enqueue_many([{"type": "t", "payload": i, "max_attempts": 1} for i in range(4)])
    queue.claim("w", limit=3)
    queue.complete(ids[0], "w")
    queue.fail(ids[1], "w", "x")
    assert queue.counts() == {
        TaskStatus.QUEUED: 1,
        TaskStatus.PROCESSING: 1,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 1,
        TaskStatus.CANCELLED: 0,
    }


def test_constructor_validation(db: QueueDatabase) -> None:
    with pytest.raises(TypeError):
        TaskQueue("queue.db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_backoff"):
        TaskQueue(db, retry_backoff_seconds=0)
    with pytest.raises(ValueError, match="retry_jitter"):
        TaskQueue(db, retry_jitter=-0.1)
    assert TaskQueue(db).now().tzinfo is timezone.utc


@pytest.mark.sqlite_only(
    reason="holds SQLite's file write lock; tests/postgres has the row-lock case"
)
def test_busy_database_surfaces_as_queue_busy_error(queue: TaskQueue) -> None:
    due = queue.enqueue("due", {})
    holder = sqlite3.connect(queue.db.path, isolation_level=None)
    short = TaskQueue(QueueDatabase(queue.db.path, busy_timeout_ms=50))
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(QueueBusyError):
            short.enqueue("t", {})
        with pytest.raises(QueueBusyError):
            short.claim("w")
        # A claim that finds nothing needs no write lock, so it answers while the lock is held.
        assert short.claim("w", types=["other"]) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert queue.counts()[TaskStatus.QUEUED] == 1
    assert queue.get(due).status is TaskStatus.QUEUED


def test_boundaries_a_lease_ending_now_is_expired_and_a_task_due_now_is_due(
    queue: TaskQueue, clock: FakeClock
) -> None:
    task_id = queue.enqueue("t", {}, run_after=clock.now + timedelta(seconds=5))
    clock.advance(4.999)
    assert queue.claim_one("w1") is None
    clock.advance(0.001)  # run_after == now: due
    assert queue.claim_one("w1", lease_seconds=1) is not None
    clock.advance(0.999)
    assert queue.claim_one("w2") is None  # the lease still has a millisecond
    clock.advance(0.001)  # lease_until == now: expired
    task = queue.claim_one("w2")
    assert task is not None
    assert task.id == task_id
    assert task.locked_by == "w2"


def test_from_row_reads_every_listed_column(queue: TaskQueue, db: QueueBackend) -> None:
    """A row of `SELECT {task_columns}` builds the same Task as the queue returns."""
    from queue_core import Task

    task_id = queue.enqueue("render", {"format": "png"}, compatibility={"region": "eu"})
    assert db.queries["task_columns"] in db.queries["get_task"]
    row = db.execute(db.queries["get_task"], {"task_id": task_id}).fetchone()
    assert set(row.keys()) == set(Task.__dataclass_fields__)
    assert Task.from_row(row) == queue.get(task_id)
