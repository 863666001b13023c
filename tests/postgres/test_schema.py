"""The PostgreSQL schema and its migration runner, against a real server."""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from queue_core import QueueDatabase, QueueIntegrityError, QueueSchemaError, sql
from queue_core.postgres import schema
from queue_core.postgres.errors import translate_error

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def conn(postgres_url: str) -> Iterator[Any]:
    with psycopg.connect(postgres_url) as connection:
        yield connection


@pytest.fixture
def migrated(conn: Any) -> Any:
    schema.migrate(conn)
    return conn


def insert_task(conn: Any, **fields: Any) -> int:
    values = {"type": "render", "payload": {}, **fields}
    for key in ("payload", "compatibility"):
        if key in values:
            values[key] = json.dumps(values[key])
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({key})s" for key in values)
    row = conn.execute(
        f"INSERT INTO task_queue ({columns}) VALUES ({placeholders}) RETURNING id", values
    ).fetchone()
    return int(row[0])


def test_migrate_creates_the_schema_and_records_every_migration(conn: Any) -> None:
    assert schema.schema_version(conn) == 0
    assert schema.migrate(conn) == schema.latest_version() == sql.postgres_migrations()[-1].version
    expected = {m.version: m.name for m in sql.postgres_migrations()}
    assert schema.applied_migrations(conn) == expected
    schema.verify(conn)


def test_the_postgres_migrations_create_every_object_the_runner_verifies() -> None:
    text = "\n".join(s for m in sql.postgres_migrations() for s in m.statements)
    names = (
        *schema.TABLES,
        *schema.VIEWS,
        *schema.INDEXES,
        *schema.TRIGGERS,
        *schema.FUNCTIONS,
        *schema.GENERATED_COLUMNS,
    )
    assert [name for name in names if f" {name}" not in text] == []


def test_columns_are_typed_not_text(migrated: Any) -> None:
    types = dict(
        migrated.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'task_queue'"
        ).fetchall()
    )
    assert types["payload"] == types["compatibility"] == "jsonb"
    for name in ("run_after_utc", "lease_until_utc", "finished_at_utc", "created_at_utc"):
        assert types[name] == "timestamp with time zone"
    assert types["id"] == "bigint"
    identity = migrated.execute(
        "SELECT identity_generation FROM information_schema.columns"
        " WHERE table_name = 'task_queue' AND column_name = 'id'"
    ).fetchone()
    assert identity == ("ALWAYS",)
    for table, column in (("workers", "capabilities"), ("task_logs", "details")):
        row = migrated.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = %s AND column_name = %s",
            (table, column),
        ).fetchone()
        assert row == ("jsonb",)


def test_generated_columns_follow_the_json(migrated: Any) -> None:
    both = insert_task(migrated, payload={"format": "png"}, compatibility={"region": "eu"})
    neither = insert_task(migrated, payload={"x": 1})
    rows = dict(
        (row[0], row[1:]) for row in migrated.execute("SELECT id, region, format FROM task_queue")
    )
    assert rows == {both: ("eu", "png"), neither: (None, None)}
    migrated.execute(
        'UPDATE task_queue SET compatibility = \'{"region": "us"}\' WHERE id = %s', (both,)
    )
    assert migrated.execute("SELECT region FROM task_queue WHERE id = %s", (both,)).fetchone() == (
        "us",
    )
    with pytest.raises(psycopg.errors.GeneratedAlways):
        migrated.execute("UPDATE task_queue SET region = 'x'")


def test_json_columns_refuse_text_that_is_not_json(migrated: Any) -> None:
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        migrated.execute("INSERT INTO task_queue (type, payload) VALUES ('t', 'not json')")


