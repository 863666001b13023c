"""Where a run's databases live: SQLite files, or databases on a PostgreSQL server.

``python -m bench run --backend postgres`` runs the scenarios that make sense on a server
(:data:`POSTGRES_SCENARIOS`: insert, claim, busy, worker) against PostgreSQL: a throwaway
server started for the run (``bench.postgres_server``, durable settings, sharing this
machine's cores with the benchmark processes), or the server ``--dsn`` names. Each
measurement gets a database of its own (``CREATE DATABASE``, migrated), dropped at the end of
its scenario, as each SQLite measurement gets a fresh file.

A scenario names its database by a *target*: a file path on SQLite, a ``postgresql://`` URL on
PostgreSQL. Benchmark processes open it with :func:`open_queue_db`, which is
``queue_core.connect`` with the options that backend understands.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from bench.baseline_sql import BareQueue
from bench.results import Backend, PostgresServer
from queue_core import connect
from queue_core.connecting import is_postgres_url

if TYPE_CHECKING:
    from queue_core.backend import QueueBackend

BACKENDS: Final[tuple[Backend, ...]] = ("sqlite", "postgres")
POSTGRES_SCENARIOS: Final = ("insert", "claim", "busy", "worker")
"""The scenarios that run on PostgreSQL. The others measure SQLite's own machinery (file
creation, connection PRAGMAs, WAL checkpoints, query plans, the soak's backups and pruning on
one file) and are refused for ``--backend postgres``."""
SERVER_SETTINGS: Final = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
    "wal_level",
)
"""The server settings a results file records, so a reader knows what commits cost."""


class BackendUnavailableError(RuntimeError):
    """The PostgreSQL backend cannot run here (no psycopg, no server binaries, bad DSN)."""


def refused_scenarios(backend: Backend, chosen: list[str]) -> list[str]:
    """The scenarios of ``chosen`` that ``backend`` cannot run."""
    if backend == "sqlite":
        return []
    return [name for name in chosen if name not in POSTGRES_SCENARIOS]


def masked(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead of its own."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise BackendUnavailableError(
            "--backend postgres needs psycopg 3: pip install 'prismq-queue-core[postgres]'"
        ) from exc
    return psycopg


def describe_server(url: str, source: Literal["throwaway", "dsn"]) -> PostgresServer:
    """Ask the server at ``url`` its version and :data:`SERVER_SETTINGS`.

    :raises BackendUnavailableError: it cannot be reached.
    """
    psycopg = _psycopg()
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            settings = {
                name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in SERVER_SETTINGS
            }
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(f"cannot reach PostgreSQL at {masked(url)}: {first}") from exc
    return PostgresServer(
        source=source, url=masked(url), version=settings.pop("server_version"), settings=settings
    )


@contextlib.contextmanager
def postgres_server(
    dsn: str | None, progress: Callable[[str], None]
) -> Iterator[tuple[str, PostgresServer]]:
    """The server a PostgreSQL run uses: ``dsn``, or a throwaway one for the ``with`` block.

    The throwaway server keeps PostgreSQL's durable defaults (fsync on, synchronous commit), so
    its commits cost what a real server's do on this disk.

    :raises BackendUnavailableError: no psycopg, no server binaries, or the server is not
        reachable; the message is one line.
    """
    _psycopg()
    if dsn is not None:
        yield dsn, describe_server(dsn, "dsn")
        return
    from bench.postgres_server import PostgresUnavailableError, find_postgres, throwaway_server

    try:
        tools = find_postgres()
    except PostgresUnavailableError as exc:
        raise BackendUnavailableError(exc.reason) from exc
    progress("bench: starting a throwaway PostgreSQL server on this machine")
    with throwaway_server(tools=tools, settings={}) as url:
        yield url, describe_server(url, "throwaway")


def create_postgres_database(server_url: str, label: str) -> str:
    """A new, migrated database on the server; its URL."""
    psycopg = _psycopg()
    from psycopg import sql

    from queue_core.postgres import schema

    name = f"prismq_bench_{''.join(c if c.isalnum() else '_' for c in label)[:30]}_"
    name += uuid.uuid4().hex[:8]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    with psycopg.connect(url) as conn:
        schema.migrate(conn)
    return url


def drop_postgres_database(server_url: str, url: str) -> None:
    """Drop the database ``url`` names (a leftover connection is ended first)."""
    psycopg = _psycopg()
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def open_queue_db(
    target: str,
    *,
    busy_timeout_ms: int | None = None,
    fair_lock: bool | None = None,
    tracer: Any = None,
) -> QueueBackend:
    """Open the queue database ``target`` (a path or a ``postgresql://`` URL).

    ``busy_timeout_ms`` is SQLite's busy timeout, and PostgreSQL's ``lock_timeout``: on either,
    how long a call waits for a lock before it raises QueueBusyError (0 becomes 1 ms on
    PostgreSQL, where 0 would mean no limit). ``fair_lock`` and ``tracer`` are SQLite's and
    ignored on PostgreSQL.
    """
    options: dict[str, Any] = {}
    if is_postgres_url(target):
        if busy_timeout_ms is not None:
            options["lock_timeout_ms"] = max(1, busy_timeout_ms)
        return connect(target, **options)
    if busy_timeout_ms is not None:
        options["busy_timeout_ms"] = busy_timeout_ms
    if fair_lock is not None:
        options["fair_lock"] = fair_lock
    if tracer is not None:
        options["tracer"] = tracer
        options["trace_statements"] = False
    return connect(Path(target), **options)


def bare_queue(target: str, *, busy_timeout_ms: int = 5000) -> BareQueue:
    """The bare twin of the library on ``target``'s backend: bare sqlite3 or bare psycopg,
    the same statements without the library around them."""
    if is_postgres_url(target):
        from bench.baseline_pg import BarePostgresQueue

        return BarePostgresQueue(target, lock_timeout_ms=busy_timeout_ms)
    return BareQueue(Path(target), busy_timeout_ms=busy_timeout_ms)
