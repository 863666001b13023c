"""WorkerEngine: handlers in spawn executors, failures, leases, shutdown and the stop signals.

Every test runs a real engine (spawn children) in a thread and stops it with ``stop()`` or a
fake signal; waits are bounded conditions, never timing assertions. Every test that takes the
``db`` fixture runs on SQLite and on PostgreSQL (``db`` and ``db_path`` are overridden here by
the backend-parametrised ``backend_db`` and ``queue_target``); the few that exercise one
backend's machinery say why.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from queue_core import (
    ClaimStrategy,
    QueueDatabase,
    Retry,
    TaskQueue,
    TaskStatus,
    WorkerEngine,
    connect,
)
from queue_core.backend import QueueBackend
from queue_core.stop_signals import SIGBREAK_NUMBER, StopSignals
from queue_core.tracing import TransactionBegan
from queue_core.waking import DataVersionWatch
from tests import engine_handlers
from tests.integration.test_cli_worker import start_worker

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def running(engine: WorkerEngine) -> Iterator[threading.Thread]:
    """Run the engine in a thread; stop it (if still running) and join it at the end."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            engine.run()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="engine", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        engine.stop()
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "the engine did not stop"
    if errors:
        raise errors[0]


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """The queue database of the test, on each backend in turn."""
    return backend_db


@pytest.fixture
def db_path(queue_target: str) -> str:
    """What ``connect()`` opens for the test's queue: a file path or a ``postgresql://`` URL."""
    return queue_target


def observer(db_path: str | Path) -> TaskQueue:
    """A second connection, as another process would have."""
    return TaskQueue(connect(db_path))


def status_of(queue: TaskQueue, task_id: int) -> TaskStatus:
    return queue.get(task_id).status


def test_handlers_complete_fail_retry_and_a_dead_executor_is_replaced(
    db: QueueBackend, db_path: str
) -> None:
    queue = TaskQueue(db)
    ok = queue.enqueue_many([{"type": "noop", "payload": {"n": n}} for n in range(20)])
    boom = queue.enqueue("boom", {}, max_attempts=1)
    die = queue.enqueue("die", {})
    retry = queue.enqueue("retry", {})
    # A long backoff: on a loaded machine the dead executor's task must not come round again
    # (and die again) before the test has seen it requeued once.
    slow_retry = TaskQueue(db, retry_backoff_seconds=600)
    engine = WorkerEngine(slow_retry, engine_handlers.HANDLERS, concurrency=2)
    watch = observer(db_path)
    with running(engine):
        wait_until(
            lambda: status_of(watch, retry) == TaskStatus.QUEUED and watch.get(retry).attempts == 1,
            "the retry",
        )
        wait_until(
            lambda: watch.get(die).attempts == 1 and status_of(watch, die) == TaskStatus.QUEUED,
            "the dead executor's task",
        )
        # Work enqueued after the crash still runs: the executor was replaced.
        late = watch.enqueue("noop", {"late": True})
        wait_until(lambda: status_of(watch, late) == TaskStatus.COMPLETED, "the late task")
        wait_until(lambda: all(status_of(watch, i) == TaskStatus.COMPLETED for i in ok), "drain")
        wait_until(lambda: status_of(watch, boom) == TaskStatus.FAILED, "the failing task")

    failed = watch.get(boom)
    assert failed.error_message is not None
    assert failed.error_message.splitlines()[-1] == f"RuntimeError: boom on task {boom}"
    logs = watch.logs(boom)
    assert len(logs) == 1 and logs[0].level == "ERROR"
    assert logs[0].message is not None
    assert "Traceback (most recent call last)" in logs[0].message
    assert "in boom" in logs[0].message

    died = watch.get(die)
    assert "executor process running the handler died (exit code 3)" in str(died.error_message)

    retried = watch.get(retry)
    assert retried.error_message == "retry requested by the handler: not yet"
    assert retried.run_after_utc is not None
    assert retried.run_after_utc > watch.now() + timedelta(minutes=50)
    assert engine.completed == 21
    assert watch.counts()[TaskStatus.PROCESSING] == 0
    watch.db.close()