def test_constraints_map_to_queue_integrity_error(migrated: Any) -> None:
    insert_task(migrated, idempotency_key="k")
    insert_task(migrated)  # keys may be NULL any number of times
    insert_task(migrated)
    migrated.commit()
    for statement in (
        "INSERT INTO task_queue (type, payload, idempotency_key) VALUES ('t', '{}', 'k')",
        "INSERT INTO task_logs (task_id, level) VALUES (999999, 'INFO')",
        "INSERT INTO task_queue (payload) VALUES ('{}')",
    ):
        with pytest.raises(psycopg.IntegrityError) as caught:
            migrated.execute(statement)
        migrated.rollback()
        assert isinstance(translate_error(caught.value), QueueIntegrityError)


def test_a_task_with_logs_cannot_be_deleted_before_them(migrated: Any) -> None:
    task = insert_task(migrated)
    migrated.execute("INSERT INTO task_logs (task_id, level) VALUES (%s, 'INFO')", (task,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        migrated.execute("DELETE FROM task_queue WHERE id = %s", (task,))


def pg_indexes(conn: Any) -> dict[str, tuple[bool, tuple[str, ...], str | None]]:
    """name -> (unique, columns, predicate) of every index on the queue's tables."""
    rows = conn.execute(
        """
        SELECT i.relname::text, x.indisunique,
               array(SELECT pg_get_indexdef(x.indexrelid, k, true)
                     FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k),
               pg_get_expr(x.indpred, x.indrelid, true)
        FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
        WHERE x.indrelid IN ('task_queue'::regclass, 'task_logs'::regclass)
          AND NOT x.indisprimary
        """
    ).fetchall()
    return {name: (unique, tuple(columns), predicate) for name, unique, columns, predicate in rows}


def normalise(predicate: str | None) -> str | None:
    """A predicate in one spelling: no casts, parentheses, case or spacing differences."""
    if predicate is None:
        return None
    text = re.sub(r"::\w+", "", predicate).replace("(", "").replace(")", "")
    return " ".join(text.lower().split())


def test_indexes_match_the_sqlite_schema(migrated: Any, tmp_path: Path) -> None:
    """Every SQLite index exists in PostgreSQL with the same columns, uniqueness, predicate."""
    db = QueueDatabase(tmp_path / "queue.db")
    db.initialize_schema()
    db.close()
    lite = sqlite3.connect(tmp_path / "queue.db")
    try:
        sqlite_indexes = {}
        for table in ("task_queue", "task_logs"):
            for _, name, unique, origin, partial in lite.execute(f"PRAGMA index_list({table})"):
                if origin != "c":
                    continue  # primary keys and UNIQUE constraints have no name of ours
                columns = tuple(row[2] for row in lite.execute(f"PRAGMA index_info({name})"))
                text = lite.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (name,)
                ).fetchone()[0]
                predicate = text.split(" WHERE ", 1)[1] if partial else None
                sqlite_indexes[name] = (bool(unique), columns, normalise(predicate))
    finally:
        lite.close()
    postgres = {
        name: (unique, columns, normalise(predicate))
        for name, (unique, columns, predicate) in pg_indexes(migrated).items()
    }
    assert sqlite_indexes  # the comparison below must compare something
    for name, expected in sqlite_indexes.items():
        assert postgres.get(name) == expected, name
    assert set(postgres) == set(schema.INDEXES)


def test_partial_indexes_have_their_predicates(migrated: Any) -> None:
    predicates = {name: normalise(p) for name, (_, _, p) in pg_indexes(migrated).items()}
    assert predicates["uq_task_idempotency"] == "idempotency_key is not null"
    assert predicates["ix_task_lease_expiry"] == "status = 'processing'"
    assert predicates["ix_task_queued_region"] == "status = 'queued'"
    assert predicates["ix_task_queued_type_region"] == "status = 'queued'"
    assert predicates["ix_task_finished"] == "finished_at_utc is not null"
    assert predicates["ix_task_status_prio_time"] is None


def plan_of(conn: Any, query: str, params: tuple[Any, ...] = ()) -> str:
    conn.execute("SET enable_seqscan = off")
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
    return json.dumps(row[0])


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (
            "SELECT id FROM task_queue WHERE status = 'queued' AND run_after_utc <= now()"
            " ORDER BY priority, run_after_utc, id LIMIT 1",
            "ix_task_status_prio_time",
        ),
        (
            "SELECT id FROM task_queue WHERE status = 'queued' AND region = 'eu'"
            " AND run_after_utc <= now() ORDER BY priority, run_after_utc, id LIMIT 1",
            "ix_task_queued_region",
        ),
        (
            "SELECT id FROM task_queue WHERE status = 'queued' AND type = 'render'"
            " AND region IS NULL AND run_after_utc <= now()"
            " ORDER BY priority, run_after_utc, id LIMIT 1",
            "ix_task_queued_type_region",
        ),
        (
            "SELECT id FROM task_queue WHERE status = 'processing' AND lease_until_utc < now()",
            "ix_task_lease_expiry",
        ),
    ],
)
def test_claim_queries_can_use_their_index(migrated: Any, query: str, index: str) -> None:
    for number in range(200):
        insert_task(
            migrated,
            type="render" if number % 25 == 0 else "encode",
            priority=number % 7,
            compatibility={"region": "eu"} if number % 3 else {},
            status=("queued", "processing", "completed")[number % 3],
        )
    migrated.execute("ANALYZE task_queue")
    plan = plan_of(migrated, query)
    assert f'"Index Name": "{index}"' in plan
    if index == "ix_task_status_prio_time":
        # The index gives the claim order. (With a rare type the planner may sort the few
        # rows the type+region index finds instead, which is cheap; that is its choice.)
        assert '"Node Type": "Sort"' not in plan


