"""pytest-benchmark tests: disabled (run once) in ``nox -s tests``, measured in ``nox -s bench``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_benchmark.fixture import BenchmarkFixture

from bench.baseline_sql import bulk_load, payload
from bench.scenarios.query import CLAIM_INDEX, plans
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import Task, TaskStatus

BATCH = 100


def test_insert_throughput(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    with QueueDatabase(tmp_path / "queue.db") as db:
        db.initialize_schema()
        queue = TaskQueue(db)
        items = [{"type": "bench", "payload": payload(i, 200)} for i in range(BATCH)]
        calls = 0

        def enqueue_batch() -> list[int]:
            nonlocal calls
            calls += 1
            return queue.enqueue_many(items)

        ids = benchmark(enqueue_batch)
        assert len(ids) == BATCH
        assert ids == list(range(ids[0], ids[0] + BATCH))
        assert queue.counts()[TaskStatus.QUEUED] == BATCH * calls
        benchmark.extra_info["tasks_per_call"] = BATCH


def test_query_performance(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with QueueDatabase(path) as db:
        db.initialize_schema()
    backlog = 20_000
    bulk_load(path, 0, backlog)
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        assert any(CLAIM_INDEX in line for line in plans(db)["claim"])
        claimed: list[Any] = []

        def claim() -> Task | None:
            task = queue.claim_one("bench-worker")
            claimed.append(task)
            return task

        task = benchmark(claim)
        assert isinstance(task, Task)
        assert task.status is TaskStatus.PROCESSING
        assert all(t is not None for t in claimed)
        counts = queue.counts()
        assert counts[TaskStatus.PROCESSING] == len(claimed)
        assert counts[TaskStatus.QUEUED] == backlog - len(claimed)
        benchmark.extra_info["backlog"] = backlog
