"""insert: enqueue throughput with 1..8 producer processes, single calls and batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.context import Job
from bench.scenarios._common import create_database, ratio, span_seconds
from bench.stats import histogram_ms, latency_ms, rate
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext


def _measure(
    context: ScenarioContext, mode: str, processes: int, tasks: int, batch: int, bare: bool
) -> dict[str, Any]:
    label = f"{mode}-{processes}p-{'bare' if bare else 'lib'}"
    path = context.new_db_path(label)
    create_database(path)
    pad = int(context.params["pad_bytes"])
    jobs = [
        Job(
            "produce",
            {
                "db_path": str(path),
                "mode": mode,
                "tasks": tasks,
                "batch_size": batch,
                "pad_bytes": pad,
                "index_base": p * tasks,
                "bare": bare,
            },
            "producer",
        )
        for p in range(processes)
    ]
    outcomes = context.run_processes(jobs)
    with QueueDatabase(path) as db:
        queued = TaskQueue(db).counts()[TaskStatus.QUEUED]
    total = sum(int(outcome["tasks"]) for outcome in outcomes)
    context.check(
        f"all_inserted_{label}",
        queued == total,
        f"{label}: {queued} queued rows for {total} enqueued tasks",
    )
    latencies = [sample for outcome in outcomes for sample in outcome["latency_ns"]]
    seconds = span_seconds(outcomes)
    return {
        "tasks": total,
        "calls": len(latencies),
        "seconds": round(seconds, 4),
        "tasks_per_s": rate(total, seconds),
        "latency_ns": latencies,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    params = context.params
    series: list[dict[str, Any]] = []
    for mode in ("single", "batch"):
        batch = 1 if mode == "single" else int(params["batch_size"])
        tasks = int(params["single_tasks" if mode == "single" else "batch_tasks"])
        for processes in params["processes"]:
            lib = _measure(context, mode, processes, tasks, batch, bare=False)
            bare = _measure(context, mode, processes, tasks, batch, bare=True)
            row = {
                "mode": mode,
                "processes": processes,
                "batch_size": batch,
                "tasks": lib["tasks"],
                "calls": lib["calls"],
                "seconds": lib["seconds"],
                "tasks_per_s": lib["tasks_per_s"],
                "latency_ms": latency_ms(lib["latency_ns"]),
                "latency_hist": histogram_ms(lib["latency_ns"]),
                "bare_tasks_per_s": bare["tasks_per_s"],
                "bare_latency_ms": latency_ms(bare["latency_ns"]),
                "ratio_vs_bare": ratio(lib["tasks_per_s"], bare["tasks_per_s"]),
            }
            series.append(row)
            context.log(
                f"{mode:6} {processes}p: {row['tasks_per_s']:>9.0f} tasks/s "
                f"(bare {row['bare_tasks_per_s']:.0f}, ratio {row['ratio_vs_bare']}), "
                f"p99 {row['latency_ms']['p99']} ms"
            )

    def pick(mode: str, processes: int) -> dict[str, Any] | None:
        return next((r for r in series if r["mode"] == mode and r["processes"] == processes), None)

    def field(mode: str, processes: int, key: str) -> Any:
        row = pick(mode, processes)
        return None if row is None else row[key]

    summary = {
        "single_tasks_per_s_1p": field("single", 1, "tasks_per_s"),
        "batch_tasks_per_s_1p": field("batch", 1, "tasks_per_s"),
        "ratio_single_1p": field("single", 1, "ratio_vs_bare"),
        "ratio_batch_1p": field("batch", 1, "ratio_vs_bare"),
        "single_tasks_per_s_4p": field("single", 4, "tasks_per_s"),
        "batch_tasks_per_s_4p": field("batch", 4, "tasks_per_s"),
        "ratio_single_4p": field("single", 4, "ratio_vs_bare"),
        "ratio_batch_4p": field("batch", 4, "ratio_vs_bare"),
        "best_single_tasks_per_s": max(
            (r["tasks_per_s"] for r in series if r["mode"] == "single"), default=None
        ),
        "best_batch_tasks_per_s": max(
            (r["tasks_per_s"] for r in series if r["mode"] == "batch"), default=None
        ),
    }
    return {"summary": summary, "series": series}
