"""busy: producers and workers together at rising process counts and three busy timeouts.

The busy rate is every QueueBusyError that reached a caller divided by every call. SQLite's
busy handler polls with sleeps of up to 100 ms (and a short Windows Sleep() rounds up to about
15 ms), so with a long timeout contention shows in the lock-wait tail, not in errors.

At the gated busy timeout (5000 ms) every process count runs twice, with the fair lock (the
default, ``QueueDatabase(fair_lock=True)``) and without it, so the two are compared in the same
run: the lock-wait tail, each process's share of the operations (min and max over the mean,
Jain's fairness index) and the throughput.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.accounting import describe, exactly_once
from bench.context import Job
from bench.scenarios._common import create_database, span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms, shares
from queue_core import QueueDatabase, TaskQueue
from queue_core.database import DEFAULT_FAIR_LOCK
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext


GATED_TIMEOUT_MS = 5000
FAIR_WAIT_GOAL_MS = 100.0
"""The fair lock's goals at the largest process count: the longest lock wait at most this, ..."""
FAIR_SHARE_GOAL = (0.5, 2.0)
"""... every process's share of the operations within these multiples of the mean ..."""
FAIR_THROUGHPUT_GOAL = 0.85
"""... and at least this fraction of the throughput without the fair lock."""


def _cell(
    context: ScenarioContext, timeout_ms: int, processes: int, fair_lock: bool
) -> dict[str, Any]:
    params = context.params
    producers = max(1, processes // 2)
    workers = max(1, processes - producers)
    label = f"busy-{timeout_ms}ms-{processes}p" + ("" if fair_lock else "-unfair")
    path = context.new_db_path(label)
    create_database(path)
    pad = int(params["pad_bytes"])
    preloaded = preload(path, int(params["backlog"]), pad)
    common = {
        "db_path": str(path),
        "duration_s": float(params["duration_s"]),
        "busy_timeout_ms": timeout_ms,
        "pad_bytes": pad,
        "fair_lock": fair_lock,
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
    seconds = span_seconds(outcomes)
    per_process = [int(outcome["operations"]) for outcome in outcomes]
    return {
        "busy_timeout_ms": timeout_ms,
        "fair_lock": fair_lock,
        "processes": processes,
        "producers": producers,
        "workers": workers,
        "operations": operations,
        "busy_errors": busy,
        "busy_rate": round(busy / operations, 6) if operations else 0.0,
        "lock_wait_ms": latency_ms(waits),
        "lock_wait_hist": histogram_ms(waits),
        "seconds": round(seconds, 4),
        "operations_per_s": round(operations / seconds, 1) if seconds > 0 else None,
        "operations_by_process": per_process,
        "share": shares(per_process),
        "lock_wait_max_by_process_ms": [
            round(max(outcome["lock_wait_ns"], default=0) / 1e6, 3) for outcome in outcomes
        ],
        "enqueued": len(produced),
        "completed": len(completed),
        "exactly_once": accounting,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for timeout_ms in context.params["busy_timeouts_ms"]:
        variants = [DEFAULT_FAIR_LOCK]
        if int(timeout_ms) == GATED_TIMEOUT_MS and context.params.get("compare_fair_lock", True):
            variants.append(not DEFAULT_FAIR_LOCK)
        for processes in context.params["processes"]:
            for fair_lock in variants:
                row = _cell(context, int(timeout_ms), int(processes), fair_lock)
                series.append(row)
                wait, share = row["lock_wait_ms"], row["share"]
                context.log(
                    f"timeout {timeout_ms:>4} ms, {processes:>2}p, fair lock "
                    f"{'on ' if fair_lock else 'off'}: {row['operations']} ops "
                    f"({row['operations_per_s']}/s), {row['busy_errors']} busy "
                    f"({row['busy_rate'] * 100:.2f} %), lock wait p50 {wait['p50']} p99 "
                    f"{wait['p99']} max {wait['max']} ms, shares "
                    f"{share['min_over_mean']}-{share['max_over_mean']} of the mean, "
                    f"Jain {share['jain']}"
                )
    top = max((int(p) for p in context.params["processes"]), default=0)
    shipped = [r for r in series if r["fair_lock"] == DEFAULT_FAIR_LOCK]
    at_5000 = [r for r in shipped if r["busy_timeout_ms"] == GATED_TIMEOUT_MS]
    at_top = {
        str(r["busy_timeout_ms"]): {
            "busy_rate": r["busy_rate"],
            "lock_wait_p50_ms": r["lock_wait_ms"]["p50"],
            "lock_wait_p99_ms": r["lock_wait_ms"]["p99"],
            "lock_wait_max_ms": r["lock_wait_ms"]["max"],
        }
        for r in shipped
        if r["processes"] == top
    }
    summary = {
        "max_busy_rate_5000": max((r["busy_rate"] for r in at_5000), default=None),
        "busy_rate_max_processes_5000": next(
            (r["busy_rate"] for r in at_5000 if r["processes"] == top), None
        ),
        "max_processes": top,
        "at_max_processes": at_top,
        "fair_lock": _fairness(series, top),
    }
    return {"summary": summary, "series": series}


def _fairness(series: list[dict[str, Any]], top: int) -> dict[str, Any] | None:
    """The fair lock against none at the gated timeout and the largest process count."""

    def pick(fair: bool) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in series
                if r["busy_timeout_ms"] == GATED_TIMEOUT_MS
                and r["processes"] == top
                and r["fair_lock"] is fair
            ),
            None,
        )

    def figures(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "lock_wait_max_ms": row["lock_wait_ms"]["max"],
            "lock_wait_p99_ms": row["lock_wait_ms"]["p99"],
            "operations_per_s": row["operations_per_s"],
            **row["share"],
        }

    fair, unfair = pick(True), pick(False)
    if fair is None or unfair is None:
        return None
    on, off = figures(fair), figures(unfair)
    ratio = (
        round(on["operations_per_s"] / off["operations_per_s"], 3)
        if on["operations_per_s"] and off["operations_per_s"]
        else None
    )
    low, high = FAIR_SHARE_GOAL
    return {
        "processes": top,
        "with": on,
        "without": off,
        "throughput_ratio": ratio,
        "goals": {
            "lock_wait_max_ms": FAIR_WAIT_GOAL_MS,
            "share_range": list(FAIR_SHARE_GOAL),
            "throughput_ratio": FAIR_THROUGHPUT_GOAL,
        },
        "goals_met": {
            "lock_wait_max": on["lock_wait_max_ms"] is not None
            and on["lock_wait_max_ms"] <= FAIR_WAIT_GOAL_MS,
            "shares": on["min_over_mean"] is not None
            and low <= on["min_over_mean"]
            and on["max_over_mean"] <= high,
            "throughput": ratio is not None and ratio >= FAIR_THROUGHPUT_GOAL,
        },
    }
