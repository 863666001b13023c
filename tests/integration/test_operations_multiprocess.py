"""Operations against real processes (spawn): prune racing enqueue, backup under writers."""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from queue_core import QueueBusyError, QueueDatabase, TaskQueue, maintenance
from tests.conftest import FakeClock

SPAWN = multiprocessing.get_context("spawn")
pytestmark = pytest.mark.slow
TIMEOUT = 120
KEYS = 300


class _SlowLookupDatabase(QueueDatabase):
    """Pauses after an insert that lost its key, widening the window a racing prune can hit
    (between the enqueue's insert and its lookup of the winner) from microseconds to 5 ms."""

    def execute(self, sql: str, params: Any = ()) -> Any:
        cursor = super().execute(sql, params)
        if sql.lstrip().startswith("INSERT INTO task_queue") and cursor.rowcount == 0:
            time.sleep(0.005)
        return cursor


def _enqueuer(path: str, seed: int, start: Any, results: Any) -> None:
    keys = [f"key-{i}" for i in range(KEYS)]
    random.Random(seed).shuffle(keys)
    returned: dict[str, int] = {}
    errors: list[str] = []
    with _SlowLookupDatabase(path) as db:
        queue = TaskQueue(db)
        start.wait(TIMEOUT)
        for key in keys:
            while True:
                try:
                    returned[key] = queue.enqueue("job", {"key": key}, idempotency_key=key)
                    break
                except QueueBusyError:
                    continue
                except Exception as exc:  # reported, so the parent shows what went wrong
                    errors.append(repr(exc))
                    break
    results.put({"returned": returned, "errors": errors})


def _pruner(path: str, start: Any, results: Any) -> None:
    deleted = 0
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        start.wait(TIMEOUT)
        while True:
            result = queue.prune(
                completed_older_than=timedelta(days=1),
                failed_older_than=None,
                batch_size=1,
                pause_seconds=0.001,
            )
            deleted += result.total
            if result.total == 0:
                break
    results.put({"deleted": deleted})


def test_prune_racing_enqueue_of_the_same_keys(tmp_path: Path) -> None:
    """Every key ends with at most one task, and every enqueue returned the old task (before it
    was pruned) or the one live task now holding the key; nothing raised."""
    path = tmp_path / "queue.db"
    with QueueDatabase(path) as db:
        db.initialize_schema()
        old = TaskQueue(db, clock=FakeClock())  # 2026-01-01: long finished by now
        old_ids = {
            f"key-{i}": old.enqueue("job", {"old": i}, idempotency_key=f"key-{i}")
            for i in range(KEYS)
        }
        while old.claim("setup", limit=100):
            pass
        db.execute("UPDATE task_queue SET status = 'completed', finished_at_utc = run_after_utc")
    start = SPAWN.Barrier(3)
    results = SPAWN.Queue()
    procs = [
        SPAWN.Process(target=_enqueuer, args=(str(path), seed, start, results)) for seed in (1, 2)
    ]
    procs.append(SPAWN.Process(target=_pruner, args=(str(path), start, results)))
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=TIMEOUT) for _ in procs]
    for proc in procs:
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
    enqueuers = [report for report in reports if "returned" in report]
    assert all(report["errors"] == [] for report in enqueuers)
    with QueueDatabase(path) as db:
        live = {
            row[0]: row[1]
            for row in db.execute(
                "SELECT idempotency_key, id FROM task_queue WHERE status = 'queued'"
            )
        }
        remaining_old = db.execute(
            "SELECT count(*) FROM task_queue WHERE status = 'completed'"
        ).fetchone()[0]
        assert maintenance.integrity_check(db) == []
    for key, old_id in old_ids.items():
        seen = {report["returned"][key] for report in enqueuers}
        new = seen - {old_id}
        assert len(new) <= 1, (key, seen)  # never two new tasks for one key
        if new:
            assert live.get(key) == new.pop()  # the new id is the task holding the key
    assert remaining_old + len(live) <= KEYS


def _writer(path: str, kind: str, index: int, stop: Any, done: Any, results: Any) -> None:
    writes = busy = 0
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        n = 0
        while not stop.is_set():
            try:
                if kind == "producer":
                    queue.enqueue("made", {"n": n, "pad": "x" * 200})
                    n += 1
                else:
                    task = queue.claim_one(f"worker-{id(queue)}")
                    if task is None:
                        time.sleep(0.001)
                        continue
                    queue.complete(task.id, f"worker-{id(queue)}")
            except QueueBusyError:
                busy += 1
                continue
            writes += 1
            with done.get_lock():
                done[index] += 1
    results.put({"kind": kind, "writes": writes, "busy": busy})


def test_backup_while_producers_and_workers_write(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with QueueDatabase(path) as db:
        db.initialize_schema()
        TaskQueue(db).enqueue_many(
            [{"type": "seed", "payload": {"n": i, "pad": "y" * 200}} for i in range(20_000)]
        )
    stop = SPAWN.Event()
    done = SPAWN.Array("q", 3)  # writes so far, per writer
    results = SPAWN.Queue()
    kinds = ["producer", "producer", "worker"]
    procs = [
        SPAWN.Process(target=_writer, args=(str(path), kind, index, stop, done, results))
        for index, kind in enumerate(kinds)
    ]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + TIMEOUT
    while min(done) < 10 and time.monotonic() < deadline:  # every writer is up and writing
        time.sleep(0.01)
    waited_for_writers: list[int] = []

    def progress(written: int, expected: int) -> None:
        # Hold the backup open until the writers made 100 more writes: they would never get
        # there if the backup blocked them.
        if not waited_for_writers:
            target = sum(done) + 100
            while sum(done) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            waited_for_writers.append(sum(done) - target + 100)

    try:
        with QueueDatabase(path) as db:
            # VACUUM INTO calls progress inside its read transaction, so holding it there
            # proves writers go on during a backup; the backup API has the same single read
            # transaction but reports progress from a helper thread.
            first = maintenance.backup(
                db, tmp_path / "online.db", progress=progress, method="vacuum_into"
            )
            second = maintenance.backup(db, tmp_path / "api.db")
    finally:
        stop.set()
        reports = [results.get(timeout=TIMEOUT) for _ in procs]
        for proc in procs:
            proc.join(TIMEOUT)
    assert waited_for_writers and waited_for_writers[0] >= 100
    assert all(report["writes"] > 0 for report in reports)
    for info in (first, second):
        assert maintenance.verify(info.path).ok
        target = tmp_path / f"restored-{info.path.stem}.db"
        maintenance.restore(target, info.path)
        with QueueDatabase(target) as db:
            assert maintenance.integrity_check(db) == []
            counts = TaskQueue(db).counts()
        assert sum(counts.values()) >= 20_000  # the seeded tasks, plus what producers added
