"""insert: enqueue throughput with 1..8 producer processes, single calls and batches."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bench.backends import open_queue_db
from bench.context import Job
from bench.results import Histogram, Latency
from bench.scenarios._common import ratio, span_seconds
from bench.stats import histogram_ms, latency_ms, rate
from bench.workers import ProduceArgs, ProduceOutcome
from queue_core import TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

Mode = Literal["single", "batch"]
MODES: tuple[Mode, ...] = ("single", "batch")


@dataclass(frozen=True)
class Params:
    processes: tuple[int, ...]
    single_tasks: int
    batch_tasks: int
    batch_size: int
    pad_bytes: int


@dataclass(frozen=True)
class Point:
    """One mode at one process count; ``ratio_vs_bare`` is library tasks/s over bare sqlite3's
    (1.0 = no overhead)."""

    mode: Mode
    processes: int
    batch_size: int
    tasks: int
    calls: int
    seconds: float
    tasks_per_s: float
    latency_ms: Latency
    latency_hist: Histogram
    bare_tasks_per_s: float
    bare_latency_ms: Latency
    ratio_vs_bare: float | None


@dataclass(frozen=True)
class Summary:
    single_tasks_per_s_1p: float | None
    batch_tasks_per_s_1p: float | None
    ratio_single_1p: float | None
    ratio_batch_1p: float | None
    single_tasks_per_s_4p: float | None
    batch_tasks_per_s_4p: float | None
    ratio_single_4p: float | None
    ratio_batch_4p: float | None
    best_single_tasks_per_s: float | None
    best_batch_tasks_per_s: float | None


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


@dataclass(frozen=True)
class _Measured:
    tasks: int
    calls: int
    seconds: float
    tasks_per_s: float
    latency_ns: list[int]


def _measure(
    context: ScenarioContext[Params], mode: Mode, processes: int, tasks: int, batch: int, bare: bool
) -> _Measured:
    label = f"{mode}-{processes}p-{'bare' if bare else 'lib'}"
    target = context.new_database(label)
    jobs = [
        Job(
            ProduceArgs(
                target=target,
                mode=mode,
                tasks=tasks,
                batch_size=batch,
                pad_bytes=context.params.pad_bytes,
                index_base=p * tasks,
                bare=bare,
            ),
            "producer",
        )
        for p in range(processes)
    ]
    outcomes: list[ProduceOutcome] = context.run_processes(jobs)
    with closing(open_queue_db(target)) as db:
        queued = TaskQueue(db).counts()[TaskStatus.QUEUED]
    total = sum(outcome.tasks for outcome in outcomes)
    context.check(
        f"all_inserted_{label}",
        queued == total,
        f"{label}: {queued} queued rows for {total} enqueued tasks",
    )
    latencies = [sample for outcome in outcomes for sample in outcome.latency_ns]
    seconds = span_seconds(outcomes)
    return _Measured(total, len(latencies), round(seconds, 4), rate(total, seconds), latencies)


def run(context: ScenarioContext[Params]) -> Result:
    params = context.params
    series: list[Point] = []
    for mode in MODES:
        batch = 1 if mode == "single" else params.batch_size
        tasks = params.single_tasks if mode == "single" else params.batch_tasks
        for processes in params.processes:
            lib = _measure(context, mode, processes, tasks, batch, bare=False)
            bare = _measure(context, mode, processes, tasks, batch, bare=True)
            point = Point(
                mode=mode,
                processes=processes,
                batch_size=batch,
                tasks=lib.tasks,
                calls=lib.calls,
                seconds=lib.seconds,
                tasks_per_s=lib.tasks_per_s,
                latency_ms=latency_ms(lib.latency_ns),
                latency_hist=histogram_ms(lib.latency_ns),
                bare_tasks_per_s=bare.tasks_per_s,
                bare_latency_ms=latency_ms(bare.latency_ns),
                ratio_vs_bare=ratio(lib.tasks_per_s, bare.tasks_per_s),
            )
            series.append(point)
            context.log(
                f"{mode:6} {processes}p: {point.tasks_per_s:>9.0f} tasks/s "
                f"(bare {point.bare_tasks_per_s:.0f}, ratio {point.ratio_vs_bare}), "
                f"p99 {point.latency_ms.p99} ms"
            )
    return Result(summarise(series), tuple(series))


def summarise(series: list[Point]) -> Summary:
    def pick(mode: Mode, processes: int) -> Point | None:
        return next((p for p in series if p.mode == mode and p.processes == processes), None)

    def rate_of(mode: Mode, processes: int) -> float | None:
        point = pick(mode, processes)
        return None if point is None else point.tasks_per_s

    def ratio_of(mode: Mode, processes: int) -> float | None:
        point = pick(mode, processes)
        return None if point is None else point.ratio_vs_bare

    def best(mode: Mode) -> float | None:
        return max((p.tasks_per_s for p in series if p.mode == mode), default=None)

    return Summary(
        single_tasks_per_s_1p=rate_of("single", 1),
        batch_tasks_per_s_1p=rate_of("batch", 1),
        ratio_single_1p=ratio_of("single", 1),
        ratio_batch_1p=ratio_of("batch", 1),
        single_tasks_per_s_4p=rate_of("single", 4),
        batch_tasks_per_s_4p=rate_of("batch", 4),
        ratio_single_4p=ratio_of("single", 4),
        ratio_batch_4p=ratio_of("batch", 4),
        best_single_tasks_per_s=best("single"),
        best_batch_tasks_per_s=best("batch"),
    )
