"""Schema versions and migrations.

The version lives in ``PRAGMA user_version``. Migrations are the ordered SQL files of
``queue_core/sql/migrations``; a fresh file runs them all, an older file runs the ones it lacks.
Everything happens in one ``BEGIN IMMEDIATE`` transaction, so concurrent initialisers queue up
behind each other and a failing step leaves the file exactly as it was.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from queue_core import sql
from queue_core.exceptions import QueueSchemaError

if TYPE_CHECKING:
    from queue_core.database import QueueDatabase

TABLES: Final = ("task_queue", "workers", "task_logs", "finished_task_counts")
INDEXES: Final = (
    "ix_task_status_prio_time",
    "ix_task_type_status",
    "ix_task_region",
    "ix_task_format",
    "uq_task_idempotency",
    "ix_logs_task",
    "ix_task_lease_expiry",
    "ix_task_finished",
    "ix_task_queued_region",
    "ix_task_queued_type_region",
)
TRIGGERS: Final = (
    "trg_task_finished_count_enter",
    "trg_task_finished_count_leave",
    "trg_task_finished_count_delete",
)
_log = logging.getLogger(__name__)
GENERATED_COLUMNS: Final = ("region", "format")


def latest_version(migrations: Sequence[sql.Migration] | None = None) -> int:
    """The schema version this code creates."""
    chain = sql.migrations() if migrations is None else migrations
    return chain[-1].version if chain else 0


def schema_version(db: QueueDatabase) -> int:
    """The file's ``PRAGMA user_version``."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: QueueDatabase, migrations: Sequence[sql.Migration] | None = None) -> int:
    """Bring the database to the newest schema version and verify it; return that version.

    :raises QueueSchemaError: the file is newer than ``migrations`` know (nothing is changed),
        a migration statement failed (everything is rolled back), or the resulting schema lacks
        a table or index.
    """
    chain = tuple(sql.migrations() if migrations is None else migrations)
    target = latest_version(chain)
    # The common case, a file that is already current, needs no write lock.
    if schema_version(db) != target:
        with db.transaction() as conn:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > target:
                raise QueueSchemaError(
                    f"{db.path} has schema version {current}, newer than the {target} this "
                    "version of queue_core knows; upgrade queue_core (the file was not changed)"
                )
            for migration in chain:
                if migration.version <= current:
                    continue
                _log.info(
                    "%s: applying migration %04d_%s", db.path, migration.version, migration.name
                )
                for statement in migration.statements:
                    try:
                        conn.execute(statement)
                    except sqlite3.Error as exc:
                        _log.error(
                            "%s: migration %04d_%s failed, rolled back: %s",
                            db.path,
                            migration.version,
                            migration.name,
                            exc,
                        )
                        raise QueueSchemaError(
                            f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                        ) from exc
                # PRAGMA takes no parameters; the version is an int from a file name.
                conn.execute(f"PRAGMA user_version = {int(migration.version)}")
    if migrations is None:
        verify(db)
    return target


def verify(db: QueueDatabase) -> None:
    """Check that every table, index and generated column of the schema exists.

    :raises QueueSchemaError: naming what is missing.
    """
    present = {
        (row[0], row[1])
        for row in db.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')"
        )
    }
    missing = [f"table {name}" for name in TABLES if ("table", name) not in present]
    missing += [f"index {name}" for name in INDEXES if ("index", name) not in present]
    missing += [f"trigger {name}" for name in TRIGGERS if ("trigger", name) not in present]
    if ("table", "task_queue") in present:
        columns = {row[1] for row in db.execute("PRAGMA table_xinfo(task_queue)")}
        missing += [
            f"column task_queue.{name}" for name in GENERATED_COLUMNS if name not in columns
        ]
    if missing:
        raise QueueSchemaError(
            f"{db.path} (schema version {schema_version(db)}) lacks {', '.join(missing)}; "
            "it was not created by queue_core or was altered by hand"
        )
