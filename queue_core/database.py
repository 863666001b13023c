"""QueueDatabase: one SQLite connection, its PRAGMAs, IMMEDIATE transactions and error translation.

This module is the only place that opens connections and the only place that turns ``sqlite3``
errors into queue_core errors. Queue semantics (enqueue, claim, ...) live in ``task_queue.py``.

Transactions are controlled explicitly: connections use ``isolation_level=None`` (no implicit
BEGIN on any Python version) and every write transaction starts with ``BEGIN IMMEDIATE``, which
takes the write lock up front. A deferred transaction that reads and then writes gets
SQLITE_BUSY at once, whatever the busy timeout.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

from queue_core.exceptions import (
    QueueBusyError,
    QueueClosedError,
    QueueCorruptError,
    QueueDatabaseError,
    QueueIntegrityError,
    QueueLocationError,
    QueueSchemaError,
    WalUnavailableError,
)
from queue_core.location import resolve_db_path
from queue_core.tracing import Connected, Statement, Tracer, TransactionBegan, WriteGateEntered
from queue_core.wake_channel import open_wake_channel, wake_path_for
from queue_core.waking import DataVersionWatch
from queue_core.wal_index import WalIndex
from queue_core.write_gate import (
    LockOpener,
    WriteGate,
    lock_path_for,
    open_file_lock,
    wait_path_for,
)

if TYPE_CHECKING:
    from queue_core.backend import Session
    from queue_core.claiming import LookThenLockClaimer
    from queue_core.location import SystemProbe

MINIMUM_SQLITE_VERSION: Final = (3, 35, 0)
"""RETURNING needs 3.35; generated columns need 3.31. Every python.org Windows build has 3.35.5+."""

PRAGMAS: Final[Mapping[str, int | str]] = MappingProxyType(
    {
        "journal_mode": "WAL",  # readers and one writer work concurrently
        "synchronous": "NORMAL",  # durable across application crashes; fsync only at checkpoints
        "busy_timeout": 5000,  # ms to wait for the write lock before SQLITE_BUSY
        "wal_autocheckpoint": 1000,  # pages
        "foreign_keys": "ON",
        "temp_store": "MEMORY",
        "mmap_size": 134217728,  # 128 MiB
        "page_size": 4096,
        "cache_size": -20000,  # negative = KiB, so ~20 MB per connection
        # Not in the specification: after a checkpoint resets the WAL, the next commit truncates
        # the file to this size, so one burst (or one long reader) does not leave a huge WAL
        # behind for good. 16 MiB is four times the auto-checkpoint threshold (1000 pages).
        "journal_size_limit": 16777216,
    }
)
"""The PRAGMAs of the specification (plus ``journal_size_limit``), applied to every connection."""

# Only journal_mode and page_size live in the file; these must be set on every connection.
PER_CONNECTION_PRAGMAS: Final = (
    "synchronous",
    "busy_timeout",
    "wal_autocheckpoint",
    "foreign_keys",
    "temp_store",
    "mmap_size",
    "cache_size",
    "journal_size_limit",
)
_TUNABLE_PRAGMAS: Final = frozenset(PER_CONNECTION_PRAGMAS) - {"foreign_keys"}
DEFAULT_FAIR_LOCK: Final = False
"""Whether writers queue on the OS write gate by default (see :mod:`queue_core.write_gate`).

Off: on 2 cores (the bench's busy scenario, default profile) it cost a fifth of the throughput
with 2 and 4 writing processes (0.78 and 0.80 of none) for a lock-wait tail of 9-21 ms instead
of 0.1-0.4 s, and broke even at 16 (1.00; longest wait 96 ms instead of 1.2 s). That is Linux,
where a queued writer sleeps on a futex; Windows and macOS wait through a helper thread, which
costs more and is not measured on Windows yet."""
# Statements that never write: they run without the write gate. Anything else (WITH included,
# which may be an UPDATE) is treated as a write; that only costs an uncontended lock call.
_WAL_CHECK_EVERY: Final = 4
_READ_ONLY_KEYWORDS: Final = frozenset({"SELECT", "EXPLAIN", "VALUES", "PRAGMA"})
_SQLITE_BUSY: Final = 5
_SQLITE_CORRUPT: Final = 11
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26
# Connections inherited through fork. SQLite forbids using or even closing them in the child, so
# the child keeps them referenced forever instead of letting the garbage collector close them.
_FORK_ORPHANS: list[sqlite3.Connection] = []
_log = logging.getLogger(__name__)
# SQLite error names by message, for Python 3.10, whose exceptions carry no error code.
_ERROR_NAMES_BY_MESSAGE: Final = (
    ("database table is locked", "SQLITE_LOCKED"),
    ("database is locked", "SQLITE_BUSY"),
    ("database disk image is malformed", "SQLITE_CORRUPT"),
    ("file is not a database", "SQLITE_NOTADB"),
    ("unable to open", "SQLITE_CANTOPEN"),
    ("disk I/O error", "SQLITE_IOERR"),
    ("database or disk is full", "SQLITE_FULL"),
    ("attempt to write a readonly database", "SQLITE_READONLY"),
    ("interrupted", "SQLITE_INTERRUPT"),
)


def is_busy_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` is SQLITE_BUSY (or an extended BUSY code).

    Python 3.10 has no ``sqlite_errorcode``, so the message is the fallback there.
    """
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == _SQLITE_BUSY)
    return "database is locked" in str(exc)


