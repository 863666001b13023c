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


def test_the_running_workers_example_runs(tmp_path: Path) -> None:
    """Both files of the example, run as a script and stopped as a console would stop it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Running workers") :]
    blocks = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", section, re.DOTALL)
    assert [name for name, _ in blocks] == ["thumbnails.py", "run_worker.py"]
    for name, code in blocks:
        (tmp_path / name).write_text(code, encoding="utf-8")
    db_path = tmp_path / "queue.db"
    source = tmp_path / "a.png"
    source.write_bytes(b"png")
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        task_id = TaskQueue(db).enqueue("thumbnail", {"path": str(source), "format": "webp"})
    root = str(Path(__file__).resolve().parents[2])
    windows = os.name == "nt"
    process = subprocess.Popen(
        [sys.executable, "run_worker.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": root, "PRISMQ_QUEUE_DB_PATH": str(db_path)},
        creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if windows else 0,  # type: ignore[attr-defined]
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "a.webp").exists():
            assert time.monotonic() < deadline, "the worker did not run the task"
            assert process.poll() is None, "the worker exited early"
            time.sleep(0.05)
        process.send_signal(signal.CTRL_BREAK_EVENT if windows else signal.SIGTERM)  # type: ignore[attr-defined]
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with QueueDatabase(db_path) as db:
        assert TaskQueue(db).get(task_id).status == TaskStatus.COMPLETED
