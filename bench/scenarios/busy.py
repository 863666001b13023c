"""busy: producers and workers together at rising process counts and three busy timeouts.

The busy rate is every QueueBusyError that reached a caller divided by every call. SQLite's
busy handler polls with sleeps of up to 100 ms (and a short Windows Sleep() rounds up to about
15 ms), so with a long timeout contention shows in the lock-wait tail, not in errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.accounting import describe, exactly_once
from bench.context import Job
from bench.scenarios._common import create_database, span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext


def _cell(context: ScenarioContext, timeout_ms: int, processes: int) -> dict[str, Any]:
    params = context.params
    producers = max(1, processes // 2)
    workers = max(1, processes - producers)
    label = f"busy-{timeout_ms}ms-{processes}p"
    path = context.new_db_path(label)
    create_database(path)
    pad = int(params["pad_bytes"])
    preloaded = preload(path, int(params["backlog"]), pad)
    common = {
        "db_path": str(path),
        "duration_s": float(params["duration_s"]),
        "busy_timeout_ms": timeout_ms,
        "pad_bytes": pad,
    }
    jobs = [
        Job("busy_producer", {**common, "index_base": 10_000_000 * (p + 1)}, "producer")
        for p in range(producers)
    ]
    jobs += [Job("busy_worker", {**common, "worker_id": f"w{w}"}, "worker") for w in range(workers)]
    outcomes = context.run_processes(jobs)
    with QueueDatabase(path) as db:
        counts = TaskQueue(db).counts()
        queued_ids = [
            int(row[0])
            for row in db.execute(
                "SELECT id FROM task_queue WHERE status = ?", (TaskStatus.QUEUED.value,)
            )
        ]
    produced = [
        i for outcome in outcomes if outcome["role"] == "producer" for i in outcome["produced"]
    ]
    completed = [
        i for outcome in outcomes if outcome["role"] == "worker" for i in outcome["completed"]
    ]
    expected = preloaded + produced
    accounting = exactly_once(
        expected, completed, counts[TaskStatus.COMPLETED], pending_ids=queued_ids
    )
    rows_in_db = sum(counts.values())
    accounting["rows_in_db"] = rows_in_db
    accounting["ok"] = accounting["ok"] and rows_in_db == len(set(expected))
    context.check(
        f"exactly_once_{label}",
        accounting["ok"],
        f"{label}: {describe(accounting)}, still queued {len(queued_ids)}, "
        f"rows {rows_in_db} for {len(set(expected))} enqueued",
    )
    operations = sum(int(outcome["operations"]) for outcome in outcomes)
    busy = sum(int(outcome["busy_errors"]) for outcome in outcomes)
    waits = [w for outcome in outcomes for w in outcome["lock_wait_ns"]]
    return {
        "busy_timeout_ms": timeout_ms,
        "processes": processes,
        "producers": producers,
        "workers": workers,
        "operations": operations,
        "busy_errors": busy,
        "busy_rate": round(busy / operations, 6) if operations else 0.0,
        "lock_wait_ms": latency_ms(waits),
        "lock_wait_hist": histogram_ms(waits),
        "seconds": round(span_seconds(outcomes), 4),
        "enqueued": len(produced),
        "completed": len(completed),
        "exactly_once": accounting,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for timeout_ms in context.params["busy_timeouts_ms"]:
        for processes in context.params["processes"]:
            row = _cell(context, int(timeout_ms), int(processes))
            series.append(row)
            wait = row["lock_wait_ms"]
            context.log(
                f"timeout {timeout_ms:>4} ms, {processes:>2}p: {row['operations']} ops, "
                f"{row['busy_errors']} busy ({row['busy_rate'] * 100:.2f} %), lock wait p50 "
                f"{wait['p50']} p99 {wait['p99']} max {wait['max']} ms"
            )
    top = max((int(p) for p in context.params["processes"]), default=0)
    at_5000 = [r for r in series if r["busy_timeout_ms"] == 5000]
    at_top = {
        str(r["busy_timeout_ms"]): {
            "busy_rate": r["busy_rate"],
            "lock_wait_p50_ms": r["lock_wait_ms"]["p50"],
            "lock_wait_p99_ms": r["lock_wait_ms"]["p99"],
            "lock_wait_max_ms": r["lock_wait_ms"]["max"],
        }
        for r in series
        if r["processes"] == top
    }
    summary = {
        "max_busy_rate_5000": max((r["busy_rate"] for r in at_5000), default=None),
        "busy_rate_max_processes_5000": next(
            (r["busy_rate"] for r in at_5000 if r["processes"] == top), None
        ),
        "max_processes": top,
        "at_max_processes": at_top,
    }
    return {"summary": summary, "series": series}
