"""PostgreSQL schema versions and migrations.

Migrations are the ordered SQL files of ``queue_core/sql/postgres/migrations``, each the
translation of the SQLite migration with the same number and name. Applied ones are recorded
in ``queue_schema_migrations(version, name, applied_at)``. :func:`migrate` runs the missing
ones in one transaction under ``pg_advisory_xact_lock``, so two processes that start at once
queue up behind each other and each migration is applied exactly once; a failing step leaves
the database as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import pq

from queue_core import sql
from queue_core.exceptions import QueueSchemaError
from queue_core.postgres.errors import ErrorKind, classify, translate_error

__all__ = [
    "FUNCTIONS",
    "GENERATED_COLUMNS",
    "INDEXES",
    "MIGRATION_LOCK_KEY",
    "TABLES",
    "TRIGGERS",
    "VIEWS",
    "applied_migrations",
    "latest_version",
    "migrate",
    "schema_version",
    "verify",
]

MIGRATION_LOCK_KEY: Final = 0x5072_6973_6D51_0001
"""The ``pg_advisory_xact_lock`` key migrations hold ("PrismQ" in ASCII, then 1)."""

TABLES: Final = ("task_queue", "workers", "task_logs", "finished_task_counts")
VIEWS: Final = ("finished_task_totals",)
INDEXES: Final = (
    "ix_task_status_prio_time",
    "ix_task_type_status",
    "ix_task_region",
    "ix_task_format",
    "uq_task_idempotency",
    "ix_logs_task",
    "ix_task_lease_expiry",
    "ix_task_queued_region",
    "ix_task_queued_type_region",
    "ix_task_finished",
)
TRIGGERS: Final = (
    "trg_task_finished_count_insert",
    "trg_task_finished_count_enter",
    "trg_task_finished_count_leave",
    "trg_task_finished_count_delete",
    "trg_task_notify_insert",
    "trg_task_notify_requeue",
)
FUNCTIONS: Final = ("count_finished_task", "fold_finished_task_counts", "notify_queued_task")
GENERATED_COLUMNS: Final = ("region", "format")

Connection = psycopg.Connection[Any]


def latest_version(migrations: Sequence[sql.Migration] | None = None) -> int:
    """The schema version this code creates."""
    chain = sql.postgres_migrations() if migrations is None else migrations
    return chain[-1].version if chain else 0


def applied_migrations(conn: Connection) -> dict[int, str]:
    """The recorded migrations of the database, ``{version: name}`` (empty when it has none).

    :raises QueueDatabaseError: the query failed (a subclass says why).
    """
    queries = sql.postgres_queries()
    try:
        with conn.transaction():
            return _applied(conn, queries)
    except psycopg.Error as exc:
        raise translate_error(exc) from exc


def schema_version(conn: Connection) -> int:
    """The highest recorded migration version, 0 for an empty database.

    :raises QueueDatabaseError: the query failed (a subclass says why).
    """
    return max(applied_migrations(conn), default=0)


def migrate(conn: Connection, migrations: Sequence[sql.Migration] | None = None) -> int:
    """Bring the database to the newest schema version and verify it; return that version.

    ``conn`` must not be inside a transaction: the migration is one transaction of its own.

    :raises ValueError: ``conn`` is inside a transaction.
    :raises QueueSchemaError: the database is newer than ``migrations`` know, or records a
        migration under another name (nothing is changed), a migration statement failed
        (everything is rolled back), or the resulting schema lacks a table, index, trigger,
        function or generated column.
    :raises QueueConnectionError: the connection failed or was lost.
    :raises QueueDatabaseError: any other database error (a subclass says which).
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError("migrate() needs a connection that is not inside a transaction")
    chain = tuple(sql.postgres_migrations() if migrations is None else migrations)
    target = latest_version(chain)
    queries = sql.postgres_queries()
    try:
        # The common case, a database that is already current, takes no lock.
        if schema_version(conn) != target:
            with conn.transaction():
                conn.execute(queries["read_committed"])
                conn.execute(queries["migration_lock"], {"key": MIGRATION_LOCK_KEY})
                conn.execute(queries["migrations_table"])
                applied = _applied(conn, queries)
                _check_history(conn, applied, chain, target)
                for migration in chain:
                    if migration.version not in applied:
                        _apply(conn, migration, queries)
    except psycopg.Error as exc:
        raise translate_error(exc) from exc
    if migrations is None:
        verify(conn)
    return target


