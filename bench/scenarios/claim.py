"""claim: claim+complete throughput with 1..8 workers over a preloaded backlog, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.accounting import describe, exactly_once
from bench.context import Job
from bench.scenarios._common import create_database, ratio, span_seconds
from bench.stats import histogram_ms, latency_ms, rate
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext


def preload(path: Any, backlog: int, pad: int) -> list[int]:
    """Enqueue ``backlog`` tasks through the library; return their ids."""
    ids: list[int] = []
    with QueueDatabase(path) as db:
        db.initialize_schema()
        queue = TaskQueue(db)
        for first in range(0, backlog, 1000):
            items = [
                {"type": "bench", "payload": {"n": i, "format": "webp", "pad": "x" * pad}}
                for i in range(first, min(first + 1000, backlog))
            ]
            ids.extend(queue.enqueue_many(items))
    return ids


def _measure(context: ScenarioContext, processes: int, bare: bool) -> dict[str, Any]:
    label = f"claim-{processes}p-{'bare' if bare else 'lib'}"
    path = context.new_db_path(label)
    create_database(path)
    expected = preload(path, int(context.params["backlog"]), int(context.params["pad_bytes"]))
    jobs = [
        Job("claim_complete", {"db_path": str(path), "worker_id": f"w{p}", "bare": bare}, "worker")
        for p in range(processes)
    ]
    outcomes = context.run_processes(jobs)
    with QueueDatabase(path) as db:
        counts = TaskQueue(db).counts()
    completed_ids = [task_id for outcome in outcomes for task_id in outcome["ids"]]
    accounting = exactly_once(expected, completed_ids, counts[TaskStatus.COMPLETED])
    leftover = counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING] + counts[TaskStatus.FAILED]
    accounting["ok"] = accounting["ok"] and leftover == 0
    context.check(
        f"exactly_once_{label}",
        accounting["ok"],
        f"{label}: {describe(accounting)}, not completed in db {leftover}",
    )
    seconds = span_seconds(outcomes)
    tasks = len(completed_ids)
    transactions = sum(int(outcome["transactions"]) for outcome in outcomes)
    cycle = [s for outcome in outcomes for s in outcome["cycle_ns"]]
    return {
        "tasks": tasks,
        "transactions": transactions,
        "seconds": round(seconds, 4),
        "tx_per_s": rate(transactions, seconds),
        "tasks_per_s": rate(tasks, seconds),
        "cycle_ns": cycle,
        "claim_ns": [s for outcome in outcomes for s in outcome["claim_ns"]],
        "complete_ns": [s for outcome in outcomes for s in outcome["complete_ns"]],
        "exactly_once": accounting,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for processes in context.params["processes"]:
        lib = _measure(context, processes, bare=False)
        bare = _measure(context, processes, bare=True)
        row = {
            "processes": processes,
            "tasks": lib["tasks"],
            "transactions": lib["transactions"],
            "seconds": lib["seconds"],
            "tx_per_s": lib["tx_per_s"],
            "tasks_per_s": lib["tasks_per_s"],
            "latency_ms": latency_ms(lib["cycle_ns"]),
            "claim_latency_ms": latency_ms(lib["claim_ns"]),
            "complete_latency_ms": latency_ms(lib["complete_ns"]),
            "latency_hist": histogram_ms(lib["cycle_ns"]),
            "bare_tasks_per_s": bare["tasks_per_s"],
            "bare_tx_per_s": bare["tx_per_s"],
            "bare_latency_ms": latency_ms(bare["cycle_ns"]),
            "ratio_vs_bare": ratio(lib["tasks_per_s"], bare["tasks_per_s"]),
            "exactly_once": lib["exactly_once"],
            "bare_exactly_once": bare["exactly_once"],
        }
        series.append(row)
        context.log(
            f"{processes}p: {row['tx_per_s']:.0f} tx/s, {row['tasks_per_s']:.0f} tasks/s "
            f"(bare {row['bare_tasks_per_s']:.0f}, ratio {row['ratio_vs_bare']}), "
            f"exactly once {row['exactly_once']['ok']}"
        )
    four = next((r for r in series if r["processes"] == 4), None)
    summary = {
        "min_tx_per_s": min((r["tx_per_s"] for r in series), default=None),
        "max_tasks_per_s": max((r["tasks_per_s"] for r in series), default=None),
        "tasks_per_s_1p": next((r["tasks_per_s"] for r in series if r["processes"] == 1), None),
        "tasks_per_s_4p": None if four is None else four["tasks_per_s"],
        "ratio_1p": next((r["ratio_vs_bare"] for r in series if r["processes"] == 1), None),
        "ratio_4p": None if four is None else four["ratio_vs_bare"],
        "exactly_once_ok": all(
            r["exactly_once"]["ok"] and r["bare_exactly_once"]["ok"] for r in series
        ),
    }
    return {"summary": summary, "series": series}
