"""Where a worker engine's pickup latency goes: each task's path from enqueue to handler start.

``python -m bench pickup-trace [--rate N] [--seconds S] [--executors N] [--producers N]
[--json]`` runs an engine (its executors running ``bench.worker_handlers:pickup_probe``) and
paced producers enqueueing single tasks at ``--rate`` in total, all spawn processes on one
temporary database, and times every task at five points: before its enqueue, after the
enqueue's commit (producer), when the engine's claim that took it began and committed, when the
engine handed it to an executor, and when its handler started. It prints each stage's
percentiles, the stages' share of the slowest 1 % of tasks, and the engine's waits for the
write lock (with the tries that found it taken). The clock is ``perf_counter_ns``, which is
system-wide on the platforms this runs on, so the processes' stamps compare.

The engine is instrumented by subclassing (its claim and dispatch are timed around the real
ones), so what is measured is the shipped loop plus a few clock reads per claim.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.stats import percentile
from queue_core import QueueDatabase, TaskQueue, WorkerEngine
from queue_core.tracing import TraceEvent, TransactionBegan

if TYPE_CHECKING:
    from threading import Barrier

    from queue_core.models import Task

STAGES: Final = ("enqueue", "commit_to_claim", "claim", "claim_to_send", "send_to_start")
"""enqueue: the producer's call (its lock wait included); commit_to_claim: from the commit until
the engine began the claim that took the task (its wake-up and loop); claim: the claim (its lock
wait included); claim_to_send: until the task was handed to an executor; send_to_start: the pipe
and the executor until the handler started."""
START_TIMEOUT_S: Final = 120.0
_clock = time.perf_counter_ns


class _TracedQueue(TaskQueue):
    """Records when each claim began and committed, and which tasks it took."""

    claims: list[tuple[int, int, list[int]]]

    def claim(self, worker_id: str, **kwargs: Any) -> list[Task]:
        began = _clock()
        tasks = super().claim(worker_id, **kwargs)
        self.claims.append((began, _clock(), [task.id for task in tasks]))
        return tasks


class _TracedEngine(WorkerEngine):
    """Records when the hand-off of each buffered task to an executor began."""

    sent: dict[int, int]

    def _dispatch(self) -> None:
        before = [task.id for task in self._buffer]
        now = _clock()  # the hand-off begins (the executors may start before it returns)
        super()._dispatch()
        if before:
            left = set(before) - {task.id for task in self._buffer}
            for task_id in left:
                self.sent.setdefault(task_id, now)


def _engine(db_path: str, out: str, executors: int, expected: int, barrier: Barrier) -> None:
    waits: list[tuple[float, bool]] = []

    def tracer(event: TraceEvent) -> None:
        if isinstance(event, TransactionBegan):
            waits.append((event.lock_wait_seconds, event.acquired))

    with QueueDatabase(db_path, tracer=tracer, trace_statements=False) as db:
        queue = _TracedQueue(db)
        queue.claims = []
        engine = _TracedEngine(
            queue,
            {"bench": "bench.worker_handlers:pickup_probe"},
            concurrency=executors,
            handle_signals=False,
            worker_id="pickup-trace",
        )
        engine.sent = {}
        thread = threading.Thread(target=engine.run, name="engine", daemon=True)
        thread.start()
        if not engine.ready.wait(START_TIMEOUT_S):
            raise TimeoutError("the engine's executors did not start")
        waits.clear()
        barrier.wait(START_TIMEOUT_S)
        deadline = time.monotonic() + START_TIMEOUT_S
        while engine.completed < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        engine.stop()
        thread.join(START_TIMEOUT_S)
    record = {"claims": queue.claims, "sent": engine.sent, "waits": waits}
    Path(out).write_text(json.dumps(record), encoding="utf-8")


def _producer(
    db_path: str,
    out: str,
    rate: float,
    count: int,
    offset_s: float,
    probes: str,
    barrier: Barrier,
) -> None:
    stamps: list[tuple[int, int, int]] = []
    with QueueDatabase(db_path) as db:
        queue = TaskQueue(db)
        barrier.wait(START_TIMEOUT_S)
        start = _clock()
        step = int(1e9 / rate)
        next_at = start + int(offset_s * 1e9)
        for _ in range(count):
            now = _clock()
            if now < next_at:
                time.sleep((next_at - now) / 1e9)
            before = _clock()
            task_id = queue.enqueue("bench", {"out_dir": probes, "enqueued_ns": before})
            stamps.append((task_id, before, _clock()))
            next_at += step
        end = _clock()
    Path(out).write_text(json.dumps({"stamps": stamps, "span": [start, end]}), encoding="utf-8")


def measure(rate: float, seconds: float, executors: int, producers: int) -> dict[str, Any]:
    """Run the engine and producers; return each stage's percentiles in ms (see module doc)."""
    context = multiprocessing.get_context("spawn")
    each = max(1, int(rate / producers * seconds))
    with tempfile.TemporaryDirectory(prefix="pickup-trace-") as folder:
        root = Path(folder)
        db_path = str(root / "queue.db")
        with QueueDatabase(db_path) as db:
            db.initialize_schema()
        probes = root / "probes"
        probes.mkdir()
        barrier = context.Barrier(producers + 1)
        processes = [
            context.Process(
                target=_engine,
                args=(db_path, str(root / "engine.json"), executors, each * producers, barrier),
                daemon=False,
            )
        ]
        processes += [
            context.Process(
                target=_producer,
                args=(
                    db_path,
                    str(root / f"producer{p}.json"),
                    rate / producers,
                    each,
                    p / rate,
                    str(probes),
                    barrier,
                ),
            )
            for p in range(producers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(START_TIMEOUT_S + seconds * 4)
            if process.is_alive():
                process.kill()
                raise TimeoutError("a pickup-trace process did not finish")
        engine = json.loads((root / "engine.json").read_text(encoding="utf-8"))
        produced = [
            json.loads((root / f"producer{p}.json").read_text(encoding="utf-8"))
            for p in range(producers)
        ]
        started = _probe_latencies(probes.glob("*.txt"))
    return _analyse(rate, engine, produced, started)


def _probe_latencies(files: Iterable[Path]) -> dict[int, int]:
    started: dict[int, int] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            task_id, ns = (int(part) for part in line.split())
            started[task_id] = ns
    return started


def _analyse(
    rate: float, engine: dict[str, Any], produced: list[dict[str, Any]], started: dict[int, int]
) -> dict[str, Any]:
    claim_of = {i: (began, done) for began, done, ids in engine["claims"] for i in ids}
    sent = {int(i): ns for i, ns in engine["sent"].items()}
    rows: list[dict[str, float]] = []
    for stamps in (p["stamps"] for p in produced):
        for task_id, before, committed in stamps:
            if task_id not in started or task_id not in claim_of or task_id not in sent:
                continue
            began, claimed = claim_of[task_id]
            handler = before + started[task_id]
            rows.append(
                {
                    "total": (handler - before) / 1e6,
                    "enqueue": (committed - before) / 1e6,
                    "commit_to_claim": (began - committed) / 1e6,
                    "claim": (claimed - began) / 1e6,
                    "claim_to_send": (sent[task_id] - claimed) / 1e6,
                    "send_to_start": (handler - sent[task_id]) / 1e6,
                }
            )
    tasks = sum(len(p["stamps"]) for p in produced)
    span = max(p["span"][1] for p in produced) - min(p["span"][0] for p in produced)
    worst = sorted(rows, key=lambda row: row["total"])[-max(1, len(rows) // 100) :]
    waits = [wait * 1000 for wait, acquired in engine["waits"] if acquired]
    return {
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(tasks / (span / 1e9), 1) if span else 0.0,
        "tasks": tasks,
        "traced": len(rows),
        "stages_ms": {
            name: _percentiles([row[name] for row in rows]) for name in ("total", *STAGES)
        },
        "worst_1pct_mean_ms": {
            name: round(sum(row[name] for row in worst) / len(worst), 3) if worst else None
            for name in ("total", *STAGES)
        },
        "engine_lock": {
            "transactions": len(waits),
            "busy_tries": sum(not acquired for _, acquired in engine["waits"]),
            "wait_ms": _percentiles(waits),
        },
        "claims": len(engine["claims"]),
        "tasks_per_claim": round(len(claim_of) / max(1, len(engine["claims"])), 2),
    }


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    def rounded(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else round(value, 3)

    return {
        "p50": rounded(percentile(values, 50)),
        "p90": rounded(percentile(values, 90)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values)) if values else None,
    }


def render(result: dict[str, Any]) -> list[str]:
    """The result as lines of text."""
    lines = [
        f"pickup trace: {result['achieved_rate_per_s']:.0f} tasks/s achieved of "
        f"{result['target_rate_per_s']:.0f}, {result['traced']} of {result['tasks']} traced; "
        f"{result['claims']} claims, {result['tasks_per_claim']} tasks each",
        f"  {'stage (ms)':<16}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'worst 1%':>10}",
    ]
    for name, row in result["stages_ms"].items():
        cells = "".join(_cell(row[key], 8) for key in ("p50", "p90", "p99", "max"))
        lines.append(f"  {name:<16}{cells}{_cell(result['worst_1pct_mean_ms'][name], 10)}")
    lock = result["engine_lock"]
    lines.append(
        f"  engine write lock: {lock['transactions']} transactions, {lock['busy_tries']} tries "
        f"found it taken; wait p99 {lock['wait_ms']['p99']} ms, max {lock['wait_ms']['max']} ms"
    )
    return lines


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"
