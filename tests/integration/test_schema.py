"""Schema creation and migrations: exact DDL, idempotence, versions, refusal of unknown files."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from queue_core import QueueDatabase, QueueSchemaError, TaskQueue, sql
from queue_core import schema as schema_module

SEED_INDEXES = {
    "ix_task_status_prio_time": "ON task_queue (status, priority, run_after_utc, id)",
    "ix_task_type_status": "ON task_queue (type, status)",
    "ix_task_region": "ON task_queue (region)",
    "ix_task_format": "ON task_queue (format)",
    "uq_task_idempotency": "ON task_queue (idempotency_key) WHERE idempotency_key IS NOT NULL",
    "ix_logs_task": "ON task_logs (task_id, at_utc)",
}
# Added by migration 0002: the leased tasks, by lease end, for releasing expired leases.
LEASE_INDEX = "ON task_queue (lease_until_utc) WHERE status = 'processing'"
# Added by migration 0003: queued tasks by region / type and region, in claim order.
CLAIM_INDEXES = {
    "ix_task_queued_region": (
        "ON task_queue (region, priority, run_after_utc, id) WHERE status = 'queued'"
    ),
    "ix_task_queued_type_region": (
        "ON task_queue (type, region, priority, run_after_utc, id) WHERE status = 'queued'"
    ),
}


def schema_snapshot(path: Path) -> tuple[int, list[tuple[str, str, str]]]:
    """user_version and the normalised DDL of every object, for comparing two files."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return version, [(kind, name, " ".join(ddl.split())) for kind, name, ddl in rows]


def test_schema_creation(db: QueueDatabase) -> None:
    """The three tables, both generated columns and all six indexes, as the seed gives them."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"task_queue", "workers", "task_logs"} <= tables
    columns = {row["name"]: row for row in db.execute("PRAGMA table_xinfo(task_queue)")}
    assert list(columns)[:18] == [
        "id", "type", "priority", "payload", "compatibility", "status", "attempts",
        "max_attempts", "run_after_utc", "lease_until_utc", "reserved_at_utc",
        "processing_started_utc", "finished_at_utc", "locked_by", "error_message",
        "idempotency_key", "created_at_utc", "updated_at_utc",
    ]  # fmt: skip
    assert columns["region"]["hidden"] == 2  # 2 = generated VIRTUAL
    assert columns["format"]["hidden"] == 2
    assert columns["priority"]["dflt_value"] == "100"
    assert columns["status"]["dflt_value"] == "'queued'"
    assert columns["max_attempts"]["dflt_value"] == "5"
    ddl = {
        row[0]: " ".join(row[1].split())
        for row in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        if row[1]
    }
    for name, definition in {
        **SEED_INDEXES,
        "ix_task_lease_expiry": LEASE_INDEX,
        **CLAIM_INDEXES,
    }.items():
        assert name in ddl
        assert ddl[name].endswith(definition), ddl[name]
    fks = db.execute("PRAGMA foreign_key_list(task_logs)").fetchall()
    assert [(fk["table"], fk["from"], fk["to"]) for fk in fks] == [("task_queue", "task_id", "id")]
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema_module.latest_version()


def test_generated_columns_follow_the_json(db: QueueDatabase) -> None:
    db.execute(
        "INSERT INTO task_queue (type, payload, compatibility) VALUES (?, ?, ?)",
        ("t", '{"format": "webp"}', '{"region": "eu"}'),
    )
    assert tuple(db.execute("SELECT region, format FROM task_queue").fetchone()) == ("eu", "webp")


def test_initialize_schema_is_idempotent(db: QueueDatabase, db_path: Path) -> None:
    before = schema_snapshot(db_path)
    TaskQueue(db).enqueue("t", {})
    for _ in range(3):
        assert db.initialize_schema() == schema_module.latest_version()
    assert schema_snapshot(db_path) == before
    assert db.execute("SELECT count(*) FROM task_queue").fetchone()[0] == 1


def test_migrating_an_unversioned_seed_file_matches_a_fresh_one(tmp_path: Path) -> None:
    """A file made by the seed's DDL before versioning existed (user_version 0) is adopted."""
    fresh = tmp_path / "fresh.db"
    QueueDatabase(fresh).initialize_schema()
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    try:
        conn.executescript(
            (Path(sql.__file__).parent / "migrations" / "0001_initial.sql").read_text("utf-8")
        )
        conn.execute("INSERT INTO task_queue (type, payload) VALUES ('kept', '{}')")
        conn.commit()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    finally:
        conn.close()
    with QueueDatabase(old) as db:
        db.initialize_schema()
        assert db.execute("SELECT type FROM task_queue").fetchone()[0] == "kept"
    assert schema_snapshot(old) == schema_snapshot(fresh)


