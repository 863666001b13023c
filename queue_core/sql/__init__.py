"""SQL kept apart from Python: migrations and named queries, loaded from package data.

``migrations/NNNN_name.sql`` files are applied in order of their number; ``queries.sql`` holds the
queue's statements, each under a ``-- name --`` header (the claim query is ``-- claim --``).
A statement may include another entry with ``{name}``: ``{task_columns}`` is the one column list
of ``task_queue`` that ``SELECT`` and ``RETURNING`` clauses share.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources

_QUERY_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)
_INCLUDE = re.compile(r"\{([a-z0-9_]+)\}")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: applying ``statements`` moves a database to ``version``."""

    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(script: str) -> tuple[str, ...]:
    """Split a SQL script into single statements, dropping comment-only lines between them.

    The migration runner executes statements one by one inside its own transaction, because
    ``executescript()`` would commit any open transaction first.
    """
    statements: list[str] = []
    pending: list[str] = []
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending.append(line)
        if sqlite3.complete_statement("".join(pending)):
            statements.append("".join(pending).strip())
            pending = []
    if pending:
        text = "".join(pending).strip()
        raise ValueError(f"SQL script ends with an incomplete statement: {text[:80]!r}")
    return tuple(statements)


def parse_queries(text: str) -> dict[str, str]:
    """Map each ``-- name --`` header in ``text`` to the SQL below it (comments stripped).

    ``{other}`` in an entry is replaced by the text of the entry ``other``, which must not
    include anything itself (one level keeps the file readable).

    :raises ValueError: an entry includes an unknown name, or one that includes another.
    """
    parts = _QUERY_HEADER.split(text)
    raw: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        raw[name] = "\n".join(lines).strip()

    def include(match: re.Match[str]) -> str:
        name = match[1]
        if name not in raw:
            raise ValueError(f"queries.sql includes {{{name}}}, which it does not define")
        if _INCLUDE.search(raw[name]):
            raise ValueError(f"queries.sql: {{{name}}} is included but includes another entry")
        return raw[name]

    return {name: _INCLUDE.sub(include, body) for name, body in raw.items()}


@cache
def queries() -> dict[str, str]:
    """The named statements of ``queries.sql``."""
    text = resources.files(__name__).joinpath("queries.sql").read_text(encoding="utf-8")
    return parse_queries(text)


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, in version order."""
    folder = resources.files(__name__).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            script = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], split_statements(script)))
    found.sort(key=lambda migration: migration.version)
    return tuple(found)