def translate_error(exc: sqlite3.Error, *, waited_seconds: float = 0.0) -> QueueDatabaseError:
    """Map a ``sqlite3`` error to the queue_core error a caller can act on.

    The caller raises the result ``from exc`` so the original stays attached as ``__cause__``.
    """
    message = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if is_busy_error(exc):
        return QueueBusyError(message, waited_seconds=waited_seconds)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or any(
        text in message for text in ("file is not a database", "database disk image is malformed")
    ):
        return QueueCorruptError(f"{message}: the file is not a SQLite database or is damaged")
    if isinstance(exc, sqlite3.IntegrityError):
        return QueueIntegrityError(message)
    if any(text in message for text in ("no such table", "no such column", "no such index")):
        return QueueSchemaError(f"{message}: the queue schema is missing or incomplete")
    return QueueDatabaseError(message)


def sqlite_error_name(exc: sqlite3.Error) -> str:
    """SQLite's name for the error (``SQLITE_BUSY``...), or the exception class as a last resort.

    Python 3.11+ carries it as ``sqlite_errorname``; on 3.10 it is read from the message.
    """
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return str(name)
    if isinstance(exc, sqlite3.IntegrityError):
        return "SQLITE_CONSTRAINT"
    message = str(exc)
    for text, guessed in _ERROR_NAMES_BY_MESSAGE:
        if text in message:
            return guessed
    return type(exc).__name__


def translate_and_log(
    exc: sqlite3.Error, operation: str, *, waited_seconds: float = 0.0
) -> QueueDatabaseError:
    """:func:`translate_error`, and log the error once: the operation, how long it waited, the
    SQLite error name (WARNING for busy and constraint errors, ERROR for the rest).

    Every ``sqlite3`` error queue_core turns into its own goes through here, so each is logged
    exactly once; nothing is logged on success.
    """
    error = translate_error(exc, waited_seconds=waited_seconds)
    level = logging.ERROR
    if isinstance(error, (QueueBusyError, QueueIntegrityError)):
        level = logging.WARNING  # contention or a refused write: the caller decides
    if _log.isEnabledFor(level):
        _log.log(
            level,
            "%s failed after %.1f ms: %s: %s",
            operation,
            waited_seconds * 1000,
            sqlite_error_name(exc),
            exc,
        )
    return error


def describe_statement(sql: str) -> str:
    """The first words of a statement, which name it well enough for a log line."""
    # The statement's first words name the operation well enough for a log line
    # ("INSERT INTO task_queue", "UPDATE task_queue SET"), without its parameters.
    words = [word.strip("(),;") for word in sql.split(None, 3)[:3]]
    return " ".join(word for word in words if word)


