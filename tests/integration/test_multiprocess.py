"""The queue across real processes (spawn, as on Windows): drain, dead workers, races.

Every test runs on SQLite and on PostgreSQL (``queue_target`` is a file path or a URL, and each
process opens it with ``connect``). The PostgreSQL drain is smaller: its cost is round trips
to a server that shares the machine's two cores with the workers.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from typing import Any

import psutil
import pytest

from queue_core import LeaseLostError, QueueBusyError, QueueDatabase, TaskQueue, TaskStatus, connect

SPAWN = multiprocessing.get_context("spawn")
pytestmark = pytest.mark.slow
TIMEOUT = 120


def _worker(path: str, worker_id: str, producers_done: Any, results: Any) -> None:
    claimed: list[int] = []
    completed: list[int] = []
    busy = 0
    with connect(path) as db:
        queue = TaskQueue(db)
        idle_since: float | None = None
        while True:
            try:
                tasks = queue.claim(worker_id, limit=4, lease_seconds=120)
            except QueueBusyError:
                busy += 1
                continue
            if not tasks:
                if producers_done.is_set():
                    # Producers finished before this empty claim: the queue is drained.
                    if idle_since is not None and time.monotonic() - idle_since > 0.2:
                        break
                    idle_since = idle_since or time.monotonic()
                time.sleep(0.005)
                continue
            idle_since = None
            for task in tasks:
                claimed.append(task.id)
                try:
                    queue.complete(task.id, worker_id)
                except QueueBusyError:
                    busy += 1
                    continue
                completed.append(task.id)
    results.put({"worker": worker_id, "claimed": claimed, "completed": completed, "busy": busy})


def _producer(path: str, producer: int, count: int, results: Any) -> None:
    ids: list[int] = []
    busy = 0
    with connect(path) as db:
        queue = TaskQueue(db)
        sent = 0
        while sent < count:
            try:
                if sent % 50 < 25:
                    ids.append(queue.enqueue("work", {"producer": producer, "n": sent}))
                    sent += 1
                else:
                    batch = [
                        {"type": "work", "payload": {"producer": producer, "n": sent + i}}
                        for i in range(25)
                    ]
                    ids += queue.enqueue_many(batch)
                    sent += 25
            except QueueBusyError:
                busy += 1
    results.put({"producer": producer, "ids": ids, "busy": busy})


# Tasks preloaded, and enqueued by each of the two producers, per backend.
DRAIN_SIZES = {"sqlite": (3000, 1000), "postgres": (600, 200)}


def test_four_workers_drain_while_two_producers_enqueue(
    queue_target: str, queue_backend: str
) -> None:
    """Every task (5,000 on SQLite) completed exactly once, never handed to two workers, no
    busy errors."""
    path = queue_target
    preload, per_producer = DRAIN_SIZES[queue_backend]
    total = preload + 2 * per_producer
    with connect(path) as db:
        preloaded = TaskQueue(db).enqueue_many(
            {"type": "work", "payload": {"n": i}} for i in range(preload)
        )
    producers_done = SPAWN.Event()
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_worker, args=(str(path), f"w{i}", producers_done, results))
        for i in range(4)
    ]
    producers = [
        SPAWN.Process(target=_producer, args=(str(path), p, per_producer, results))
        for p in range(2)
    ]
    for process in workers + producers:
        process.start()
    reports = [results.get(timeout=TIMEOUT) for _ in producers]
    producers_done.set()
    reports += [results.get(timeout=TIMEOUT) for _ in workers]
    for process in workers + producers:
        process.join(timeout=TIMEOUT)
        assert process.exitcode == 0

    produced = set(preloaded)
    for report in reports:
        produced.update(report.get("ids", []))
    assert len(produced) == total
    claims = Counter(i for r in reports for i in r.get("claimed", []))
    completions = Counter(i for r in reports for i in r.get("completed", []))
    assert set(claims) == produced
    assert max(claims.values()) == 1, "a task was handed out twice"
    assert set(completions) == produced and max(completions.values()) == 1
    assert sum(r["busy"] for r in reports) == 0
    assert all(len(r["claimed"]) > 0 for r in reports if "worker" in r)
    with connect(path) as db:
        queue = TaskQueue(db)
        assert queue.counts() == {
            TaskStatus.QUEUED: 0,
            TaskStatus.PROCESSING: 0,
            TaskStatus.COMPLETED: total,
            TaskStatus.FAILED: 0,
            TaskStatus.CANCELLED: 0,
        }
        attempts = db.execute("SELECT min(attempts), max(attempts) FROM task_queue").fetchone()
        assert tuple(attempts) == (1, 1)
    if queue_backend == "sqlite":
        with QueueDatabase(path) as sqlite_db:
            assert sqlite_db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _hold_then_complete(path: str, ready: Any, results: Any) -> None:
    with connect(path) as db:
        queue = TaskQueue(db)
        task = queue.claim_one("stalled", lease_seconds=1.0)
        assert task is not None
        ready.set()
        time.sleep(3.0)  # suspended or killed by the parent meanwhile
        try:
            queue.complete(task.id, "stalled")
            results.put(("completed", None))
        except LeaseLostError as exc:
            results.put(("lease lost", exc.holder))


def _wait_for_lease_expiry(queue: TaskQueue, worker_id: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = queue.claim_one(worker_id, lease_seconds=60)
        if task is not None:
            return task.id
        time.sleep(0.05)
    raise AssertionError("the expired lease was never released")  # pragma: no cover


def _start_stalling_holder(path: str, queue: TaskQueue) -> tuple[int, Any, Any]:
    """Enqueue a task and start a child that leases it for one second, then stalls."""
    task_id = queue.enqueue("work", {})
    ready, results = SPAWN.Event(), SPAWN.Queue()
    child = SPAWN.Process(target=_hold_then_complete, args=(str(path), ready, results))
    child.start()
    assert ready.wait(TIMEOUT)
    return task_id, child, results


def test_a_killed_worker_s_task_is_claimed_again(queue_target: str) -> None:
    path = queue_target
    with connect(path) as db:
        queue = TaskQueue(db)
        task_id, child, _ = _start_stalling_holder(path, queue)
        child.kill()
        child.join(timeout=TIMEOUT)
        assert queue.get(task_id).locked_by == "stalled"
        assert _wait_for_lease_expiry(queue, "rescuer") == task_id
        task = queue.get(task_id)
        assert (task.locked_by, task.attempts) == ("rescuer", 2)
        # The dead worker's late complete (issued here on its behalf) is refused.
        with pytest.raises(LeaseLostError):
            queue.complete(task_id, "stalled")
        queue.complete(task_id, "rescuer")
        assert queue.get(task_id).status is TaskStatus.COMPLETED


def test_a_stalled_worker_s_late_complete_is_refused(queue_target: str) -> None:
    """A worker frozen past its lease wakes up after another took over: its complete fails."""
    path = queue_target
    with connect(path) as db:
        queue = TaskQueue(db)
        task_id, child, results = _start_stalling_holder(path, queue)
        frozen = psutil.Process(child.pid)
        frozen.suspend()
        try:
            assert _wait_for_lease_expiry(queue, "rescuer") == task_id
        finally:
            frozen.resume()
        assert results.get(timeout=TIMEOUT) == ("lease lost", "rescuer")
        child.join(timeout=TIMEOUT)
        queue.complete(task_id, "rescuer")
        task = queue.get(task_id)
        assert (task.status, task.locked_by) == (TaskStatus.COMPLETED, "rescuer")


def _enqueue_with_key(path: str, start: Any, results: Any) -> None:
    with connect(path) as db:
        queue = TaskQueue(db)
        start.wait(timeout=TIMEOUT)
        ids = [queue.enqueue("work", {"k": k}, idempotency_key=f"key-{k}") for k in range(20)]
    results.put(ids)


def test_idempotency_race_between_processes_creates_one_task_per_key(queue_target: str) -> None:
    path = queue_target
    processes = 6
    start, results = SPAWN.Barrier(processes), SPAWN.Queue()
    children = [
        SPAWN.Process(target=_enqueue_with_key, args=(str(path), start, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=TIMEOUT) for _ in children]
    for child in children:
        child.join(timeout=TIMEOUT)
    assert all(ids == outcomes[0] for ids in outcomes)
    assert len(set(outcomes[0])) == 20
    with connect(path) as db:
        assert db.execute("SELECT count(*) FROM task_queue").fetchone()[0] == 20


def _race_for_one(path: str, worker_id: str, rounds: int, barrier: Any, results: Any) -> None:
    with connect(path) as db:
        queue = TaskQueue(db)
        for _ in range(rounds):
            barrier.wait(timeout=TIMEOUT)  # the parent has enqueued this round's one task
            results.put([task.id for task in queue.claim(worker_id, limit=2)])
            barrier.wait(timeout=TIMEOUT)


def test_two_workers_racing_for_one_task_exactly_one_gets_it(queue_target: str) -> None:
    """Both look, both may see the task; under the write lock only one leases it and the
    other returns empty-handed, without an error."""
    path = queue_target
    rounds = 15
    barrier, results = SPAWN.Barrier(3), SPAWN.Queue()
    with connect(path) as db:
        queue = TaskQueue(db)
        children = [
            SPAWN.Process(target=_race_for_one, args=(str(path), f"w{i}", rounds, barrier, results))
            for i in range(2)
        ]
        for child in children:
            child.start()
        for _ in range(rounds):
            task_id = queue.enqueue("work", {})
            barrier.wait(timeout=TIMEOUT)
            got = sorted((results.get(timeout=TIMEOUT), results.get(timeout=TIMEOUT)))
            assert got == [[], [task_id]]
            barrier.wait(timeout=TIMEOUT)
        for child in children:
            child.join(timeout=TIMEOUT)
            assert child.exitcode == 0
        assert queue.counts()[TaskStatus.PROCESSING] == rounds
