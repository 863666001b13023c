"""PostgresDatabase: the queue's PostgreSQL connection, its transactions and error translation.

The PostgreSQL side of :mod:`queue_core.backend`, built like SQLite's
:class:`~queue_core.database.QueueDatabase`: one connection per instance (so per process, or
per thread that opens its own), opened on first use, shared by threads under a re-entrant lock;
a :meth:`transaction` holds the lock until it ends, so other threads wait instead of joining it.
An instance pickled to a ``spawn`` child, or inherited through ``fork``, opens its own
connection there.

Rows come back as SQLite's do: ``timestamptz`` as UTC text ``YYYY-MM-DD HH:MM:SS.fff`` and
``jsonb`` as JSON text, in rows that take ``row[0]`` and ``row["name"]``. The models therefore
build the same ``Task``, ``Worker`` and ``TaskLog`` from either backend.

Errors: every psycopg error is translated (:mod:`queue_core.postgres.errors`) and raised
``from`` the original. A statement run on its own (outside a transaction) that loses a race
(serialization failure, deadlock, lock timeout) is run again a few times, since it was rolled
back whole; inside a transaction the block cannot be replayed, so it becomes
:class:`~queue_core.exceptions.QueueBusyError`. A lost connection becomes
:class:`~queue_core.exceptions.QueueConnectionError` and the next call connects again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from functools import lru_cache
from types import TracebackType
from typing import Any, ClassVar, Final, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import pq
from psycopg.adapt import Buffer, Loader
from psycopg.rows import RowMaker
from psycopg.types.string import TextLoader

from queue_core import sql
from queue_core.backend import Params, Session
from queue_core.connecting import is_postgres_url
from queue_core.database import describe_statement
from queue_core.exceptions import QueueBusyError, QueueClosedError, QueueDatabaseError
from queue_core.postgres.claiming import SkipLockedClaimer
from queue_core.postgres.errors import ErrorKind, classify, translate_error
from queue_core.postgres.waking import NotifyWatch

__all__ = ["DEFAULT_LOCK_TIMEOUT_MS", "PostgresDatabase", "Row", "Rows", "utc_text"]

DEFAULT_LOCK_TIMEOUT_MS: Final = 5000
"""How long a statement waits for a row lock before :class:`QueueBusyError` (SQLite's busy
timeout has the same default)."""
_RETRIES: Final = 4
"""How many more times a statement run on its own is tried after it lost a race."""
_LOCK_NOT_AVAILABLE: Final = "55P03"
# Connections inherited through fork: closing one in the child would end the parent's session
# (the socket is shared), so the child keeps them referenced instead.
_FORK_ORPHANS: list[psycopg.Connection[Any]] = []
_log = logging.getLogger(__name__)


class Row(tuple[Any, ...]):
    """A result row that takes ``row[0]`` and ``row["column"]``, like ``sqlite3.Row``."""

    __slots__ = ()
    _index: ClassVar[Mapping[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> RowMaker[Row]:
    description = cursor.description
    if description is None:
        return cast("RowMaker[Row]", Row)
    return cast("RowMaker[Row]", _row_class(tuple(column.name for column in description)))


def utc_text(text: str) -> str:
    """PostgreSQL's text of a ``timestamptz`` in a UTC session as the queue's stored text.

    ``2026-01-01 12:00:00.12+00`` becomes ``2026-01-01 12:00:00.120``: milliseconds always
    (microseconds when the value has them), no zone.
    """
    if text.endswith("+00"):
        text = text[:-3]
    if len(text) == 19:
        return text + ".000"
    digits = len(text) - 20
    return text + "0" * ((3 if digits <= 3 else 6) - digits)


class _UtcTextLoader(Loader):
    def load(self, data: Buffer) -> str:
        return utc_text(bytes(data).decode())


class Rows:
    """The rows of one statement, all fetched, and its row count (see ``backend.Result``)."""

    __slots__ = ("_position", "_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._position = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Session:
    """What :meth:`PostgresDatabase.transaction` yields: statements inside the transaction."""

    def __init__(self, db: PostgresDatabase, conn: psycopg.Connection[Any]) -> None:
        self._db = db
        self._conn = conn

    def execute(self, sql: str, parameters: Params = (), /) -> Rows:
        return self._db._run(self._conn, sql, parameters, retry=False)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Params], /) -> None:
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, seq_of_parameters)
        except psycopg.Error as exc:
            raise self._db._translated(exc, "executemany", 0.0) from exc

    def returning_ids(self, sql: str, batch: Sequence[Params]) -> list[int]:
        """Run an ``INSERT ... RETURNING id`` once per parameter set; the ids in order."""
        ids: list[int] = []
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, batch, returning=True)
                while True:
                    row = cursor.fetchone()
                    if row is not None:
                        ids.append(int(row[0]))
                    if not cursor.nextset():
                        break
        except psycopg.Error as exc:
            raise self._db._translated(exc, "insert batch", 0.0) from exc
        return ids


class PostgresDatabase:
    """The PostgreSQL connection manager of the task queue (see the module docstring).

    Example::

        db = PostgresDatabase("postgresql://prismq@db-host/prismq")
        db.initialize_schema()
        queue = TaskQueue(db)

    :param url: a ``postgresql://`` (or ``postgres://``) URL; any libpq parameter may be in it.
    :param lock_timeout_ms: how long a statement waits for a row lock before
        :class:`QueueBusyError` (PostgreSQL's ``lock_timeout``).
    :param connect_timeout: seconds to wait for the server when connecting.
    :raises TypeError, ValueError: the URL is not a ``postgresql://`` URL, or a bad timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        connect_timeout: float = 10.0,
    ) -> None:
        if not is_postgres_url(url):
            raise ValueError("url must start with postgresql:// or postgres://")
        if isinstance(lock_timeout_ms, bool) or not isinstance(lock_timeout_ms, int):
            raise TypeError("lock_timeout_ms must be an int")
        if lock_timeout_ms < 0:
            raise ValueError("lock_timeout_ms must not be negative")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)):
            raise TypeError("connect_timeout must be a number")
        if not connect_timeout > 0:
            raise ValueError("connect_timeout must be positive")
        self._url = url
        self._lock_timeout_ms = lock_timeout_ms
        self._connect_timeout = float(connect_timeout)
        self._setup()

    def _setup(self) -> None:
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._savepoints = 0

    # -- the queue_core.backend seam --------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """``"postgres"``."""
        return "postgres"

    @property
    def queries(self) -> Mapping[str, str]:
        """The named statements of ``queue_core/sql/postgres/queries.sql``."""
        return sql.postgres_queries()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def url(self) -> str:
        """The URL, with any password masked."""
        return _masked(self._url)

    @property
    def location(self) -> str:
        """:attr:`url`: the URL without its password."""
        return _masked(self._url)

    def claimer(self, rng: random.Random) -> SkipLockedClaimer:
        """PostgreSQL's claim algorithm: one ``FOR UPDATE SKIP LOCKED`` statement."""
        return SkipLockedClaimer(self, rng)

    def insert_tasks(self, session: Session, batch: Sequence[Sequence[Any]]) -> list[int]:
        """Insert tasks without keys, one ``RETURNING id`` each in one pipelined batch.

        Unlike SQLite's, PostgreSQL's ids are not consecutive under concurrent inserts (a
        sequence serves every transaction at once), so each insert returns its own.
        """
        if not isinstance(session, _Session):
            raise TypeError("insert_tasks needs the session of this database's transaction()")
        return session.returning_ids(self.queries["enqueue"], batch)

    def change_token(self) -> int:
        """A number that changes when any transaction that writes starts or ends on the server.

        It is the server's current snapshot (``xmin:xmax:in-progress ids``): a commit by
        another connection changes it. So do this connection's own writes and writes to other
        databases of the server: a worker then claims once for nothing, which is harmless.
        One round trip, no lock.

        :raises QueueDatabaseError: the server could not be asked (a subclass says why).
        """
        row = self.execute(self.queries["change_token"]).fetchone()
        return hash(str(row[0]))

    def change_watch(self) -> NotifyWatch:
        """A :class:`~queue_core.postgres.waking.NotifyWatch` on a listening connection of
        its own: an idle worker engine sleeps until a queued task's NOTIFY arrives."""
        return NotifyWatch(self._url)

    @property
    def busy_timeout_ms(self) -> int:
        """:attr:`lock_timeout_ms`, under the name SQLite's ``QueueDatabase`` gives its own."""
        return self._lock_timeout_ms

    @property
    def lock_timeout_ms(self) -> int:
        """How long a statement waits for a row lock before :class:`QueueBusyError`."""
        return self._lock_timeout_ms

    def without_busy_wait(self) -> nullcontext[None]:
        """Nothing to change: PostgreSQL writers do not queue for one database lock.

        SQLite's ``QueueDatabase.without_busy_wait()`` makes a transaction fail at once when
        another connection holds the write lock. Here transactions only wait for the rows they
        touch, which claims (``SKIP LOCKED``) never make them do for long.
        """
        return nullcontext()

    def checkpoints_between_transactions(self) -> nullcontext[None]:
        """Nothing to do: PostgreSQL's own checkpointer paces the log, not the writers."""
        return nullcontext()

    def checkpoint_passive(self) -> tuple[int, int, int]:
        """Nothing to do on PostgreSQL (see :meth:`checkpoints_between_transactions`)."""
        return (0, 0, 0)

    def initialize_schema(self) -> int:
        """Create or migrate the schema to the newest version and check it; idempotent.

        Migrations run under an advisory lock (:mod:`queue_core.postgres.schema`), so processes
        that start at once do not race. Returns the schema version.

        :raises QueueSchemaError: the database is newer than this code, or a migration failed
            (rolled back), or an object is missing.
        :raises QueueConnectionError: the server cannot be reached.
        """
        from queue_core.postgres.schema import migrate

        with self._guard():
            conn = self._connection()
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                raise QueueDatabaseError("initialize_schema() cannot run inside a transaction")
            try:
                return migrate(conn)
            except QueueDatabaseError:
                self._drop_if_broken(conn)
                raise

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back). Calling it again does
        nothing."""
        with self._guard():
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # -- statements ------------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> Rows:
        """Execute one statement and return all of its rows.

        Outside a transaction it commits on its own, and is tried again (up to four times,
        after a short random pause) when it lost a race: a serialization failure or a deadlock.
        A row-lock wait longer than ``lock_timeout_ms`` is not tried again.

        :raises QueueBusyError: it kept losing races, or waited too long for a row lock.
        :raises QueueIntegrityError: it broke a constraint.
        :raises QueueSchemaError: a table, column or function it names does not exist.
        :raises QueueConnectionError: the connection failed or was lost; the next call
            connects again.
        :raises QueueDatabaseError: any other error (``__cause__`` holds psycopg's).
        """
        with self._guard():
            conn = self._connection()
            in_transaction = conn.info.transaction_status != pq.TransactionStatus.IDLE
            return self._run(conn, sql, params, retry=not in_transaction)

    def execute_together(self, statements: Sequence[tuple[str, Params]]) -> list[Rows]:
        """Execute several statements in one round trip (psycopg's pipeline mode); return the
        rows of each, in order.

        Outside a transaction they run as one transaction, tried again as a whole when it lost
        a race (as :meth:`execute`); a failing statement undoes the ones before it and skips
        the rest.

        :raises QueueDatabaseError: as for :meth:`execute`.
        """
        with self._guard():
            conn = self._connection()
            in_transaction = conn.info.transaction_status != pq.TransactionStatus.IDLE
            return self._run_all(conn, statements, retry=not in_transaction)

    def execute_many(self, sql: str, param_list: Iterable[Params]) -> None:
        """Execute ``sql`` once per parameter set, all in one transaction (or the caller's).

        :raises QueueDatabaseError: as for :meth:`execute`; nothing was written.
        """
        with self.transaction() as session:
            session.executemany(sql, param_list)

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        """Run a block in one transaction (READ COMMITTED); a nested call is a savepoint.

        Any exception in the block rolls it back and propagates. A failed statement ends the
        whole transaction on PostgreSQL (unlike SQLite, where only the statement is undone),
        so a block that goes on after catching a database error gets an error itself.

        :raises QueueConnectionError: the connection was lost; nothing was committed.
        :raises QueueDatabaseError: the block or the COMMIT failed (a subclass says why).
        """
        with self._guard():
            conn = self._connection()
            session = _Session(self, conn)
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                with self._savepoint(conn):
                    yield session
                return
            started = time.perf_counter()
            self._control(conn, "BEGIN", started)
            try:
                yield session
            except BaseException:
                self._rollback_quietly(conn)
                raise
            self._control(conn, "COMMIT", started)

    @contextmanager
    def snapshot(self) -> Iterator[_Session]:
        """Run a block of reads in one REPEATABLE READ, READ ONLY transaction, so they all see
        the same moment; inside a :meth:`transaction` it joins that transaction.

        :raises QueueDatabaseError: a database error in the block (a subclass says why).
        """
        with self._guard():
            conn = self._connection()
            session = _Session(self, conn)
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                yield session
                return
            started = time.perf_counter()
            self._control(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", started)
            try:
                yield session
            finally:
                self._rollback_quietly(conn)  # nothing to commit

    def lock(self) -> threading.RLock:
        """The re-entrant lock that serialises use of the connection in this process."""
        return self._guard()

    # -- pickling, context manager, repr -----------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration crosses a process boundary; the child opens its own connection.
        return {
            "url": self._url,
            "lock_timeout_ms": self._lock_timeout_ms,
            "connect_timeout": self._connect_timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._url = state["url"]
        self._lock_timeout_ms = int(state["lock_timeout_ms"])
        self._connect_timeout = float(state["connect_timeout"])
        self._setup()

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PostgresDatabase {self.url!r} {state}>"

    # -- internals -------------------------------------------------------------------------

    def _guard(self) -> threading.RLock:
        pid = os.getpid()
        if pid != self._pid:
            # Inherited through fork: the parent's lock may be held by a thread that does not
            # exist here, and its connection belongs to the parent's session.
            if self._conn is not None:
                _FORK_ORPHANS.append(self._conn)
            self._conn = None
            self._lock = threading.RLock()
            self._pid = pid
            self._savepoints = 0
        return self._lock

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise QueueClosedError(f"{self!r} is closed")
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            self._forget(conn)  # the server or the network ended it: connect again
            conn = None
        if conn is None:
            conn = self._open()
            self._conn = conn
        return conn

    def _open(self) -> psycopg.Connection[Any]:
        started = time.perf_counter()
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout)),
                row_factory=_row_factory,
            )
        except psycopg.Error as exc:
            raise self._translated(exc, "connect", time.perf_counter() - started) from exc
        try:
            conn.adapters.register_loader("timestamptz", _UtcTextLoader)
            conn.adapters.register_loader("jsonb", TextLoader)
            conn.adapters.register_loader("json", TextLoader)
            conn.execute(
                self.queries["session_settings"], {"lock_timeout": f"{self._lock_timeout_ms}ms"}
            )
        except psycopg.Error as exc:
            conn.close()
            raise self._translated(exc, "connect", time.perf_counter() - started) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, conn: psycopg.Connection[Any], sql: str, params: Params, *, retry: bool) -> Rows:
        return self._run_all(conn, ((sql, params),), retry=retry)[0]

    def _run_all(
        self,
        conn: psycopg.Connection[Any],
        statements: Sequence[tuple[str, Params]],
        *,
        retry: bool,
    ) -> list[Rows]:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                if len(statements) == 1:
                    ((sql, params),) = statements
                    with conn.cursor() as cursor:
                        cursor.execute(sql, params if params else None)
                        return [_rows_of(cursor)]
                cursors = [conn.cursor() for _ in statements]
                try:
                    with conn.pipeline():
                        for cursor, (sql, params) in zip(cursors, statements, strict=True):
                            cursor.execute(sql, params if params else None)
                    return [_rows_of(cursor) for cursor in cursors]
                finally:
                    for cursor in cursors:
                        cursor.close()
            except psycopg.Error as exc:
                if retry and attempt < _RETRIES and _lost_a_race(exc):
                    attempt += 1
                    time.sleep(0.005 * 2**attempt * (0.5 + random.random()))
                    continue
                waited = time.perf_counter() - started
                operation = describe_statement(statements[0][0])
                raise self._translated(exc, operation, waited) from exc

    def _control(self, conn: psycopg.Connection[Any], statement: str, started: float) -> None:
        """BEGIN, COMMIT: translated like any statement; a failed COMMIT is rolled back."""
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            self._rollback_quietly(conn)
            raise self._translated(exc, statement, time.perf_counter() - started) from exc

    @contextmanager
    def _savepoint(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        self._savepoints += 1
        name = f"queue_core_savepoint_{self._savepoints}"
        started = time.perf_counter()
        try:
            self._control(conn, f"SAVEPOINT {name}", started)
            try:
                yield
            except BaseException:
                if conn.info.transaction_status in (
                    pq.TransactionStatus.INTRANS,
                    pq.TransactionStatus.INERROR,
                ):
                    self._control(conn, f"ROLLBACK TO SAVEPOINT {name}", started)
                    self._control(conn, f"RELEASE SAVEPOINT {name}", started)
                raise
            self._control(conn, f"RELEASE SAVEPOINT {name}", started)
        finally:
            self._savepoints -= 1

    def _rollback_quietly(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.info.transaction_status == pq.TransactionStatus.IDLE:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop_if_broken(conn)

    def _drop_if_broken(self, conn: psycopg.Connection[Any]) -> None:
        """Forget a connection that is lost or stuck, so the next call opens a new one."""
        if (
            conn.closed
            or conn.broken
            or (conn.info.transaction_status == pq.TransactionStatus.UNKNOWN)
        ):
            self._forget(conn)

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        if self._conn is conn:
            self._conn = None
        with suppress(psycopg.Error):  # closing a dead socket
            conn.close()

    def _translated(self, exc: psycopg.Error, operation: str, waited: float) -> QueueDatabaseError:
        """Translate and log once, as SQLite's ``translate_and_log``; forget a lost
        connection."""
        error = translate_error(exc, waited_seconds=waited)
        if classify(exc) is ErrorKind.RECONNECT and self._conn is not None:
            self._forget(self._conn)
        level = logging.WARNING if isinstance(error, QueueBusyError) else logging.ERROR
        if classify(exc) is ErrorKind.INTEGRITY:
            level = logging.WARNING
        if _log.isEnabledFor(level):
            _log.log(level, "%s failed after %.1f ms: %s", operation, waited * 1000, error)
        return error


def _rows_of(cursor: psycopg.Cursor[Any]) -> Rows:
    rows = cursor.fetchall() if cursor.description is not None else []
    return Rows(rows, cursor.rowcount)


def _lost_a_race(exc: psycopg.Error) -> bool:
    """A serialization failure or deadlock: the statement was rolled back whole and may run
    again. A lock timeout is not one: it already waited the whole ``lock_timeout_ms``."""
    return classify(exc) is ErrorKind.RETRY and exc.sqlstate != _LOCK_NOT_AVAILABLE


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
