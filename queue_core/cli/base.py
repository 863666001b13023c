"""What every ``python -m queue_core`` command shares: the Command shape, usage errors,
opening the database, argument types (durations, ids, counts), printing tables or JSON, and a
progress line for long operations on a terminal."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Final, TextIO, cast

from queue_core.backend import QueueBackend
from queue_core.connecting import connect, is_postgres_url
from queue_core.database import QueueDatabase
from queue_core.location import ENV_VAR, resolve_db_path
from queue_core.task_queue import TaskQueue
from queue_core.validation import MAX_SECONDS

PROG: Final = "python -m queue_core"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


class UsageError(Exception):
    """Bad usage found after parsing (a malformed duration, a missing file...): exit 2."""


class Command:
    """One subcommand. Subclasses set ``name`` and ``help`` and implement :meth:`run`.

    ``--db`` and ``--json`` are added to every command by the parser; read them as
    ``args.db`` and ``args.json``.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    description: ClassVar[str | None] = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's own options and positionals."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work and return the exit code.

        Raise :class:`UsageError` for bad input (exit 2); queue errors propagate.
        """
        raise NotImplementedError


def database_target(args: argparse.Namespace) -> str | None:
    """What ``--db`` names: a path or a ``postgresql://`` URL, else the environment variable
    (None: then the platform default path)."""
    if args.db is not None:
        return str(args.db)
    return os.environ.get(ENV_VAR) or None


def database_path(args: argparse.Namespace) -> Path:
    """The SQLite file ``--db`` names, else the environment variable or platform default; for
    the commands that work on the file itself (backup, restore, check).

    :raises UsageError: ``--db`` (or the environment variable) is a PostgreSQL URL.
    :raises QueueLocationError: the path is unusable (network share, unwritable, ...).
    """
    target = database_target(args)
    if is_postgres_url(target):
        raise UsageError(
            "this command works on a SQLite queue file; for a PostgreSQL queue use the "
            "server's own tools (pg_dump, pg_restore, amcheck)"
        )
    return resolve_db_path(args.db)


def open_database(args: argparse.Namespace, *, create: bool = False) -> QueueBackend:
    """Open the queue named by ``--db`` (a path or a ``postgresql://`` URL) with its schema
    up to date.

    :param create: create a missing file; without it a missing file is a usage error, so a
        typo in ``--db`` does not silently create an empty queue. (A PostgreSQL database must
        exist already; its schema is created when missing.)
    :raises UsageError: the file does not exist and ``create`` is false.
    """
    target = database_target(args)
    db: QueueBackend
    if is_postgres_url(target):
        db = connect(target)
    else:
        path = database_path(args)
        if not create and not path.exists():
            raise UsageError(f"no queue database at {path} (create one with `{PROG} init`)")
        db = QueueDatabase(path)
    try:
        db.initialize_schema()
    except BaseException:
        db.close()
        raise
    return db


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Print ``data`` as indented JSON (datetimes and paths as text)."""
    out = sys.stdout if stream is None else stream
    json.dump(data, out, indent=2, default=str, ensure_ascii=False)
    out.write("\n")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Align ``rows`` under ``headers``; numbers right-aligned, text left-aligned, None as '-'."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [_is_numeric_column([row[i] for row in rows]) for i in range(len(headers))]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def _is_numeric_column(values: Sequence[Any]) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in present
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# -- argument types (argparse turns their ArgumentTypeError into one usage line, exit 2) --------

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (or ``500ms``) into a timedelta.

    :raises argparse.ArgumentTypeError: anything else, such as ``7x``, ``-1d`` or ``7``.
    """
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use a number and a unit: 500ms, 90s, 15m, 12h, 7d, 2w"
        )
    total = float(match[1]) * _UNIT_SECONDS[match[2]]
    if total > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is too long a duration (at most 100 years)")
    return timedelta(seconds=total)


def task_id(text: str) -> int:
    """A task id: a positive integer.

    :raises argparse.ArgumentTypeError: anything else.
    """
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a task id (a positive integer)")
    return int(text)


def positive_int(text: str) -> int:
    """A count of at least 1.

    :raises argparse.ArgumentTypeError: anything else.
    """
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def non_empty(text: str) -> str:
    """Text that is not empty or blank (a task type, say).

    :raises argparse.ArgumentTypeError: empty or blank text.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_stale_option(parser: argparse.ArgumentParser) -> None:
    """``--stale DURATION`` (default 60s): how long a worker may be silent before it is stale."""
    parser.add_argument(
        "--stale",
        type=parse_duration,
        default=timedelta(seconds=60),
        metavar="DURATION",
        help="a worker silent for longer than this is stale (default 60s)",
    )


# -- output ----------------------------------------------------------------------------------


def format_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``: sizes for people."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """A progress line redrawn in place on a terminal; silent when output is not a terminal.

    Call it with (done, total); it redraws at most ten times a second. :meth:`finish` ends the
    line. It writes to stderr so that ``--json`` output on stdout stays clean.
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self._label = label
        self._unit = unit
        self._stream = sys.stderr if stream is None else stream
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last_draw < 0.1 and done < total):
            return
        self._last_draw = now
        percent = 100.0 if total <= 0 else min(100.0, 100.0 * done / total)
        if self._unit == "bytes":
            amounts = f"{format_bytes(done)} of {format_bytes(total)}"
        else:
            amounts = f"{done:,} of {total:,}{' ' + self._unit if self._unit else ''}"
        self._stream.write(f"\r{self._label}: {amounts} ({percent:5.1f}%)\x1b[K")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """End the progress line (if one was drawn)."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def open_sqlite_database(args: argparse.Namespace) -> QueueDatabase:
    """:func:`open_database` for the commands that work on the SQLite file itself.

    :raises UsageError: ``--db`` is a PostgreSQL URL, or the file does not exist.
    """
    database_path(args)  # a PostgreSQL URL is refused here, before anything is opened
    return cast("QueueDatabase", open_database(args))


def open_queue(args: argparse.Namespace) -> tuple[QueueBackend, TaskQueue]:
    """Open the queue ``--db`` names (which must exist) and a TaskQueue on it.

    :raises UsageError: the SQLite file does not exist.
    """
    db = open_database(args)
    return db, TaskQueue(db)