class BufferedCursor(sqlite3.Cursor):
    """A cursor whose rows were all fetched while the connection's lock was held.

    Threads that share one connection get wrong rows if they fetch concurrently (cpython
    #118172), so :meth:`QueueDatabase.execute` fetches everything under its lock and hands back
    this cursor; reading from it never touches SQLite again. ``rowcount`` and ``lastrowid`` are
    the real ones.
    """

    _buffered: list[Any]
    _position: int

    def buffer(self) -> BufferedCursor:
        self._buffered = super().fetchall()
        self._position = 0
        return self

    def fetchone(self) -> Any:
        if self._position >= len(self._buffered):
            return None
        row = self._buffered[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows = self._buffered[self._position : self._position + count]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = self._buffered[self._position :]
        self._position = len(self._buffered)
        return rows

    def __iter__(self) -> BufferedCursor:
        return self

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row


class QueueDatabase:
    """The SQLite connection manager of the task queue.

    One connection per instance, opened in the constructor and reused by every call. All use of
    it is serialised by a re-entrant lock, so one instance can be shared by threads; a
    :meth:`transaction` holds the lock until it ends, so other threads wait instead of joining
    it. The connection never crosses a process boundary: an instance pickled to a ``spawn``
    child opens its own connection there on first use, and one inherited through ``fork`` does
    the same (the parent's connection is never touched in the child).

    Example::

        with QueueDatabase("queue.db") as db:
            db.initialize_schema()
            with db.transaction() as conn:
                conn.execute("INSERT INTO workers (worker_id, capabilities) VALUES (?, ?)",
                             ("w1", "{}"))

    :param db_path: the database file; ``None`` means ``PRISMQ_QUEUE_DB_PATH`` or the platform
        default (see :mod:`queue_core.location`). Parent directories are created.
    :param busy_timeout_ms: how long a call waits for a lock before :class:`QueueBusyError`;
        default 5000 as in :data:`PRAGMAS`.
    :param pragma_overrides: other values for the tunable per-connection PRAGMAs
        (``synchronous``, ``wal_autocheckpoint``, ``temp_store``, ``mmap_size``,
        ``cache_size``). For example ``wal_autocheckpoint=0`` for an application that runs its
        own checkpoints on another connection, ``synchronous="FULL"`` to survive power loss at
        the cost of an fsync per commit, or a smaller ``cache_size``/``mmap_size`` on a machine
        short of memory. ``journal_mode``, ``page_size`` and ``foreign_keys`` are fixed: the
        queue's concurrency and integrity depend on them.
    :param tracer: called with a :mod:`queue_core.tracing` event on connect, for every
        statement, and after each ``BEGIN IMMEDIATE`` with its lock wait; see :attr:`tracer`.
    :param trace_statements: False leaves out the :class:`~queue_core.tracing.Statement`
        events, the costly part (SQLite expands each statement's text for them): a tracer that
        only wants connect times and lock waits then costs one call per transaction.
    :param system: the OS seam used to check the location (tests pass a fake).
    :param fair_lock: queue writers of this file in the order they arrive, through an OS lock on
        ``<database>-writer.lock`` taken before SQLite's write lock, with a second side file,
        ``<database>-writer.wait``, that stops newcomers from overtaking a writer that has
        waited 40 ms (see :mod:`queue_core.write_gate`): bounded, fair lock waits under
        contention. On Linux a queued writer sleeps in its own thread on a futex in a third
        side file, ``<database>-writer.wake``; elsewhere, or if that file cannot be mapped, on a
        helper thread, which costs throughput when writers outnumber free cores. Default
        :data:`DEFAULT_FAIR_LOCK` (off; the README gives the measured trade-off). When the lock
        file cannot be created, writes go straight to SQLite's busy handler
        (``fair_lock_active`` is then False); without the wait file the gate works unbounded.
    :param lock_opener: the OS seam that opens the side files (tests pass a fake).

    :raises QueueLocationError: the path is on a network share, or cannot be created or written.
    :raises QueueCorruptError: the file exists but is not a SQLite database.
    :raises WalUnavailableError: the file system cannot do WAL.
    :raises QueueDatabaseError: the linked SQLite is older than 3.35.
    :raises ValueError: an unknown or fixed PRAGMA is overridden, or a negative timeout.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_ms: int | None = None,
        pragma_overrides: Mapping[str, int | str] | None = None,
        tracer: Tracer | None = None,
        trace_statements: bool = True,
        system: SystemProbe | None = None,
        fair_lock: bool = DEFAULT_FAIR_LOCK,
        lock_opener: LockOpener | None = None,
    ) -> None:
        if not isinstance(fair_lock, bool):
            raise TypeError(f"fair_lock must be a bool, not {type(fair_lock).__name__}")
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE_VERSION:
            raise QueueDatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old; queue_core needs "
                f"{'.'.join(map(str, MINIMUM_SQLITE_VERSION))} or newer (RETURNING)"
            )
        self._pragmas = _merge_pragmas(busy_timeout_ms, pragma_overrides)
        self._path = resolve_db_path(db_path, system=system)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._savepoints = 0
        self._fair_lock = fair_lock
        self._lock_opener = lock_opener or open_file_lock
        self._gate: WriteGate | None = None
        self._gate_failure: str | None = None
        self._wal_index = WalIndex(self._path)
        self._writes_since_wal_check = 0
        self._busy_wait = True
        self._tracer = _check_tracer(tracer)
        self._trace_statements = bool(trace_statements)
        with self._lock:
            self._connection()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The absolute path of the database file."""
        return self._path

    @property
    def pragmas(self) -> Mapping[str, int | str]:
        """The PRAGMA values this instance applies to its connection."""
        return MappingProxyType(dict(self._pragmas))

    @property
    def busy_timeout_ms(self) -> int:
        """How long a call waits for a lock, in milliseconds."""
        return int(self._pragmas["busy_timeout"])

    @property
    def tracer(self) -> Tracer | None:
        """The callable receiving this instance's trace events, or None (the default).

        Assigning a new one (or None) takes effect at once, on the open connection too. It is
        called in the thread doing the work with the instance's lock held; see
        :mod:`queue_core.tracing` for the events. A tracer is not pickled: a copy sent to
        another process has none.

        :raises TypeError: on assigning something that is not callable.
        """
        return self._tracer

    @tracer.setter
    def tracer(self, tracer: Tracer | None) -> None:
        tracer = _check_tracer(tracer)
        with self._guard():
            self._tracer = tracer
            if self._conn is not None:
                self._install_statement_trace(self._conn)

    @property
    def fair_lock(self) -> bool:
        """Whether this instance was asked to queue its writes on the OS write gate."""
        return self._fair_lock

    @property
    def fair_lock_active(self) -> bool:
        """Whether writes do go through the write gate (False if asked not to, or if the lock
        file could not be opened; :attr:`fair_lock_failure` then says why)."""
        with self._guard():
            return self._write_gate() is not None

    @property
    def fair_lock_failure(self) -> str | None:
        """Why the write gate could not be opened, or None."""
        return self._gate_failure

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def get_connection(self) -> sqlite3.Connection:
        """Return this process's connection, opening it if needed.

        The connection is shared with every other call on this instance; a caller that uses it
        directly from several threads must hold :meth:`lock` (or use :meth:`transaction`).

        :raises QueueClosedError: after :meth:`close`.
        """
        with self._guard():
            return self._connection()

    def lock(self) -> threading.RLock:
        """The re-entrant lock that serialises use of the connection in this process."""
        return self._guard()

    def close(self) -> None:
        """Close the connection. Calling it again does nothing.

        Afterwards this instance holds no handle on the database, ``-wal`` or ``-shm`` file, so
        on Windows they can be deleted or renamed once every instance has closed. (On POSIX a
        process that used the fair lock keeps one read handle of ``-shm``, see
        :mod:`queue_core.wal_index`; POSIX lets such a file be deleted.) An open transaction is
        rolled back.
        """
        with self._guard():
            self._closed = True
            # Our -shm handle goes first: on Windows SQLite deletes -shm when its last
            # connection closes, which a handle of ours without FILE_SHARE_DELETE would stop.
            self._wal_index.close()
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            gate, self._gate = self._gate, None
            if gate is not None:
                gate.close()

    def __enter__(self) -> QueueDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration crosses a process boundary; the child opens its own connection.
        return {
            "path": str(self._path),
            "pragmas": dict(self._pragmas),
            "fair_lock": self._fair_lock,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = Path(state["path"])
        self._pragmas = dict(state["pragmas"])
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn = None
        self._closed = False
        self._savepoints = 0
        self._tracer = None
        self._trace_statements = True
        self._fair_lock = bool(state.get("fair_lock", DEFAULT_FAIR_LOCK))
        self._lock_opener = open_file_lock
        self._gate = None
        self._gate_failure = None
        self._wal_index = WalIndex(self._path)
        self._writes_since_wal_check = 0
        self._busy_wait = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<QueueDatabase {str(self._path)!r} {state}>"

    # -- statements ------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        """Execute one statement and return a cursor holding all of its result rows.

        Outside a transaction the statement commits on its own (autocommit). The rows are
        fetched before the call returns, so the returned cursor is safe to read from any thread.

        :raises QueueBusyError: the database stayed locked for the whole busy timeout.
        :raises QueueIntegrityError: the statement broke a constraint.
        :raises QueueSchemaError: a table or column it names does not exist.
        :raises QueueDatabaseError: any other SQLite error (``__cause__`` holds the original).
        """
        with self._guard():
            conn = self._connection()
            started = time.perf_counter()
            gate = None if conn.in_transaction or not _is_write(sql) else self._write_gate()
            if gate is not None:
                self._enter_gate(gate, started)
            try:
                cursor = conn.cursor(BufferedCursor)
                cursor.execute(sql, params)
                result = cursor.buffer()
            except sqlite3.Error as exc:
                waited = time.perf_counter() - started
                operation = describe_statement(sql)
                raise translate_and_log(exc, operation, waited_seconds=waited) from exc
            finally:
                if gate is not None:
                    gate.release()
            if gate is not None:
                self._checkpoint_outside_gate(conn)
            return result

    def execute_many(
        self, sql: str, param_list: Iterable[Sequence[Any] | Mapping[str, Any]]
    ) -> None:
        """Execute ``sql`` once per parameter set, all in one IMMEDIATE transaction.

        Inside a caller's :meth:`transaction` it joins that transaction instead. Either every
        parameter set is applied or none is.

        :raises QueueBusyError: the write lock could not be taken within the busy timeout.
        :raises QueueDatabaseError: as for :meth:`execute`; nothing was written.
        """
        with self.transaction() as conn:
            conn.executemany(sql, param_list)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one ``BEGIN IMMEDIATE ... COMMIT`` transaction.

        Yields the connection. Any exception in the block, including ``KeyboardInterrupt``,
        rolls everything back and propagates (``sqlite3`` errors as queue_core errors). A nested
        ``transaction()`` becomes a SAVEPOINT: its failure undoes only its own work, and it never
        commits the outer transaction early.

        :raises QueueBusyError: the write lock was not free within the busy timeout; the error
            says how long the call waited.
        :raises QueueDatabaseError: the block or the COMMIT failed with a SQLite error.
        """
        with self._guard():
            conn = self._connection()
            if conn.in_transaction:
                with self._savepoint(conn):
                    yield conn
                return
            started = time.perf_counter()
            gate = self._write_gate()
            if gate is not None:
                try:
                    self._enter_gate(gate, started)
                except QueueBusyError as exc:
                    if self._tracer is not None:
                        self._tracer(TransactionBegan(exc.waited_seconds, acquired=False))
                    raise
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    waited = time.perf_counter() - started
                    if self._tracer is not None:
                        self._tracer(TransactionBegan(waited, acquired=False))
                    if not self._busy_wait and is_busy_error(exc):
                        # Asked for by without_busy_wait(): the caller retries, nothing to log.
                        raise QueueBusyError(str(exc), waited_seconds=waited) from exc
                    raise translate_and_log(exc, "BEGIN IMMEDIATE", waited_seconds=waited) from exc
                try:
                    # The one tracing check on this path; without a tracer it costs no clock read.
                    if self._tracer is not None:
                        self._tracer(TransactionBegan(time.perf_counter() - started))
                    yield conn
                except BaseException as exc:
                    _rollback_quietly(conn)
                    if isinstance(exc, sqlite3.Error):
                        # Since BEGIN, the lock wait included; read only on this error path.
                        spent = time.perf_counter() - started
                        raise translate_and_log(exc, "transaction", waited_seconds=spent) from exc
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    _rollback_quietly(conn)
                    spent = time.perf_counter() - started
                    raise translate_and_log(exc, "COMMIT", waited_seconds=spent) from exc
            finally:
                if gate is not None:
                    gate.release()
            if gate is not None:
                self._checkpoint_outside_gate(conn)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run a block of reads in one read transaction, so they all see the same moment.

        Yields the connection. Writers carry on meanwhile (WAL), but the snapshot stops a
        checkpoint from recycling the WAL until the block ends, so keep it short and fetch every
        cursor completely. Inside a :meth:`transaction` it simply joins that transaction.

        :raises QueueDatabaseError: a SQLite error in the block (``__cause__`` has it).
        """
        with self._guard():
            conn = self._connection()
            if conn.in_transaction:
                yield conn
                return
            started = time.perf_counter()
            try:
                conn.execute("BEGIN")
                yield conn
            except BaseException as exc:
                _rollback_quietly(conn)
                if isinstance(exc, sqlite3.Error):
                    waited = time.perf_counter() - started
                    raise translate_and_log(exc, "read snapshot", waited_seconds=waited) from exc
                raise
            _rollback_quietly(conn)  # a read transaction has nothing to commit

    @contextmanager
    def checkpoints_between_transactions(self) -> Iterator[None]:
        """Turn this connection's automatic checkpoints off for a block of bulk writes.

        A commit that pushes the WAL past ``wal_autocheckpoint`` runs the checkpoint itself,
        inside the commit. A bulk job (prune) calls :meth:`checkpoint_passive` between its
        transactions instead, so its commits stay short and the copying happens while it pauses
        rather than in its own or a worker's commit. The setting is restored afterwards. The
        connection's lock is not held during the block, so other threads sharing this
        ``QueueDatabase`` go on between the bulk job's transactions.
        """
        with self._guard():
            conn = self._connection()
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield
        finally:
            with self._guard():
                if self._conn is conn:
                    pages = int(self._pragmas["wal_autocheckpoint"])
                    conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")

    @contextmanager
    def without_busy_wait(self) -> Iterator[None]:
        """Make the write transactions of a block fail at once when the write lock is taken.

        Inside the block, a :meth:`transaction` that finds another connection writing raises
        :class:`QueueBusyError` at once (without logging it) instead of waiting up to the busy
        timeout. SQLite's busy handler sleeps 1, 2, 5, 10 ms ... between its tries, so a short
        conflict can cost a waiter 3, 8 or 18 ms while the lock was free most of that time; a
        caller with other work to do (the worker engine, which keeps feeding its executors)
        does that instead and retries on its own, finer schedule. The connection's lock is held
        for the whole block, so other threads sharing this instance wait as usual, and the busy
        timeout is restored afterwards. With the fair lock on, the write gate is only tried.

        :raises QueueDatabaseError: SQLite could not change the busy timeout.
        """
        with self._guard():
            conn = self._connection()
            try:
                conn.execute("PRAGMA busy_timeout = 0")
            except sqlite3.Error as exc:
                raise translate_error(exc) from exc
            self._busy_wait = False
            try:
                yield
            finally:
                self._busy_wait = True
                if self._conn is conn:
                    with suppress(sqlite3.Error):
                        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")

    def checkpoint_passive(self) -> tuple[int, int, int]:
        """Run a PASSIVE checkpoint (never waits, never blocks); return (busy, log, checkpointed).

        :raises QueueDatabaseError: SQLite failed (``__cause__`` has why).
        """
        row = self.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- the queue_core.backend seam --------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """``"sqlite"``."""
        return "sqlite"

    @property
    def location(self) -> str:
        """The database file's path, as text."""
        return str(self._path)

    @property
    def queries(self) -> Mapping[str, str]:
        """The named statements of ``queue_core/sql/queries.sql``."""
        return _queries()

    def claimer(self, rng: random.Random) -> LookThenLockClaimer:
        """SQLite's claim algorithm for one queue: look before taking the write lock."""
        from queue_core.claiming import LookThenLockClaimer

        return LookThenLockClaimer(self, rng)

    def insert_tasks(self, session: Session, batch: Sequence[Sequence[Any]]) -> list[int]:
        """Insert tasks without keys in one ``executemany`` and return their ids in order.

        The ids are consecutive: the transaction holds the write lock and AUTOINCREMENT never
        reuses an id. Must run inside :meth:`transaction`.
        """
        queries = _queries()
        session.executemany(queries["enqueue_batch"], batch)
        last = int(session.execute(queries["last_insert_rowid"]).fetchone()[0])
        return list(range(last - len(batch) + 1, last + 1))

    def change_token(self) -> int:
        """:meth:`data_version`: it changes when another connection commits to the file."""
        return self.data_version()

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` of this connection.

        It changes when any other connection commits to the file, never for this connection's
        own commits. Reading it takes no lock and touches only the WAL index in shared memory,
        so an idle worker can poll it every few milliseconds to learn there is something new.

        :raises QueueDatabaseError: SQLite could not read it (``__cause__`` has why).
        """
        with self._guard():
            conn = self._connection()
            try:
                return int(conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise translate_error(exc) from exc

    def change_watch(self) -> DataVersionWatch:
        """A :class:`~queue_core.waking.ChangeWatch` on this connection's ``data_version``.

        The worker engine waits on it when it found nothing to claim; see
        :mod:`queue_core.waking`.
        """
        return DataVersionWatch(self)

    def pragma_values(self) -> dict[str, int | str]:
        """Read every PRAGMA of :data:`PRAGMAS` back from the live connection.

        :raises QueueDatabaseError: SQLite could not read them (``__cause__`` has why).
        """
        with self._guard():
            conn = self._connection()
            try:
                return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
            except sqlite3.Error as exc:
                raise translate_and_log(exc, "PRAGMA read-back") from exc

    def initialize_schema(self) -> int:
        """Create or migrate the schema to the newest version and check it; idempotent.

        Returns the schema version (``PRAGMA user_version``).

        :raises QueueSchemaError: the file's version is newer than this code knows (the file is
            left untouched), a migration failed (rolled back), or a table or index is missing.
        :raises QueueBusyError: another process held the write lock for the whole busy timeout.
        """
        from queue_core.schema import migrate

        return migrate(self)

    # -- internals -------------------------------------------------------------------------

    def _guard(self) -> threading.RLock:
        pid = os.getpid()
        if pid != self._pid:
            # Inherited through fork: the parent's lock may be held by a thread that does not
            # exist here, and its connection must not be used or closed. Start afresh.
            if self._conn is not None:
                _FORK_ORPHANS.append(self._conn)
            self._conn = None
            # The inherited gate shares the parent's open file (and lock) and its helper thread
            # does not exist here; open a fresh one on first use.
            self._gate = None
            self._wal_index.close()  # a read-only handle: closing the child's copy is harmless
            self._wal_index = WalIndex(self._path)
            self._lock = threading.RLock()
            self._pid = pid
            self._savepoints = 0
        return self._lock

    def _write_gate(self) -> WriteGate | None:
        """The write gate, opened on first use; None when off or when it cannot be opened."""
        if not self._fair_lock or self._gate_failure is not None:
            return None
        if self._gate is None:
            if self._closed:
                raise QueueClosedError(f"{self!r} is closed")
            try:
                lock = self._lock_opener(lock_path_for(self._path))
            except OSError as exc:
                # Fall back to SQLite's busy handler: correct, only less fair.
                self._gate_failure = f"cannot open {lock_path_for(self._path)}: {exc}"
                return None
            try:
                starving = self._lock_opener(wait_path_for(self._path))
            except OSError as exc:
                # The gate still queues writers; only newcomers may overtake a long waiter.
                _log.debug(
                    "no bound on overtaking: cannot open %s: %s", wait_path_for(self._path), exc
                )
                starving = None
            try:
                wake = open_wake_channel(wake_path_for(self._path))
            except OSError as exc:
                # The gate works as well; a waiter's wake-up only goes through a helper thread.
                _log.debug("no wake channel: cannot open %s: %s", wake_path_for(self._path), exc)
                wake = None
            self._gate = WriteGate(lock, starving, wake=wake)
        return self._gate

    def _checkpoint_outside_gate(self, conn: sqlite3.Connection) -> None:
        # SQLite checkpoints inside the COMMIT that crosses wal_autocheckpoint, which under the
        # gate makes every writer wait for it; checkpoint here first (at 3/4 of it), after the
        # gate is let go (see queue_core.wal_index). PASSIVE never waits for a lock or calls
        # the busy handler.
        threshold = int(self._pragmas["wal_autocheckpoint"]) * 3 // 4
        if threshold <= 0:
            return  # automatic checkpoints are off: the application runs its own
        # Reading the WAL index costs two system calls; every 4th write is often enough (a write
        # adds a handful of frames, and the threshold leaves a quarter of the PRAGMA's margin).
        self._writes_since_wal_check = (self._writes_since_wal_check + 1) % _WAL_CHECK_EVERY
        if self._writes_since_wal_check:
            return
        pending = self._wal_index.pending_frames()
        if pending is not None and pending >= threshold:
            with suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _enter_gate(self, gate: WriteGate, started: float) -> None:
        try:
            entered = gate.acquire(self.busy_timeout_ms / 1000 if self._busy_wait else 0.0)
        except OSError as exc:
            self._gate_failure = f"the write gate failed: {exc}"
            self._gate = None
            gate.close()
            raise QueueDatabaseError(self._gate_failure) from exc
        if self._tracer is not None:
            waited = time.perf_counter() - started
            try:
                self._tracer(WriteGateEntered(waited, gate.contended, entered))
            except BaseException:
                gate.release()  # the caller's try/finally that would let it go begins later
                raise
        if not entered:
            waited = time.perf_counter() - started
            raise QueueBusyError(
                "another process held the write gate for the whole busy timeout",
                waited_seconds=waited,
            )

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise QueueClosedError(f"{self!r} is closed")
        if self._conn is None:
            started = time.perf_counter()
            conn = self._open()
            if self._tracer is not None:
                try:
                    self._tracer(Connected(str(self._path), time.perf_counter() - started))
                except BaseException:
                    conn.close()  # no handle may outlive a failed connect (Windows)
                    raise
            self._conn = conn
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise QueueLocationError(self._path, f"SQLite cannot open it ({exc})") from exc
        conn.row_factory = sqlite3.Row
        try:
            if self._tracer is not None:
                self._install_statement_trace(conn)
            self._apply_pragmas(conn)
        except sqlite3.Error as exc:
            conn.close()
            code = getattr(exc, "sqlite_errorcode", None)
            if code == _SQLITE_CANTOPEN or "unable to open" in str(exc):
                raise QueueLocationError(self._path, f"SQLite cannot open it ({exc})") from exc
            raise translate_and_log(exc, "connect") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _apply_pragmas(self, conn: sqlite3.Connection) -> None:
        # page_size first: it only takes effect before the first table and before WAL.
        conn.execute(f"PRAGMA page_size = {int(self._pragmas['page_size'])}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = self._enable_wal(conn)
        if str(mode).lower() != "wal":
            raise WalUnavailableError(
                f"{self._path}: journal_mode stayed {mode!r} instead of 'wal'; the file system "
                "cannot share memory between processes (a network or virtual file system?)"
            )
        for name in PER_CONNECTION_PRAGMAS:
            conn.execute(f"PRAGMA {name} = {self._pragmas[name]}")
        # foreign_keys is silently ignored inside a transaction; make sure it took.
        if conn.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
            raise QueueDatabaseError(f"{self._path}: PRAGMA foreign_keys=ON did not take effect")

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        # Processes racing to switch a new file to WAL get "database is locked" at once, without
        # the busy handler; retry with jitter until the busy timeout (at least a second) runs out.
        deadline = time.perf_counter() + max(self.busy_timeout_ms, 1000) / 1000
        delay = 0.002
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not is_busy_error(exc) or time.perf_counter() >= deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)

    def _install_statement_trace(self, conn: sqlite3.Connection) -> None:
        # SQLite's own trace hook sees every statement, including those a caller runs on the
        # connection that transaction() yields. A closure over the tracer, not a bound method, so
        # the connection holds no reference back to this instance.
        tracer = self._tracer
        if tracer is None or not self._trace_statements:
            conn.set_trace_callback(None)
        else:
            conn.set_trace_callback(lambda sql: tracer(Statement(sql)))

    @contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._savepoints += 1
        name = f"queue_core_savepoint_{self._savepoints}"
        try:
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException as exc:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                if isinstance(exc, sqlite3.Error):
                    raise translate_and_log(exc, "savepoint") from exc
                raise
            conn.execute(f"RELEASE {name}")
        finally:
            self._savepoints -= 1


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in a ``BEGIN IMMEDIATE`` transaction on a bare connection.

    The connection must use ``isolation_level=None``. Commits when the block ends, rolls back on
    any exception (``KeyboardInterrupt`` included) and re-raises it unchanged.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _rollback_quietly(conn)
        raise
    conn.execute("COMMIT")


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    # Some errors (a full disk, an interrupted statement) end the transaction by themselves.
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _queries() -> dict[str, str]:
    from queue_core import sql

    return sql.queries()


def _check_tracer(tracer: Any) -> Tracer | None:
    if tracer is not None and not callable(tracer):
        raise TypeError(f"tracer must be callable or None, not {type(tracer).__name__}")
    return cast("Tracer | None", tracer)


def _merge_pragmas(
    busy_timeout_ms: int | None, overrides: Mapping[str, int | str] | None
) -> dict[str, int | str]:
    pragmas = dict(PRAGMAS)
    for name, value in (overrides or {}).items():
        if name not in _TUNABLE_PRAGMAS:
            raise ValueError(
                f"PRAGMA {name!r} cannot be overridden; tunable: {sorted(_TUNABLE_PRAGMAS)}"
            )
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise TypeError(f"PRAGMA {name} must be an int or str, not {type(value).__name__}")
        if isinstance(value, str) and not value.replace("_", "").isalnum():
            raise ValueError(f"PRAGMA {name} value {value!r} is not a plain word")
        pragmas[name] = value
    if busy_timeout_ms is not None:
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise TypeError("busy_timeout_ms must be an int")
        if busy_timeout_ms < 0:
            raise ValueError("busy_timeout_ms must not be negative")
        pragmas["busy_timeout"] = busy_timeout_ms
    return pragmas


def _is_write(sql: str) -> bool:
    keyword = _first_keyword(sql)
    if keyword == "VACUUM":
        # VACUUM INTO only reads this database (it writes the copy); holding the write gate for
        # the whole copy would stop every writer for the length of a backup.
        return _VACUUM_INTO.match(sql) is None
    return keyword not in _READ_ONLY_KEYWORDS


_VACUUM_INTO: Final = re.compile(r"\s*VACUUM(\s+\w+)?\s+INTO\b", re.IGNORECASE)


_FIRST_KEYWORDS: dict[str, str] = {}


def _first_keyword(sql: str) -> str:
    keyword = _FIRST_KEYWORDS.get(sql)
    if keyword is None:
        text = sql.lstrip()
        while text.startswith(("--", "/*")):
            end = text.find("\n") if text.startswith("--") else text.find("*/") + 1
            text = text[end + 1 :].lstrip() if end > 0 else ""
        keyword = text.split(None, 1)[0].upper() if text else ""
        if len(_FIRST_KEYWORDS) < 4096:  # statements are few and fixed; ad-hoc ones are not kept
            _FIRST_KEYWORDS[sql] = keyword
    return keyword
