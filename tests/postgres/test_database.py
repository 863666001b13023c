"""PostgresDatabase's own behaviour: what the backend-parametrised suites cannot show.

These are PostgreSQL-specific because they are about the server: a terminated session, row
locks, a serialization failure, the connection shared by threads, and rows that must build the
same models as SQLite's (compared side by side here).
"""

from __future__ import annotations

import pickle
import random
import threading
from pathlib import Path

import psycopg
import pytest

from queue_core import (
    QueueBusyError,
    QueueClosedError,
    QueueConnectionError,
    QueueDatabase,
    QueueDatabaseError,
    TaskQueue,
    TaskStatus,
    connect,
)
from queue_core.postgres.database import PostgresDatabase, utc_text
from tests.conftest import FakeClock


@pytest.fixture
def pg(postgres_queue_url: str) -> PostgresDatabase:
    from tests.conftest import empty_postgres_queue

    empty_postgres_queue(postgres_queue_url)
    db = PostgresDatabase(postgres_queue_url, lock_timeout_ms=200)
    db.initialize_schema()
    return db


def test_connect_opens_the_backend_its_target_names(
    postgres_queue_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(tmp_path / "q.db") as sqlite_db:
        assert isinstance(sqlite_db, QueueDatabase)
    with connect(postgres_queue_url) as pg_db:
        assert isinstance(pg_db, PostgresDatabase)
        assert pg_db.backend_name == "postgres"
    short = postgres_queue_url.replace("postgresql://", "postgres://", 1)
    with connect(short, lock_timeout_ms=100) as pg_db:
        assert isinstance(pg_db, PostgresDatabase)
    monkeypatch.setenv("PRISMQ_QUEUE_DB_PATH", postgres_queue_url)
    with connect() as from_env:
        assert isinstance(from_env, PostgresDatabase)
    with pytest.raises(TypeError):
        connect(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        connect(postgres_queue_url, busy_timeout_ms=5)  # SQLite's option


def test_the_password_never_shows() -> None:
    db = PostgresDatabase("postgresql://prismq:s3cret@db.example:5432/queue")
    assert "s3cret" not in repr(db) and "s3cret" not in db.location
    assert db.location == "postgresql://prismq:***@db.example:5432/queue"


def test_rows_build_the_same_models_as_sqlite(pg: PostgresDatabase, tmp_path: Path) -> None:
    """The same calls with the same clock give equal Tasks, TaskLogs and Workers."""
    results = []
    for db in (QueueDatabase(tmp_path / "same.db"), pg):
        db.initialize_schema()
        clock = FakeClock()
        queue = TaskQueue(db, clock=clock, rng=random.Random(7))
        first = queue.enqueue(
            "render",
            {"format": "webp", "sizes": [1, 2.5], "nested": {"b": None, "a": "é"}},
            priority=-3,
            compatibility={"region": "eu", "gpu": True},
            max_attempts=2,
            idempotency_key="k",
        )
        queue.enqueue_many([{"type": "mail", "payload": "text"}, {"type": "mail", "payload": 0}])
        queue.register_worker("w1", {"cores": 4})
        claimed = queue.claim("w1", limit=3, region="eu", lease_seconds=12.345)
        clock.advance(0.5)
        queue.log(first, "warning", "slow", {"ms": 1.5})
        failed = queue.fail(first, "w1", "boom")
        queue.complete(claimed[1].id, "w1")
        results.append(
            (
                claimed,
                failed,
                queue.get(first),
                queue.list_tasks(limit=10),
                queue.logs(first),
                queue.workers(),
                queue.counts(),
                queue.next_due(),
            )
        )
        db.close()
    assert results[0] == results[1]
    tasks = results[1][3]
    assert {task.status for task in tasks} == {
        TaskStatus.QUEUED,
        TaskStatus.PROCESSING,
        TaskStatus.COMPLETED,
    }


def test_times_come_back_as_the_stored_text() -> None:
    assert utc_text("2026-01-01 12:00:00+00") == "2026-01-01 12:00:00.000"
    assert utc_text("2026-01-01 12:00:00.1+00") == "2026-01-01 12:00:00.100"
    assert utc_text("2026-01-01 12:00:00.123+00") == "2026-01-01 12:00:00.123"
    assert utc_text("2026-01-01 12:00:00.1234+00") == "2026-01-01 12:00:00.123400"


def test_a_lost_connection_is_a_typed_error_and_the_next_call_reconnects(
    pg: PostgresDatabase, postgres_queue_url: str
) -> None:
    queue = TaskQueue(pg)
    task_id = queue.enqueue("t", {})
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(postgres_queue_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(QueueConnectionError) as caught:
        queue.get(task_id)
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert queue.get(task_id).id == task_id  # a new connection
    assert pg.execute("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_a_connection_lost_inside_a_transaction_commits_nothing(
    pg: PostgresDatabase, postgres_queue_url: str
) -> None:
    queue = TaskQueue(pg)
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(QueueConnectionError), queue.atomic():
        queue.enqueue("t", {})
        with psycopg.connect(postgres_queue_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        queue.enqueue("t", {})
    assert queue.counts()[TaskStatus.QUEUED] == 0


def test_a_held_row_lock_is_queue_busy_after_the_lock_timeout(
    pg: PostgresDatabase, postgres_queue_url: str
) -> None:
    queue = TaskQueue(pg)
    task_id = queue.enqueue("t", {})
    (claimed,) = queue.claim("w1")
    with psycopg.connect(postgres_queue_url) as holder:
        holder.execute("SELECT 1 FROM task_queue WHERE id = %s FOR UPDATE", (task_id,))
        with pytest.raises(QueueBusyError):
            queue.complete(claimed.id, "w1")
        # Claims skip the locked row instead of waiting for it.
        queue.enqueue("t", {})
        assert [task.id for task in queue.claim("w2")] == [task_id + 1]
        holder.rollback()
    queue.complete(claimed.id, "w1")
    assert queue.get(task_id).status is TaskStatus.COMPLETED


FLAKY = (
    "CREATE SEQUENCE flaky_calls",
    """CREATE FUNCTION flaky(fail_times integer) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('flaky_calls') <= fail_times THEN
        RAISE EXCEPTION 'lost a race' USING ERRCODE = '40001';
      END IF;
      RETURN 1;
    END $$""",
)


def test_a_lost_race_is_retried_alone_and_busy_inside_a_transaction(
    pg: PostgresDatabase,
) -> None:
    for statement in FLAKY:
        pg.execute(statement)
    assert pg.execute("SELECT flaky(2)").fetchone()[0] == 1  # failed twice, then worked
    pg.execute("SELECT setval('flaky_calls', 1, false)")
    with pytest.raises(QueueBusyError), pg.transaction() as session:
        session.execute("SELECT flaky(1)")  # a block cannot be replayed
    pg.execute("SELECT setval('flaky_calls', 1, false)")
    with pytest.raises(QueueBusyError):
        pg.execute("SELECT flaky(100)")  # keeps losing: busy in the end


def test_no_psycopg_error_reaches_the_caller(pg: PostgresDatabase) -> None:
    queue = TaskQueue(pg)
    with pytest.raises(QueueDatabaseError) as caught:
        pg.execute("SELECT * FROM no_such_table")
    assert not isinstance(caught.value, psycopg.Error)
    with pytest.raises(QueueDatabaseError):
        queue.enqueue("t\x00", {})  # PostgreSQL text cannot hold NUL
    assert queue.counts()[TaskStatus.QUEUED] == 0
    pg.close()
    with pytest.raises(QueueClosedError):
        queue.enqueue("t", {})
    refused = PostgresDatabase("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(QueueConnectionError):
        refused.execute("SELECT 1")


def test_a_pickled_database_opens_its_own_connection(pg: PostgresDatabase) -> None:
    TaskQueue(pg).enqueue("t", {})
    copy = pickle.loads(pickle.dumps(pg))
    try:
        assert TaskQueue(copy).counts()[TaskStatus.QUEUED] == 1
        pids = {db.execute("SELECT pg_backend_pid()").fetchone()[0] for db in (pg, copy)}
        assert len(pids) == 2
    finally:
        copy.close()


def test_threads_share_one_instance_and_wait_for_its_transactions(pg: PostgresDatabase) -> None:
    queue = TaskQueue(pg)
    errors: list[BaseException] = []

    def produce(n: int) -> None:
        try:
            for i in range(25):
                with queue.atomic():
                    queue.enqueue("t", {"n": n, "i": i})
                    queue.enqueue("t", {"n": n, "i": i, "second": True})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert queue.counts()[TaskStatus.QUEUED] == 200


def test_the_change_token_moves_when_another_connection_commits(
    pg: PostgresDatabase, postgres_queue_url: str
) -> None:
    token = pg.change_token()
    assert pg.change_token() == token  # nothing happened
    with PostgresDatabase(postgres_queue_url) as other:
        TaskQueue(other).enqueue("t", {})
    assert pg.change_token() != token


def test_the_cli_takes_a_url_and_refuses_file_commands_in_one_line(
    postgres_queue_url: str,
) -> None:
    import json

    from tests.conftest import empty_postgres_queue
    from tests.integration.test_cli import run_cli

    empty_postgres_queue(postgres_queue_url)
    init = run_cli("init", "--db", postgres_queue_url, "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["schema_version"] >= 4
    for command in (["backup"], ["check"], ["backups"], ["restore", "x.db"]):
        result = run_cli(*command, "--db", postgres_queue_url)
        assert result.returncode == 2, (command, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert "works on a SQLite queue file" in line


def test_the_readme_connect_example_runs(postgres_queue_url: str, tmp_path: Path) -> None:
    import re

    from tests.conftest import empty_postgres_queue

    empty_postgres_queue(postgres_queue_url)
    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text(encoding="utf-8").split("### SQLite or PostgreSQL: `connect()`")[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README lost its connect() example"
    code = match[1].replace('"queue.db"', repr(str(tmp_path / "queue.db")))
    code = code.replace('"postgresql://prismq:secret@db-host/prismq"', repr(postgres_queue_url))
    namespace: dict[str, object] = {}
    exec(compile(code, str(readme), "exec"), namespace)
    queue = namespace["queue"]
    assert isinstance(queue, TaskQueue) and isinstance(queue.db, PostgresDatabase)
    queue.enqueue("t", {})
    queue.db.close()
