"""claim: claim+complete throughput with 1..8 workers over a preloaded backlog, exactly once."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.accounting import describe, exactly_once
from bench.backends import open_queue_db
from bench.baseline_sql import payload
from bench.context import Job
from bench.results import Accounting, Histogram, Latency
from bench.scenarios._common import ratio, span_seconds
from bench.stats import histogram_ms, latency_ms, rate
from bench.workers import ClaimCompleteArgs, ClaimCompleteOutcome
from queue_core import TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext


@dataclass(frozen=True)
class Params:
    processes: tuple[int, ...]
    backlog: int
    pad_bytes: int


@dataclass(frozen=True)
class Point:
    """One worker count. A transaction is one claim (``BEGIN IMMEDIATE`` ... ``COMMIT``,
    including the final empty one) or one complete; ``latency_ms`` is the claim+complete cycle."""

    processes: int
    tasks: int
    transactions: int
    seconds: float
    tx_per_s: float
    tasks_per_s: float
    latency_ms: Latency
    claim_latency_ms: Latency
    complete_latency_ms: Latency
    latency_hist: Histogram
    bare_tasks_per_s: float
    bare_tx_per_s: float
    bare_latency_ms: Latency
    ratio_vs_bare: float | None
    exactly_once: Accounting
    bare_exactly_once: Accounting


@dataclass(frozen=True)
class Summary:
    """``min_tx_per_s`` is the gated transaction throughput."""

    min_tx_per_s: float | None
    max_tasks_per_s: float | None
    tasks_per_s_1p: float | None
    tasks_per_s_4p: float | None
    ratio_1p: float | None
    ratio_4p: float | None
    exactly_once_ok: bool


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


def preload(target: str, backlog: int, pad: int) -> list[int]:
    """Enqueue ``backlog`` tasks through the library into the database ``target``; their ids."""
    ids: list[int] = []
    with closing(open_queue_db(target)) as db:
        db.initialize_schema()
        queue = TaskQueue(db)
        for first in range(0, backlog, 1000):
            items = [
                {"type": "bench", "payload": payload(i, pad)}
                for i in range(first, min(first + 1000, backlog))
            ]
            ids.extend(queue.enqueue_many(items))
    return ids


@dataclass(frozen=True)
class _Measured:
    tasks: int
    transactions: int
    seconds: float
    tx_per_s: float
    tasks_per_s: float
    cycle_ns: list[int]
    claim_ns: list[int]
    complete_ns: list[int]
    exactly_once: Accounting


def _measure(context: ScenarioContext[Params], processes: int, bare: bool) -> _Measured:
    label = f"claim-{processes}p-{'bare' if bare else 'lib'}"
    target = context.new_database(label)
    expected = preload(target, context.params.backlog, context.params.pad_bytes)
    jobs = [
        Job(ClaimCompleteArgs(target=target, worker_id=f"w{p}", bare=bare), "worker")
        for p in range(processes)
    ]
    outcomes: list[ClaimCompleteOutcome] = context.run_processes(jobs)
    with closing(open_queue_db(target)) as db:
        counts = TaskQueue(db).counts()
    completed_ids = [task_id for outcome in outcomes for task_id in outcome.ids]
    accounting = exactly_once(expected, completed_ids, counts[TaskStatus.COMPLETED])
    leftover = counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING] + counts[TaskStatus.FAILED]
    accounting = dataclasses.replace(accounting, ok=accounting.ok and leftover == 0)
    context.check(
        f"exactly_once_{label}",
        accounting.ok,
        f"{label}: {describe(accounting)}, not completed in db {leftover}",
    )
    seconds = span_seconds(outcomes)
    tasks = len(completed_ids)
    transactions = sum(outcome.transactions for outcome in outcomes)
    return _Measured(
        tasks=tasks,
        transactions=transactions,
        seconds=round(seconds, 4),
        tx_per_s=rate(transactions, seconds),
        tasks_per_s=rate(tasks, seconds),
        cycle_ns=[s for outcome in outcomes for s in outcome.cycle_ns],
        claim_ns=[s for outcome in outcomes for s in outcome.claim_ns],
        complete_ns=[s for outcome in outcomes for s in outcome.complete_ns],
        exactly_once=accounting,
    )


def run(context: ScenarioContext[Params]) -> Result:
    series: list[Point] = []
    for processes in context.params.processes:
        lib = _measure(context, processes, bare=False)
        bare = _measure(context, processes, bare=True)
        point = Point(
            processes=processes,
            tasks=lib.tasks,
            transactions=lib.transactions,
            seconds=lib.seconds,
            tx_per_s=lib.tx_per_s,
            tasks_per_s=lib.tasks_per_s,
            latency_ms=latency_ms(lib.cycle_ns),
            claim_latency_ms=latency_ms(lib.claim_ns),
            complete_latency_ms=latency_ms(lib.complete_ns),
            latency_hist=histogram_ms(lib.cycle_ns),
            bare_tasks_per_s=bare.tasks_per_s,
            bare_tx_per_s=bare.tx_per_s,
            bare_latency_ms=latency_ms(bare.cycle_ns),
            ratio_vs_bare=ratio(lib.tasks_per_s, bare.tasks_per_s),
            exactly_once=lib.exactly_once,
            bare_exactly_once=bare.exactly_once,
        )
        series.append(point)
        context.log(
            f"{processes}p: {point.tx_per_s:.0f} tx/s, {point.tasks_per_s:.0f} tasks/s "
            f"(bare {point.bare_tasks_per_s:.0f}, ratio {point.ratio_vs_bare}), "
            f"exactly once {point.exactly_once.ok}"
        )
    one = next((p for p in series if p.processes == 1), None)
    four = next((p for p in series if p.processes == 4), None)
    summary = Summary(
        min_tx_per_s=min((p.tx_per_s for p in series), default=None),
        max_tasks_per_s=max((p.tasks_per_s for p in series), default=None),
        tasks_per_s_1p=None if one is None else one.tasks_per_s,
        tasks_per_s_4p=None if four is None else four.tasks_per_s,
        ratio_1p=None if one is None else one.ratio_vs_bare,
        ratio_4p=None if four is None else four.ratio_vs_bare,
        exactly_once_ok=all(p.exactly_once.ok and p.bare_exactly_once.ok for p in series),
    )
    return Result(summary, tuple(series))
