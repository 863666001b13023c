"""Handlers the ``worker`` scenario's engines run (importable by reference in spawn executors)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

from queue_core import Task

_PROBES: dict[str, TextIO] = {}


def noop(task: Task) -> None:
    """Do nothing: measures the engine's own cost per task."""


def sleep_1ms(task: Task) -> None:
    """Sleep one millisecond, a stand-in for a short real handler."""
    time.sleep(0.001)


def pickup_probe(task: Task) -> None:
    """Record how long ago the producer enqueued the task (``perf_counter_ns`` is system-wide).

    One line per task to ``<payload['out_dir']>/<pid>.txt``; the file stays open per process.
    """
    started = time.perf_counter_ns()
    folder = str(task.payload["out_dir"])
    out = _PROBES.get(folder)
    if out is None:
        out = _PROBES[folder] = (Path(folder) / f"{os.getpid()}.txt").open(
            "a", encoding="utf-8", buffering=1
        )
    out.write(f"{task.id} {started - int(task.payload['enqueued_ns'])}\n")
