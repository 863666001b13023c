"""The CLI's shared pieces: table alignment and the missing-database refusal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from queue_core.cli.base import UsageError, format_table, open_database


def test_table_aligns_text_left_numbers_right_and_shows_none_as_dash() -> None:
    table = format_table(["status", "tasks"], [["queued", 1200], ["completed", 7], ["x", None]])
    assert table.splitlines() == [
        "status     tasks",
        "queued     1,200",
        "completed      7",
        "x              -",
    ]


def test_table_with_no_rows_is_just_the_header() -> None:
    assert format_table(["id", "type"], []) == "id  type"


def test_open_database_refuses_a_missing_file_unless_asked_to_create(tmp_path: Path) -> None:
    args = argparse.Namespace(db=str(tmp_path / "typo.db"))
    with pytest.raises(UsageError, match="no queue database at"):
        open_database(args)
    assert not (tmp_path / "typo.db").exists()
    with open_database(args, create=True) as db:
        assert db.path == tmp_path / "typo.db"
