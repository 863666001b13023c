"""busy: producers and workers together at rising process counts and three busy timeouts.

The busy rate is every QueueBusyError that reached a caller divided by every call. SQLite's
busy handler polls with sleeps of up to 100 ms (and a short Windows Sleep() rounds up to about
15 ms), so with a long timeout contention shows in the lock-wait tail, not in errors.

At the gated busy timeout (5000 ms) every process count runs twice, with the library's default
(``DEFAULT_FAIR_LOCK``: no fair lock) and with the other setting, so the two are compared in the
same run: the lock-wait tail, each process's share of the operations (min and max over the
mean, Jain's fairness index) and the throughput.
"""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.accounting import describe, exactly_once
from bench.backends import open_queue_db
from bench.context import Job
from bench.results import Accounting, Histogram, Latency, Shares
from bench.scenarios._common import span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms, shares
from bench.workers import BusyOutcome, BusyProducerArgs, BusyWorkerArgs
from queue_core import TaskQueue
from queue_core.database import DEFAULT_FAIR_LOCK
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

GATED_TIMEOUT_MS = 5000
"""The busy timeout at which the specification's busy-rate metric is judged (the default)."""
FAIR_WAIT_GOAL_MS = 100.0
"""The fair lock's goals at the largest process count: the longest lock wait at most this, ..."""
FAIR_SHARE_GOAL = (0.5, 2.0)
"""... every process's share of the operations within these multiples of the mean ..."""
FAIR_THROUGHPUT_GOAL = 0.85
"""... and at least this fraction of the throughput without the fair lock."""


@dataclass(frozen=True)
class Params:
    processes: tuple[int, ...]
    busy_timeouts_ms: tuple[int, ...]
    duration_s: float
    backlog: int
    pad_bytes: int
    compare_fair_lock: bool = True


@dataclass(frozen=True)
class Point:
    """One busy timeout at one process count: producers are ``processes // 2``, workers the
    rest. ``busy_rate`` is a fraction (0..1). For a claim the lock wait is that of the
    ``TransactionBegan`` tracer event (0 for a claim that found nothing and took no lock); for
    a single ``enqueue`` or ``complete`` (autocommit statements) it is, through the fair lock,
    the wait at the write gate (``WriteGateEntered``), and otherwise the whole call (SQLite's
    busy handler waits inside the statement).
    ``fair_lock``: whether the processes used ``QueueDatabase(fair_lock=True)`` (False in
    files from before the fair lock existed);
    ``share``: each process's operations over the mean, and Jain's fairness index;
    ``gate_contended``: writes that found the write gate taken and waited for it, the
    hand-offs of the gate from one process to the next (0 without the fair lock)."""

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
    fair_lock: bool = False
    operations_per_s: float | None = None
    operations_by_process: tuple[int, ...] = ()
    lock_wait_max_by_process_ms: tuple[float, ...] = ()
    share: Shares = field(default_factory=lambda: shares(()))
    gate_contended: int = 0


@dataclass(frozen=True)
class FairLockFigures:
    lock_wait_max_ms: float | None
    lock_wait_p99_ms: float | None
    operations_per_s: float | None
    min_over_mean: float | None
    max_over_mean: float | None
    jain: float | None


@dataclass(frozen=True)
class FairLockGoalsMet:
    lock_wait_max: bool
    shares: bool
    throughput: bool


@dataclass(frozen=True)
class FairLockComparison:
    """With and without the fair lock at ``GATED_TIMEOUT_MS`` and the largest process count;
    ``throughput_ratio`` is operations/s with over without."""

    processes: int
    with_fair_lock: FairLockFigures
    without_fair_lock: FairLockFigures
    throughput_ratio: float | None
    goal_lock_wait_max_ms: float
    goal_share_range: tuple[float, ...]
    goal_throughput_ratio: float
    goals_met: FairLockGoalsMet


@dataclass(frozen=True)
class AtMaxProcesses:
    busy_rate: float
    lock_wait_p50_ms: float | None
    lock_wait_p99_ms: float | None
    lock_wait_max_ms: float | None


@dataclass(frozen=True)
class Summary:
    """``max_busy_rate_5000`` is the gated busy rate (a fraction) at ``GATED_TIMEOUT_MS``;
    ``at_max_processes`` is keyed by the busy timeout as text. Both describe the library's
    default, ``default_fair_lock`` (the setting of the code that ran)."""

    max_busy_rate_5000: float | None
    busy_rate_max_processes_5000: float | None
    max_processes: int
    at_max_processes: dict[str, AtMaxProcesses]
    fair_lock: FairLockComparison | None = None
    default_fair_lock: bool = False


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


