"""query: claim and count latency at growing backlogs; the claim must use its index."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.baseline_sql import bulk_load, claim_params
from bench.results import Latency
from bench.scenarios._common import create_database
from bench.stats import NS_PER_MS, latency_ms
from queue_core import QueueDatabase, TaskQueue, sql
from queue_core.timestamps import to_db_text, utc_now

if TYPE_CHECKING:
    from bench.context import ScenarioContext

CLAIM_INDEX = "ix_task_status_prio_time"


@dataclass(frozen=True)
class Params:
    backlogs: tuple[int, ...]
    claim_repetitions: int
    count_repetitions: int
    pad_bytes: int


@dataclass(frozen=True)
class Point:
    """One backlog size. ``count_ms`` is ``TaskQueue.counts()``; ``count_queued_ms`` is
    ``SELECT count(*) ... WHERE status='queued'``; ``claim_samples_ms`` are the raw claims."""

    backlog: int
    load_s: float
    claim_ms: Latency
    count_ms: Latency
    count_queued_ms: Latency
    claim_samples_ms: tuple[float, ...]
    claim_plan: tuple[str, ...]
    count_plan: tuple[str, ...]
    claim_uses_index: bool


@dataclass(frozen=True)
class Summary:
    """``claim_p50_growth``: claim p50 at the largest backlog over p50 at the smallest; the
    ``*_by_backlog`` maps are keyed by the backlog as text."""

    claim_p50_growth: float | None
    claim_p50_ms_by_backlog: dict[str, float | None]
    count_p50_ms_by_backlog: dict[str, float | None]
    claim_uses_index: bool


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


def plans(db: QueueDatabase) -> tuple[list[str], list[str]]:
    """The ``EXPLAIN QUERY PLAN`` details of the claim query and of the status count."""
    queries = sql.queries()
    now = to_db_text(utc_now())
    params = claim_params("plan", now, now)
    claim = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {queries['claim']}", params)]
    count = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {queries['count_by_status']}")]
    return claim, count


def run(context: ScenarioContext[Params]) -> Result:
    params = context.params
    path = context.new_db_path("query")
    create_database(path)
    loaded = 0
    series: list[Point] = []
    for backlog in sorted(params.backlogs):
        t0 = time.perf_counter()
        bulk_load(path, loaded, backlog - loaded, pad_bytes=params.pad_bytes)
        load_s = time.perf_counter() - t0
        loaded = backlog
        clock = time.perf_counter_ns
        claim_ns: list[int] = []
        count_ns: list[int] = []
        queued_ns: list[int] = []
        with QueueDatabase(path) as db:
            queue = TaskQueue(db)
            claim_plan, count_plan = plans(db)
            warm = queue.claim_one("warmup")
            if warm is not None:
                queue.complete(warm.id, "warmup")
            for _ in range(params.claim_repetitions):
                t_claim = clock()
                task = queue.claim_one("q")
                claim_ns.append(clock() - t_claim)
                if task is not None:
                    queue.complete(task.id, "q")
            for _ in range(params.count_repetitions):
                t_count = clock()
                queue.counts()
                count_ns.append(clock() - t_count)
                t_queued = clock()
                db.execute("SELECT count(*) FROM task_queue WHERE status = 'queued'").fetchall()
                queued_ns.append(clock() - t_queued)
        uses_index = any(CLAIM_INDEX in line for line in claim_plan)
        context.check(
            f"claim_uses_index_{backlog}",
            uses_index,
            f"claim plan at {backlog}: {' | '.join(claim_plan)}",
        )
        point = Point(
            backlog=backlog,
            load_s=round(load_s, 3),
            claim_ms=latency_ms(claim_ns),
            count_ms=latency_ms(count_ns),
            count_queued_ms=latency_ms(queued_ns),
            claim_samples_ms=tuple(round(ns / NS_PER_MS, 4) for ns in claim_ns),
            claim_plan=tuple(claim_plan),
            count_plan=tuple(count_plan),
            claim_uses_index=uses_index,
        )
        series.append(point)
        context.log(
            f"backlog {backlog:>8}: loaded in {load_s:.1f} s, claim p50 "
            f"{point.claim_ms.p50} ms p99 {point.claim_ms.p99} ms, counts() p50 "
            f"{point.count_ms.p50} ms, index used {uses_index}"
        )
    first, last = series[0].claim_ms.p50, series[-1].claim_ms.p50
    summary = Summary(
        claim_p50_growth=round(last / first, 3) if first and last else None,
        claim_p50_ms_by_backlog={str(p.backlog): p.claim_ms.p50 for p in series},
        count_p50_ms_by_backlog={str(p.backlog): p.count_ms.p50 for p in series},
        claim_uses_index=all(p.claim_uses_index for p in series),
    )
    return Result(summary, tuple(series))