def test_stop_requeues_a_handler_past_the_grace_and_releases_prefetched_uncounted(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started = tmp_path / "started"
    # Quick tasks first: once the engine has seen handlers take milliseconds it prefetches
    # up to its bound (it prefetches nothing beyond one per executor for slow handlers).
    queue.enqueue_many(
        [
            {
                "type": "wait",
                "payload": {"started": str(tmp_path / f"q{n}"), "seconds": 0},
                "priority": 1,
            }
            for n in range(10)
        ]
    )
    slow = queue.enqueue(
        "wait", {"started": str(started), "seconds": 120}, max_attempts=3, priority=2
    )
    waiting = queue.enqueue_many(
        [
            {
                "type": "wait",
                "payload": {"started": str(tmp_path / f"s{n}"), "seconds": 0},
                "priority": 3,
            }
            for n in range(3)
        ]
    )
    engine = WorkerEngine(
        db,
        {"wait": engine_handlers.touch_and_wait},
        concurrency=1,
        prefetch=3,
        shutdown_grace=0.5,
    )
    watch = observer(db_path)
    with running(engine) as thread:
        wait_until(started.exists, "the slow handler to start")
        wait_until(lambda: watch.counts()[TaskStatus.PROCESSING] == 4, "the prefetch")
        engine.stop()
        thread.join(WAIT_SECONDS)

    terminated = watch.get(slow)
    assert terminated.status == TaskStatus.QUEUED
    assert terminated.attempts == 1  # counted: the handler ran
    assert "still running 0.5 s after the worker engine began to stop" in str(
        terminated.error_message
    )
    for task_id in waiting:
        task = watch.get(task_id)
        assert (task.status, task.attempts, task.locked_by) == (TaskStatus.QUEUED, 0, None)
        assert not (tmp_path / f"s{task_id - waiting[0]}").exists()  # never started
    watch.db.close()


def test_a_second_stop_ends_at_once_and_still_requeues(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started = tmp_path / "started"
    task_id = queue.enqueue("wait", {"started": str(started), "seconds": 120})
    engine = WorkerEngine(
        db, {"wait": engine_handlers.touch_and_wait}, concurrency=1, shutdown_grace=600
    )
    watch = observer(db_path)
    with running(engine) as thread:
        wait_until(started.exists, "the handler to start")
        engine.stop()
        engine.stop()  # the second Ctrl+C: no 600 s grace
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive()
    task = watch.get(task_id)
    assert (task.status, task.attempts) == (TaskStatus.QUEUED, 1)
    assert "stopped at once" in str(task.error_message)
    watch.db.close()


def test_a_per_type_timeout_terminates_the_handler_and_fails_the_task(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    task_id = queue.enqueue(
        "wait", {"started": str(tmp_path / "started"), "seconds": 120}, max_attempts=1
    )
    after = queue.enqueue("noop", {})
    engine = WorkerEngine(
        db,
        {"wait": engine_handlers.touch_and_wait, "noop": engine_handlers.noop},
        concurrency=1,
        timeouts={"wait": 0.5},
    )
    watch = observer(db_path)
    with running(engine):
        wait_until(lambda: status_of(watch, task_id) == TaskStatus.FAILED, "the timeout")
        wait_until(lambda: status_of(watch, after) == TaskStatus.COMPLETED, "the next task")
    assert "ran past its 0.5 s timeout" in str(watch.get(task_id).error_message)
    watch.db.close()


def test_leases_are_renewed_while_a_handler_runs(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started = tmp_path / "started"
    task_id = queue.enqueue("wait", {"started": str(started), "seconds": 2.5})
    engine = WorkerEngine(
        db, {"wait": engine_handlers.touch_and_wait}, concurrency=1, lease_seconds=0.6
    )
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the handler to start")
        first = watch.get(task_id).lease_until_utc
        assert first is not None
        wait_until(
            lambda: (
                (watch.get(task_id).lease_until_utc or first) > first + timedelta(seconds=0.3)
                or status_of(watch, task_id) == TaskStatus.COMPLETED
            ),
            "a renewal",
        )
        # However long the handler runs past its 0.6 s lease, nobody else can claim it.
        while status_of(watch, task_id) == TaskStatus.PROCESSING:
            assert watch.claim("thief", lease_seconds=60) == []
            time.sleep(0.05)
    task = watch.get(task_id)
    assert (task.status, task.attempts, task.locked_by) == (
        TaskStatus.COMPLETED,
        1,
        engine.worker_id,
    )
    worker = watch.get_worker(engine.worker_id)
    assert worker is not None and worker.capabilities["engine"] is True
    watch.db.close()


def test_big_prefetched_payloads_behind_a_slow_handler_do_not_stall_the_engine(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    # Prefetched tasks queue in the pipe while the executor runs the slow one; 4 x 100 KB is
    # more than any OS pipe buffer. Were the engine's send to wait for the busy child, no
    # renewal would happen and the 1.5 s lease would run out under the 4 s handler.
    queue = TaskQueue(db)
    started = tmp_path / "started"
    fast = queue.enqueue_many([{"type": "noop", "payload": {"n": n}} for n in range(20)])
    slow = queue.enqueue("wait", {"started": str(started), "seconds": 4.0})
    big = queue.enqueue_many([{"type": "noop", "payload": {"blob": "x" * 100_000}}] * 6)
    engine = WorkerEngine(db, engine_handlers.HANDLERS, concurrency=1, lease_seconds=1.5)
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the slow handler to start")
        while status_of(watch, slow) == TaskStatus.PROCESSING:
            stolen = watch.claim("thief", types=["wait"], lease_seconds=60)
            assert stolen == [], "the slow task's lease ran out"
            time.sleep(0.05)
        wait_until(lambda: engine.completed == 27, "every task to complete")
    for task_id in [*fast, slow, *big]:
        task = watch.get(task_id)
        assert (task.status, task.attempts, task.locked_by) == (
            TaskStatus.COMPLETED,
            1,
            engine.worker_id,
        )
    watch.db.close()


def test_a_lost_lease_discards_the_result_instead_of_completing_twice(
    db: QueueBackend, db_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queue_core.worker_engine")
    queue = TaskQueue(db)
    started = tmp_path / "started"
    task_id = queue.enqueue("wait", {"started": str(started), "seconds": 1.0})
    engine = WorkerEngine(
        db, {"wait": engine_handlers.touch_and_wait}, concurrency=1, lease_seconds=600
    )
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the handler to start")
        # As if the engine's machine slept past the lease: it expired and a thief claimed it.
        # One transaction, so the engine's own next claim cannot release and retake it first
        # (that case has its own test below).
        with watch.db.transaction() as conn:
            # No parameters: the same text runs on SQLite and PostgreSQL.
            conn.execute(
                "UPDATE task_queue SET lease_until_utc = '2000-01-01 00:00:00' "
                f"WHERE id = {int(task_id)}"
            )
            assert [t.id for t in watch.claim("thief", lease_seconds=600)] == [task_id]
        wait_until(lambda: "discarded" in caplog.text, "the engine to discard its result")
    task = watch.get(task_id)
    assert (task.status, task.locked_by) == (TaskStatus.PROCESSING, "thief")
    assert engine.completed == 0
    watch.complete(task_id, "thief")
    watch.db.close()


def test_a_task_its_own_engine_claims_again_has_the_older_copy_terminated(
    db: QueueBackend, db_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease of a running task runs out and nobody else takes it: the engine's own next
    claim releases it and claims it again under the same worker id, which the database's fence
    (locked_by) cannot tell apart. The engine must stop the older copy, not run both."""
    caplog.set_level(logging.WARNING, logger="queue_core.worker_engine")
    queue = TaskQueue(db)
    started = tmp_path / "started"
    task_id = queue.enqueue("wait", {"started": str(started), "seconds": 60})
    engine = WorkerEngine(
        db, engine_handlers.HANDLERS, concurrency=2, lease_seconds=600, shutdown_grace=0
    )
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the handler to start")
        wait_until(lambda: len(engine.busy_executor_pids()) == 1, "the engine to see it run")
        (older,) = engine.busy_executor_pids()
        started.unlink()
        # As if the engine's machine slept past the lease; nobody else claims it. (No
        # parameters: the same text runs on SQLite and PostgreSQL.)
        watch.db.execute(
            f"UPDATE task_queue SET lease_until_utc = '2000-01-01 00:00:00' WHERE id = {task_id}"
        )
        wait_until(started.exists, "the new claim's handler to start")
        wait_until(lambda: not psutil.pid_exists(older), "the older copy's executor to end", 20)
        assert "claimed again" in caplog.text
        task = watch.get(task_id)
        assert (task.status, task.locked_by, task.attempts) == (
            TaskStatus.PROCESSING,
            engine.worker_id,
            2,
        )
        assert len(engine.busy_executor_pids()) == 1
    assert engine.completed == 0
    watch.db.close()


def test_a_running_task_cancelled_elsewhere_has_its_executor_terminated(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started = tmp_path / "started"
    task_id = queue.enqueue("wait", {"started": str(started), "seconds": 60})
    engine = WorkerEngine(db, engine_handlers.HANDLERS, concurrency=1, lease_seconds=0.9)
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the handler to start")
        wait_until(lambda: len(engine.busy_executor_pids()) == 1, "the engine to see it run")
        (pid,) = engine.busy_executor_pids()
        assert watch.cancel(task_id).status == TaskStatus.CANCELLED
        # The next renewal (every 0.3 s) finds the lease gone and terminates the handler,
        # long before its 60 s would end; a fresh executor takes the next task.
        wait_until(lambda: not psutil.pid_exists(pid), "the handler's process to end", 20)
        after = watch.enqueue("noop", {})
        wait_until(lambda: status_of(watch, after) == TaskStatus.COMPLETED, "the next task")
    assert status_of(watch, task_id) == TaskStatus.CANCELLED
    assert (engine.completed, engine.failed) == (1, 0)
    watch.db.close()


def test_a_prefetched_task_cancelled_elsewhere_is_dropped_without_stopping_the_running_one(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started = tmp_path / "started"
    running_id = queue.enqueue("wait", {"started": str(started), "seconds": 1.5})
    queued_id = queue.enqueue("wait", {"started": str(tmp_path / "other"), "seconds": 60})
    engine = WorkerEngine(db, engine_handlers.HANDLERS, concurrency=1, lease_seconds=0.9)
    watch = observer(db_path)
    with running(engine):
        wait_until(started.exists, "the first handler to start")
        wait_until(lambda: len(engine.busy_executor_pids()) == 1, "the engine to see it run")
        (pid,) = engine.busy_executor_pids()
        watch.cancel(queued_id)  # it sits in the executor's pipe behind the running task
        wait_until(lambda: status_of(watch, running_id) == TaskStatus.COMPLETED, "the first")
        # Its executor would start the cancelled task next: it is terminated instead.
        wait_until(lambda: not psutil.pid_exists(pid), "the executor to end", 20)
    assert status_of(watch, queued_id) == TaskStatus.CANCELLED
    assert (engine.completed, engine.failed) == (1, 0)
    watch.db.close()


@pytest.mark.sqlite_only(
    reason="SQLite's one write lock, counted by its tracer; on PostgreSQL, see the NOTIFY test"
)
def test_an_idle_engine_takes_no_write_lock_and_notices_new_and_scheduled_work(
    db: QueueDatabase, db_path: str
) -> None:
    writes: list[TransactionBegan] = []
    db.tracer = lambda event: writes.append(event) if isinstance(event, TransactionBegan) else None
    engine = WorkerEngine(db, {"noop": engine_handlers.noop}, concurrency=1)
    watch = observer(db_path)
    with running(engine):
        assert engine.ready.wait(WAIT_SECONDS)
        time.sleep(0.5)  # idle: no write
        assert writes == []
        # Commits of tasks it does not run wake it, and its claim looks before it locks.
        for n in range(10):
            watch.enqueue("other", {"n": n})
            time.sleep(0.05)
        time.sleep(0.2)
        assert writes == []
        task_id = watch.enqueue("noop", {})
        wait_until(lambda: status_of(watch, task_id) == TaskStatus.COMPLETED, "new work")
        soon = watch.enqueue("noop", {}, run_after=watch.now() + timedelta(seconds=1))
        # Nothing else is committed: the engine wakes for the scheduled time by itself.
        wait_until(lambda: status_of(watch, soon) == TaskStatus.COMPLETED, "scheduled work")
    watch.db.close()


@pytest.mark.sqlite_only(reason="SQLite's -wal file watch; on PostgreSQL, see the NOTIFY test")
@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no -wal notification: it polls")
def test_an_idle_engine_on_sqlite_sleeps_until_a_commit_wakes_it(
    db: QueueDatabase, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The -wal file watch wakes it: idle, it looks about once a second (the safety net), not
    every 10 ms as a polled watch does."""
    looks: list[float] = []

    class CountingWatch(DataVersionWatch):
        def changed(self) -> bool:
            looks.append(time.monotonic())
            return super().changed()

    monkeypatch.setattr(QueueDatabase, "change_watch", lambda self: CountingWatch(self))
    engine = WorkerEngine(db, {"noop": engine_handlers.noop}, concurrency=2)
    watch = observer(db_path)
    try:
        with running(engine):
            assert engine.ready.wait(WAIT_SECONDS)
            wait_until(lambda: len(looks) >= 1, "the first look")
            time.sleep(0.5)  # past the looks that follow its own start-up writes
            before = len(looks)
            time.sleep(2.0)
            # A polled watch looks 200 times in 2 s; the file watch's safety net twice, plus
            # a handful of short looks after a write (see waking.SETTLE_SECONDS).
            assert len(looks) - before <= 50, len(looks) - before
            task_id = watch.enqueue("noop", {})
            wait_until(lambda: status_of(watch, task_id) == TaskStatus.COMPLETED, "new work")
    finally:
        watch.db.close()


def test_executors_killed_at_random_lose_no_task_and_complete_none_twice(
    db: QueueBackend, db_path: str
) -> None:
    import os
    import random
    import signal

    queue = TaskQueue(db, retry_backoff_seconds=0.01, retry_backoff_max_seconds=0.01)
    ids = queue.enqueue_many(
        [{"type": "sleep", "payload": {"ms": 2}, "max_attempts": 50} for _ in range(400)]
    )
    engine = WorkerEngine(queue, {"sleep": engine_handlers.sleep_ms}, concurrency=2)
    watch = observer(db_path)
    rng = random.Random(7)
    kills = 0
    with running(engine):
        while watch.counts()[TaskStatus.COMPLETED] < len(ids) and kills < 5:
            pids = [e.process.pid for e in list(engine._executors)]
            time.sleep(0.1 + rng.random() * 0.2)
            if pids and watch.counts()[TaskStatus.COMPLETED] > 0:
                pid = rng.choice(pids)
                if pid is not None:
                    with_kill = getattr(signal, "SIGKILL", signal.SIGTERM)
                    try:
                        os.kill(pid, with_kill)
                        kills += 1
                    except ProcessLookupError:
                        pass
        wait_until(lambda: watch.counts()[TaskStatus.COMPLETED] == len(ids), "the drain")
    assert engine.completed == len(ids)  # every complete matched exactly one held task
    counts = watch.counts()
    assert counts[TaskStatus.COMPLETED] == len(ids)
    assert counts[TaskStatus.PROCESSING] == counts[TaskStatus.QUEUED] == 0
    watch.db.close()


class FakeSignalApi:
    def __init__(self) -> None:
        self.handlers: dict[int, Any] = {}

    def getsignal(self, signalnum: int) -> Any:
        return self.handlers.get(signalnum, "default")

    def signal(self, signalnum: int, handler: Any) -> Any:
        previous = self.handlers.get(signalnum)
        self.handlers[signalnum] = handler
        return previous


def test_executors_of_a_killed_engine_finish_the_running_task_and_start_no_other(
    db: QueueBackend, db_path: str, tmp_path: Path
) -> None:
    queue = TaskQueue(db)
    started, log = tmp_path / "started", tmp_path / "ran"
    queue.enqueue("wait", {"started": str(started), "seconds": 1.5})
    behind = queue.enqueue("record", {"log": str(log)})  # sent to the same executor, prefetched
    engine = start_worker(db_path, "--concurrency", "1")
    try:
        wait_until(started.exists, "the handler to start")
        executors = [
            child
            for child in psutil.Process(engine.pid).children(recursive=True)
            if any("spawn_main" in part for part in child.cmdline())
        ]
        assert len(executors) == 1
        engine.kill()  # as SIGKILL or a crash would: no cleanup, the pipe just closes
        engine.wait(WAIT_SECONDS)
        _, alive = psutil.wait_procs(executors, timeout=WAIT_SECONDS)
        assert alive == [], "an executor outlived its engine"
    finally:
        if engine.poll() is None:
            engine.kill()
        engine.communicate(timeout=WAIT_SECONDS)
    assert not log.exists(), "the executor started a task after its engine died"
    assert status_of(queue, behind) == TaskStatus.PROCESSING  # its lease runs out; then requeued


def test_ctrl_break_on_windows_stops_the_engine_gracefully(db: QueueBackend, db_path: str) -> None:
    import signal

    api = FakeSignalApi()
    task_id = TaskQueue(db).enqueue("noop", {})
    engine = WorkerEngine(
        db,
        {"noop": engine_handlers.noop},
        concurrency=1,
        signals=lambda on_stop: StopSignals(on_stop, os_name="nt", api=api),
    )
    watch = observer(db_path)
    with running(engine) as thread:
        wait_until(lambda: status_of(watch, task_id) == TaskStatus.COMPLETED, "the task")
        breaks = getattr(signal, "SIGBREAK", SIGBREAK_NUMBER)
        assert set(api.handlers) == {int(signal.SIGINT), breaks}
        api.handlers[breaks](breaks, None)  # the console's Ctrl+Break
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive()
    assert api.handlers == {int(signal.SIGINT): "default", breaks: "default"}  # restored
    watch.db.close()


def test_stop_signals_are_sigint_and_sigterm_on_posix_and_ctrl_c_break_on_windows() -> None:
    import signal

    calls: list[str] = []
    posix, nt = FakeSignalApi(), FakeSignalApi()
    with StopSignals(calls.append, os_name="posix", api=posix) as handled:
        assert handled.names == ["SIGINT", "SIGTERM"]
        posix.handlers[int(signal.SIGTERM)](int(signal.SIGTERM), None)
    with StopSignals(calls.append, os_name="nt", api=nt) as handled:
        assert handled.names == ["Ctrl+C", "Ctrl+Break"]
        nt.handlers[int(signal.SIGINT)](int(signal.SIGINT), None)
    assert calls == ["SIGTERM", "Ctrl+C"]


def test_bad_arguments_are_refused_before_anything_runs(db: QueueBackend) -> None:
    with pytest.raises(ValueError, match="top level"):
        WorkerEngine(db, {"noop": lambda task: None})
    with pytest.raises(ValueError, match="cannot import"):
        WorkerEngine(db, {"noop": "tests.engine_handlers:missing"})
    with pytest.raises(ValueError, match="no handler"):
        WorkerEngine(db, {"noop": engine_handlers.noop}, types=["other"])
    with pytest.raises(ValueError, match="concurrency"):
        WorkerEngine(db, {"noop": engine_handlers.noop}, concurrency=0)
    with pytest.raises(ValueError, match="lease_seconds"):
        WorkerEngine(db, {"noop": engine_handlers.noop}, lease_seconds=0)
    with pytest.raises(ValueError, match="unknown claim strategy"):
        WorkerEngine(db, {"noop": engine_handlers.noop}, strategy="random")
    with pytest.raises(TypeError):
        WorkerEngine("queue.db", {"noop": engine_handlers.noop})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be negative"):
        Retry(after=-1)
    assert TaskQueue(db).counts()[TaskStatus.QUEUED] == 0


def test_an_unexpected_database_error_still_releases_what_the_engine_holds(
    db: QueueBackend, db_path: str
) -> None:
    from queue_core import QueueCorruptError

    class FailingOnce(TaskQueue):
        failed = False

        def complete_many(self, task_ids: Iterable[int], worker_id: str) -> list[int]:
            ids = list(task_ids)
            if ids and not FailingOnce.failed:
                FailingOnce.failed = True
                raise QueueCorruptError("disk image is malformed (simulated)")
            return super().complete_many(ids, worker_id)

    queue = FailingOnce(db)
    queue.enqueue_many([{"type": "noop", "payload": {"n": n}} for n in range(6)])
    engine = WorkerEngine(queue, {"noop": engine_handlers.noop}, concurrency=1, prefetch=2)
    with pytest.raises(QueueCorruptError):
        engine.run()
    counts = TaskQueue(db).counts()
    assert counts[TaskStatus.PROCESSING] == 0
    assert counts[TaskStatus.COMPLETED] + counts[TaskStatus.QUEUED] == 6


def test_an_outcome_that_cannot_be_written_does_not_abort_the_others(
    db: QueueBackend, db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failure is written in its own SAVEPOINT: one the queue refuses (here a message
    SQLite cannot encode) is logged and written again as a plain failure with its text
    escaped, and the completions of the same batch commit; the engine runs on."""
    caplog.set_level(logging.ERROR, logger="queue_core.worker_engine")
    queue = TaskQueue(db)
    bad = queue.enqueue("bad_text", {}, max_attempts=1)
    ok = queue.enqueue_many([{"type": "noop", "payload": {"n": n}} for n in range(10)])
    engine = WorkerEngine(db, engine_handlers.HANDLERS, concurrency=1, prefetch=12)
    watch = observer(db_path)
    with running(engine):
        wait_until(lambda: all(status_of(watch, i) == TaskStatus.COMPLETED for i in ok), "drain")
        wait_until(lambda: status_of(watch, bad) == TaskStatus.FAILED, "the bad outcome")
        late = watch.enqueue("noop", {})  # the engine still runs
        wait_until(lambda: status_of(watch, late) == TaskStatus.COMPLETED, "a later task")
    failed = watch.get(bad)
    assert "\\udcff.txt" in str(failed.error_message)  # stored, escaped
    assert "could not be written as reported" in str(failed.error_message)
    [log] = watch.logs(bad)
    assert "\\udcff.txt" in str(log.message)
    assert "could not be written" in caplog.text
    assert (engine.completed, engine.failed) == (11, 1)
    watch.db.close()


def test_the_engine_claims_in_the_strategy_it_is_given(db: QueueBackend, tmp_path: Path) -> None:
    """One executor and no prefetch take one task per claim, so the run order is the claim
    order: newest first under lifo."""
    log = tmp_path / "order.txt"
    queue = TaskQueue(db)
    ids = [queue.enqueue("record", {"log": str(log)}) for _ in range(5)]
    engine = WorkerEngine(
        db, {"record": engine_handlers.record}, concurrency=1, prefetch=0, strategy="lifo"
    )
    assert engine.strategy is ClaimStrategy.LIFO
    assert WorkerEngine(db, {"record": engine_handlers.record}).strategy is ClaimStrategy.PRIORITY
    with running(engine):
        wait_until(lambda: engine.completed == len(ids), "every task")
    assert [int(line) for line in log.read_text(encoding="utf-8").split()] == ids[::-1]


def test_an_idle_engine_on_postgres_sleeps_until_a_notify_wakes_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from queue_core.postgres.database import PostgresDatabase
    from queue_core.postgres.waking import NotifyWatch

    # No safety poll within the test: only a NOTIFY (or a scheduled time) can wake the engine.
    monkeypatch.setattr(
        PostgresDatabase,
        "change_watch",
        lambda self: NotifyWatch(postgres_url, safety_poll_seconds=3600.0),
    )

    class CountingClaims(TaskQueue):
        claims = 0

        def claim(self, *args: Any, **kwargs: Any) -> Any:
            CountingClaims.claims += 1
            return super().claim(*args, **kwargs)

    db = connect(postgres_url)
    db.initialize_schema()
    engine = WorkerEngine(CountingClaims(db), {"noop": engine_handlers.noop}, concurrency=1)
    watch = observer(postgres_url)
    try:
        with running(engine):
            assert engine.ready.wait(WAIT_SECONDS)
            wait_until(lambda: CountingClaims.claims >= 1, "the first claim")
            time.sleep(0.3)
            idle = CountingClaims.claims
            time.sleep(1.0)
            assert CountingClaims.claims == idle  # asleep: no claim, no poll of the server
            watch.enqueue("other", {})  # a task it does not run still wakes it: one claim
            wait_until(lambda: CountingClaims.claims > idle, "the NOTIFY to wake the engine")
            task_id = watch.enqueue("noop", {})
            wait_until(lambda: status_of(watch, task_id) == TaskStatus.COMPLETED, "new work")
            soon = watch.enqueue("noop", {}, run_after=watch.now() + timedelta(seconds=1))
            # Its NOTIFY finds it not yet due; the engine wakes for its time by itself.
            wait_until(lambda: status_of(watch, soon) == TaskStatus.COMPLETED, "scheduled work")
    finally:
        watch.db.close()
        db.close()
