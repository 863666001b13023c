"""QueueDatabase against real SQLite files: PRAGMAs, connections, transactions, errors."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from queue_core import (
    PRAGMAS,
    QueueBusyError,
    QueueClosedError,
    QueueCorruptError,
    QueueDatabase,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueLocationError,
    QueueSchemaError,
    WalUnavailableError,
    immediate_transaction,
)
from queue_core.database import BufferedCursor
from queue_core.tracing import Connected, TraceEvent, TransactionBegan

SPAWN = multiprocessing.get_context("spawn")

# What `PRAGMA <name>` reads back after queue_core.PRAGMAS were applied: SQLite reports
# journal_mode in lower case and the enumerated settings as numbers.
EXPECTED_PRAGMA_VALUES = {
    "journal_mode": "wal",
    "synchronous": 1,
    "busy_timeout": 5000,
    "wal_autocheckpoint": 1000,
    "foreign_keys": 1,
    "temp_store": 2,
    "mmap_size": 134217728,
    "page_size": 4096,
    "cache_size": -20000,
    "journal_size_limit": 16777216,
}


def _collect(began: list[TransactionBegan]) -> Callable[[TraceEvent], None]:
    """A tracer appending the TransactionBegan events to ``began``."""

    def tracer(event: TraceEvent) -> None:
        if isinstance(event, TransactionBegan):
            began.append(event)

    return tracer


def open_handles(path: Path) -> list[str]:
    """Files of the db (and its -wal/-shm) this process still holds open."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    return [f.path for f in psutil.Process().open_files() if f.path in names]


def test_database_initialization(db_path: Path) -> None:
    """A new file is created in WAL mode with every PRAGMA of the specification applied."""
    db = QueueDatabase(db_path)
    assert db_path.exists()
    values = db.pragma_values()
    assert values == EXPECTED_PRAGMA_VALUES
    assert set(values) == set(PRAGMAS)


@pytest.mark.parametrize("name", sorted(PRAGMAS))
def test_each_pragma_reads_back_on_a_second_connection(db_path: Path, name: str) -> None:
    """Per-connection PRAGMAs are applied again by every instance, not only the first."""
    QueueDatabase(db_path).close()
    db = QueueDatabase(db_path)
    value = db.execute(f"PRAGMA {name}").fetchone()[0]
    assert value == EXPECTED_PRAGMA_VALUES[name]


def test_page_size_is_set_before_wal_on_a_new_file(tmp_path: Path) -> None:
    """page_size only takes effect before WAL and the first table: the file really has it."""
    path = tmp_path / "fresh.db"
    QueueDatabase(path).initialize_schema()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # A plain connection gets SQLite's defaults: proof these PRAGMAs are per connection.
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 0
    finally:
        raw.close()


def test_foreign_keys_enforced(db: QueueDatabase) -> None:
    with pytest.raises(QueueIntegrityError, match="FOREIGN KEY"):
        db.execute("INSERT INTO task_logs (task_id, level) VALUES (999, 'INFO')")


