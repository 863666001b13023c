"""``queue_core.connect``: open the queue's database, SQLite or PostgreSQL, from one target.

A path (or nothing: ``PRISMQ_QUEUE_DB_PATH`` or the platform default, see
:mod:`queue_core.location`) opens SQLite's :class:`~queue_core.database.QueueDatabase`; a
``postgresql://`` or ``postgres://`` URL opens ``queue_core.postgres.database.PostgresDatabase``.
Only the second imports psycopg, so the SQLite queue keeps to the standard library.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from queue_core.exceptions import QueueDatabaseError
from queue_core.location import ENV_VAR

if TYPE_CHECKING:
    from queue_core.backend import QueueBackend

__all__ = ["POSTGRES_SCHEMES", "connect", "is_postgres_url"]

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` is a ``postgresql://`` or ``postgres://`` URL (any letter case)."""
    return isinstance(target, str) and target.lower().startswith(POSTGRES_SCHEMES)


def connect(target: str | os.PathLike[str] | None = None, **options: Any) -> QueueBackend:
    """Open the queue database ``target`` names; call ``initialize_schema()`` before use.

    :param target: a SQLite file path, a ``postgresql://`` URL, or None for
        ``PRISMQ_QUEUE_DB_PATH`` (a path, or a ``postgresql://`` URL too) or else the
        platform default path.
    :param options: keyword arguments of :class:`~queue_core.database.QueueDatabase` (SQLite)
        or ``PostgresDatabase`` (``lock_timeout_ms``, ``connect_timeout``).
    :raises TypeError: ``target`` is neither text, a path nor None, or an unknown option.
    :raises QueueLocationError: the SQLite path cannot be used (see ``QueueDatabase``).
    :raises QueueDatabaseError: a PostgreSQL URL was given but psycopg 3 is not installed.
    """
    if target is None and is_postgres_url(os.environ.get(ENV_VAR)):
        target = os.environ[ENV_VAR]
    if is_postgres_url(target):
        try:
            from queue_core.postgres.database import PostgresDatabase
        except ImportError as exc:
            raise QueueDatabaseError(
                "a postgresql:// queue needs psycopg 3: pip install 'prismq-queue-core[postgres]'"
            ) from exc
        return PostgresDatabase(str(target), **options)
    if target is not None and not isinstance(target, (str, os.PathLike)):
        raise TypeError(f"target must be a path, a postgresql:// URL or None, not {target!r}")
    from queue_core.database import QueueDatabase

    return QueueDatabase(target, **options)
