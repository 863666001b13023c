"""Claims under real conditions: filters on their indexes, strategies, the look before the lock."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from queue_core import (
    QueueBackend,
    QueueBusyError,
    QueueDatabase,
    TaskQueue,
    TaskStatus,
    claiming,
    sql,
)
from queue_core.claiming import ClaimStrategy
from tests.conftest import FakeClock

NOW = "2026-01-01 12:00:00.000"


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def plan(db: QueueDatabase, name: str, arm: dict[str, Any]) -> list[str]:
    query = claiming.statement(name, "type" in arm)
    params = {**arm, "now": NOW, "limit": 1}
    return [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {query}", params)]


@pytest.mark.sqlite_only(reason="SQLite's query plans; PostgreSQL claims with its own statement")
@pytest.mark.parametrize(
    ("arm", "index"),
    [
        ({"region": None}, "ix_task_queued_region (region=?)"),
        ({"region": "eu"}, "ix_task_queued_region (region=?)"),
        ({"type": "thumb", "region": None}, "ix_task_queued_type_region (type=? AND region=?)"),
        ({"type": "thumb", "region": "us"}, "ix_task_queued_type_region (type=? AND region=?)"),
    ],
)
@pytest.mark.parametrize(
    "name", ["claim_due_in_order", "claim_band_heads_oldest", "claim_band_heads_newest"]
)
def test_every_claim_statement_seeks_its_index_in_claim_order(
    db: QueueDatabase, name: str, arm: dict[str, Any], index: str
) -> None:
    """No arm scans the table or sorts: each read is a seek into a partial index of queued
    tasks whose order is the claim order, so its cost does not grow with the backlog."""
    TaskQueue(db).enqueue_many(
        {"type": "render", "payload": {}, "compatibility": {"region": "eu"}} for _ in range(50)
    )
    db.execute("ANALYZE")  # statistics must not talk the planner out of the index either
    steps = plan(db, name, arm)
    assert any(index in step for step in steps), steps
    assert not any(step.startswith("SCAN task_queue") for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps


@pytest.mark.sqlite_only(reason="SQLite's query plans; PostgreSQL has its own next_due")
@pytest.mark.parametrize(
    ("arm", "index"),
    [
        ({"region": None}, "ix_task_queued_region (region=? AND priority=?)"),
        ({"region": "eu"}, "ix_task_queued_region (region=? AND priority=?)"),
        (
            {"type": "thumb", "region": "us"},
            "ix_task_queued_type_region (type=? AND region=? AND priority=?)",
        ),
    ],
)
def test_next_due_seeks_each_band_of_its_arm(
    db: QueueDatabase, arm: dict[str, Any], index: str
) -> None:
    """An engine whose claim came up short asks when the next task is due: one seek per
    priority band into the arm's index of queued tasks, never a walk over the queued tasks."""
    TaskQueue(db).enqueue_many(
        {"type": t, "payload": {}, "priority": p, "compatibility": {"region": r}}
        for t in ("render", "thumb")
        for r in ("eu", "us")
        for p in range(5)
    )
    db.execute("ANALYZE")
    query = claiming.statement("next_due_in_arm", "type" in arm)
    steps = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {query}", arm)]
    assert any(index in step for step in steps), steps
    assert not any(step.startswith("SCAN task_queue") for step in steps), steps
    assert not any("ix_task_status_prio_time" in step for step in steps), steps


