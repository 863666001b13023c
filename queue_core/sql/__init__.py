"""SQL kept apart from Python: migrations and named queries, loaded from package data.

``migrations/NNNN_name.sql`` files are applied in order of their number (``postgres/migrations``
holds the PostgreSQL translation of each, under the same number and name); ``queries.sql`` holds the
queue's statements, each under a ``-- name --`` header (the claim query is ``-- claim --``).
A statement may include another entry with ``{name}``: ``{task_columns}`` is the one column list
of ``task_queue`` that ``SELECT`` and ``RETURNING`` clauses share.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

_QUERY_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)
_INCLUDE = re.compile(r"\{([a-z0-9_]+)\}")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# What can hide a semicolon in PostgreSQL: a string, a quoted identifier, a comment, or a
# dollar-quoted body ($$...$$ or $tag$...$tag$; $1 is a parameter, not a quote).
_PG_TOKEN = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)|;"""
    r"""|(['"]|/\*)""",  # a quote or comment that is never closed
    re.DOTALL,
)
_PG_IDENTIFIER_CHAR = re.compile(r"[A-Za-z_0-9$]")


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


def split_postgres_statements(script: str) -> tuple[str, ...]:
    """Split a PostgreSQL script into single statements, as :func:`split_statements` does.

    ``sqlite3.complete_statement`` does not know dollar quoting, so a function body such as
    ``$$ BEGIN ...; END; $$`` would be cut at its first semicolon; this splitter skips strings,
    quoted identifiers, comments and dollar-quoted bodies. Comment-only lines before a statement
    are dropped.

    :raises ValueError: the script ends inside a statement, string, comment or dollar quote.
    """
    statements: list[str] = []
    start = position = 0
    while True:
        match = _PG_TOKEN.search(script, position)
        if match is None:
            break
        position = match.end()
        tag = match[1]
        if match[2] is not None:
            break  # the rest of the script is inside an unclosed quote or comment
        if tag is not None:
            if match.start() > 0 and _PG_IDENTIFIER_CHAR.match(script[match.start() - 1]):
                position = match.start() + 1  # part of an identifier such as a$b$
                continue
            closing = script.find(tag, position)
            if closing < 0:
                break
            position = closing + len(tag)
        elif match[0] == ";":
            statement = _strip_leading_comments(script[start:position])
            if statement != ";":
                statements.append(statement)
            start = position
    rest = _strip_leading_comments(script[start:])
    if rest:
        raise ValueError(f"SQL script ends with an incomplete statement: {rest[:80]!r}")
    return tuple(statements)


def _strip_leading_comments(text: str) -> str:
    lines = text.strip().splitlines(keepends=True)
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "".join(lines).strip()


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
def postgres_queries() -> dict[str, str]:
    """The named statements of ``postgres/queries.sql`` (psycopg ``%(name)s`` parameters)."""
    folder = resources.files(__name__).joinpath("postgres")
    return parse_queries(folder.joinpath("queries.sql").read_text(encoding="utf-8"))


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, in version order."""
    return _read_migrations(("migrations",), split_statements)


@cache
def postgres_migrations() -> tuple[Migration, ...]:
    """Every PostgreSQL migration shipped with the package, in version order."""
    return _read_migrations(("postgres", "migrations"), split_postgres_statements)


def _read_migrations(
    folder_parts: tuple[str, ...], split: Callable[[str], tuple[str, ...]]
) -> tuple[Migration, ...]:
    folder = resources.files(__name__)
    for part in folder_parts:
        folder = folder.joinpath(part)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            script = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], split(script)))
    found.sort(key=lambda migration: migration.version)
    return tuple(found)
