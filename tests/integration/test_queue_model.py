"""Property test: random operation sequences against a plain-Python model of the queue.

Hypothesis drives enqueue, claim, complete, fail, extend_lease, cancel, retry and the clock in any
order; after every step the database must agree with the model on every task's status, holder
and attempts, and counts() (partly kept by triggers) on the number of tasks in each status.
Among other things this proves that a task is never held by two workers, that expired leases
are released exactly when they should be, and that claims follow their strategy (priority,
run_after, id by default; arrival for fifo and lifo; the oldest of some band for
weighted_random).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from queue_core import (
    LeaseLostError,
    QueueBackend,
    QueueDatabase,
    TaskNotFoundError,
    TaskQueue,
    TaskStateError,
    TaskStatus,
    connect,
)
from tests.conftest import FakeClock, empty_postgres_queue

WORKERS = st.sampled_from(["w1", "w2", "w3"])
BACKOFF = 2.0


@dataclass
class ModelTask:
    id: int
    priority: int
    max_attempts: int
    run_after: datetime
    status: TaskStatus = TaskStatus.QUEUED
    holder: str | None = None
    attempts: int = 0
    lease_until: datetime | None = None


def arrival(task: ModelTask) -> tuple[datetime, int]:
    """The order of arrival among due tasks (fifo and lifo): when it became due, then id."""
    return (task.run_after, task.id)


def held_by(task: ModelTask | None, worker: str) -> bool:
    """Whether the model says ``worker`` holds ``task`` (so fenced calls must succeed)."""
    return task is not None and task.status is TaskStatus.PROCESSING and task.holder == worker


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
        self.db, self._cleanup = self.open_database()
        self.db.initialize_schema()
        self.queue = TaskQueue(
            self.db, clock=self.clock, rng=random.Random(0), retry_backoff_seconds=BACKOFF
        )
        self.model: dict[int, ModelTask] = {}

    def open_database(self) -> tuple[QueueBackend, Callable[[], None]]:
        """An empty queue database, and what removes it after the example."""
        folder = tempfile.TemporaryDirectory()
        return QueueDatabase(Path(folder.name) / "model.db"), folder.cleanup

    def teardown(self) -> None:
        self.db.close()
        self._cleanup()

    # -- the model's rules -------------------------------------------------------------------

    def _release_expired(self) -> None:
        for task in self.model.values():
            if task.status is TaskStatus.PROCESSING and task.lease_until <= self.clock.now:  # type: ignore[operator]
                task.holder, task.lease_until = None, None
                if task.attempts < task.max_attempts:
                    task.status = TaskStatus.QUEUED
                else:
                    task.status = TaskStatus.FAILED

    def _pick(self, index: int) -> int:
        ids = sorted(self.model)
        return ids[index % len(ids)] if ids else 1

    # -- operations --------------------------------------------------------------------------

    @rule(
        priority=st.integers(0, 3),
        max_attempts=st.integers(1, 3),
        delay_ms=st.sampled_from([0, 0, 500, 5000]),
    )
    def enqueue(self, priority: int, max_attempts: int, delay_ms: int) -> None:
        run_after = self.clock.now + timedelta(milliseconds=delay_ms)
        task_id = self.queue.enqueue(
            "t", {"n": len(self.model)}, priority=priority, run_after=run_after,
            max_attempts=max_attempts,
        )  # fmt: skip
        assert task_id not in self.model
        self.model[task_id] = ModelTask(task_id, priority, max_attempts, run_after)

    @rule(
        worker=WORKERS,
        limit=st.integers(1, 3),
        lease=st.sampled_from([1, 5, 30]),
        strategy=st.sampled_from(["priority", "priority", "fifo", "lifo", "weighted_random"]),
    )
    def claim(self, worker: str, limit: int, lease: int, strategy: str) -> None:
        claimed = self.queue.claim(worker, limit=limit, lease_seconds=lease, strategy=strategy)
        self._release_expired()
        due = [
            t for t in self.model.values()
            if t.status is TaskStatus.QUEUED and t.run_after <= self.clock.now
        ]  # fmt: skip
        if strategy == "weighted_random":
            # Any band may come first, but always the oldest due task left in it.
            expected: list[ModelTask] = []
            left = sorted(due, key=arrival)
            for task in claimed:
                oldest = next(t for t in left if t.priority == task.priority)
                expected.append(oldest)
                left.remove(oldest)
            assert len(claimed) == min(limit, len(due))
        elif strategy == "priority":
            expected = sorted(due, key=lambda t: (t.priority, *arrival(t)))[:limit]
        else:
            expected = sorted(due, key=arrival, reverse=strategy == "lifo")[:limit]
        assert [t.id for t in claimed] == [t.id for t in expected]
        for task in expected:
            task.status, task.holder = TaskStatus.PROCESSING, worker
            task.attempts += 1
            task.lease_until = self.clock.now + timedelta(seconds=lease)

    @rule(worker=WORKERS, index=st.integers(0, 50))
    def complete(self, worker: str, index: int) -> None:
        task_id = self._pick(index)
        expected = self.model.get(task_id)
        try:
            self.queue.complete(task_id, worker)
        except TaskNotFoundError:
            assert expected is None
            return
        except LeaseLostError as exc:
            lost = exc
        else:
            lost = None
        assert expected is not None
        if lost is not None:
            assert not held_by(expected, worker)
            holder = expected.holder if expected.status is TaskStatus.PROCESSING else None
            assert lost.holder == holder
            return
        assert held_by(expected, worker)
        expected.status, expected.lease_until = TaskStatus.COMPLETED, None

    @rule(worker=WORKERS, index=st.integers(0, 50), retry_in=st.sampled_from([None, 0, 3]))
    def fail(self, worker: str, index: int, retry_in: int | None) -> None:
        task_id = self._pick(index)
        expected = self.model.get(task_id)
        try:
            task = self.queue.fail(task_id, worker, "boom", retry_in=retry_in)
        except (LeaseLostError, TaskNotFoundError):
            assert not held_by(expected, worker)
            return
        assert expected is not None
        assert held_by(expected, worker)
        expected.lease_until = None
        if expected.attempts < expected.max_attempts:
            expected.status, expected.holder = TaskStatus.QUEUED, None
            assert task.run_after_utc is not None
            if retry_in is None:
                delay = (task.run_after_utc - self.clock.now).total_seconds()
                base = BACKOFF * 2 ** (expected.attempts - 1)
                assert base <= delay <= base * 1.25 + 0.001
            else:
                assert task.run_after_utc == self.clock.now + timedelta(seconds=retry_in)
            expected.run_after = task.run_after_utc
        else:
            expected.status = TaskStatus.FAILED
        assert task.status is expected.status

    @rule(worker=WORKERS, index=st.integers(0, 50))
    def extend(self, worker: str, index: int) -> None:
        task_id = self._pick(index)
        expected = self.model.get(task_id)
        try:
            until = self.queue.extend_lease(task_id, worker, 10)
        except (LeaseLostError, TaskNotFoundError):
            assert not held_by(expected, worker)
            return
        assert expected is not None
        assert held_by(expected, worker)
        expected.lease_until = until

    @rule(index=st.integers(0, 50))
    def cancel(self, index: int) -> None:
        task_id = self._pick(index)
        expected = self.model.get(task_id)
        try:
            self.queue.cancel(task_id)
        except TaskNotFoundError:
            assert expected is None
            return
        except TaskStateError:
            assert expected is not None and expected.status.is_final
            return
        assert expected is not None and not expected.status.is_final
        expected.status, expected.lease_until = TaskStatus.CANCELLED, None

    @rule(index=st.integers(0, 50))
    def retry(self, index: int) -> None:
        task_id = self._pick(index)
        expected = self.model.get(task_id)
        try:
            task = self.queue.retry(task_id)
        except TaskNotFoundError:
            assert expected is None
            return
        except TaskStateError:
            assert expected is not None
            assert expected.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED)
            return
        assert expected is not None
        assert expected.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
        expected.status, expected.holder, expected.attempts = TaskStatus.QUEUED, None, 0
        expected.run_after = task.run_after_utc or self.clock.now

    @rule(seconds=st.sampled_from([0.5, 1, 2, 6, 31]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- what must always hold ---------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self.db.execute(
            "SELECT id, status, locked_by, attempts FROM task_queue ORDER BY id"
        ).fetchall()
        assert [row["id"] for row in rows] == sorted(self.model)
        for row in rows:
            task = self.model[row["id"]]
            assert row["status"] == task.status.value, (row["id"], row["status"], task)
            assert row["attempts"] == task.attempts
            assert row["attempts"] <= task.max_attempts
            if task.status is TaskStatus.PROCESSING:
                assert row["locked_by"] == task.holder
        counts = self.queue.counts()
        assert counts == {
            status: sum(1 for task in self.model.values() if task.status is status)
            for status in TaskStatus
        }


QueueMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueModel = QueueMachine.TestCase


class PostgresQueueMachine(QueueMachine):
    """The same machine on PostgreSQL: the session's queue database, emptied per example."""

    url: ClassVar[str] = ""

    def open_database(self) -> tuple[QueueBackend, Callable[[], None]]:
        empty_postgres_queue(self.url)
        return connect(self.url), lambda: None


# Fewer examples than on SQLite: each step costs round trips to a server on the same 2 cores.
PostgresQueueMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.postgres
class TestQueueModelPostgres(PostgresQueueMachine.TestCase):  # type: ignore[name-defined,misc,valid-type]
    @pytest.fixture(autouse=True)
    def _postgres(self, postgres_queue_url: str) -> None:
        PostgresQueueMachine.url = postgres_queue_url