def finished_totals(conn: Any) -> dict[tuple[str, str], int]:
    return {(t, s): n for t, s, n in conn.execute("SELECT * FROM finished_task_totals")}


def counted(conn: Any) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT type, status, count(*) FROM task_queue"
        " WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY type, status"
    )
    return {(t, s): n for t, s, n in rows}


def test_finished_counters_follow_every_transition(migrated: Any) -> None:
    a = insert_task(migrated, type="a")
    b = insert_task(migrated, type="b", status="failed")  # inserted final
    assert finished_totals(migrated) == {("b", "failed"): 1}
    migrated.execute("UPDATE task_queue SET status = 'processing' WHERE id = %s", (a,))
    migrated.execute("UPDATE task_queue SET status = 'completed' WHERE id = %s", (a,))
    migrated.execute("UPDATE task_queue SET priority = 5 WHERE id = %s", (a,))  # not counted
    migrated.execute("UPDATE task_queue SET status = 'queued' WHERE id = %s", (b,))  # retry
    migrated.execute("UPDATE task_queue SET status = 'cancelled' WHERE id = %s", (b,))
    migrated.execute("UPDATE task_queue SET type = 'c' WHERE id = %s", (b,))
    assert (
        finished_totals(migrated)
        == counted(migrated)
        == {
            ("a", "completed"): 1,
            ("c", "cancelled"): 1,
        }
    )
    migrated.execute("DELETE FROM task_queue WHERE id = %s", (a,))
    assert finished_totals(migrated) == counted(migrated) == {("c", "cancelled"): 1}
    deltas = migrated.execute("SELECT count(*) FROM finished_task_counts").fetchone()[0]
    removed = migrated.execute("SELECT fold_finished_task_counts()").fetchone()[0]
    assert removed == deltas - 1
    assert migrated.execute("SELECT type, status, n FROM finished_task_counts").fetchall() == [
        ("c", "cancelled", 1)
    ]
    assert finished_totals(migrated) == counted(migrated)


