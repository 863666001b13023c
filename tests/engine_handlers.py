"""Handlers the worker-engine tests run in spawn executors (importable by reference)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from queue_core import Task
from queue_core.executor import Retry


def noop(task: Task) -> None:
    """Do nothing: the task completes."""


def sleep_ms(task: Task) -> None:
    """Sleep ``payload['ms']`` milliseconds (default 1)."""
    time.sleep(float(task.payload.get("ms", 1)) / 1000)


def boom(task: Task) -> None:
    """Raise, so the task fails with a traceback."""
    raise RuntimeError(f"boom on task {task.id}")


def die(task: Task) -> None:
    """Kill the executor without a word, as a crash would."""
    os._exit(3)


def retry_later(task: Task) -> None:
    """Ask for a retry in an hour."""
    raise Retry(after=3600, reason="not yet")


def bad_text(task: Task) -> None:
    """Raise with a lone surrogate in the message, as a file name decoded with
    ``surrogateescape`` brings: SQLite cannot store that text as it is."""
    raise ValueError("cannot read b'\\xff.txt' (\udcff.txt)")


def touch_and_wait(task: Task) -> None:
    """Create ``payload['started']`` (a path), then wait ``payload['seconds']`` seconds.

    Tests wait for the file to know the handler started, instead of sleeping.
    """
    Path(task.payload["started"]).touch()
    deadline = time.monotonic() + float(task.payload["seconds"])
    while time.monotonic() < deadline:
        time.sleep(0.01)


def record(task: Task) -> None:
    """Append the task's id to the file ``payload['log']``: the order handlers ran in."""
    with Path(task.payload["log"]).open("a", encoding="utf-8") as log:
        log.write(f"{task.id}\n")


HANDLERS = {
    "noop": noop,
    "sleep": sleep_ms,
    "boom": boom,
    "die": die,
    "retry": retry_later,
    "wait": touch_and_wait,
    "record": record,
    "bad_text": bad_text,
}
NOT_A_MAPPING = [noop]
