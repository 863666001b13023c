"""The SQL files: statement splitting, named queries, ordered migrations."""

from __future__ import annotations

import pytest

from queue_core import sql


def test_split_statements_keeps_semicolons_inside_strings() -> None:
    script = (
        "-- comment only\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nINSERT INTO a VALUES ('b;c');\n"
    )
    assert sql.split_statements(script) == (
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "INSERT INTO a VALUES ('b;c');",
    )


def test_split_statements_refuses_a_truncated_script() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        sql.split_statements("CREATE TABLE a (x);\nINSERT INTO a VALUES (1\n")


def test_parse_queries_strips_comments() -> None:
    text = "-- header\n\n-- one --\n-- what it does\nSELECT 1;\n\n-- two --\nSELECT 2;\n"
    assert sql.parse_queries(text) == {"one": "SELECT 1;", "two": "SELECT 2;"}


def test_shipped_queries_and_migrations() -> None:
    queries = sql.queries()
    for name in ("enqueue", "claim", "complete", "fail", "extend_lease", "release_expired_leases"):
        assert queries.get(name)
    assert "ORDER BY priority, run_after_utc, id" in queries["claim"]
    chain = sql.migrations()
    assert [m.version for m in chain] == sorted(m.version for m in chain)
    assert chain[0].version == 1 and chain[0].name == "initial"
    assert len(chain[0].statements) == 9  # 3 tables and 6 indexes


def test_sql_writes_only_the_documented_statuses() -> None:
    """TaskStatus is the one definition of the status set; the SQL may not invent another."""
    import re

    from queue_core import TaskStatus

    text = "\n".join(sql.queries().values())
    written = set(re.findall(r"status\s*=\s*'([a-z_]+)'", text))
    written |= set(re.findall(r"THEN '([a-z_]+)' ELSE '([a-z_]+)'", text)[0])
    assert written
    assert written <= {status.value for status in TaskStatus}


def test_parse_queries_includes_other_entries() -> None:
    text = "-- cols --\na, b\n\n-- one --\nSELECT {cols} FROM t WHERE j = '{}';\n"
    assert sql.parse_queries(text)["one"] == "SELECT a, b FROM t WHERE j = '{}';"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- one --\nSELECT {cols} FROM t;\n", "does not define"),
        ("-- a --\nx\n-- b --\n{a}, y\n-- one --\nSELECT {b};\n", "includes another"),
    ],
)
def test_parse_queries_refuses_unknown_or_nested_includes(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sql.parse_queries(text)


def test_task_columns_are_the_task_fields_that_from_row_reads() -> None:
    """The one column list of queries.sql: one column per Task field, in field order."""
    from dataclasses import fields

    from queue_core import Task

    queries = sql.queries()
    columns = [name.strip() for name in queries["task_columns"].split(",")]
    assert columns == [field.name for field in fields(Task)]
    listed = queries["task_columns"]
    for name in ("claim", "fail", "get_task"):
        assert listed in queries[name], name
    assert not any("{" in text and "}" in text.replace("'{}'", "") for text in queries.values())
