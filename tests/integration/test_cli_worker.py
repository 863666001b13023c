"""``python -m queue_core worker`` run as a user runs it: a subprocess stopped by signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from queue_core import QueueDatabase, TaskQueue, TaskStatus
from tests.integration.test_cli import ROOT, run_cli

pytestmark = pytest.mark.slow
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
WAIT_SECONDS = 60.0


def start_worker(db_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queue_core",
            "worker",
            "tests.engine_handlers:HANDLERS",
            "--db",
            str(db_path),
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the worker did not exit:\n{err}") from None
    return process.returncode, out, err


@posix_only
def test_sigterm_mid_drain_leaves_every_task_completed_or_queued_uncounted(
    db: QueueDatabase, db_path: Path
) -> None:
    queue = TaskQueue(db)
    ids = queue.enqueue_many([{"type": "sleep", "payload": {"ms": 5}} for _ in range(400)])
    worker = start_worker(db_path, "--concurrency", "2", "--prefetch", "6", "--json")
    try:
        wait_for(lambda: queue.counts()[TaskStatus.COMPLETED] >= 20, "some completions")
        worker.send_signal(signal.SIGTERM)
    finally:
        code, out, err = finish(worker)
    assert code == 0, err
    summary = json.loads(out)
    assert "SIGTERM received" in err
    counts = queue.counts()
    assert counts[TaskStatus.PROCESSING] == counts[TaskStatus.FAILED] == 0
    assert counts[TaskStatus.COMPLETED] == summary["completed"]
    assert 20 <= summary["completed"] < len(ids)
    queued = [queue.get(i) for i in ids if queue.get(i).status == TaskStatus.QUEUED]
    counted = [(t.id, t.attempts, t.error_message) for t in queued if t.attempts]
    assert queued and not counted, (counted, err)


@posix_only
def test_a_second_ctrl_c_stops_at_once_and_requeues_the_running_task(
    db: QueueDatabase, db_path: Path, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    task_id = TaskQueue(db).enqueue("wait", {"started": str(started), "seconds": 300})
    worker = start_worker(db_path, "--concurrency", "1", "--grace", "300")
    try:
        wait_for(started.exists, "the handler to start")
        worker.send_signal(signal.SIGINT)
        time.sleep(0.2)
        worker.send_signal(signal.SIGINT)
    finally:
        code, out, err = finish(worker)
    assert code == 0, err
    task = TaskQueue(db).get(task_id)
    assert (task.status, task.attempts) == (TaskStatus.QUEUED, 1)
    assert "stopped at once" in str(task.error_message)
    assert "0 completed" in out


@pytest.mark.parametrize(
    ("handlers", "extra", "message"),
    [
        ("tests.engine_handlers:MISSING", [], "cannot import"),
        ("no_colon_here", [], "package.module:name"),
        ("tests.engine_handlers:NOT_A_MAPPING", [], "mapping of task type"),
        ("tests.engine_handlers:HANDLERS", ["--concurrency", "0"], "concurrency"),
        ("tests.engine_handlers:HANDLERS", ["--types", "nope"], "no handler"),
        ("tests.engine_handlers:HANDLERS", ["--lease", "-1"], "--lease"),
        ("tests.engine_handlers:HANDLERS", ["--strategy", "random"], "--strategy"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    db: QueueDatabase, db_path: Path, handlers: str, extra: list[str], message: str
) -> None:
    result = run_cli("worker", handlers, "--db", str(db_path), *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m queue_core worker: error: ")
    assert message in lines[0]


@posix_only
def test_worker_command_in_process_stops_on_sigint_and_prints_a_summary(
    db: QueueDatabase, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same command through ``main()`` in this process (so coverage sees it)."""
    import threading

    from queue_core.cli import main

    queue = TaskQueue(db)
    task_id = queue.enqueue("noop", {})

    def interrupt_when_done() -> None:
        wait_for(lambda: queue.get(task_id).status == TaskStatus.COMPLETED, "the task")
        os.kill(os.getpid(), signal.SIGINT)  # delivered to the main thread: the engine's handler

    watcher = threading.Thread(target=interrupt_when_done, daemon=True)
    watcher.start()
    code = main(
        [
            "worker",
            "tests.engine_handlers:HANDLERS",
            "--db",
            str(db_path),
            "--concurrency",
            "1",
            "--json",
            "--log-level",
            "WARNING",
        ]
    )
    watcher.join(WAIT_SECONDS)
    assert code == 0
    assert json.loads(capsys.readouterr().out)["completed"] == 1


def test_usage_errors_in_process(db: QueueDatabase, db_path: Path) -> None:
    from queue_core.cli.base import UsageError
    from queue_core.cli.commands.worker import load_handlers

    with pytest.raises(UsageError, match="cannot import"):
        load_handlers("tests.engine_handlers:MISSING")
    with pytest.raises(UsageError, match="mapping"):
        load_handlers("tests.engine_handlers:NOT_A_MAPPING")
    assert set(load_handlers("tests.engine_handlers:HANDLERS")) >= {"noop", "wait"}
