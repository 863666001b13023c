"""The fair lock (write gate) on real files and processes: fallback, timeout, a killed holder."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from queue_core import QueueBusyError, QueueDatabase, TaskQueue
from queue_core.database import DEFAULT_FAIR_LOCK
from queue_core.tracing import WriteGateEntered
from queue_core.wake_channel import open_wake_channel, wake_path_for
from queue_core.write_gate import (
    FileLock,
    WriteGate,
    lock_path_for,
    open_file_lock,
    wait_path_for,
)

SPAWN = multiprocessing.get_context("spawn")
WAIT = 10.0
TIMEOUT = 120


def test_the_lock_file_sits_next_to_the_database(db_path: Path) -> None:
    assert lock_path_for(db_path) == db_path.with_name("queue.db-writer.lock")
    with QueueDatabase(db_path) as default:
        assert default.fair_lock is DEFAULT_FAIR_LOCK is False
    with QueueDatabase(db_path, fair_lock=True) as db:
        assert db.fair_lock and db.fair_lock_active
        db.initialize_schema()
        assert lock_path_for(db_path).exists() and wait_path_for(db_path).exists()
    with QueueDatabase(db_path.with_name("off.db"), fair_lock=False) as off:
        off.initialize_schema()
        assert not off.fair_lock_active
    assert not lock_path_for(db_path.with_name("off.db")).exists()


def _enqueue_claim_complete(db: QueueDatabase) -> None:
    db.initialize_schema()
    queue = TaskQueue(db)
    task_id = queue.enqueue("t", {})
    task = queue.claim_one("w")
    assert task is not None and task.id == task_id
    queue.complete(task_id, "w")


def test_where_there_is_a_futex_waiters_sleep_on_a_wake_file_next_to_the_database(
    db_path: Path,
) -> None:
    probe = open_wake_channel(db_path.with_name("probe-writer.wake"))
    if probe is None:
        pytest.skip("no futex on this platform: the write gate uses its helper thread")
    probe.close()
    with QueueDatabase(db_path, fair_lock=True) as db:
        _enqueue_claim_complete(db)
        gate = db._write_gate()
        assert gate is not None and gate._wake is not None
        assert wake_path_for(db_path).exists()


def test_without_the_wake_file_waiters_use_the_helper_thread(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("queue_core.database.open_wake_channel", refuse)
    with QueueDatabase(db_path, fair_lock=True, busy_timeout_ms=100) as db:
        _enqueue_claim_complete(db)
        assert db.fair_lock_active
        assert not wake_path_for(db_path).exists()
        with (
            QueueDatabase(db_path, fair_lock=True) as holder,
            holder.transaction(),
            pytest.raises(QueueBusyError),
        ):
            TaskQueue(db).enqueue("t", {})  # queued through the helper thread, timed out


def test_a_lock_file_that_cannot_be_created_falls_back_to_the_busy_handler(
    db_path: Path,
) -> None:
    def refuse(path: Path) -> FileLock:
        raise PermissionError(13, "Permission denied", str(path))

    with QueueDatabase(db_path, lock_opener=refuse, fair_lock=True) as db:
        _enqueue_claim_complete(db)
        assert not db.fair_lock_active
        assert db.fair_lock_failure is not None and "Permission denied" in db.fair_lock_failure


def test_without_the_wait_file_the_gate_still_queues_writers(db_path: Path) -> None:
    def no_wait_file(path: Path) -> FileLock:
        if path == wait_path_for(db_path):
            raise PermissionError(13, "Permission denied", str(path))
        return open_file_lock(path)

    with QueueDatabase(db_path, lock_opener=no_wait_file, fair_lock=True) as db:
        _enqueue_claim_complete(db)
        assert db.fair_lock_active and db.fair_lock_failure is None
        assert lock_path_for(db_path).exists() and not wait_path_for(db_path).exists()


def test_a_long_waiter_of_another_connection_is_seen_through_the_wait_file(db_path: Path) -> None:
    """The mark is a real shared lock: a third handle sees it while a writer waits longer than
    the threshold behind a held gate, and it is gone once that writer got through."""
    with (
        QueueDatabase(db_path, fair_lock=True) as holder,
        # A generous timeout: however slow the machine, the waiter outlasts the observation.
        QueueDatabase(db_path, busy_timeout_ms=120_000, fair_lock=True) as waiter,
    ):
        holder.initialize_schema()
        observer = WriteGate(
            open_file_lock(lock_path_for(db_path)), open_file_lock(wait_path_for(db_path))
        )
        try:
            assert not observer.starving_waiters
            outcome: list[int] = []
            with holder.transaction():
                thread = threading.Thread(
                    target=lambda: outcome.append(TaskQueue(waiter).enqueue("t", {}))
                )
                thread.start()
                deadline = time.monotonic() + WAIT
                while not observer.starving_waiters and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert observer.starving_waiters
            thread.join(WAIT)
            assert outcome == [1]
            assert not observer.starving_waiters
        finally:
            observer.close()


def test_a_held_gate_times_out_as_queue_busy_error(db_path: Path) -> None:
    """Two connections of one process exclude each other through the gate (flock locks belong
    to the open file, not the process), and a wait longer than the busy timeout is refused."""
    with (
        QueueDatabase(db_path, fair_lock=True) as holder,
        QueueDatabase(db_path, busy_timeout_ms=100, fair_lock=True) as short,
    ):
        holder.initialize_schema()
        queue = TaskQueue(short)
        with holder.transaction():
            started = time.perf_counter()
            with pytest.raises(QueueBusyError) as caught:
                queue.enqueue("t", {})
            assert caught.value.waited_seconds >= 0.09
            assert time.perf_counter() - started < WAIT
            assert queue.counts()  # reads need neither lock
        assert queue.enqueue("t", {}) == 1


def test_the_tracer_sees_each_write_get_through_the_gate(db_path: Path) -> None:
    events: list[Any] = []
    with (
        QueueDatabase(db_path, fair_lock=True) as holder,
        QueueDatabase(db_path, busy_timeout_ms=100, fair_lock=True, tracer=events.append) as db,
    ):
        holder.initialize_schema()
        queue = TaskQueue(db)
        queue.enqueue("t", {})
        gate_events = [e for e in events if isinstance(e, WriteGateEntered)]
        assert len(gate_events) == 1
        assert gate_events[0].entered and not gate_events[0].contended
        assert 0 <= gate_events[0].lock_wait_seconds < WAIT
        events.clear()
        queue.counts()  # a read: no gate
        assert not [e for e in events if isinstance(e, WriteGateEntered)]
        with holder.transaction(), pytest.raises(QueueBusyError):
            queue.enqueue("t", {})
        (refused,) = [e for e in events if isinstance(e, WriteGateEntered)]
        assert refused.contended and not refused.entered
        assert refused.lock_wait_seconds >= 0.09


def test_a_tracer_raising_at_the_gate_leaves_it_free(db_path: Path) -> None:
    def tracer(event: Any) -> None:
        if isinstance(event, WriteGateEntered):
            raise RuntimeError("tracer failed")

    with (
        QueueDatabase(db_path, fair_lock=True) as other,
        QueueDatabase(db_path, fair_lock=True, busy_timeout_ms=100, tracer=tracer) as db,
    ):
        other.initialize_schema()
        for write in (
            lambda: TaskQueue(db).enqueue("t", {}),
            lambda: db.execute_many("DELETE FROM task_queue WHERE id = ?", [(1,)]),
        ):
            with pytest.raises(RuntimeError, match="tracer failed"):
                write()
            assert TaskQueue(other).enqueue("t", {}) >= 1  # the gate was let go
        db.tracer = None
        assert TaskQueue(db).enqueue("t", {}) >= 1


def test_pickled_database_keeps_its_fair_lock_choice(db_path: Path) -> None:
    import pickle

    for choice in (True, False):
        with QueueDatabase(db_path, fair_lock=choice) as db:
            clone = pickle.loads(pickle.dumps(db))
            try:
                assert clone.fair_lock is choice
            finally:
                clone.close()


def _hold_the_write_lock(path: str, ready: Any) -> None:
    with QueueDatabase(path, fair_lock=True) as db, db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('holder', '{}')")
        ready.set()
        time.sleep(TIMEOUT)  # killed by the parent long before


@pytest.mark.slow
def test_a_killed_lock_holder_blocks_nobody_beyond_the_busy_timeout(db_path: Path) -> None:
    """The OS releases a dead process's file lock (and SQLite's): a writer that was queued
    behind a SIGKILLed holder goes on as soon as it dies, well inside the busy timeout."""
    with QueueDatabase(db_path, fair_lock=True) as db:
        db.initialize_schema()
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_the_write_lock, args=(str(db_path), ready))
    holder.start()
    try:
        assert ready.wait(TIMEOUT)
        outcome: list[Any] = []

        def write() -> None:
            with QueueDatabase(db_path, busy_timeout_ms=5000, fair_lock=True) as db:
                started = time.perf_counter()
                try:
                    outcome.append(TaskQueue(db).enqueue("after", {}))
                except QueueBusyError as exc:  # pragma: no cover - the failure being tested
                    outcome.append(exc)
                outcome.append(time.perf_counter() - started)

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        assert writer.is_alive(), "the writer should be queued behind the holder"
        holder.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        writer.join(TIMEOUT)
    finally:
        holder.kill()
        holder.join(TIMEOUT)
    task_id, waited = outcome
    assert task_id == 1
    assert 0.4 <= waited < 5.0
    with QueueDatabase(db_path, fair_lock=True) as db:
        assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0  # rolled back


def test_the_wal_index_tells_the_frames_waiting_for_a_checkpoint(db_path: Path) -> None:
    from queue_core.wal_index import WalIndex

    assert WalIndex(db_path.with_name("missing.db")).pending_frames() is None
    with QueueDatabase(db_path, pragma_overrides={"wal_autocheckpoint": 0}, fair_lock=True) as db:
        db.initialize_schema()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        index = WalIndex(db_path)
        assert index.pending_frames() == 0
        queue = TaskQueue(db)
        for n in range(20):
            queue.enqueue("t", {"n": n})
        pending = index.pending_frames()
        busy, log, checkpointed = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, pending) == (0, log) and log > 20
        assert checkpointed == log and index.pending_frames() == 0
        index.close()


def test_with_the_fair_lock_writers_checkpoint_after_letting_the_gate_go(db_path: Path) -> None:
    """SQLite would checkpoint inside the COMMIT that crosses wal_autocheckpoint, holding the
    gate; the queue checkpoints at 3/4 of it, after the gate is free, so the WAL stays small
    and SQLite's own (in-gate) checkpoint does not come."""
    from queue_core.wal_index import WalIndex

    with QueueDatabase(db_path, pragma_overrides={"wal_autocheckpoint": 400}, fair_lock=True) as db:
        db.initialize_schema()
        queue = TaskQueue(db)
        index = WalIndex(db_path)
        peak = 0
        for n in range(800):
            queue.enqueue("t", {"n": n})
            peak = max(peak, index.pending_frames() or 0)
        index.close()
        assert 200 <= peak < 350, peak  # SQLite alone lets it reach 399
        assert db.pragma_values()["wal_autocheckpoint"] == 400  # the PRAGMA is unchanged


