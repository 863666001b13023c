"""``python -m queue_core``: the shared parser, --db/--json placement and exit codes, run as a
user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queue_core import QueueDatabase
from queue_core.schema import latest_version

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "queue_core", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        timeout=120,
        check=False,
    )


def test_init_creates_the_database_and_reports_its_version_as_json(db_path: Path) -> None:
    result = run_cli("init", "--db", str(db_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "path": str(db_path),
        "schema_version": latest_version(),
    }
    with QueueDatabase(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()


def test_db_and_json_are_accepted_before_the_command(db_path: Path) -> None:
    result = run_cli("--db", str(db_path), "--json", "init")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(db_path)


def test_db_after_the_command_wins_over_the_one_before(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    result = run_cli("--db", str(first), "init", "--db", str(second))
    assert result.returncode == 0, result.stderr
    assert str(second) in result.stdout
    assert not first.exists()


def test_db_defaults_to_the_environment_variable(db_path: Path) -> None:
    result = run_cli("init", env={"PRISMQ_QUEUE_DB_PATH": str(db_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{db_path}: schema version {latest_version()}"


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["init", "--no-such-option"],
        [],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m queue_core: error: ")


def test_an_unusable_location_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("init", "--db", str(tmp_path))  # an existing directory
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m queue_core init: error: ")
    assert str(tmp_path) in lines[0]
