"""busy: producers and workers together at rising process counts and three busy timeouts.

The busy rate is every QueueBusyError that reached a caller divided by every call. SQLite's
busy handler polls with sleeps of up to 100 ms (and a short Windows Sleep() rounds up to about
15 ms), so with a long timeout contention shows in the lock-wait tail, not in errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.accounting import describe, exactly_once
from bench.context import Job
from bench.results import Accounting, Histogram, Latency
from bench.scenarios._common import create_database, span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms
from bench.workers import BusyOutcome, BusyProducerArgs, BusyWorkerArgs
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

GATED_TIMEOUT_MS = 5000
"""The busy timeout at which the specification's busy-rate metric is judged (the default)."""


@dataclass(frozen=True)
class Params:
    processes: tuple[int, ...]
    busy_timeouts_ms: tuple[int, ...]
    duration_s: float
    backlog: int
    pad_bytes: int


@dataclass(frozen=True)
class Point:
    """One busy timeout at one process count: producers are ``processes // 2``, workers the
    rest. ``busy_rate`` is a fraction (0..1). For a claim the lock wait is that of the
    ``TransactionBegan`` tracer event; for a single ``enqueue`` or ``complete`` (autocommit
    statements) it is the whole call."""

    busy_timeout_ms: int
    processes: int
    producers: int
    workers: int
    operations: int
    busy_errors: int
    busy_rate: float
    lock_wait_ms: Latency
    lock_wait_hist: Histogram
    seconds: float
    enqueued: int
    completed: int
    exactly_once: Accounting


@dataclass(frozen=True)
class AtMaxProcesses:
    busy_rate: float
    lock_wait_p50_ms: float | None
    lock_wait_p99_ms: float | None
    lock_wait_max_ms: float | None


@dataclass(frozen=True)
class Summary:
    """``max_busy_rate_5000`` is the gated busy rate (a fraction) at ``GATED_TIMEOUT_MS``;
    ``at_max_processes`` is keyed by the busy timeout as text."""

    max_busy_rate_5000: float | None
    busy_rate_max_processes_5000: float | None
    max_processes: int
    at_max_processes: dict[str, AtMaxProcesses]


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


def _cell(context: ScenarioContext[Params], timeout_ms: int, processes: int) -> Point:
    params = context.params
    producers = max(1, processes // 2)
    workers = max(1, processes - producers)
    label = f"busy-{timeout_ms}ms-{processes}p"
    path = context.new_db_path(label)
    create_database(path)
    preloaded = preload(path, params.backlog, params.pad_bytes)
    jobs = [
        Job(
            BusyProducerArgs(
                db_path=str(path),
                duration_s=params.duration_s,
                busy_timeout_ms=timeout_ms,
                pad_bytes=params.pad_bytes,
                index_base=10_000_000 * (p + 1),
            ),
            "producer",
        )
        for p in range(producers)
    ]
    jobs += [
        Job(
            BusyWorkerArgs(
                db_path=str(path),
                duration_s=params.duration_s,
                busy_timeout_ms=timeout_ms,
                worker_id=f"w{w}",
            ),
            "worker",
        )
        for w in range(workers)
    ]
    outcomes: list[BusyOutcome] = context.run_processes(jobs)
    with QueueDatabase(path) as db:
        counts = TaskQueue(db).counts()
        queued_ids = [
            int(row[0])
            for row in db.execute(
                "SELECT id FROM task_queue WHERE status = ?", (TaskStatus.QUEUED.value,)
            )
        ]
    produced = [i for outcome in outcomes if outcome.role == "producer" for i in outcome.ids]
    completed = [i for outcome in outcomes if outcome.role == "worker" for i in outcome.ids]
    expected = preloaded + produced
    accounting = exactly_once(
        expected, completed, counts[TaskStatus.COMPLETED], pending_ids=queued_ids
    )
    rows_in_db = sum(counts.values())
    accounting = dataclasses.replace(
        accounting,
        rows_in_db=rows_in_db,
        ok=accounting.ok and rows_in_db == len(set(expected)),
    )
    context.check(
        f"exactly_once_{label}",
        accounting.ok,
        f"{label}: {describe(accounting)}, still queued {len(queued_ids)}, "
        f"rows {rows_in_db} for {len(set(expected))} enqueued",
    )
    operations = sum(outcome.operations for outcome in outcomes)
    busy = sum(outcome.busy_errors for outcome in outcomes)
    waits = [w for outcome in outcomes for w in outcome.lock_wait_ns]
    return Point(
        busy_timeout_ms=timeout_ms,
        processes=processes,
        producers=producers,
        workers=workers,
        operations=operations,
        busy_errors=busy,
        busy_rate=round(busy / operations, 6) if operations else 0.0,
        lock_wait_ms=latency_ms(waits),
        lock_wait_hist=histogram_ms(waits),
        seconds=round(span_seconds(outcomes), 4),
        enqueued=len(produced),
        completed=len(completed),
        exactly_once=accounting,
    )


def run(context: ScenarioContext[Params]) -> Result:
    series: list[Point] = []
    for timeout_ms in context.params.busy_timeouts_ms:
        for processes in context.params.processes:
            point = _cell(context, timeout_ms, processes)
            series.append(point)
            wait = point.lock_wait_ms
            context.log(
                f"timeout {timeout_ms:>4} ms, {processes:>2}p: {point.operations} ops, "
                f"{point.busy_errors} busy ({point.busy_rate * 100:.2f} %), lock wait p50 "
                f"{wait.p50} p99 {wait.p99} max {wait.max} ms"
            )
    top = max(context.params.processes, default=0)
    gated = [p for p in series if p.busy_timeout_ms == GATED_TIMEOUT_MS]
    summary = Summary(
        max_busy_rate_5000=max((p.busy_rate for p in gated), default=None),
        busy_rate_max_processes_5000=next((p.busy_rate for p in gated if p.processes == top), None),
        max_processes=top,
        at_max_processes={
            str(p.busy_timeout_ms): AtMaxProcesses(
                busy_rate=p.busy_rate,
                lock_wait_p50_ms=p.lock_wait_ms.p50,
                lock_wait_p99_ms=p.lock_wait_ms.p99,
                lock_wait_max_ms=p.lock_wait_ms.max,
            )
            for p in series
            if p.processes == top
        },
    )
    return Result(summary, tuple(series))