def verify(conn: Connection) -> None:
    """Check that every table, view, index, trigger, function and generated column exists.

    :raises QueueSchemaError: naming what is missing.
    :raises QueueDatabaseError: the catalog query failed (a subclass says why).
    """
    queries = sql.postgres_queries()
    try:
        with conn.transaction():
            relations = {(kind, name) for kind, name in conn.execute(queries["present_relations"])}
            triggers = {row[0] for row in conn.execute(queries["present_triggers"])}
            functions = {row[0] for row in conn.execute(queries["present_functions"])}
            generated = {row[0] for row in conn.execute(queries["stored_generated_columns"])}
            version = max(_applied(conn, queries), default=0)
    except psycopg.Error as exc:
        raise translate_error(exc) from exc
    tables = {name for kind, name in relations if kind in ("r", "p")}
    missing = [f"table {name}" for name in TABLES if name not in tables]
    missing += [f"view {name}" for name in VIEWS if ("v", name) not in relations]
    missing += [f"index {name}" for name in INDEXES if ("i", name) not in relations]
    missing += [f"trigger {name}" for name in TRIGGERS if name not in triggers]
    missing += [f"function {name}" for name in FUNCTIONS if name not in functions]
    if "task_queue" in tables:
        missing += [
            f"generated column task_queue.{name}"
            for name in GENERATED_COLUMNS
            if name not in generated
        ]
    if missing:
        raise QueueSchemaError(
            f"database {conn.info.dbname!r} (schema version {version}) lacks "
            f"{', '.join(missing)}; it was not created by queue_core or was altered by hand"
        )


def _applied(conn: Connection, queries: dict[str, str]) -> dict[int, str]:
    exists = conn.execute(queries["migrations_table_exists"]).fetchone()
    if not exists or not exists[0]:
        return {}
    return {
        int(version): str(name) for version, name in conn.execute(queries["applied_migrations"])
    }


def _check_history(
    conn: Connection, applied: dict[int, str], chain: Sequence[sql.Migration], target: int
) -> None:
    """Refuse a database this code did not write: newer, or with other migrations."""
    current = max(applied, default=0)
    if current > target:
        raise QueueSchemaError(
            f"database {conn.info.dbname!r} has schema version {current}, newer than the "
            f"{target} this version of queue_core knows; upgrade queue_core (the database "
            "was not changed)"
        )
    known = {migration.version: migration.name for migration in chain}
    strangers = [
        f"{version:04d}_{name}" for version, name in applied.items() if known.get(version) != name
    ]
    if strangers:
        raise QueueSchemaError(
            f"database {conn.info.dbname!r} records migrations this code does not have: "
            f"{', '.join(strangers)} (the database was not changed)"
        )


def _apply(conn: Connection, migration: sql.Migration, queries: dict[str, str]) -> None:
    for statement in migration.statements:
        try:
            # Without parameters psycopg sends the text as it is (no placeholders are read).
            conn.execute(statement)
        except psycopg.Error as exc:
            if classify(exc) in (ErrorKind.RETRY, ErrorKind.RECONNECT):
                raise
            raise QueueSchemaError(
                f"migration {migration.version:04d}_{migration.name} failed: "
                f"{translate_error(exc)} (the database was not changed)"
            ) from exc
    conn.execute(
        queries["record_migration"], {"version": migration.version, "name": migration.name}
    )