def _cell(
    context: ScenarioContext[Params], timeout_ms: int, processes: int, fair_lock: bool
) -> Point:
    params = context.params
    producers = max(1, processes // 2)
    workers = max(1, processes - producers)
    label = f"busy-{timeout_ms}ms-{processes}p" + ("" if fair_lock else "-unfair")
    target = context.new_database(label)
    preloaded = preload(target, params.backlog, params.pad_bytes)
    jobs = [
        Job(
            BusyProducerArgs(
                target=target,
                duration_s=params.duration_s,
                busy_timeout_ms=timeout_ms,
                pad_bytes=params.pad_bytes,
                index_base=10_000_000 * (p + 1),
                fair_lock=fair_lock,
            ),
            "producer",
        )
        for p in range(producers)
    ]
    jobs += [
        Job(
            BusyWorkerArgs(
                target=target,
                duration_s=params.duration_s,
                busy_timeout_ms=timeout_ms,
                worker_id=f"w{w}",
                fair_lock=fair_lock,
            ),
            "worker",
        )
        for w in range(workers)
    ]
    outcomes: list[BusyOutcome] = context.run_processes(jobs)
    with closing(open_queue_db(target)) as db:
        counts = TaskQueue(db).counts()
        # No parameters: the same text runs on SQLite and PostgreSQL.
        queued_ids = [
            int(row[0]) for row in db.execute("SELECT id FROM task_queue WHERE status = 'queued'")
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
    seconds = span_seconds(outcomes)
    per_process = tuple(outcome.operations for outcome in outcomes)
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
        seconds=round(seconds, 4),
        enqueued=len(produced),
        completed=len(completed),
        exactly_once=accounting,
        fair_lock=fair_lock,
        operations_per_s=round(operations / seconds, 1) if seconds > 0 else None,
        operations_by_process=per_process,
        lock_wait_max_by_process_ms=tuple(
            round(max(outcome.lock_wait_ns, default=0) / 1e6, 3) for outcome in outcomes
        ),
        share=shares(per_process),
        gate_contended=sum(outcome.gate_contended for outcome in outcomes),
    )


def run(context: ScenarioContext[Params]) -> Result:
    series: list[Point] = []
    for timeout_ms in context.params.busy_timeouts_ms:
        variants = [DEFAULT_FAIR_LOCK]
        # The fair lock orders SQLite's one write lock; PostgreSQL has row locks instead.
        if (
            timeout_ms == GATED_TIMEOUT_MS
            and context.params.compare_fair_lock
            and context.backend == "sqlite"
        ):
            variants.append(not DEFAULT_FAIR_LOCK)
        for processes in context.params.processes:
            for fair_lock in variants:
                point = _cell(context, timeout_ms, processes, fair_lock)
                series.append(point)
                wait, share = point.lock_wait_ms, point.share
                context.log(
                    f"timeout {timeout_ms:>4} ms, {processes:>2}p, fair lock "
                    f"{'on ' if fair_lock else 'off'}: {point.operations} ops "
                    f"({point.operations_per_s}/s), {point.busy_errors} busy "
                    f"({point.busy_rate * 100:.2f} %), lock wait p50 {wait.p50} p99 "
                    f"{wait.p99} max {wait.max} ms, shares {share.min_over_mean}-"
                    f"{share.max_over_mean} of the mean, Jain {share.jain}"
                    + (f", {point.gate_contended} gate hand-offs" if fair_lock else "")
                )
    top = max(context.params.processes, default=0)
    shipped = [p for p in series if p.fair_lock == DEFAULT_FAIR_LOCK]
    gated = [p for p in shipped if p.busy_timeout_ms == GATED_TIMEOUT_MS]
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
            for p in shipped
            if p.processes == top
        },
        fair_lock=_fairness(series, top),
        default_fair_lock=DEFAULT_FAIR_LOCK,
    )
    return Result(summary, tuple(series))


def _fairness(series: list[Point], top: int) -> FairLockComparison | None:
    """The fair lock against none at the gated timeout and the largest process count."""

    def pick(fair: bool) -> Point | None:
        return next(
            (
                p
                for p in series
                if p.busy_timeout_ms == GATED_TIMEOUT_MS
                and p.processes == top
                and p.fair_lock is fair
            ),
            None,
        )

    def figures(point: Point) -> FairLockFigures:
        return FairLockFigures(
            lock_wait_max_ms=point.lock_wait_ms.max,
            lock_wait_p99_ms=point.lock_wait_ms.p99,
            operations_per_s=point.operations_per_s,
            min_over_mean=point.share.min_over_mean,
            max_over_mean=point.share.max_over_mean,
            jain=point.share.jain,
        )

    fair, unfair = pick(True), pick(False)
    if fair is None or unfair is None:
        return None
    on, off = figures(fair), figures(unfair)
    ratio = (
        round(on.operations_per_s / off.operations_per_s, 3)
        if on.operations_per_s and off.operations_per_s
        else None
    )
    low, high = FAIR_SHARE_GOAL
    return FairLockComparison(
        processes=top,
        with_fair_lock=on,
        without_fair_lock=off,
        throughput_ratio=ratio,
        goal_lock_wait_max_ms=FAIR_WAIT_GOAL_MS,
        goal_share_range=FAIR_SHARE_GOAL,
        goal_throughput_ratio=FAIR_THROUGHPUT_GOAL,
        goals_met=FairLockGoalsMet(
            lock_wait_max=on.lock_wait_max_ms is not None
            and on.lock_wait_max_ms <= FAIR_WAIT_GOAL_MS,
            shares=on.min_over_mean is not None
            and on.max_over_mean is not None
            and low <= on.min_over_mean
            and on.max_over_mean <= high,
            throughput=ratio is not None and ratio >= FAIR_THROUGHPUT_GOAL,
        ),
    )
