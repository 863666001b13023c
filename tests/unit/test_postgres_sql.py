"""The PostgreSQL SQL files: splitting with dollar quotes, one translation per SQLite migration.

These need no server; the schema itself is tested against one in tests/postgres.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from queue_core import sql


def test_dollar_quoted_bodies_keep_their_semicolons() -> None:
    script = (
        "-- a function\n"
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  INSERT INTO t VALUES (';');\n  RETURN NULL;\nEND;\n$$;\n\n"
        "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT '$$;' $body$;\n"
        "SELECT $1, a$b$c FROM \"odd;name\" /* ; */ WHERE x = 'it''s; fine';\n"
        "-- trailing comment;\n"
    )
    statements = sql.split_postgres_statements(script)
    assert len(statements) == 3
    assert statements[0].startswith("CREATE FUNCTION f()") and statements[0].endswith("$$;")
    assert "RETURN NULL;\nEND;" in statements[0]
    assert statements[1] == (
        "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT '$$;' $body$;"
    )
    assert statements[2].startswith("SELECT $1, a$b$c") and statements[2].endswith("fine';")


@pytest.mark.parametrize(
    "script",
    [
        "SELECT 1;\nSELECT 2",
        "CREATE FUNCTION f() AS $$ BEGIN; END;\n",
        "SELECT 'open;\n",
        "SELECT 1 /* never closed;\n",
    ],
)
def test_a_truncated_postgres_script_is_refused(script: str) -> None:
    with pytest.raises(ValueError, match="incomplete"):
        sql.split_postgres_statements(script)


def test_empty_statements_are_dropped() -> None:
    assert sql.split_postgres_statements(";\n-- nothing\n;SELECT 1;") == ("SELECT 1;",)


def test_every_sqlite_migration_has_a_postgres_translation() -> None:
    sqlite = [(m.version, m.name) for m in sql.migrations()]
    postgres = [(m.version, m.name) for m in sql.postgres_migrations()]
    assert postgres[: len(sqlite)] == sqlite or set(sqlite) <= set(postgres)
    # Strictly increasing; numbers reserved for work in flight may leave a gap for a while.
    versions = [version for version, _ in postgres]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert all(m.statements for m in sql.postgres_migrations())


def test_postgres_queries_are_named() -> None:
    queries = sql.postgres_queries()
    assert {"migration_lock", "migrations_table", "record_migration"} <= set(queries)
    assert all(body and "--" not in body for body in queries.values())


def test_importing_queue_core_does_not_import_psycopg() -> None:
    code = "import sys, queue_core, queue_core.sql; sys.exit('psycopg' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# SQLite statements PostgreSQL does without: its claim is one statement (queue_core.postgres.
# claiming), a batch insert returns its ids, and "claim" is the bare-sqlite3 bench baseline.
SQLITE_ONLY_QUERIES = {
    "claim",
    "claim_band_heads_newest",
    "claim_band_heads_oldest",
    "claim_bands",
    "claim_due_in_order",
    "claim_first_in_order",
    "enqueue_batch",
    "expired_lease_exists",
    "last_insert_rowid",
    "next_due_in_arm",  # SQLite's claimer; PostgreSQL's answers with its own next_due_queued
}


def test_every_statement_the_queue_runs_has_a_postgres_version() -> None:
    missing = set(sql.queries()) - SQLITE_ONLY_QUERIES - set(sql.postgres_queries())
    assert not missing, f"postgres/queries.sql lacks {sorted(missing)}"
    assert set(sql.queries()) >= SQLITE_ONLY_QUERIES


def test_connect_without_psycopg_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from queue_core import QueueDatabaseError, connect

    monkeypatch.setitem(sys.modules, "queue_core.postgres.database", None)  # import fails
    with pytest.raises(QueueDatabaseError, match=r"pip install"):
        connect("postgresql://nobody@127.0.0.1:1/none")


def _notify_trigger_columns() -> set[str]:
    """The columns the newest definition of the requeue NOTIFY trigger watches."""
    found: list[str] = []
    for migration in sql.postgres_migrations():
        for statement in migration.statements:
            match = re.search(
                r"TRIGGER trg_task_notify_requeue\s+AFTER UPDATE OF ([\w, ]+?) ON", statement
            )
            if match:
                found = [column.strip() for column in match.group(1).split(",")]
    assert found, "no migration creates trg_task_notify_requeue"
    return set(found)


def _writes(statement: str, column: str) -> bool:
    return re.search(rf"(?:SET|,)\s*{column} = ", statement) is not None


HOT_PATH_QUERIES = ("lease_to_worker", "complete", "complete_many", "extend_lease", "extend_leases")


def test_every_statement_that_requeues_a_task_fires_the_notify_trigger() -> None:
    """The trigger (migration 0007) watches columns, not status: a statement that puts a task
    back in 'queued' without writing one of them would wake no idle engine."""
    columns = _notify_trigger_columns()
    queries = sql.postgres_queries()
    requeuing = {
        name
        for name, body in queries.items()
        if re.search(r"UPDATE task_queue\s+SET status = (?:'queued'|CASE[^,]*'queued')", body)
    }
    assert requeuing == {
        "release_expired_leases",
        "fail",
        "release_unstarted",
        "retry_task",
        "retry_failed_batch",
    }
    for name in sorted(requeuing):
        assert any(_writes(queries[name], c) for c in columns), f"{name} writes none of {columns}"
    for name in HOT_PATH_QUERIES:
        assert not any(_writes(queries[name], c) for c in columns), f"{name} fires the trigger"
    assert _writes(queries["lease_to_worker"], "status")  # the check can see a write