@pytest.mark.sqlite_only(reason="SQLite's query plans; PostgreSQL claims with its own statement")
def test_leasing_by_ids_looks_up_rowids(db: QueueDatabase) -> None:
    query = sql.queries()["claim_by_ids"]
    params = {"worker_id": "w", "lease_until": NOW, "now": NOW, "ids": "[1]"}
    steps = [str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    assert any("INTEGER PRIMARY KEY" in step for step in steps), steps
    assert not any("ix_task_status_prio_time" in step for step in steps), steps


def test_arms_of_a_claim() -> None:
    assert claiming.arms_for(None, None) == [{"region": None}]
    assert claiming.arms_for(None, "eu") == [{"region": "eu"}, {"region": None}]
    assert claiming.arms_for(["a", "b", "a"], "eu") == [
        {"type": "a", "region": "eu"},
        {"type": "a", "region": None},
        {"type": "b", "region": "eu"},
        {"type": "b", "region": None},
    ]


def test_filtered_claims_keep_the_region_rule_and_the_order(queue: TaskQueue) -> None:
    eu_late = queue.enqueue("render", {}, priority=5, compatibility={"region": "eu"})
    anywhere = queue.enqueue("render", {}, priority=5)
    thumb_us = queue.enqueue("thumb", {}, priority=1, compatibility={"region": "us"})
    eu_urgent = queue.enqueue("render", {}, priority=0, compatibility={"region": "eu"})
    thumb_any = queue.enqueue("thumb", {}, priority=9)
    assert queue.claim("x", types=["nope"]) == []
    assert queue.claim("x", types=["render", "thumb"], region="asia", strategy="fifo") != []
    # That took the oldest task any worker may have; give it back by failing it.
    queue.fail(anywhere, "x", "give back", retry_in=0)
    asia = queue.claim("x", region="asia", types=["render", "thumb"], limit=9)
    assert [t.id for t in asia] == [anywhere, thumb_any]  # no region: matches every worker
    for task in asia:
        queue.complete(task.id, "x")
    assert queue.claim("x", limit=9) == []  # a worker without a region: only such tasks
    got = queue.claim("eu", region="eu", types=["render"], limit=9)
    assert [t.id for t in got] == [eu_urgent, eu_late]
    assert [t.id for t in queue.claim("us", types=["thumb", "thumb"], region="us", limit=9)] == [
        thumb_us
    ]


def _enqueue_three_bands(queue: TaskQueue, clock: FakeClock) -> dict[str, int]:
    """Tasks arriving one second apart: priority 2, 0, 1, 0, 2."""
    ids = {}
    for name, priority in [("a2", 2), ("b0", 0), ("c1", 1), ("d0", 0), ("e2", 2)]:
        ids[name] = queue.enqueue("t", {"n": name}, priority=priority)
        clock.advance(1)
    return ids


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        ("priority", ["b0", "d0", "c1", "a2", "e2"]),
        ("fifo", ["a2", "b0", "c1", "d0", "e2"]),
        ("lifo", ["e2", "d0", "c1", "b0", "a2"]),
    ],
)
def test_deterministic_strategies(
    queue: TaskQueue, clock: FakeClock, strategy: str, order: list[str]
) -> None:
    ids = _enqueue_three_bands(queue, clock)
    names = {v: k for k, v in ids.items()}
    # In one claim of all of them, and one task per claim.
    assert [names[t.id] for t in queue.claim("w", limit=9, strategy=strategy)] == order
    for task_id in ids.values():
        queue.fail(task_id, "w", "again", retry_in=0)
    clock.advance(0.5)  # the retries all arrive now, in id order; arrival order is id then
    singles = [queue.claim_one("w", strategy=strategy) for _ in ids]
    assert all(task is not None for task in singles)
    got = [names[task.id] for task in singles if task is not None]
    if strategy == "priority":
        assert got == order
    else:
        expected = sorted(ids, key=ids.__getitem__)
        assert got == (expected if strategy == "fifo" else expected[::-1])


def test_a_delayed_task_is_not_due_under_any_strategy(queue: TaskQueue, clock: FakeClock) -> None:
    queue.enqueue("t", {}, run_after=clock.now + timedelta(seconds=5))
    for strategy in ClaimStrategy:
        assert queue.claim("w", strategy=strategy) == []
    clock.advance(5)
    assert queue.claim_one("w", strategy="lifo") is not None


def test_weighted_random_picks_bands_by_weight_then_the_oldest(db: QueueDatabase) -> None:
    """With a fixed seed: band k (0 = most urgent) is picked with weight 1/(k+1), each pick is
    the oldest task of its band, and the least urgent band is never starved."""
    clock = FakeClock()
    queue = TaskQueue(db, clock=clock, rng=random.Random(20261129))
    per_band = 400
    for priority in (0, 5, 50):
        queue.enqueue_many(
            {"type": "t", "payload": {}, "priority": priority} for _ in range(per_band)
        )
    picks = 600
    bands: Counter[int] = Counter()
    last_in_band: dict[int, int] = {}
    for _ in range(picks):
        task = queue.claim_one("w", strategy="weighted_random")
        assert task is not None
        bands[task.priority] += 1
        assert task.id > last_in_band.get(task.priority, 0)  # oldest first within a band
        last_in_band[task.priority] = task.id
    weights = claiming.band_weights(3)
    expected = [picks * w / sum(weights) for w in weights]
    observed = [bands[0], bands[5], bands[50]]
    chi_square = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    assert chi_square < 13.82, (observed, expected)  # p = 0.001 with 2 degrees of freedom
    assert observed[0] > observed[1] > observed[2] > 0


def test_weighted_random_with_a_limit_takes_distinct_tasks(db: QueueDatabase) -> None:
    queue = TaskQueue(db, rng=random.Random(7), claim_strategy="weighted_random")
    assert queue.claim_strategy is ClaimStrategy.WEIGHTED_RANDOM
    ids = queue.enqueue_many({"type": "t", "payload": {}, "priority": i % 3} for i in range(9))
    got = [t.id for t in queue.claim("w", limit=20)]
    assert sorted(got) == ids


@pytest.mark.parametrize(
    ("value", "error"), [("random", ValueError), (3, TypeError), ("", ValueError)]
)
def test_bad_strategy_is_refused(queue: TaskQueue, value: Any, error: type[Exception]) -> None:
    queue.enqueue("t", {})
    with pytest.raises(error):
        queue.claim("w", strategy=value)
    with pytest.raises(error):
        TaskQueue(queue.db, claim_strategy=value)
    assert queue.counts()[TaskStatus.QUEUED] == 1


# -- the look before the lock ----------------------------------------------------------------


