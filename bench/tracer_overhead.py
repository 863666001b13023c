"""What a QueueDatabase tracer costs: enqueue and claim+complete with and without one.

``python -m bench tracer-overhead [--rounds N] [--tasks N] [--json]`` runs, per round and in
rotating order, the same work four ways on one database in this process: bare ``sqlite3``
(:class:`bench.baseline_sql.BareQueue`, the reference), the library without a tracer, the
library with a tracer that counts every event (connect, each statement, each transaction's
lock wait), and with that tracer but ``trace_statements=False`` (``library+lock_tracer``: what
the harness itself uses). It prints each variant's median rate as a ratio to bare, per
operation: ``enqueue`` (single autocommit calls), ``enqueue_many`` (batches of 100) and
``claim+complete``.

Run on a checkout whose ``QueueDatabase`` has no ``tracer`` parameter, it measures the first
two variants only, so the same command on the old and the new code compares them.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.baseline_sql import BareQueue, payload
from bench.paired import alternate, ratio_cells
from queue_core import QueueDatabase, TaskQueue

OPERATIONS = ("enqueue", "enqueue_many", "claim+complete")
VARIANTS = ("bare", "library", "library+tracer", "library+lock_tracer")
BATCH = 100
PAD_BYTES = 200
WORKER = "tracer-overhead"


def tracer_supported() -> bool:
    """True when this checkout's QueueDatabase takes a ``tracer``."""
    return isinstance(getattr(QueueDatabase, "tracer", None), property)


class CountingTracer:
    """Counts the events it receives by kind: the least a real tracer does."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event: object) -> None:
        self.counts[type(event).__name__] += 1


def _time_bare(path: Path, tasks: int) -> dict[str, float]:
    with BareQueue(path) as bare:
        t0 = time.process_time()
        for i in range(tasks):
            bare.enqueue(i, PAD_BYTES)
        t1 = time.process_time()
        for start in range(0, tasks, BATCH):
            bare.enqueue_many(range(start, min(start + BATCH, tasks)), PAD_BYTES)
        t2 = time.process_time()
        for _ in range(2 * tasks):
            task_id = bare.claim_one(WORKER)
            if task_id is None:
                raise RuntimeError("bare claim found no task")
            bare.complete(task_id, WORKER)
        t3 = time.process_time()
    return _rates(tasks, t0, t1, t2, t3)


def _time_library(
    path: Path, tasks: int, tracer: CountingTracer | None, *, statements: bool = True
) -> dict[str, float]:
    options: dict[str, Any] = {}
    if tracer is not None:
        options = {"tracer": tracer, "trace_statements": statements}
    with QueueDatabase(path, **options) as db:
        queue = TaskQueue(db)
        items = [{"type": "bench", "payload": payload(i, PAD_BYTES)} for i in range(tasks)]
        t0 = time.process_time()
        for item in items:
            queue.enqueue("bench", item["payload"])
        t1 = time.process_time()
        for start in range(0, tasks, BATCH):
            queue.enqueue_many(items[start : start + BATCH])
        t2 = time.process_time()
        for _ in range(2 * tasks):
            task = queue.claim_one(WORKER)
            if task is None:
                raise RuntimeError("library claim found no task")
            queue.complete(task.id, WORKER)
        t3 = time.process_time()
    return _rates(tasks, t0, t1, t2, t3)


def _rates(tasks: int, t0: float, t1: float, t2: float, t3: float) -> dict[str, float]:
    return {
        "enqueue": tasks / (t1 - t0),
        "enqueue_many": tasks / (t2 - t1),
        "claim+complete": 2 * tasks / (t3 - t2),
    }


def measure(rounds: int, tasks: int) -> dict[str, Any]:
    """Median rates per variant and their ratios to bare sqlite3 (taken within each round)."""
    variants: dict[str, Callable[[Path, int], dict[str, float]]] = {
        "bare": _time_bare,
        "library": lambda path, n: _time_library(path, n, None),
    }
    if tracer_supported():
        variants["library+tracer"] = lambda path, n: _time_library(path, n, CountingTracer())
        variants["library+lock_tracer"] = lambda path, n: _time_library(
            path, n, CountingTracer(), statements=False
        )
    with tempfile.TemporaryDirectory(prefix="tracer-overhead-") as folder:
        path = Path(folder) / "queue.db"
        with QueueDatabase(path) as db:
            db.initialize_schema()
        for run in variants.values():  # unmeasured warm-up of each
            run(path, min(tasks, 100))
        rates = alternate(
            rounds, {name: partial(run, path, tasks) for name, run in variants.items()}
        )
    result: dict[str, Any] = {"rounds": rounds, "tasks_per_round": tasks, "operations": {}}
    for op in OPERATIONS:
        row: dict[str, Any] = {}
        for name in rates:
            row[f"{name}_per_s"] = round(statistics.median(rates[name][op]), 1)
            if name != "bare":
                row.update(ratio_cells(f"{name}_over_bare", rates[name][op], rates["bare"][op]))
        result["operations"][op] = row
    return result


def render(result: dict[str, Any]) -> list[str]:
    """The result as terminal lines: one per operation."""
    lines = [
        f"{result['rounds']} rounds x {result['tasks_per_round']} tasks; median rate, and the"
        " median (range) over rounds of its ratio to bare"
    ]
    for op, row in result["operations"].items():
        parts = [f"bare {row['bare_per_s']:9.0f}/s"]
        for name in VARIANTS[1:]:
            if f"{name}_per_s" in row:
                low, high = row[f"{name}_over_bare_range"]
                parts.append(
                    f"{name} {row[f'{name}_per_s']:9.0f}/s"
                    f" {row[f'{name}_over_bare']:.3f} ({low:.3f}-{high:.3f})"
                )
        lines.append(f"  {op:<15} " + "  ".join(parts))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.tracer_overhead``: the same as ``python -m bench tracer-overhead``."""
    from bench.commands import main as bench_main

    return bench_main(["tracer-overhead", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
