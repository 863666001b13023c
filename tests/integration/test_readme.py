"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queue_core import QueueDatabase, TaskQueue, TaskStatus

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_usage_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"## Using the queue\n\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its usage example"
    monkeypatch.setenv("PRISMQ_QUEUE_DB_PATH", str(tmp_path / "queue" / "queue.db"))
    namespace: dict[str, object] = {}
    exec(compile(match[1], str(README), "exec"), namespace)
    queue = namespace["queue"]
    assert queue.db.closed  # type: ignore[attr-defined]
    assert (tmp_path / "queue" / "queue.db").exists()
    with QueueDatabase(tmp_path / "queue" / "queue.db") as db:
        counts = TaskQueue(db).counts()
    assert counts[TaskStatus.COMPLETED] == 1


def test_the_tracer_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        r"```python\n(from queue_core import QueueDatabase, TaskQueue\n.*?)```", text, re.DOTALL
    )
    assert match, "the README lost its tracer example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(match[1], str(README), "exec"), namespace)
    waits = namespace["lock_waits"]
    assert isinstance(waits, list)
    assert len(waits) == 2  # the new file's migration, then the claim
    assert all(wait >= 0 for wait in waits)
