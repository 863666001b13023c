"""QueueDatabase's tracer: connect, statement and transaction events."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from queue_core import QueueDatabase, TaskQueue
from queue_core.tracing import Connected, Statement, TraceEvent, TransactionBegan


def statements(events: list[TraceEvent]) -> list[str]:
    return [event.sql for event in events if isinstance(event, Statement)]


def test_a_tracer_sees_connect_pragmas_statements_and_transactions(db_path: Path) -> None:
    events: list[TraceEvent] = []
    db = QueueDatabase(db_path, tracer=events.append)
    assert isinstance(events[-1], Connected)
    assert any(sql.startswith("PRAGMA journal_mode") for sql in statements(events))
    db.initialize_schema()
    queue = TaskQueue(db)
    events.clear()
    task_id = queue.enqueue("render", {"n": 1})
    assert any("INSERT INTO task_queue" in sql and "'render'" in sql for sql in statements(events))
    events.clear()
    task = queue.claim_one("w1")
    assert task is not None and task.id == task_id
    # The claim's look before the lock comes first: reads, no transaction.
    begin = next(
        i for i, e in enumerate(events) if isinstance(e, Statement) and e.sql == "BEGIN IMMEDIATE"
    )
    assert all(e.sql.startswith("SELECT") for e in events[:begin] if isinstance(e, Statement))
    events = events[begin:]
    kinds = [type(event).__name__ for event in events]
    assert kinds[:2] == ["Statement", "TransactionBegan"]  # BEGIN IMMEDIATE, then its wait
    sqls = statements(events)
    assert sqls[0] == "BEGIN IMMEDIATE"
    # Statements run on the connection transaction() yields are traced too, values inlined.
    assert any("UPDATE task_queue" in sql and "'w1'" in sql for sql in sqls)
    assert sqls[-1] == "COMMIT"
    began = [event for event in events if isinstance(event, TransactionBegan)]
    assert len(began) == 1 and began[0].acquired and began[0].lock_wait_seconds >= 0


def test_the_tracer_can_be_set_and_removed_on_an_open_connection(db: QueueDatabase) -> None:
    assert db.tracer is None
    events: list[TraceEvent] = []
    db.tracer = events.append
    assert db.tracer is not None
    db.execute("SELECT 41 + 1")
    assert statements(events) == ["SELECT 41 + 1"]
    with db.transaction():
        pass
    assert [type(event) for event in events[1:]] == [Statement, TransactionBegan, Statement]
    db.tracer = None
    db.execute("SELECT 1")
    with db.transaction():
        pass
    assert len(events) == 4


def test_a_nested_transaction_is_a_savepoint_not_a_new_begin(db: QueueDatabase) -> None:
    events: list[TraceEvent] = []
    db.tracer = events.append
    with db.transaction(), db.transaction():
        pass
    assert sum(isinstance(event, TransactionBegan) for event in events) == 1
    assert any(sql.startswith("SAVEPOINT") for sql in statements(events))


def test_a_failing_tracer_rolls_the_transaction_back(db: QueueDatabase) -> None:
    def tracer(event: TraceEvent) -> None:
        if isinstance(event, TransactionBegan):
            raise RuntimeError("tracer broke")

    db.tracer = tracer
    with pytest.raises(RuntimeError, match="tracer broke"), db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
    assert not db.get_connection().in_transaction
    db.tracer = None
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0


def test_a_tracer_that_raises_on_a_statement_does_not_break_it(db: QueueDatabase) -> None:
    seen: list[str] = []

    def tracer(event: TraceEvent) -> None:
        if isinstance(event, Statement):
            seen.append(event.sql)
            raise RuntimeError("swallowed by sqlite3's trace callback")

    db.tracer = tracer
    assert db.execute("SELECT 1").fetchone()[0] == 1
    with db.transaction() as conn:
        conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('a', '{}')")
    assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 1
    assert seen[0] == "SELECT 1" and "COMMIT" in seen


@pytest.mark.parametrize("tracer", ["print", 42])
def test_a_tracer_must_be_callable(db_path: Path, db: QueueDatabase, tracer: object) -> None:
    with pytest.raises(TypeError, match="tracer must be callable"):
        QueueDatabase(db_path, tracer=tracer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tracer must be callable"):
        db.tracer = tracer  # type: ignore[assignment]
    assert db.tracer is None


def test_a_tracer_failing_on_connect_leaves_no_connection_open(db_path: Path) -> None:
    def tracer(event: TraceEvent) -> None:
        if isinstance(event, Connected):
            raise RuntimeError("tracer broke")

    with pytest.raises(RuntimeError, match="tracer broke"):
        QueueDatabase(db_path, tracer=tracer)
    names = {str(db_path), f"{db_path}-wal", f"{db_path}-shm"}
    assert [f.path for f in psutil.Process().open_files() if f.path in names] == []


def test_trace_statements_false_keeps_connect_and_lock_wait_events_only(db_path: Path) -> None:
    events: list[TraceEvent] = []
    db = QueueDatabase(db_path, tracer=events.append, trace_statements=False)
    db.initialize_schema()
    TaskQueue(db).enqueue("t", {})  # an autocommit insert: no transaction, no lock-wait event
    TaskQueue(db).claim("w1")  # finds the task, so it takes the write lock
    db.tracer = events.append  # setting the tracer again keeps the choice
    db.execute("SELECT 1")
    kinds = [type(event) for event in events]
    assert kinds == [Connected, TransactionBegan, TransactionBegan]  # migration, then claim
