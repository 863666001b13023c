"""What every ``python -m queue_core`` command shares: the Command shape, usage errors,
opening the database, and printing tables or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, TextIO

from queue_core.database import QueueDatabase
from queue_core.location import resolve_db_path

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


def database_path(args: argparse.Namespace) -> Path:
    """The database file ``--db`` names, else the environment variable or platform default.

    :raises QueueLocationError: the path is unusable (network share, unwritable, ...).
    """
    return resolve_db_path(args.db)


def open_database(args: argparse.Namespace, *, create: bool = False) -> QueueDatabase:
    """Open the queue named by ``--db`` with its schema up to date.

    :param create: create a missing file; without it a missing file is a usage error, so a
        typo in ``--db`` does not silently create an empty queue.
    :raises UsageError: the file does not exist and ``create`` is false.
    """
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
