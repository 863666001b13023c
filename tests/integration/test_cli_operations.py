"""The operations commands of ``python -m queue_core``, run as subprocesses with parsed --json,
and bad input for every command: one line on stderr, exit 2, and the database unchanged.

Every test runs with ``--db`` a SQLite file and a ``postgresql://`` URL, except those of the
commands that work on the SQLite file itself (backup, backups, restore, check)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from queue_core import QueueDatabase, TaskQueue, connect
from queue_core.schema import latest_version
from tests.integration.test_cli import run_cli

# Task ids of the fixture queue, by what happened to them.
COMPLETED, FAILED, RUNNING, QUEUED = 1, 2, 3, 4


@pytest.fixture
def queue_file(queue_target: str) -> str:
    path = queue_target
    with connect(path) as db:
        queue = TaskQueue(db)
        queue.enqueue_many(
            [
                {"type": "mail", "payload": {"to": "a"}, "max_attempts": 1},
                {"type": "thumb", "payload": {"path": "b.png"}, "max_attempts": 1},
                {"type": "thumb", "payload": {"path": "c.png"}, "max_attempts": 1},
                {"type": "mail", "payload": {"to": "d"}, "max_attempts": 1},
            ]
        )
        queue.register_worker("w1", {"region": "eu"})
        queue.claim("w1", limit=3)
        queue.log(COMPLETED, "INFO", "sent", {"ms": 5})
        queue.complete(COMPLETED, "w1")
        queue.fail(FAILED, "w1", "disk full")
    return path


def content(path: str | Path) -> list[Any]:
    """Every row of every table, to show a command changed nothing."""
    with connect(path) as db:
        return [
            [tuple(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("task_queue", "task_logs", "workers", "finished_task_counts")
        ]


def cli_json(path: str, *args: str) -> Any:
    result = run_cli(*args, "--db", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_json(queue_file: str) -> None:
    data = cli_json(queue_file, "status", "--stale", "1h")
    assert data["counts"] == {
        "queued": 1,
        "processing": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert data["counts_by_type"]["thumb"] == {"processing": 1, "failed": 1}
    assert data["in_flight"] == 1 and data["due_now"] == 1
    assert data["finished_in_window"] == {"completed": 1, "failed": 1, "cancelled": 0}
    assert data["stale_workers"] == []


def test_status_prints_aligned_tables(queue_file: str) -> None:
    result = run_cli("status", "--db", str(queue_file))
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("\n\n")[0].splitlines()
    assert table[0].split() == ["type", "queued", "processing", "completed", "failed", "cancelled"]
    assert len({len(line) for line in table}) == 1  # right-aligned numbers end in one column


def test_tasks_filters_and_limits(queue_file: str) -> None:
    assert [t["id"] for t in cli_json(queue_file, "tasks")] == [4, 3, 2, 1]
    assert [t["id"] for t in cli_json(queue_file, "tasks", "--type", "thumb")] == [3, 2]
    assert [t["id"] for t in cli_json(queue_file, "tasks", "--status", "failed")] == [FAILED]
    assert [t["id"] for t in cli_json(queue_file, "tasks", "--limit", "1")] == [4]


def test_show_includes_the_logs(queue_file: str) -> None:
    data = cli_json(queue_file, "show", str(COMPLETED))
    assert data["task"]["status"] == "completed" and data["task"]["payload"] == {"to": "a"}
    assert [(log["level"], log["message"], log["details"]) for log in data["logs"]] == [
        ("INFO", "sent", {"ms": 5})
    ]
    text = run_cli("show", str(COMPLETED), "--db", str(queue_file)).stdout
    assert "sent" in text and "completed" in text


def test_retry_by_id_and_every_failed(queue_file: str) -> None:
    data = cli_json(queue_file, "retry", str(FAILED))
    assert [(t["id"], t["status"], t["attempts"]) for t in data["retried"]] == [
        (FAILED, "queued", 0)
    ]
    assert cli_json(queue_file, "retry", "--failed", "--type", "thumb") == {
        "retried": 0,
        "type": "thumb",
    }


def test_cancel_queued_and_running_tasks(queue_file: str) -> None:
    data = cli_json(queue_file, "cancel", str(QUEUED), str(RUNNING))
    assert [(t["id"], t["status"]) for t in data["cancelled"]] == [
        (QUEUED, "cancelled"),
        (RUNNING, "cancelled"),
    ]
    assert data["cancelled"][1]["error_message"] == "cancelled while held by w1"


def test_prune_reports_what_it_deleted(queue_file: str) -> None:
    assert cli_json(queue_file, "prune", "--older-than", "7d")["total"] == 0
    data = cli_json(queue_file, "prune", "--older-than", "0s")
    assert data["tasks"] == {"completed": 1, "failed": 1, "cancelled": 0}
    assert data["logs"] == 1 and data["transactions"] == 3
    assert data["longest_lock_ms"] > 0


@pytest.mark.sqlite_only(reason="works on the SQLite file; refused for a URL in BAD_INPUT")
def test_backup_backups_restore_and_check(queue_file: str, tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    first = cli_json(queue_file, "backup", str(folder), "--keep", "2")
    assert Path(first["path"]).parent == folder and first["bytes"] > 0
    for _ in range(2):
        last = cli_json(queue_file, "backup", str(folder), "--keep", "2")
    assert last["removed"] == [first["path"]]
    listed = cli_json(queue_file, "backups", str(folder), "--verify")
    assert listed["backups"][0]["path"] == last["path"]
    assert all(entry["verify"]["ok"] for entry in listed["backups"])
    cli_json(queue_file, "cancel", str(QUEUED))
    restored = cli_json(queue_file, "restore", last["path"])
    assert Path(restored["previous_saved_to"]).exists()
    assert cli_json(queue_file, "show", str(QUEUED))["task"]["status"] == "queued"
    assert cli_json(queue_file, "check") == {
        "path": str(queue_file),
        "schema_version": latest_version(),
        "ok": True,
        "problems": [],
    }


@pytest.mark.sqlite_only(reason="works on the SQLite file; refused for a URL in BAD_INPUT")
def test_backup_defaults_to_a_folder_next_to_the_queue(queue_file: str) -> None:
    info = cli_json(queue_file, "backup")
    assert Path(info["path"]).parent == Path(queue_file).parent / "backups"
    assert len(cli_json(queue_file, "backups")["backups"]) == 1


@pytest.mark.sqlite_only(reason="works on the SQLite file; refused for a URL in BAD_INPUT")
def test_check_exits_1_when_it_finds_a_problem(queue_file: str) -> None:
    conn = sqlite3.connect(queue_file)
    conn.execute("UPDATE finished_task_counts SET n = 7")
    conn.commit()
    conn.close()
    result = run_cli("check", "--db", str(queue_file), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False


@pytest.mark.sqlite_only(reason="works on the SQLite file; refused for a URL in BAD_INPUT")
def test_restore_exits_1_while_the_queue_is_open(queue_file: str, tmp_path: Path) -> None:
    backup = cli_json(queue_file, "backup", str(tmp_path / "b"))["path"]
    before = content(queue_file)
    with QueueDatabase(queue_file):
        result = run_cli("restore", backup, "--db", str(queue_file))
    assert result.returncode == 1
    assert "open in another process" in result.stderr
    assert content(queue_file) == before


def test_workers_marks_stale_ones(queue_file: str) -> None:
    (worker,) = cli_json(queue_file, "workers", "--stale", "1h")
    assert worker["worker_id"] == "w1" and worker["stale"] is False
    assert worker["capabilities"] == {"region": "eu"}
    (worker,) = cli_json(queue_file, "workers", "--stale", "1ms")
    assert worker["stale"] is True


BAD_INPUT = [
    ["status", "--window", "7x"],
    ["status", "--stale", "-1s"],
    ["tasks", "--status", "bogus"],
    ["tasks", "--limit", "0"],
    ["tasks", "--type", " "],
    ["show", "abc"],
    ["show", "999"],
    ["retry"],
    ["retry", "999"],
    ["retry", str(QUEUED)],
    ["retry", str(FAILED), str(QUEUED)],
    ["retry", str(FAILED), "--failed"],
    ["retry", "--type", "mail"],
    ["cancel"],
    ["cancel", "999"],
    ["cancel", str(COMPLETED)],
    ["cancel", str(QUEUED), "999"],
    ["prune"],
    ["prune", "--older-than", "7x"],
    ["prune", "--older-than", "7"],
    ["prune", "--older-than", "7d", "--batch-size", "0"],
    ["backup", "--keep", "0"],
    ["backups", "no-such-dir"],
    ["restore", "no-such-backup.db"],
    ["check", "--bogus"],
    ["workers", "--stale", "soon"],
    # Longer than the queue's 100-year bound: refused, not an OverflowError traceback.
    ["prune", "--older-than", "999999d"],
    ["status", "--window", "999999d"],
    ["status", "--stale", "999999d"],
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda args: " ".join(args) or "(none)")
def test_bad_input_is_one_line_exit_2_and_changes_nothing(queue_file: str, args: list[str]) -> None:
    before = content(queue_file)
    result = run_cli(*args, "--db", str(queue_file))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m queue_core")
    assert content(queue_file) == before


@pytest.mark.parametrize("command", ["status", "tasks", "check", "workers", "prune"])
def test_a_missing_database_is_bad_usage_and_is_not_created(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "typo.db"
    extra = ["--older-than", "1d"] if command == "prune" else []
    result = run_cli(command, *extra, "--db", str(missing))
    assert result.returncode == 2
    assert "no queue database" in result.stderr
    assert not missing.exists()


def test_a_backup_folder_that_is_a_file_is_one_line_and_exit_2(
    queue_file: str, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x", encoding="utf-8")
    result = run_cli("backup", str(not_a_folder / "sub"), "--db", str(queue_file))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m queue_core backup: error: "), lines
