"""What the hot paths run since migration 0005: enqueue and claim fire no trigger, the
finished-task counters stay right for every transition and carry over from a version 4 file,
and a one-task claim leases its pick by ``id = (subquery)`` through the claim index."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from queue_core import QueueDatabase, TaskQueue, claiming, schema, sql
from queue_core.maintenance import integrity_check
from queue_core.tracing import Statement, TraceEvent
from tests.conftest import FakeClock

NOW = "2026-01-01 12:00:00.000"
FINAL = ("completed", "failed", "cancelled")
LIVE = ("queued", "processing")


def trigger_programs(db: QueueDatabase, query: str, params: Any) -> int:
    """How many trigger sub-programs the statement's bytecode can call (``Program`` opcodes).

    On a fresh connection: an EXPLAIN never checks the schema version, so one the connection
    prepared before a migration would show the old triggers."""
    with QueueDatabase(db.path) as fresh:
        rows = fresh.execute(f"EXPLAIN {query}", params).fetchall()
    return sum(1 for row in rows if row[1] == "Program")


def counters(db: QueueDatabase) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT type, status, n FROM finished_task_counts WHERE n != 0")
    return {(row[0], row[1]): row[2] for row in rows}


def counted_rows(db: QueueDatabase) -> dict[tuple[str, str], int]:
    rows = db.execute(
        "SELECT type, status, count(*) FROM task_queue"
        " WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY type, status"
    )
    return {(row[0], row[1]): row[2] for row in rows}


TASK = ("t", 100, "{}", "{}", 5, NOW, None, NOW, NOW)
LEASE = {"worker_id": "w", "lease_until": NOW, "now": NOW}
HOT_STATEMENTS: dict[str, tuple[str, Any]] = {
    "enqueue": (sql.queries()["enqueue"], TASK),
    "enqueue_batch": (sql.queries()["enqueue_batch"], TASK),
    "claim_in_order": (
        claiming.statement("claim_in_order", False),
        {**LEASE, "region": None, "limit": 1},
    ),
    "claim_in_order (typed arm)": (
        claiming.statement("claim_in_order", True),
        {**LEASE, "type": "t", "region": None, "limit": 1},
    ),
    "claim_first_in_order": (
        claiming.statement("claim_first_in_order", False),
        {**LEASE, "region": None},
    ),
    "claim_by_ids": (sql.queries()["claim_by_ids"], {**LEASE, "ids": "[1]"}),
    "extend_lease": (sql.queries()["extend_lease"], {**LEASE, "task_id": 1}),
    "extend_leases": (sql.queries()["extend_leases"], {**LEASE, "task_ids": "[1]"}),
    "release_unstarted": (sql.queries()["release_unstarted"], {**LEASE, "task_ids": "[1]"}),
}


@pytest.mark.parametrize("name", HOT_STATEMENTS)
def test_enqueue_and_claim_run_no_trigger(db: QueueDatabase, name: str) -> None:
    """A trigger costs every row a sub-program call, and a statement journal inside a
    transaction, even when its WHEN is false; so the statements of enqueue and claim must have
    none to run."""
    query, params = HOT_STATEMENTS[name]
    assert trigger_programs(db, query, params) == 0


@pytest.mark.parametrize("name", ["complete", "complete_many", "fail", "cancel_task"])
def test_statements_that_finish_a_task_run_the_counting_triggers(
    db: QueueDatabase, name: str
) -> None:
    params = {
        **LEASE,
        "task_id": 1,
        "task_ids": "[1]",
        "retry_in": None,
        "backoff_max": 1.0,
        "backoff_base": 1.0,
        "jitter": 0.0,
        "error": "e",
    }
    assert trigger_programs(db, sql.queries()[name], params) == 2  # enter and leave


def trigger_opcodes(db: QueueDatabase, query: str, params: Any) -> list[str]:
    """The opcodes of the trigger sub-programs in the statement's EXPLAIN listing (each starts
    with an Init commented "-- TRIGGER name")."""
    with QueueDatabase(db.path) as fresh:
        rows = fresh.execute(f"EXPLAIN {query}", params).fetchall()
    opcodes: list[str] = []
    inside = False
    for row in rows:
        if row[1] == "Init":
            inside = "-- TRIGGER" in str(row[5])
        elif inside:
            opcodes.append(str(row[1]))
    return opcodes


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("complete", {"now": NOW, "task_id": 1, "worker_id": "w"}),
        ("retry_task", {"now": NOW, "task_id": 1}),
        ("prune_tasks", {"ids": "[1]"}),
    ],
)
def test_the_counting_triggers_build_no_temporary_btree(
    db: QueueDatabase, name: str, params: dict[str, Any]
) -> None:
    """An IN list of three constants in a WHEN would fill a temporary b-tree on every trigger
    run; the WHEN clauses spell the final statuses out instead."""
    opcodes = trigger_opcodes(db, sql.queries()[name], params)
    assert "Program" not in opcodes  # the listing really holds the triggers' own code
    assert opcodes and "OpenEphemeral" not in opcodes, opcodes


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("enqueue_batch", TASK),
        ("complete", {"now": NOW, "task_id": 1, "worker_id": "w"}),
    ],
)
def test_enqueue_and_complete_fill_no_temporary_btree(
    db: QueueDatabase, name: str, params: Any
) -> None:
    """No IN list, and no trigger whose WHEN needs one."""
    with QueueDatabase(db.path) as fresh:
        opcodes = [row[1] for row in fresh.execute(f"EXPLAIN {sql.queries()[name]}", params)]
    assert "OpenEphemeral" not in opcodes


def test_enqueue_returns_the_new_id_or_the_key_holder(queue: TaskQueue) -> None:
    first = queue.enqueue("t", 1)
    keyed = queue.enqueue("t", 2, idempotency_key="k")
    assert keyed > first and queue.enqueue("t", 3, idempotency_key="k") == keyed
    again, fresh = queue.enqueue_many(
        [{"type": "t", "payload": 4, "idempotency_key": "k"}, {"type": "t", "payload": 5}]
    )
    assert again == keyed and queue.get(fresh).payload == 5
    assert [task.payload for task in queue.list_tasks()] == [5, 2, 1]


def _assignments(statement: str) -> set[str]:
    """The columns a ``UPDATE task_queue ... SET`` statement assigns."""
    set_clause = re.split(r"\bWHERE\b", statement.split("SET", 1)[1], maxsplit=1)[0]
    return set(re.findall(r"(?:^|,)\s*(\w+)\s*=", set_clause, flags=re.MULTILINE))


def test_every_status_change_that_can_finish_or_reopen_a_task_writes_finished_at() -> None:
    """Migration 0005's triggers fire on writes of finished_at_utc, so any statement that can
    move a task into or out of a final status must write it. The only statements that change
    status without it move a task between the live statuses (queued -> processing by a claim,
    processing -> queued for unstarted tasks)."""
    updates = {
        name: statement
        for name, statement in sql.queries().items()
        if re.match(r"\s*UPDATE task_queue\b", statement) and "status" in _assignments(statement)
    }
    assert {"complete", "fail", "claim_by_ids", "retry_task", "cancel_task"} <= set(updates)
    live_only = {}
    for name, statement in updates.items():
        if "finished_at_utc" in _assignments(statement):
            continue
        new = re.search(r"SET status = '(\w+)'", statement)
        old = re.findall(r"AND status = '(\w+)'|WHERE status = '(\w+)'", statement)
        live_only[name] = (new[1] if new else None, {a or b for a, b in old})
    assert live_only, "the claim statements change status without finishing anything"
    for name, (new_status, old_statuses) in live_only.items():
        assert new_status in LIVE, (name, new_status)
        assert old_statuses and old_statuses <= set(LIVE), (name, old_statuses)


def test_every_operation_keeps_the_counters_equal_to_the_rows(
    queue: TaskQueue, db: QueueDatabase, clock: FakeClock
) -> None:
    """The transitions the model test does not drive: batches of the worker engine, retry of
    every failed task, a lease that runs out on the last attempt, a cancelled running task and
    prune."""
    ids = queue.enqueue_many({"type": t, "payload": {}} for t in "aabbcc")
    once = queue.enqueue("d", {}, max_attempts=1)
    claimed = [task.id for task in queue.claim("w", limit=9, lease_seconds=10)]
    assert set(claimed) == {*ids, once}
    assert queue.complete_many(ids[:2], "w") == []
    assert queue.release_unstarted(ids[2:3], "w") == []
    queue.fail(ids[3], "w", "no", retry_in=0)
    queue.cancel(ids[4])
    clock.advance(11)  # the remaining leases (ids[5] and once) run out
    again = queue.claim("w2", limit=9)
    assert {task.id for task in again} == {ids[2], ids[3], ids[5]}
    assert queue.get(once).status.value == "failed"  # its only attempt, lost with the lease
    for task in again:
        queue.fail(task.id, "w2", "for good") if task.id == ids[5] else queue.complete(
            task.id, "w2"
        )
    assert counters(db) == counted_rows(db) != {}
    assert queue.retry_failed() == 1  # once; ids[5] had attempts left, so its fail requeued it
    queue.retry(ids[4])
    assert counters(db) == counted_rows(db)
    clock.advance(3600)
    pruned = queue.prune(completed_older_than=timedelta(0), failed_older_than=timedelta(0))
    assert sum(pruned.tasks.values()) > 0
    assert counters(db) == counted_rows(db)
    assert integrity_check(db) == []


def test_a_version_4_file_keeps_its_counts_and_gains_the_cheaper_triggers(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    clock = FakeClock()
    with QueueDatabase(path) as db:
        assert schema.migrate(db, sql.migrations()[:4]) == 4
        queue = TaskQueue(db, clock=clock)
        first, second, third = (queue.enqueue("render", {"n": n}) for n in range(3))
        for task in queue.claim("w", limit=3):
            queue.complete(task.id, "w") if task.id != third else queue.fail(
                task.id, "w", "bad", retry_in=0
            )
        queue.cancel(third)
        before = counters(db)
        assert before == {("render", "completed"): 2, ("render", "cancelled"): 1}
        assert trigger_programs(db, *HOT_STATEMENTS["claim_in_order"]) == 2  # 0004: on status
        assert db.initialize_schema() == schema.latest_version()
        assert counters(db) == before
        assert trigger_programs(db, *HOT_STATEMENTS["claim_in_order"]) == 0
        assert trigger_programs(db, *HOT_STATEMENTS["enqueue_batch"]) == 0
        queue.retry(third)
        assert counters(db) == counted_rows(db) == {("render", "completed"): 2}
        assert [task.id for task in queue.claim("w", limit=3)] == [third]
        queue.complete(third, "w")
        assert counters(db) == counted_rows(db) == {("render", "completed"): 3}
        assert integrity_check(db) == []
        assert {first, second} == {task.id for task in queue.list_tasks()} - {third}


@pytest.mark.parametrize(
    ("arm", "index"),
    [
        ({"region": None}, "ix_task_queued_region (region=?)"),
        ({"region": "eu"}, "ix_task_queued_region (region=?)"),
        ({"type": "thumb", "region": "us"}, "ix_task_queued_type_region (type=? AND region=?)"),
    ],
)
def test_a_one_task_claim_seeks_its_index_and_leases_by_rowid(
    db: QueueDatabase, arm: dict[str, Any], index: str
) -> None:
    TaskQueue(db).enqueue_many(
        {"type": "render", "payload": {}, "compatibility": {"region": "eu"}} for _ in range(50)
    )
    db.execute("ANALYZE")
    query = claiming.statement("claim_first_in_order", "type" in arm)
    steps = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {query}", {**LEASE, **arm})]
    assert any(index in step for step in steps), steps
    assert any("SCALAR SUBQUERY" in step for step in steps), steps  # not an IN list
    assert any("INTEGER PRIMARY KEY" in step for step in steps), steps
    assert not any(step.startswith("SCAN task_queue") for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps


def test_a_one_task_claim_takes_the_first_due_task_of_its_arms(
    db_path: Path, clock: FakeClock
) -> None:
    """A claim right after one that found work leases under the lock with claim_first_in_order
    (no look first), after one read of the lease index instead of the releasing UPDATE."""
    events: list[TraceEvent] = []
    db = QueueDatabase(db_path, tracer=events.append)
    db.initialize_schema()
    queue = TaskQueue(db, clock=clock)
    second = queue.enqueue("render", {}, priority=1)
    first = queue.enqueue("render", {}, priority=0)
    queue.enqueue("render", {}, priority=0, compatibility={"region": "eu"})
    queue.enqueue("render", {}, priority=0, run_after=clock.now + timedelta(seconds=5))
    got = queue.claim_one("w", lease_seconds=60)
    assert got is not None and got.id == first  # looked first: the queue was new
    events.clear()
    got = queue.claim_one("w", lease_seconds=60)
    assert got is not None and got.id == second
    run = [event.sql for event in events if isinstance(event, Statement)]
    assert run[0] == "BEGIN IMMEDIATE" and run[-1] == "COMMIT"
    assert run[1].startswith("SELECT 1 FROM task_queue INDEXED BY ix_task_lease_expiry")
    assert "WHERE id = (" in run[2] and len(run) == 4
    assert (got.status.value, got.locked_by, got.attempts) == ("processing", "w", 1)
    assert got.lease_until_utc == clock.now + timedelta(seconds=60)
    assert queue.get(second) == got
    assert queue.claim_one("w") is None  # the eu task is not for it, the last is not due yet
    db.close()