def test_vacuum_into_does_not_take_the_write_gate_but_vacuum_does() -> None:
    from queue_core.database import _is_write

    assert not _is_write("VACUUM INTO ?")
    assert not _is_write("  vacuum main into 'copy.db'")
    assert _is_write("VACUUM")
    assert _is_write("INSERT INTO workers VALUES (1)")


def test_databases_of_one_file_share_one_shm_handle_until_the_last_closes(db_path: Path) -> None:
    """Closing any descriptor of -shm would drop SQLite's POSIX locks on it for the whole
    process, so the handle stays open while another QueueDatabase of that file is open."""
    from queue_core.wal_index import _SHARED, WalIndex

    shm = db_path.with_name(db_path.name + "-shm")
    with QueueDatabase(db_path, fair_lock=True) as first:
        first.initialize_schema()
        second = QueueDatabase(db_path, fair_lock=True)
        readers = [WalIndex(db_path), WalIndex(db_path)]
        assert all(reader.pending_frames() is not None for reader in readers)
        assert _SHARED.users(shm) >= 2
        readers[0].close()
        second.close()
        assert _SHARED.users(shm) >= 1
        assert readers[1].pending_frames() is not None  # still readable: the handle is open
        readers[1].close()
    # POSIX keeps the one handle for the life of the process (other connections to the file,
    # plain sqlite3 ones too, cannot be counted); Windows closes it with its last user.
    assert (_SHARED.users(shm) == 0) is (os.name == "nt")