def test_migrate_twice_changes_nothing(migrated: Any) -> None:
    before = migrated.execute("SELECT * FROM queue_schema_migrations ORDER BY version").fetchall()
    migrated.commit()
    assert schema.migrate(migrated) == schema.latest_version()
    after = migrated.execute("SELECT * FROM queue_schema_migrations ORDER BY version").fetchall()
    assert after == before


def test_an_older_database_gets_only_the_missing_migrations(conn: Any) -> None:
    chain = sql.postgres_migrations()
    assert schema.migrate(conn, chain[:2]) == 2
    insert_task(conn, type="t", status="completed")  # counted by 0004's backfill
    conn.commit()
    assert schema.migrate(conn) == schema.latest_version()
    assert sorted(schema.applied_migrations(conn)) == [m.version for m in chain]
    assert finished_totals(conn) == {("t", "completed"): 1}


def test_a_newer_database_is_refused_unchanged(migrated: Any) -> None:
    migrated.execute("INSERT INTO queue_schema_migrations (version, name) VALUES (99, 'future')")
    migrated.commit()
    with pytest.raises(
        QueueSchemaError, match=f"schema version 99, newer than the {schema.latest_version()}"
    ):
        schema.migrate(migrated, sql.postgres_migrations())
    assert schema.schema_version(migrated) == 99


def test_a_database_with_foreign_migrations_is_refused(migrated: Any) -> None:
    migrated.execute("UPDATE queue_schema_migrations SET name = 'other' WHERE version = 2")
    migrated.commit()
    extra = sql.Migration(
        schema.latest_version() + 1, "next", ("CREATE TABLE next_step (a integer)",)
    )
    with pytest.raises(QueueSchemaError, match="0002_other"):
        schema.migrate(migrated, (*sql.postgres_migrations(), extra))
    exists = migrated.execute("SELECT to_regclass('next_step')").fetchone()
    assert exists == (None,)


def test_a_failing_migration_leaves_the_database_as_it_was(migrated: Any) -> None:
    broken = sql.Migration(
        schema.latest_version() + 1,
        "broken",
        ("CREATE TABLE half_done (a integer)", "SELECT no_such_function()"),
    )
    with pytest.raises(
        QueueSchemaError, match=f"migration {schema.latest_version() + 1:04d}_broken failed"
    ) as caught:
        schema.migrate(migrated, (*sql.postgres_migrations(), broken))
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert migrated.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    assert schema.schema_version(migrated) == schema.latest_version()


def test_verify_names_what_is_missing(migrated: Any) -> None:
    migrated.execute("DROP INDEX ix_task_finished")
    migrated.execute("DROP TRIGGER trg_task_finished_count_leave ON task_queue")
    migrated.commit()
    with pytest.raises(QueueSchemaError) as caught:
        schema.verify(migrated)
    assert "index ix_task_finished" in str(caught.value)
    assert "trigger trg_task_finished_count_leave" in str(caught.value)
    assert f"schema version {schema.latest_version()}" in str(caught.value)


def test_migrate_refuses_a_connection_inside_a_transaction(conn: Any) -> None:
    conn.execute("SELECT 1")
    with pytest.raises(ValueError, match="inside a transaction"):
        schema.migrate(conn)


def migrate_in_child(url: str, barrier: Any, results: Any) -> None:
    with psycopg.connect(url) as connection:
        barrier.wait(timeout=60)
        results.put(schema.migrate(connection))


@pytest.mark.slow
def test_two_processes_migrating_at_once_both_succeed_once_each(postgres_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    children = [
        context.Process(target=migrate_in_child, args=(postgres_url, barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    try:
        versions = [results.get(timeout=120) for _ in children]
    finally:
        for child in children:
            child.join(timeout=60)
    assert [child.exitcode for child in children] == [0, 0]
    assert versions == [schema.latest_version()] * 2
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT version, count(*) FROM queue_schema_migrations GROUP BY version"
        ).fetchall()
        assert sorted(rows) == [(m.version, 1) for m in sql.postgres_migrations()]
        schema.verify(connection)
