"""Maintenance: online backups with rotation, verify, restore, checkpoints, optimize, vacuum and
integrity checks.

A backup is taken while producers and workers carry on. It is one read transaction, so writers
never wait for it, but the WAL cannot be recycled behind it and grows for as long as it runs
(``journal_size_limit`` shrinks the WAL again after the next checkpoint). The default method is
SQLite's online backup API, copying every page in one step; ``vacuum_into`` (``VACUUM INTO``)
writes a compact copy instead. On a 1M-task file under load (six runs each) the backup API took
4.2-9.3 s and the WAL peaked at 211-403 MB; ``VACUUM INTO`` took 6.4-18.9 s, 379-698 MB
(README, "Operating the queue").
Right after the copy, the backup runs a PASSIVE checkpoint itself, so that the WAL that piled up
behind it is copied back by the backup and not inside some worker's commit. The copy is
written under a temporary name, switched to ``journal_mode=DELETE`` (one self-contained file, no
``-wal``/``-shm``), checked with :func:`verify`, and only then renamed to its final name.

:func:`restore` writes a verified backup into the queue file through SQLite itself (no file is
renamed or deleted, which Windows would refuse while anything has it open). It first takes an
exclusive lock, which fails while any other connection has the queue open, and so refuses to
restore under running workers. One case it cannot see: a connection that was opened but has
never read anything holds no lock yet. Every ``QueueDatabase`` reads as it opens, so that only
concerns other programs.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from queue_core.database import QueueDatabase, is_busy_error, translate_and_log
from queue_core.exceptions import BackupError, QueueInUseError
from queue_core.schema import TABLES, latest_version

BackupMethod = Literal["vacuum_into", "backup_api"]
CheckpointMode = Literal["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
BackupProgress = Callable[[int, int], None]
"""Called now and then during a backup with (bytes written so far, bytes expected); with the
backup API from a helper thread, ten times a second, and once more at the end."""

DEFAULT_KEEP: Final = 10
"""Backups :func:`backup_rotated` keeps in a directory."""
CHECKPOINT_MODES: Final = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")
_BACKUP_NAME: Final = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{9}Z)\.db$")
_PROGRESS_EVERY: Final = 20_000  # SQLite VM instructions between two progress checks
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupInfo:
    """One backup file: where it is, how big, and (when just taken) how long it took."""

    path: Path
    bytes: int
    taken_at: datetime | None = None
    seconds: float | None = None
    method: str | None = None
    removed: tuple[Path, ...] = ()
    """Older backups that rotation deleted to make room."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "taken_at": None if self.taken_at is None else self.taken_at.isoformat(),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "method": self.method,
            "removed": [str(path) for path in self.removed],
        }


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found. ``ok`` is true when ``problems`` is empty."""

    path: Path
    schema_version: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "path": str(self.path),
            "ok": self.ok,
            "schema_version": self.schema_version,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class CheckpointResult:
    """The ``(busy, log, checkpointed)`` row of ``PRAGMA wal_checkpoint``.

    ``busy`` is 1 when a FULL/RESTART/TRUNCATE checkpoint could not finish (a reader or writer
    was in the way); ``log`` is the WAL's size in pages and ``checkpointed`` how many were
    copied into the database. A PASSIVE checkpoint reports busy 0 even when a reader stopped
    it, so compare ``checkpointed`` with ``log``.
    """

    mode: str
    busy: int
    log: int
    checkpointed: int
    seconds: float

    @property
    def complete(self) -> bool:
        """Every WAL page was copied into the database."""
        return self.busy == 0 and self.checkpointed == self.log

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "mode": self.mode,
            "busy": self.busy,
            "log": self.log,
            "checkpointed": self.checkpointed,
            "complete": self.complete,
            "seconds": round(self.seconds, 4),
        }


# -- backups -------------------------------------------------------------------------------


def backup(
    db: QueueDatabase,
    dest: str | os.PathLike[str],
    *,
    progress: BackupProgress | None = None,
    method: BackupMethod = "backup_api",
) -> BackupInfo:
    """Copy the live queue to ``dest`` while producers and workers keep running.

    The copy is one consistent snapshot; it is verified (``integrity_check``, schema) before it
    takes its final name, so ``dest`` either does not exist or holds a good backup.

    :param progress: called with (bytes written, bytes expected) as the copy proceeds.
    :param method: ``backup_api`` (default: SQLite's online backup API, every page in one step)
        or ``vacuum_into`` (``VACUUM INTO``: a compact copy, slower, and the WAL grows more).
    :raises FileExistsError: ``dest`` exists (a backup never overwrites a file).
    :raises ValueError: an unknown method.
    :raises BackupError: the copy failed verification (it was deleted).
    :raises QueueDatabaseError: SQLite could not read the queue or write the copy.
    """
    if method not in ("vacuum_into", "backup_api"):
        raise ValueError(f"method must be 'vacuum_into' or 'backup_api', not {method!r}")
    target = Path(dest).absolute()
    if target.exists():
        raise FileExistsError(f"{target} exists; a backup never overwrites a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    _remove_database_files(partial)
    started = time.perf_counter()
    try:
        expected = _expected_bytes(db)
        if method == "vacuum_into":
            _vacuum_into(db, partial, expected, progress)
        else:
            _backup_api(db, partial, expected, progress)
        db.checkpoint_passive()
        _make_self_contained(partial)
        result = verify(partial)
        if not result.ok:
            raise BackupError(f"the backup failed verification: {'; '.join(result.problems)}")
        partial.replace(target)
    except BaseException:
        _remove_database_files(partial)
        raise
    size = target.stat().st_size
    if progress is not None:
        progress(size, max(size, expected))
    seconds = time.perf_counter() - started
    _log.info("backed up %s to %s (%d bytes) in %.2f s", db.path, target, size, seconds)
    return BackupInfo(
        path=target,
        bytes=size,
        taken_at=datetime.now(timezone.utc),
        seconds=seconds,
        method=method,
    )


def backup_rotated(
    db: QueueDatabase,
    directory: str | os.PathLike[str],
    *,
    keep: int = DEFAULT_KEEP,
    progress: BackupProgress | None = None,
    method: BackupMethod = "backup_api",
) -> BackupInfo:
    """Take a backup into ``directory`` (created if missing) and keep only the newest ``keep``.

    Backups are named ``<queue file stem>-<UTC time>.db``; only files of that shape and stem
    are ever rotated away (another queue's backups in the same directory are left alone), and
    only after the new backup was verified.

    :raises ValueError: ``keep`` below 1.
    :raises BackupError, QueueDatabaseError: as for :func:`backup`; nothing was rotated.
    """
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"keep must be an int, not {type(keep).__name__}")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    folder = Path(directory)
    stamp = datetime.now(timezone.utc)
    name = f"{db.path.stem}-{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z.db"
    info = backup(db, folder / name, progress=progress, method=method)
    removed = tuple(old.path for old in list_backups(folder, stem=db.path.stem)[keep:])
    for path in removed:
        path.unlink(missing_ok=True)
        _log.info("rotation removed the old backup %s", path)
    return BackupInfo(info.path, info.bytes, info.taken_at, info.seconds, info.method, removed)


def list_backups(directory: str | os.PathLike[str], *, stem: str | None = None) -> list[BackupInfo]:
    """The backups in ``directory``, newest first (an absent directory has none).

    :param stem: only the backups of the queue file with this stem (``queue`` for queue.db).
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found: list[BackupInfo] = []
    for path in folder.iterdir():
        match = _BACKUP_NAME.match(path.name)
        if match is None or not path.is_file() or (stem is not None and match["stem"] != stem):
            continue
        taken = datetime.strptime(match["stamp"][:15], "%Y%m%dT%H%M%S").replace(
            microsecond=int(match["stamp"][15:18]) * 1000, tzinfo=timezone.utc
        )
        found.append(BackupInfo(path=path.absolute(), bytes=path.stat().st_size, taken_at=taken))
    found.sort(key=lambda info: (info.taken_at, info.path.name), reverse=True)
    return found


def default_backup_dir(db_path: str | os.PathLike[str]) -> Path:
    """Where backups go unless told otherwise: ``backups`` next to the queue file."""
    return Path(db_path).absolute().parent / "backups"


def verify(path: str | os.PathLike[str]) -> VerifyResult:
    """Check that a backup (or any queue file) is sound and opens as a queue.

    Opens the file read-only and checks ``PRAGMA integrity_check``, foreign keys, the schema
    version (known to this code) and the queue's tables. Never raises for a bad file: what is
    wrong is listed in ``problems``.
    """
    target = Path(path).absolute()
    if not target.is_file():
        return VerifyResult(target, None, [f"{target} does not exist or is not a file"])
    try:
        with _read_only(target) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            problems = _integrity_problems(conn)
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.Error as exc:
        return VerifyResult(target, None, [f"SQLite cannot read it: {exc}"])
    if version < 1:
        problems.append("it has no queue schema (user_version 0)")
    elif version > latest_version():
        problems.append(
            f"schema version {version} is newer than the {latest_version()} this code knows"
        )
    missing = [name for name in TABLES if name not in tables and version >= _table_version(name)]
    if version >= 1 and missing:
        problems.append(f"tables missing: {', '.join(missing)}")
    return VerifyResult(target, version, problems)


def restore(
    db_path: str | os.PathLike[str],
    backup_path: str | os.PathLike[str],
    *,
    keep_current: bool = True,
) -> Path | None:
    """Replace the queue at ``db_path`` with a verified backup; return the safety copy's path.

    The backup is verified first. Then the queue file is locked exclusively, which fails while
    any other connection has it open (see the module docstring for the one case that cannot be
    seen). With ``keep_current`` the current content is first saved next to the queue as
    ``<name>.before-restore-<UTC time>.db``. The backup is written into the file through SQLite,
    switched back to WAL, migrated to the newest schema and checked.

    :raises BackupError: the backup is missing or failed verification; nothing changed.
    :raises QueueInUseError: another connection has the queue open; nothing changed.
    :raises QueueDatabaseError: SQLite failed while writing (the safety copy holds the old data).
    """
    target = Path(db_path).absolute()
    source = Path(backup_path).absolute()
    if source == target:
        raise BackupError(f"{source} is the queue file itself")
    result = verify(source)
    if not result.ok:
        raise BackupError(f"{source} cannot be restored: {'; '.join(result.problems)}")
    conn = sqlite3.connect(target, timeout=0, isolation_level=None)
    safety: Path | None = None
    try:
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            # In exclusive locking mode the lock taken here is kept after the transaction.
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if is_busy_error(exc):
                raise QueueInUseError(
                    f"{target} is open in another process (a worker, a producer or a "
                    "dashboard); stop them and try again. Nothing was changed."
                ) from exc
            raise translate_and_log(exc, "restore: lock the queue") from exc
        if keep_current and _has_content(conn):
            stamp = datetime.now(timezone.utc)
            safety = target.with_name(
                f"{target.name}.before-restore-{stamp:%Y%m%dT%H%M%S}"
                f"{stamp.microsecond // 1000:03d}Z.db"
            )
            copy = sqlite3.connect(safety, isolation_level=None)
            try:
                conn.backup(copy)
            finally:
                copy.close()
        with _read_only(source) as src:
            src.backup(conn)
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
    except sqlite3.Error as exc:
        raise translate_and_log(exc, "restore") from exc
    finally:
        conn.close()
    with QueueDatabase(target) as db:
        db.initialize_schema()
        problems = integrity_check(db)
    if problems:
        raise BackupError(f"{target} failed its check after the restore: {'; '.join(problems)}")
    _log.warning("restored %s from %s (previous content saved to %s)", target, source, safety)
    return safety


# -- upkeep --------------------------------------------------------------------------------


def checkpoint(db: QueueDatabase, mode: CheckpointMode = "PASSIVE") -> CheckpointResult:
    """Run ``PRAGMA wal_checkpoint(mode)`` and return its result.

    PASSIVE never waits; FULL, RESTART and TRUNCATE wait (up to the busy timeout) for readers
    and block writers meanwhile. TRUNCATE also empties the WAL file.

    :raises ValueError: an unknown mode.
    :raises QueueDatabaseError: SQLite failed.
    """
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"mode must be one of {', '.join(CHECKPOINT_MODES)}, not {mode!r}")
    started = time.perf_counter()
    busy, log, done = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return CheckpointResult(mode, int(busy), int(log), int(done), time.perf_counter() - started)


def optimize(db: QueueDatabase) -> None:
    """Run ``PRAGMA optimize``, which refreshes the planner's statistics where they are stale.

    Cheap when nothing changed; run it now and then (after a large prune, say).
    """
    db.execute("PRAGMA optimize").fetchall()


def vacuum(db: QueueDatabase) -> None:
    """Rebuild the file to give the space of deleted rows back to the file system.

    It rewrites the whole file and holds the write lock for the whole time (seconds on a large
    file), so run it when workers are stopped. Retention alone keeps the file from growing:
    SQLite reuses freed pages.
    """
    db.execute("VACUUM").fetchall()


def integrity_check(db: QueueDatabase) -> list[str]:
    """Check the file and the queue's own bookkeeping; return the problems (empty when sound).

    Runs ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``, and compares the
    finished-task counters with the rows. Reads the whole file: seconds on a large queue.
    """
    with db.snapshot() as conn:
        problems = _integrity_problems(conn)
        drift = conn.execute(
            """
            SELECT coalesce(c.type, t.type), coalesce(c.status, t.status),
                   coalesce(c.n, 0), coalesce(t.n, 0)
            FROM (SELECT type, status, n FROM finished_task_counts WHERE n != 0) AS c
            FULL OUTER JOIN (
                SELECT type, status, count(*) AS n FROM task_queue
                WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY type, status
            ) AS t ON c.type = t.type AND c.status = t.status
            WHERE coalesce(c.n, 0) != coalesce(t.n, 0)
            """
            if sqlite3.sqlite_version_info >= (3, 39, 0)
            else _COUNTER_DRIFT_BEFORE_3_39
        ).fetchall()
    problems += [
        f"finished_task_counts says {counted} {status} task(s) of type {task_type!r}, "
        f"the table holds {actual}"
        for task_type, status, counted, actual in drift
    ]
    return problems


# A FULL OUTER JOIN needs SQLite 3.39; older libraries get the same comparison as two LEFT JOINs.
_COUNTER_DRIFT_BEFORE_3_39: Final = """
    WITH c AS (SELECT type, status, n FROM finished_task_counts WHERE n != 0),
         t AS (SELECT type, status, count(*) AS n FROM task_queue
               WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY type, status)
    SELECT c.type, c.status, c.n, coalesce(t.n, 0) FROM c
    LEFT JOIN t ON c.type = t.type AND c.status = t.status WHERE c.n != coalesce(t.n, 0)
    UNION ALL
    SELECT t.type, t.status, 0, t.n FROM t
    LEFT JOIN c ON c.type = t.type AND c.status = t.status WHERE c.type IS NULL
"""


# -- internals -----------------------------------------------------------------------------


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    problems = [
        str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"
    ]
    problems += [
        f"task_logs row {row[1]} points at missing task_queue row"
        for row in conn.execute("PRAGMA foreign_key_check").fetchall()
    ]
    return problems


def _table_version(name: str) -> int:
    # finished_task_counts arrived with migration 0004; an older backup is migrated on restore.
    return 4 if name == "finished_task_counts" else 1


def _expected_bytes(db: QueueDatabase) -> int:
    row = db.execute(
        "SELECT page_count * page_size, freelist_count * page_size "
        "FROM pragma_page_count, pragma_page_size, pragma_freelist_count"
    ).fetchone()
    return max(int(row[0]) - int(row[1]), 0)


def _vacuum_into(
    db: QueueDatabase, partial: Path, expected: int, progress: BackupProgress | None
) -> None:
    with db.lock():
        conn = db.get_connection()
        if progress is not None:

            def report() -> int:
                try:
                    progress(min(partial.stat().st_size, expected), expected)
                except FileNotFoundError:
                    progress(0, expected)
                return 0  # non-zero would abort the VACUUM

            conn.set_progress_handler(report, _PROGRESS_EVERY)
        try:
            db.execute("VACUUM INTO ?", (str(partial),))
        finally:
            conn.set_progress_handler(None, 0)


def _backup_api(
    db: QueueDatabase, partial: Path, expected: int, progress: BackupProgress | None
) -> None:
    dest = sqlite3.connect(partial, isolation_level=None)
    watcher = None if progress is None else _SizeWatcher(partial, expected, progress)
    try:
        with db.lock():
            conn = db.get_connection()
            try:
                # One step. SQLite restarts a stepped backup whenever another connection writes
                # to the source between two steps, so under a busy queue it would never finish.
                # One step reports progress only at the end; the watcher reports the size of the
                # copy meanwhile.
                conn.backup(dest, pages=-1)
            except sqlite3.Error as exc:
                raise translate_and_log(exc, "backup") from exc
    finally:
        if watcher is not None:
            watcher.stop()
        dest.close()


class _SizeWatcher:
    """Reports the growing size of a file to a progress callback from a helper thread."""

    def __init__(self, path: Path, expected: int, progress: BackupProgress) -> None:
        self._path = path
        self._expected = expected
        self._progress = progress
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backup-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.1):
            try:
                size = self._path.stat().st_size
            except FileNotFoundError:
                size = 0
            self._progress(min(size, self._expected), self._expected)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _make_self_contained(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE").fetchall()
    except sqlite3.Error as exc:
        raise translate_and_log(exc, "backup: switch the copy to journal_mode=DELETE") from exc
    finally:
        conn.close()


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a single-file database, closed on exit."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _has_content(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])


def _remove_database_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
