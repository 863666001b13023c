"""The CLI's shared pieces: table alignment and the missing-database refusal."""

from __future__ import annotations

import argparse
import io
from datetime import timedelta
from pathlib import Path

import pytest

from queue_core.cli.base import (
    Progress,
    UsageError,
    format_bytes,
    format_table,
    non_empty,
    open_database,
    parse_duration,
    positive_int,
    task_id,
)


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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
        (" 7D ", 604800),
        ("0s", 0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["7x", "7", "d", "-1d", "1e3s", "", "7 d", "99999999999999w"])
def test_malformed_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        parse_duration(text)


def test_ids_and_counts() -> None:
    assert task_id("42") == 42
    assert positive_int("3") == 3
    for bad in ("0", "-1", "x", "1.5", str(2**63)):
        with pytest.raises(argparse.ArgumentTypeError):
            task_id(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError):
        non_empty("  ")


def test_progress_draws_on_a_terminal_only() -> None:
    stream = io.StringIO()
    quiet = Progress("pruning", stream=stream)  # a StringIO is not a terminal
    quiet(1, 2)
    quiet.finish()
    assert stream.getvalue() == ""
    shown = Progress("pruning", unit="tasks", stream=stream, enabled=True)
    shown(0, 2000)
    shown(1000, 2000)  # within 0.1 s of the last draw: skipped
    shown(2000, 2000)  # the end is always drawn
    shown.finish()
    assert stream.getvalue() == (
        "\rpruning: 0 of 2,000 tasks (  0.0%)\x1b[K\rpruning: 2,000 of 2,000 tasks (100.0%)\x1b[K\n"
    )
    sized = Progress("backing up", unit="bytes", stream=io.StringIO(), enabled=True)
    sized(512 * 1024, 1024 * 1024)
    assert "512.0 KiB of 1.0 MiB ( 50.0%)" in sized._stream.getvalue()  # type: ignore[attr-defined]


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 5 * 1024**3, 3 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 GiB",
        "3072.0 GiB",
    ]