def test_pragma_overrides_and_busy_timeout(db_path: Path) -> None:
    db = QueueDatabase(db_path, busy_timeout_ms=50, pragma_overrides={"wal_autocheckpoint": 0})
    assert db.busy_timeout_ms == 50
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 50
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert db.pragmas["wal_autocheckpoint"] == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pragma_overrides": {"journal_mode": "DELETE"}}, ValueError),
        ({"pragma_overrides": {"foreign_keys": "OFF"}}, ValueError),
        ({"pragma_overrides": {"synchronous": 1.5}}, TypeError),
        ({"pragma_overrides": {"synchronous": "FULL; DROP TABLE x"}}, ValueError),
        ({"busy_timeout_ms": -1}, ValueError),
        ({"busy_timeout_ms": 1.5}, TypeError),
    ],
)
def test_bad_configuration_is_refused(
    db_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        QueueDatabase(db_path, **kwargs)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_connection_reuse(db_path: Path) -> None:
    """One connection serves every call of an instance: it connects once."""
    events: list[TraceEvent] = []
    db = QueueDatabase(db_path, tracer=events.append)
    db.initialize_schema()
    first = db.get_connection()
    db.execute("SELECT 1")
    with db.transaction() as conn:
        assert conn is first
    db.execute_many("INSERT INTO workers VALUES (?, '{}', '2026-01-01 00:00:00')", [("a",)])
    assert db.get_connection() is first
    connects = [event for event in events if isinstance(event, Connected)]
    assert len(connects) == 1
    assert connects[0].seconds > 0
    assert connects[0].path == str(db.path)


def test_execute_returns_buffered_rows(db: QueueDatabase) -> None:
    db.execute_many(
        "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')",
        [(f"w{i}",) for i in range(5)],
    )
    cursor = db.execute("SELECT worker_id FROM workers ORDER BY worker_id")
    assert isinstance(cursor, BufferedCursor)
    assert isinstance(cursor, sqlite3.Cursor)
    assert cursor.fetchone()[0] == "w0"
    assert [row[0] for row in cursor.fetchmany(2)] == ["w1", "w2"]
    assert [row[0] for row in cursor] == ["w3", "w4"]
    assert cursor.fetchone() is None
    assert cursor.fetchall() == []
    cursor = db.execute("UPDATE workers SET capabilities = '[]' RETURNING worker_id")
    assert cursor.rowcount == 5  # RETURNING rows were fetched before the call returned
    assert len(cursor.fetchmany()) == 1


def test_transaction_commit(db: QueueDatabase, db_path: Path) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        assert conn.in_transaction
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("SELECT count(*) FROM workers").fetchone()[0] == 1
    finally:
        other.close()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_transaction_rollback(db: QueueDatabase, error: BaseException) -> None:
    """Any exception, KeyboardInterrupt included, rolls the whole block back."""
    with pytest.raises(type(error)), db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        raise error
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0
    assert not db.get_connection().in_transaction


def test_transaction_translates_sqlite_errors(db: QueueDatabase) -> None:
    with pytest.raises(QueueIntegrityError) as info, db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0


def test_nested_transaction_is_a_savepoint(db: QueueDatabase, db_path: Path) -> None:
    """An inner failure undoes only the inner work; the outer commit is not done early."""
    observer = sqlite3.connect(db_path)
    try:
        with db.transaction() as conn:
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('outer', '{}')")
            with pytest.raises(ValueError), db.transaction() as inner:
                inner.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('x', '{}')")
                raise ValueError
            with db.transaction() as inner:
                inner.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('y', '{}')")
            # Nothing is visible to another connection until the outer block ends.
            assert observer.execute("SELECT count(*) FROM workers").fetchone()[0] == 0
        names = [r[0] for r in observer.execute("SELECT worker_id FROM workers ORDER BY 1")]
        assert names == ["outer", "y"]
    finally:
        observer.close()


def test_nested_transaction_translates_errors(db: QueueDatabase) -> None:
    with db.transaction():
        with pytest.raises(QueueIntegrityError), db.transaction() as inner:
            inner.execute("INSERT INTO task_logs (task_id, level) VALUES (42, 'INFO')")
        assert db.get_connection().in_transaction


def test_execute_many_is_all_or_nothing(db: QueueDatabase) -> None:
    rows = [("a",), ("b",), ("a",)]
    with pytest.raises(QueueIntegrityError):
        db.execute_many("INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')", rows)
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0


def test_immediate_transaction_on_a_bare_connection(db_path: Path) -> None:
    QueueDatabase(db_path).initialize_schema()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        with immediate_transaction(conn):
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        with pytest.raises(KeyboardInterrupt), immediate_transaction(conn):
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('b', '{}')")
            raise KeyboardInterrupt
        assert conn.execute("SELECT worker_id FROM workers").fetchall() == [("a",)]
        assert not conn.in_transaction
    finally:
        conn.close()


def test_sqlite_busy_handling(db_path: Path) -> None:
    """A held write lock becomes QueueBusyError after the busy timeout, saying how long."""
    QueueDatabase(db_path).initialize_schema()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        began: list[TransactionBegan] = []
        db = QueueDatabase(db_path, busy_timeout_ms=150, tracer=_collect(began))
        with pytest.raises(QueueBusyError) as info, db.transaction():
            pass  # pragma: no cover - BEGIN IMMEDIATE fails first
        assert info.value.waited_seconds >= 0.1
        assert "waited" in str(info.value)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert [event.acquired for event in began] == [False]
        assert began[0].lock_wait_seconds == pytest.approx(info.value.waited_seconds, abs=0.05)
        assert began[0].lock_wait_seconds >= 0.1
        with pytest.raises(QueueBusyError):
            db.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        holder.execute("ROLLBACK")
        with db.transaction() as conn:  # the lock is free again: works
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
    finally:
        holder.close()


def test_busy_waits_for_a_short_lock_instead_of_failing(db_path: Path) -> None:
    QueueDatabase(db_path).initialize_schema()
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    releaser.start()
    try:
        began: list[TransactionBegan] = []
        db = QueueDatabase(db_path, tracer=_collect(began))
        with db.transaction() as conn:
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        assert [event.acquired for event in began] == [True]
        assert began[0].lock_wait_seconds >= 0.1
    finally:
        releaser.join()
        holder.close()


def test_without_busy_wait_fails_at_once_and_restores_the_timeout(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside without_busy_wait() a taken write lock raises at once, unlogged; afterwards the
    busy timeout applies again (the worker engine retries on its own schedule meanwhile)."""
    QueueDatabase(db_path).initialize_schema()
    holder = sqlite3.connect(db_path, isolation_level=None)
    db = QueueDatabase(db_path, busy_timeout_ms=300)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with db.without_busy_wait():
            assert db.pragma_values()["busy_timeout"] == 0
            started = time.perf_counter()
            with (
                caplog.at_level("WARNING"),
                pytest.raises(QueueBusyError) as info,
                db.transaction(),
            ):
                pass  # pragma: no cover - BEGIN IMMEDIATE fails first
            assert time.perf_counter() - started < 0.25  # did not wait out the busy timeout
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert not [r for r in caplog.records if r.name == "queue_core.database"]
        assert db.pragma_values()["busy_timeout"] == 300
        started = time.perf_counter()
        with pytest.raises(QueueBusyError), db.transaction():
            pass  # pragma: no cover - BEGIN IMMEDIATE fails first
        assert time.perf_counter() - started >= 0.25  # waited again
        holder.execute("ROLLBACK")
        with db.without_busy_wait(), db.transaction() as conn:  # a free lock is simply taken
            conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
        assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 1
    finally:
        holder.close()
        db.close()


def test_concurrent_transactions(db: QueueDatabase) -> None:
    """16 threads mixing execute, execute_many and transaction on one instance lose nothing."""
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def work(thread: int) -> None:
        try:
            start.wait()
            for i in range(25):
                key = f"t{thread}-{i}"
                kind = (thread + i) % 3
                if kind == 0:
                    db.execute(
                        "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')", (key,)
                    )
                elif kind == 1:
                    db.execute_many(
                        "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')",
                        [(key,), (key + "-b",)],
                    )
                else:
                    with db.transaction() as conn:
                        conn.execute(
                            "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')",
                            (key,),
                        )
                        count = conn.execute(
                            "SELECT count(*) FROM workers WHERE worker_id = ?", (key,)
                        ).fetchone()[0]
                        assert count == 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    expected = sum(2 if (t + i) % 3 == 1 else 1 for t in range(16) for i in range(25))
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == expected


def test_concurrent_selects_return_the_right_rows(db: QueueDatabase) -> None:
    """Shared-connection reads are serialised, fetches included (cpython #118172)."""
    db.execute_many(
        "INSERT INTO workers (worker_id, capabilities) VALUES (?, ?)",
        [(f"w{i:03d}", f'{{"n": {i}}}') for i in range(50)],
    )
    expected = [(f"w{i:03d}", f'{{"n": {i}}}') for i in range(50)]
    wrong: list[object] = []
    start = threading.Barrier(20)

    def read() -> None:
        start.wait()
        for _ in range(50):
            rows = db.execute(
                "SELECT worker_id, capabilities FROM workers ORDER BY worker_id"
            ).fetchall()
            if [tuple(row) for row in rows] != expected:
                wrong.append(rows)  # pragma: no cover - the failure being guarded against

    threads = [threading.Thread(target=read) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert wrong == []


def _child_inserts(
    db: QueueDatabase, worker_id: str, results: multiprocessing.Queue[object]
) -> None:
    try:
        db.execute(
            "INSERT INTO workers (worker_id, capabilities) VALUES (?, ?)",
            (worker_id, f'{{"pid": {os.getpid()}}}'),
        )
        results.put(("ok", os.getpid(), db.pragma_values()["foreign_keys"]))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        results.put(("error", repr(exc), None))
    finally:
        db.close()


def test_spawn_child_gets_its_own_connection(db: QueueDatabase) -> None:
    results: multiprocessing.Queue[object] = SPAWN.Queue()
    child = SPAWN.Process(target=_child_inserts, args=(db, "spawned", results))
    child.start()
    outcome = results.get(timeout=60)
    child.join(timeout=60)
    assert outcome[0] == "ok", outcome
    assert outcome[1] != os.getpid()
    assert outcome[2] == 1  # PRAGMAs applied in the child too
    row = db.execute("SELECT capabilities FROM workers WHERE worker_id = 'spawned'").fetchone()
    assert row is not None


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this OS"
)
def test_fork_child_reopens_instead_of_reusing_the_parent_connection(db: QueueDatabase) -> None:
    parent_conn = db.get_connection()
    fork = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[object] = fork.Queue()
    child = fork.Process(target=_child_inserts, args=(db, "forked", results))
    child.start()
    outcome = results.get(timeout=60)
    child.join(timeout=60)
    assert outcome[0] == "ok", outcome
    assert db.get_connection() is parent_conn  # the parent is unaffected
    assert db.execute("SELECT count(*) FROM workers WHERE worker_id = 'forked'").fetchone()[0]


def test_fork_detection_replaces_connection_and_lock(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated in-process: a new pid means a new connection; the old one is never closed."""
    from queue_core import database as database_module

    old_conn, old_lock = db.get_connection(), db.lock()
    monkeypatch.setattr(database_module, "_FORK_ORPHANS", [])
    monkeypatch.setattr(database_module.os, "getpid", lambda: -12345)
    new_conn = db.get_connection()
    assert new_conn is not old_conn
    assert db.lock() is not old_lock
    assert [old_conn] == database_module._FORK_ORPHANS
    old_conn.execute("SELECT 1")  # the orphan was not closed
    db.close()
    old_conn.close()


def test_pickled_instance_reconnects_lazily(db: QueueDatabase) -> None:
    import pickle

    db.tracer = print  # a tracer stays in its process: the copy has none
    clone = pickle.loads(pickle.dumps(db))
    try:
        assert clone.path == db.path
        assert clone.pragmas == db.pragmas
        assert clone.tracer is None
        events: list[TraceEvent] = []
        clone.tracer = events.append
        assert events == []  # not connected yet
        assert clone.execute("SELECT count(*) FROM workers").fetchone()[0] == 0
        assert sum(isinstance(event, Connected) for event in events) == 1
        assert clone.get_connection() is not db.get_connection()
    finally:
        clone.close()


def test_close_is_idempotent_and_releases_every_handle(db_path: Path) -> None:
    db = QueueDatabase(db_path)
    db.initialize_schema()
    db.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
    assert open_handles(db_path) or sys.platform != "linux"
    db.close()
    db.close()
    assert db.closed
    assert open_handles(db_path) == []
    with pytest.raises(QueueClosedError):
        db.execute("SELECT 1")
    assert "closed" in repr(db)


def test_context_manager_closes(db_path: Path) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        assert "open" in repr(db)
    assert db.closed
    assert open_handles(db_path) == []


def test_windows_file_locking(db_path: Path) -> None:
    """Closed files can be renamed and deleted; on Windows an open one cannot."""
    db = QueueDatabase(db_path)
    db.initialize_schema()
    if sys.platform == "win32":  # pragma: no cover - Windows only
        with pytest.raises(PermissionError):
            db_path.unlink()
    db.close()
    moved = db_path.with_name("moved.db")
    db_path.rename(moved)
    moved.unlink()
    assert not any(p.exists() for p in (db_path, moved, Path(f"{db_path}-wal")))


def test_not_a_database_raises_a_clear_error(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a sqlite file at all" * 64)
    with pytest.raises(QueueCorruptError, match="not a SQLite database") as info:
        QueueDatabase(db_path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert open_handles(db_path) == []


def test_directory_as_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QueueLocationError):
        QueueDatabase(tmp_path)


def test_unopenable_file_is_a_location_error(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(QueueLocationError, match="cannot open"):
        QueueDatabase(db_path)


def test_wal_unavailable_raises(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without shared memory leaves journal_mode at 'delete'."""
    monkeypatch.setattr(QueueDatabase, "_enable_wal", lambda self, conn: "delete")
    with pytest.raises(WalUnavailableError, match="journal_mode stayed 'delete'"):
        QueueDatabase(db_path)
    assert open_handles(db_path) == []


def test_interrupt_while_connecting_closes_the_connection(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: QueueDatabase, conn: sqlite3.Connection) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(QueueDatabase, "_apply_pragmas", interrupted)
    with pytest.raises(KeyboardInterrupt):
        QueueDatabase(db_path)
    assert open_handles(db_path) == []


def test_old_sqlite_is_refused(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    with pytest.raises(QueueDatabaseError, match=r"too old.*3\.35"):
        QueueDatabase(db_path)


def _open_new_file(path: str, start: object, results: multiprocessing.Queue[object]) -> None:
    try:
        start.wait(timeout=30)  # type: ignore[attr-defined]
        with QueueDatabase(path) as db:
            db.initialize_schema()
            mode = db.pragma_values()["journal_mode"]
            db.execute(
                "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')",
                (f"p{os.getpid()}",),
            )
        results.put(("ok", mode))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        results.put(("error", repr(exc)))


@pytest.mark.slow
def test_processes_racing_on_a_new_file_all_get_wal(tmp_path: Path) -> None:
    """Processes released together onto a new file race on journal_mode=WAL; all succeed."""
    processes = 6
    for round_number in range(3):
        path = tmp_path / f"race-{round_number}.db"
        start = SPAWN.Barrier(processes)
        results: multiprocessing.Queue[object] = SPAWN.Queue()
        children = [
            SPAWN.Process(target=_open_new_file, args=(str(path), start, results))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join(timeout=60)
        assert outcomes == [("ok", "wal")] * processes
        with QueueDatabase(path) as db:
            assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == processes


def test_wal_retry_gives_up_after_the_deadline(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WAL switch that keeps failing with 'locked' ends in a clear busy error."""
    db = QueueDatabase(db_path, busy_timeout_ms=0)
    db.close()

    class AlwaysLocked:
        def execute(self, sql: str) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("queue_core.database.time.sleep", lambda seconds: None)
    started = time.perf_counter()
    with pytest.raises(sqlite3.OperationalError):
        db._enable_wal(AlwaysLocked())  # type: ignore[arg-type]
    assert time.perf_counter() - started >= 0.9


def test_schema_error_for_a_missing_table(db_path: Path) -> None:
    db = QueueDatabase(db_path)  # no initialize_schema()
    with pytest.raises(QueueSchemaError, match="no such table"):
        db.execute("SELECT count(*) FROM task_queue")


def test_wal_checkpoint_does_not_block_readers_or_writers(db: QueueDatabase) -> None:
    """Checkpoints run while another connection reads and then writes."""
    db.execute_many(
        "INSERT INTO workers (worker_id, capabilities) VALUES (?, '{}')",
        [(f"w{i}",) for i in range(2000)],
    )
    reader = QueueDatabase(db.path)
    try:
        with reader.lock():
            conn = reader.get_connection()
            conn.execute("BEGIN")
            assert conn.execute("SELECT count(*) FROM workers").fetchone()[0] == 2000
            # PASSIVE copies what it can; the reader pins its snapshot, and writes go on.
            busy, log, checkpointed = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert busy == 0 and log > 0 and checkpointed <= log
            db.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('late', '{}')")
            assert conn.execute("SELECT count(*) FROM workers").fetchone()[0] == 2000
            conn.execute("COMMIT")
        busy, log, checkpointed = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert (busy, log, checkpointed) == (0, 0, 0)
        assert Path(f"{db.path}-wal").stat().st_size == 0
        assert reader.execute("SELECT count(*) FROM workers").fetchone()[0] == 2001
    finally:
        reader.close()


def test_pragma_read_errors_are_translated(db: QueueDatabase) -> None:
    """Even reading PRAGMAs never lets a raw sqlite3 error out of the package."""

    class Failing:
        def execute(self, sql: str) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("disk I/O error")

    real = db.get_connection()
    db._conn = Failing()  # type: ignore[assignment]
    try:
        with pytest.raises(QueueDatabaseError, match="disk I/O error") as info:
            db.pragma_values()
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        db._conn = real
