"""query: claim and count latency at growing backlogs; the claim must use its index."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench.baseline_sql import bulk_load, claim_params
from bench.scenarios._common import create_database
from bench.stats import NS_PER_MS, latency_ms
from queue_core import QueueDatabase, TaskQueue, sql
from queue_core.timestamps import to_db_text, utc_now

if TYPE_CHECKING:
    from bench.context import ScenarioContext

CLAIM_INDEX = "ix_task_status_prio_time"


def plans(db: QueueDatabase) -> tuple[list[str], list[str]]:
    """The ``EXPLAIN QUERY PLAN`` details of the claim query and of the status count."""
    queries = sql.queries()
    now = to_db_text(utc_now())
    params = claim_params("plan", now, now)
    claim = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {queries['claim']}", params)]
    count = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {queries['count_by_status']}")]
    return claim, count


def run(context: ScenarioContext) -> dict[str, Any]:
    params = context.params
    path = context.new_db_path("query")
    create_database(path)
    loaded = 0
    series: list[dict[str, Any]] = []
    for backlog in sorted(int(b) for b in params["backlogs"]):
        t0 = time.perf_counter()
        bulk_load(path, loaded, backlog - loaded, pad_bytes=int(params["pad_bytes"]))
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
            for _ in range(int(params["claim_repetitions"])):
                t_claim = clock()
                task = queue.claim_one("q")
                claim_ns.append(clock() - t_claim)
                if task is not None:
                    queue.complete(task.id, "q")
            for _ in range(int(params["count_repetitions"])):
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
        row: dict[str, Any] = {
            "backlog": backlog,
            "load_s": round(load_s, 3),
            "claim_ms": latency_ms(claim_ns),
            "count_ms": latency_ms(count_ns),
            "count_queued_ms": latency_ms(queued_ns),
            "claim_samples_ms": [round(ns / NS_PER_MS, 4) for ns in claim_ns],
            "claim_plan": claim_plan,
            "count_plan": count_plan,
            "claim_uses_index": uses_index,
        }
        series.append(row)
        context.log(
            f"backlog {backlog:>8}: loaded in {load_s:.1f} s, claim p50 "
            f"{row['claim_ms']['p50']} ms p99 {row['claim_ms']['p99']} ms, counts() p50 "
            f"{row['count_ms']['p50']} ms, index used {uses_index}"
        )
    first: float | None = series[0]["claim_ms"]["p50"]
    last: float | None = series[-1]["claim_ms"]["p50"]
    summary = {
        "claim_p50_growth": round(last / first, 3) if first and last else None,
        "claim_p50_ms_by_backlog": {str(r["backlog"]): r["claim_ms"]["p50"] for r in series},
        "count_p50_ms_by_backlog": {str(r["backlog"]): r["count_ms"]["p50"] for r in series},
        "claim_uses_index": all(r["claim_uses_index"] for r in series),
    }
    return {"summary": summary, "series": series}
