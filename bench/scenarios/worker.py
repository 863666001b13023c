"""worker: the WorkerEngine's drain beside its bare twin, pickup latency, idle CPU, and exactly
once under killed executors and a stop mid-drain.

- drain: a backlog enqueued in one transaction once the engine's executors are up, drained
  with a no-op and with a 1 ms handler at each executor count, beside the bare twin (that many
  processes each looping one-at-a-time claim + handler + complete in bare sqlite3 on the same
  schema), in the same run;
- pickup: one producer enqueues single tasks at about half the no-op drain capacity (capped at
  ``max_rate_per_s``, which one producer process can sustain); a probe handler records the time
  from just before each enqueue to its handler's start;
- idle: CPU of an engine and its executors with nothing to do;
- kill: executors SIGKILLed at random during a drain: no task lost, none completed twice;
- stop: the engine stopped mid-drain: every task completed or queued, no prefetched task
  charged an attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.accounting import describe, exactly_once
from bench.context import Job
from bench.scenarios._common import create_database, ratio, span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms, rate
from queue_core import QueueDatabase, TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

HANDLER_MS = {"noop": 0.0, "sleep_1ms": 1.0}


def _counts(path: Any) -> dict[TaskStatus, int]:
    with QueueDatabase(path) as db:
        return TaskQueue(db).counts()


def _drain_engine(
    context: ScenarioContext, handler: str, executors: int, tasks: int, **extra: Any
) -> tuple[dict[str, Any], Any]:
    label = f"engine-{handler}-{executors}x-{extra.get('variant', 'drain')}"
    path = context.new_db_path(label)
    create_database(path)
    args = {
        "db_path": str(path),
        "handler": handler,
        "executors": executors,
        "tasks": tasks,
        "pad_bytes": int(context.params["pad_bytes"]),
        **{k: v for k, v in extra.items() if k != "variant"},
    }
    [outcome] = context.run_processes([Job("engine_drain", args, "worker", daemon=False)])
    return outcome, path


def _drain_pair(context: ScenarioContext, handler: str, executors: int) -> dict[str, Any]:
    tasks = int(context.params["drain_tasks"][handler])
    lib, path = _drain_engine(context, handler, executors, tasks)
    with QueueDatabase(path) as db:
        done = [
            int(row[0])
            for row in db.execute(
                "SELECT id FROM task_queue WHERE status = 'completed' AND locked_by = ?",
                (lib["worker_id"],),
            )
        ]
        counts = TaskQueue(db).counts()
    accounting = exactly_once(lib["ids"], done, counts[TaskStatus.COMPLETED])
    ok = accounting["ok"] and lib["completed"] == tasks and counts[TaskStatus.COMPLETED] == tasks
    context.check(
        f"exactly_once_engine_{handler}_{executors}x",
        ok,
        f"{describe(accounting)}; engine completed {lib['completed']} of {tasks}",
    )
    lib_rate = rate(tasks, span_seconds([lib]))

    bare_path = context.new_db_path(f"bare-{handler}-{executors}p")
    create_database(bare_path)
    expected = preload(bare_path, tasks, int(context.params["pad_bytes"]))
    jobs = [
        Job(
            "claim_complete",
            {
                "db_path": str(bare_path),
                "worker_id": f"w{p}",
                "bare": True,
                "handler_ms": HANDLER_MS[handler],
            },
            "worker",
        )
        for p in range(executors)
    ]
    outcomes = context.run_processes(jobs)
    completed = [task_id for outcome in outcomes for task_id in outcome["ids"]]
    bare_accounting = exactly_once(expected, completed, _counts(bare_path)[TaskStatus.COMPLETED])
    context.check(
        f"exactly_once_bare_{handler}_{executors}p",
        bare_accounting["ok"],
        describe(bare_accounting),
    )
    bare_rate = rate(len(completed), span_seconds(outcomes))
    row = {
        "handler": handler,
        "executors": executors,
        "tasks": tasks,
        "tasks_per_s": lib_rate,
        "bare_tasks_per_s": bare_rate,
        "ratio_vs_bare": ratio(lib_rate, bare_rate),
        "exactly_once": ok,
    }
    context.log(
        f"drain {handler} {executors}x: {lib_rate:.0f} tasks/s, bare {bare_rate:.0f} "
        f"(ratio {row['ratio_vs_bare']})"
    )
    return row


def _pickup(context: ScenarioContext, capacity: float) -> dict[str, Any]:
    params = context.params
    executors = max(params["executors"])
    rate_per_s = max(1.0, min(capacity * 0.5, float(params["max_rate_per_s"])))
    count = max(1, int(rate_per_s * float(params["pickup_s"])))
    path = context.new_db_path("pickup")
    create_database(path)
    probes = path.parent / "probes"
    probes.mkdir()
    engine = Job(
        "engine_serve",
        {
            "db_path": str(path),
            "handler": "pickup_probe",
            "executors": executors,
            "expected": count,
            "serve_s": float(params["pickup_s"]) + 60.0,
        },
        "worker",
        daemon=False,
    )
    producer = Job(
        "paced_producer",
        {
            "db_path": str(path),
            "rate_per_s": rate_per_s,
            "count": count,
            "out_dir": str(probes),
        },
        "producer",
    )
    served, produced = context.run_processes([engine, producer])
    samples: dict[int, int] = {}
    duplicates = 0
    for file in probes.glob("*.txt"):
        for line in file.read_text(encoding="utf-8").splitlines():
            task_id, ns = (int(part) for part in line.split())
            duplicates += task_id in samples
            samples[task_id] = ns
    ok = duplicates == 0 and set(samples) == set(produced["ids"]) and served["completed"] == count
    context.check(
        "exactly_once_pickup",
        ok,
        f"produced {len(produced['ids'])}, picked up {len(samples)}, duplicates {duplicates}",
    )
    achieved = rate(len(produced["ids"]), span_seconds([produced]))
    values = list(samples.values())
    result = {
        "executors": executors,
        "capacity_tasks_per_s": capacity,
        "target_rate_per_s": round(rate_per_s, 1),
        "achieved_rate_per_s": achieved,
        "tasks": len(values),
        "latency_ms": latency_ms(values),
        "latency_hist": histogram_ms(values),
    }
    context.log(
        f"pickup at {achieved:.0f}/s (target {rate_per_s:.0f}/s): p50 "
        f"{result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms"
    )
    return result


def _idle(context: ScenarioContext) -> dict[str, Any]:
    executors = max(context.params["executors"])
    path = context.new_db_path("idle")
    create_database(path)
    args = {
        "db_path": str(path),
        "handler": "noop",
        "executors": executors,
        "idle_s": float(context.params["idle_s"]),
    }
    [outcome] = context.run_processes([Job("engine_idle", args, "worker", daemon=False)])
    wall = float(outcome["wall_s"])
    engine_pct = 100.0 * float(outcome["engine_cpu_s"]) / wall
    executors_pct = 100.0 * float(outcome["executors_cpu_s"]) / wall
    result = {
        "executors": executors,
        "seconds": round(wall, 3),
        "engine_cpu_pct": round(engine_pct, 3),
        "executors_cpu_pct": round(executors_pct, 3),
        "total_cpu_pct": round(engine_pct + executors_pct, 3),
    }
    context.log(
        f"idle {wall:.1f} s: engine {engine_pct:.2f} % of a core, executors {executors_pct:.2f} %"
    )
    return result


def _killed(context: ScenarioContext) -> dict[str, Any]:
    params = context.params
    tasks, kills = int(params["kill_tasks"]), int(params["kills"])
    outcome, path = _drain_engine(
        context,
        "sleep_1ms",
        max(params["executors"]),
        tasks,
        variant="kill",
        kills=kills,
        kill_every_s=float(params["kill_every_s"]),
    )
    counts = _counts(path)
    ok = (
        outcome["completed"] == tasks
        and counts[TaskStatus.COMPLETED] == tasks
        and counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING] == 0
    )
    context.check(
        "exactly_once_killed_executors",
        ok,
        f"{outcome['kills']} executors killed; engine completed {outcome['completed']} of "
        f"{tasks}; database {counts[TaskStatus.COMPLETED]} completed",
    )
    return {"tasks": tasks, "kills": outcome["kills"], "ok": ok}


def _stopped(context: ScenarioContext) -> dict[str, Any]:
    params = context.params
    tasks = int(params["kill_tasks"])
    outcome, path = _drain_engine(
        context,
        "sleep_1ms",
        max(params["executors"]),
        tasks,
        variant="stop",
        stop_after=tasks // 4,
    )
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        counts = queue.counts()
        charged = int(
            db.execute(
                "SELECT count(*) FROM task_queue WHERE status = 'queued' AND attempts > 0"
            ).fetchone()[0]
        )
    ok = (
        counts[TaskStatus.PROCESSING] == counts[TaskStatus.FAILED] == 0
        and counts[TaskStatus.COMPLETED] == outcome["completed"]
        and charged == 0
    )
    context.check(
        "stop_mid_drain",
        ok,
        f"completed {counts[TaskStatus.COMPLETED]}, queued {counts[TaskStatus.QUEUED]} "
        f"({charged} charged an attempt), processing {counts[TaskStatus.PROCESSING]}",
    )
    return {
        "tasks": tasks,
        "completed": counts[TaskStatus.COMPLETED],
        "queued": counts[TaskStatus.QUEUED],
        "queued_with_attempts": charged,
        "ok": ok,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    series = [
        _drain_pair(context, handler, executors)
        for handler in context.params["handlers"]
        for executors in context.params["executors"]
    ]
    noop = [r for r in series if r["handler"] == "noop"]
    capacity = max((float(r["tasks_per_s"]) for r in noop), default=100.0)
    pickup = _pickup(context, capacity)
    idle = _idle(context)
    killed = _killed(context)
    stopped = _stopped(context)
    four = next((r for r in noop if r["executors"] == 4), None)
    widest = max(noop, key=lambda r: int(r["executors"]), default=None)
    summary = {
        "drain_ratio_4": None if four is None else four["ratio_vs_bare"],
        "drain_ratio_max": None if widest is None else widest["ratio_vs_bare"],
        "drain_tasks_per_s_max": None if widest is None else widest["tasks_per_s"],
        "pickup_p50_ms": pickup["latency_ms"]["p50"],
        "pickup_p99_ms": pickup["latency_ms"]["p99"],
        "idle_cpu_pct": idle["total_cpu_pct"],
        "exactly_once_ok": all(r["exactly_once"] for r in series)
        and killed["ok"]
        and stopped["ok"],
    }
    return {
        "summary": summary,
        "series": series,
        "pickup": pickup,
        "idle": idle,
        "killed": killed,
        "stopped": stopped,
    }