def test_migrating_a_version_1_file_matches_a_fresh_one(tmp_path: Path) -> None:
    """A version 1 file (the first release) gains the later migrations and keeps its data."""
    fresh = tmp_path / "fresh.db"
    QueueDatabase(fresh).initialize_schema()
    old = tmp_path / "v1.db"
    with QueueDatabase(old) as db:
        assert schema_module.migrate(db, sql.migrations()[:1]) == 1
        TaskQueue(db).enqueue("kept", {"n": 1})
        assert schema_snapshot(old)[0] == 1
        assert "ix_task_lease_expiry" not in str(schema_snapshot(old)[1])
        assert "ix_task_queued_region" not in str(schema_snapshot(old)[1])
        assert db.initialize_schema() == schema_module.latest_version()
        assert TaskQueue(db).get(1).payload == {"n": 1}
    assert schema_snapshot(old) == schema_snapshot(fresh)


def test_release_of_expired_leases_uses_the_lease_index(db: QueueDatabase) -> None:
    plan = db.execute(
        "EXPLAIN QUERY PLAN " + sql.queries()["release_expired_leases"], {"now": "x"}
    ).fetchall()
    assert "ix_task_lease_expiry" in " ".join(row[3] for row in plan)


def _chain() -> tuple[sql.Migration, ...]:
    """The shipped migrations plus a second step, as the next release would add one."""
    step = sql.Migration(
        version=schema_module.latest_version() + 1,
        name="add_worker_host",
        statements=sql.split_statements(
            "ALTER TABLE workers ADD COLUMN host TEXT;\n"
            "CREATE INDEX ix_workers_host ON workers (host);\n"
        ),
    )
    return (*sql.migrations(), step)


def test_migrating_an_older_version_matches_creating_fresh(tmp_path: Path) -> None:
    """Migrating v1 -> v2 gives the same schema as creating v2 from nothing, and keeps data."""
    chain = _chain()
    fresh = tmp_path / "fresh.db"
    with QueueDatabase(fresh) as db:
        assert schema_module.migrate(db, chain) == chain[-1].version
    old = tmp_path / "old.db"
    with QueueDatabase(old) as db:
        db.initialize_schema()  # the shipped version: v1
        db.execute("INSERT INTO workers (worker_id, capabilities) VALUES ('w', '{}')")
        assert schema_module.migrate(db, chain) == chain[-1].version
        assert db.execute("SELECT worker_id, host FROM workers").fetchall()[0][0] == "w"
    assert schema_snapshot(old) == schema_snapshot(fresh)
    assert schema_snapshot(old)[0] == chain[-1].version


def test_a_failing_migration_changes_nothing(db: QueueDatabase, db_path: Path) -> None:
    before = schema_snapshot(db_path)
    broken = sql.Migration(
        version=schema_module.latest_version() + 1,
        name="broken",
        statements=("ALTER TABLE workers ADD COLUMN host TEXT", "CREATE INDEX bad ON nowhere (x)"),
    )
    failing = f"{broken.version:04d}_broken failed"
    with pytest.raises(QueueSchemaError, match=failing) as info:
        schema_module.migrate(db, (*sql.migrations(), broken))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert schema_snapshot(db_path) == before


def test_a_newer_file_is_refused_and_left_untouched(db_path: Path) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        db.execute(f"PRAGMA user_version = {schema_module.latest_version() + 5}")
    digest = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with QueueDatabase(db_path) as db, pytest.raises(QueueSchemaError, match="newer"):
        db.initialize_schema()
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("DROP TABLE workers", "table workers"),
        ("DROP INDEX ix_task_region", "index ix_task_region"),
    ],
)
def test_a_file_lacking_part_of_the_schema_is_refused(
    db: QueueDatabase, drop: str, missing: str
) -> None:
    db.execute(drop)
    with pytest.raises(QueueSchemaError, match=re.escape(missing)):
        db.initialize_schema()


def test_a_task_queue_without_generated_columns_is_refused(db_path: Path) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        db.execute("DROP TABLE task_logs")
        db.execute("DROP TABLE task_queue")
        db.execute("CREATE TABLE task_queue (id INTEGER PRIMARY KEY, type TEXT)")
        db.execute("CREATE TABLE task_logs (log_id INTEGER PRIMARY KEY)")
        for name in SEED_INDEXES:
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON task_queue (type)")
        with pytest.raises(QueueSchemaError, match=r"column task_queue\.region"):
            db.initialize_schema()


def test_a_foreign_table_with_our_name_is_a_schema_error(db_path: Path) -> None:
    with QueueDatabase(db_path) as db:
        db.execute("CREATE TABLE task_queue (something_else TEXT)")
        with pytest.raises(QueueSchemaError, match="0001_initial failed"):
            db.initialize_schema()
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