@contextmanager
def _first(action: Any, db: QueueDatabase) -> Iterator[None]:
    """Make ``db``'s next transaction run ``action`` just before it starts (a rival's move
    between the lookup and the write lock)."""
    original = db.transaction

    @contextmanager
    def late(*args: Any, **kwargs: Any) -> Iterator[Any]:
        db.transaction = original  # type: ignore[method-assign]
        action()
        with original(*args, **kwargs) as conn:
            yield conn

    db.transaction = late  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.transaction = original  # type: ignore[method-assign]


@pytest.mark.sqlite_only(
    reason="SQLite's look before the lock; PostgreSQL's races are in test_multiprocess"
)
def test_two_workers_see_the_same_single_candidate_and_exactly_one_gets_it(
    db: QueueDatabase,
) -> None:
    first = TaskQueue(db)
    rival = TaskQueue(QueueDatabase(db.path))
    task_id = first.enqueue("t", {})
    won: list[int] = []
    with _first(lambda: won.extend(t.id for t in rival.claim("rival")), db):
        lost = first.claim("first")
    assert won == [task_id]
    assert lost == []  # no error, no retry: what was left
    task = first.get(task_id)
    assert (task.status, task.locked_by, task.attempts) == (TaskStatus.PROCESSING, "rival", 1)


@pytest.mark.sqlite_only(
    reason="SQLite's look before the lock; PostgreSQL's races are in test_multiprocess"
)
def test_a_claim_whose_look_was_taken_gets_the_next_task(db: QueueDatabase) -> None:
    first = TaskQueue(db)
    rival = TaskQueue(QueueDatabase(db.path))
    a, b, c = first.enqueue_many({"type": "t", "payload": {"n": i}} for i in range(3))
    with _first(lambda: rival.claim("rival"), db):
        got = first.claim("first", limit=2)
    assert [t.id for t in got] == [b, c]
    assert first.get(a).locked_by == "rival"


@pytest.mark.sqlite_only(
    reason="SQLite's look before the lock; PostgreSQL's races are in test_multiprocess"
)
def test_a_look_that_was_taken_failed_and_rescheduled_in_between_is_not_leased(
    db: QueueDatabase,
) -> None:
    """The look saw the task due; by the time the claim holds the lock a rival has taken it,
    failed it and pushed it an hour back. Its backoff must hold: the claim gets nothing."""
    first = TaskQueue(db)
    rival = TaskQueue(QueueDatabase(db.path))
    task_id = first.enqueue("t", {})

    def take_and_fail() -> None:
        taken = rival.claim_one("rival")
        assert taken is not None and taken.id == task_id
        rival.fail(task_id, "rival", "remote said later", retry_in=3600)

    with _first(take_and_fail, db):
        assert first.claim("first") == []
    task = first.get(task_id)
    assert (task.status, task.attempts, task.locked_by) == (TaskStatus.QUEUED, 1, None)


@pytest.mark.sqlite_only(
    reason="counts SQLite's total_changes(); a PostgreSQL claim locks only rows it leases"
)
def test_an_empty_poll_writes_nothing(db: QueueDatabase, clock: FakeClock) -> None:
    queue = TaskQueue(db, clock=clock)
    queue.enqueue("t", {}, run_after=clock.now + timedelta(hours=1))
    changes = db.execute("SELECT total_changes()").fetchone()[0]
    for strategy in ClaimStrategy:
        assert queue.claim("w", strategy=strategy, types=["t", "u"], region="eu") == []
    assert db.execute("SELECT total_changes()").fetchone()[0] == changes


def test_an_expired_lease_is_released_by_the_next_claim_even_with_nothing_else_due(
    db: QueueDatabase, clock: FakeClock
) -> None:
    queue = TaskQueue(db, clock=clock)
    task_id = queue.enqueue("t", {})
    assert queue.claim_one("dead", lease_seconds=5) is not None
    clock.advance(6)
    # A claim for another type finds nothing to take, but it still releases the lease.
    assert queue.claim("other", types=["u"]) == []
    assert queue.get(task_id).status is TaskStatus.QUEUED
    task = queue.claim_one("rescuer")
    assert task is not None and (task.id, task.attempts) == (task_id, 2)


@pytest.mark.sqlite_only(
    reason="SQLite's look before the lock; PostgreSQL's races are in test_multiprocess"
)
def test_only_the_first_empty_claim_after_a_busy_spell_takes_the_lock(
    db: QueueDatabase,
) -> None:
    """A claim after one that found work goes straight to the lock (the look would most
    likely see a task); once a claim comes back empty, the next ones look first again."""
    worker = TaskQueue(QueueDatabase(db.path, busy_timeout_ms=50))
    task_id = worker.enqueue("t", {})
    assert [t.id for t in worker.claim("w")] == [task_id]
    holder = QueueDatabase(db.path)
    with holder.transaction():
        with pytest.raises(QueueBusyError):
            worker.claim("w")  # straight to the lock, which is held
        assert worker.claim("w") == []  # empty before, so it looks: no lock needed
    assert worker.claim("w") == []
    assert worker.get(task_id).locked_by == "w"
