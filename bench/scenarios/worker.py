"""worker: the WorkerEngine's drain beside its bare twin, pickup latency, idle CPU, and exactly
once under killed executors and a stop mid-drain.

- drain: a backlog enqueued in one transaction once the engine's executors are up, drained
  with a no-op and with a 1 ms handler at each executor count, beside the bare twin (that many
  processes each looping one-at-a-time claim + handler + complete in bare sqlite3 on the same
  schema), in the same run;
- pickup: ``pickup_producers`` (one in the profiles: two measured worse, as they also wait on
  each other's write lock) enqueue single tasks, one transaction each, at ``load_fraction`` of
  the no-op drain rate this run measured with the same number of executors; no cap, and the
  rate they achieved is recorded beside it. A probe handler records the time from just before
  each enqueue to its handler's start; the producers record how long each enqueue took, so the
  time from the commit to the handler's start is reported too;
- idle: CPU of an engine and its executors with nothing to do;
- kill: executors SIGKILLed at random during a drain: no task lost, none completed twice;
- stop: the engine stopped mid-drain: every task completed or queued, no prefetched task
  charged an attempt.
"""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.accounting import describe, exactly_once
from bench.backends import open_queue_db
from bench.context import Job
from bench.engine_jobs import ENGINE_WORKER_ID
from bench.results import Histogram, Latency
from bench.scenarios._common import ratio, span_seconds
from bench.scenarios.claim import preload
from bench.stats import histogram_ms, latency_ms, rate
from bench.workers import (
    ClaimCompleteArgs,
    ClaimCompleteOutcome,
    EngineDrainArgs,
    EngineDrainOutcome,
    EngineIdleArgs,
    EngineIdleOutcome,
    EngineServeArgs,
    EngineServeOutcome,
    PacedProducerArgs,
    PacedProducerOutcome,
)
from queue_core import TaskQueue
from queue_core.models import TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

HANDLER_MS = {"noop": 0.0, "sleep_1ms": 1.0}
"""The bench handlers (``bench.worker_handlers``) and what the bare twin sleeps for each."""


@dataclass(frozen=True)
class Params:
    executors: tuple[int, ...]
    handlers: tuple[str, ...]
    drain_tasks_noop: int
    drain_tasks_sleep: int
    pad_bytes: int
    pickup_s: float
    idle_s: float
    kill_tasks: int
    kills: int
    kill_every_s: float
    load_fraction: float = 0.5
    pickup_producers: int = 1


@dataclass(frozen=True)
class Point:
    """One handler at one executor count: engine and bare twin drain rates, same run."""

    handler: str
    executors: int
    tasks: int
    tasks_per_s: float
    bare_tasks_per_s: float
    ratio_vs_bare: float | None
    exactly_once: bool


@dataclass(frozen=True)
class Pickup:
    """From just before each single enqueue to its handler's start, at a steady rate.

    ``capacity_tasks_per_s`` is the no-op drain of this run at ``executors``; the target is
    its ``load_fraction``, ``achieved_load`` what the producers reached over that capacity.
    ``after_commit_ms``: the same latency without the enqueue itself (from its commit).
    """

    executors: int
    capacity_tasks_per_s: float
    target_rate_per_s: float
    achieved_rate_per_s: float
    tasks: int
    latency_ms: Latency
    latency_hist: Histogram
    producers: int = 1
    achieved_load: float | None = None
    enqueue_ms: Latency | None = None
    after_commit_ms: Latency | None = None


@dataclass(frozen=True)
class Idle:
    """CPU in percent of one core, over ``seconds`` with nothing queued."""

    executors: int
    seconds: float
    engine_cpu_pct: float
    executors_cpu_pct: float
    total_cpu_pct: float


@dataclass(frozen=True)
class Killed:
    tasks: int
    kills: int
    ok: bool


@dataclass(frozen=True)
class Stopped:
    tasks: int
    completed: int
    queued: int
    queued_with_attempts: int
    ok: bool


@dataclass(frozen=True)
class Summary:
    """``drain_ratio_4``: engine / bare no-op drain at 4 executors (target >= 1.5);
    ``pickup_p99_ms`` (target <= 20) at ``pickup_load`` of the drain measured in the same run
    (the target is half); ``idle_cpu_pct`` of one core (target <= 1)."""

    drain_ratio_4: float | None
    drain_ratio_max: float | None
    drain_tasks_per_s_max: float | None
    pickup_p50_ms: float | None
    pickup_p99_ms: float | None
    idle_cpu_pct: float
    exactly_once_ok: bool
    pickup_load: float | None = None


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]
    pickup: Pickup
    idle: Idle
    killed: Killed
    stopped: Stopped


def _counts(target: str) -> dict[TaskStatus, int]:
    with closing(open_queue_db(target)) as db:
        return TaskQueue(db).counts()


def _engine_drain(
    context: ScenarioContext[Params], label: str, args: EngineDrainArgs
) -> tuple[EngineDrainOutcome, str]:
    """Run one engine drain job on a fresh database (``args.target`` is filled in here)."""
    target = context.new_database(label)
    job = Job(dataclasses.replace(args, target=target), "worker", daemon=False)
    [outcome] = context.run_processes([job])
    return outcome, target


def _drain_pair(context: ScenarioContext[Params], handler: str, executors: int) -> Point:
    params = context.params
    tasks = params.drain_tasks_noop if handler == "noop" else params.drain_tasks_sleep
    lib, path = _engine_drain(
        context,
        f"engine-{handler}-{executors}x",
        EngineDrainArgs(
            target="",
            handler=handler,
            executors=executors,
            tasks=tasks,
            pad_bytes=params.pad_bytes,
        ),
    )
    with closing(open_queue_db(path)) as db:
        # No parameters: the same text runs on SQLite and PostgreSQL (the id is the bench's).
        done = [
            int(row[0])
            for row in db.execute(
                "SELECT id FROM task_queue WHERE status = 'completed' "
                f"AND locked_by = '{ENGINE_WORKER_ID}'"
            )
        ]
        db_completed = TaskQueue(db).counts()[TaskStatus.COMPLETED]
    accounting = exactly_once(lib.ids, done, db_completed)
    ok = accounting.ok and lib.completed == tasks
    context.check(
        f"exactly_once_engine_{handler}_{executors}x",
        ok,
        f"{describe(accounting)}; the engine counted {lib.completed} completions of {tasks}",
    )
    lib_rate = rate(tasks, span_seconds([lib]))

    bare_path = context.new_database(f"bare-{handler}-{executors}p")
    expected = preload(bare_path, tasks, params.pad_bytes)
    jobs = [
        Job(
            ClaimCompleteArgs(
                target=bare_path,
                worker_id=f"w{p}",
                bare=True,
                handler_ms=HANDLER_MS[handler],
            ),
            "worker",
        )
        for p in range(executors)
    ]
    outcomes: list[ClaimCompleteOutcome] = context.run_processes(jobs)
    completed = [task_id for outcome in outcomes for task_id in outcome.ids]
    bare_accounting = exactly_once(expected, completed, _counts(bare_path)[TaskStatus.COMPLETED])
    context.check(
        f"exactly_once_bare_{handler}_{executors}p", bare_accounting.ok, describe(bare_accounting)
    )
    bare_rate = rate(len(completed), span_seconds(outcomes))
    point = Point(
        handler=handler,
        executors=executors,
        tasks=tasks,
        tasks_per_s=lib_rate,
        bare_tasks_per_s=bare_rate,
        ratio_vs_bare=ratio(lib_rate, bare_rate),
        exactly_once=ok,
    )
    context.log(
        f"drain {handler} {executors}x: {lib_rate:.0f} tasks/s, bare {bare_rate:.0f} "
        f"(ratio {point.ratio_vs_bare})"
    )
    return point


def _pickup(context: ScenarioContext[Params], capacity: float) -> Pickup:
    params = context.params
    executors = max(params.executors)
    producers = params.pickup_producers
    rate_per_s = max(1.0, capacity * params.load_fraction)
    each = max(1, int(rate_per_s / producers * params.pickup_s))
    count = each * producers
    path = context.new_database("pickup")
    probes = context.workdir / "pickup-probes"
    probes.mkdir()
    engine = EngineServeArgs(
        target=path,
        handler="pickup_probe",
        executors=executors,
        expected=count,
        serve_s=params.pickup_s + 60.0,
    )
    jobs = [Job(engine, "worker", daemon=False)] + [
        Job(
            PacedProducerArgs(
                target=path,
                rate_per_s=rate_per_s / producers,
                count=each,
                out_dir=str(probes),
                offset_s=p / rate_per_s,  # interleaved: one commit every 1/rate seconds
            ),
            "producer",
        )
        for p in range(producers)
    ]
    outcomes = context.run_processes(jobs)
    served: EngineServeOutcome = outcomes[0]
    produced: list[PacedProducerOutcome] = outcomes[1:]
    samples: dict[int, int] = {}
    duplicates = 0
    for file in probes.glob("*.txt"):
        for line in file.read_text(encoding="utf-8").splitlines():
            task_id, ns = (int(part) for part in line.split())
            duplicates += task_id in samples
            samples[task_id] = ns
    enqueue_ns = {i: ns for p in produced for i, ns in zip(p.ids, p.enqueue_ns, strict=True)}
    ok = duplicates == 0 and set(samples) == set(enqueue_ns) and served.completed == count
    context.check(
        "exactly_once_pickup",
        ok,
        f"produced {len(enqueue_ns)}, picked up {len(samples)}, duplicates {duplicates}",
    )
    values = list(samples.values())
    after_commit = latency_ms([ns - enqueue_ns[i] for i, ns in samples.items() if i in enqueue_ns])
    achieved = rate(len(enqueue_ns), span_seconds(produced))
    pickup = Pickup(
        executors=executors,
        capacity_tasks_per_s=capacity,
        target_rate_per_s=round(rate_per_s, 1),
        achieved_rate_per_s=achieved,
        tasks=len(values),
        latency_ms=latency_ms(values),
        latency_hist=histogram_ms(values),
        producers=producers,
        achieved_load=ratio(achieved, capacity),
        enqueue_ms=latency_ms(list(enqueue_ns.values())),
        after_commit_ms=after_commit,
    )
    context.log(
        f"pickup at {achieved:.0f}/s = {pickup.achieved_load} of the {capacity:.0f}/s drain "
        f"(target {rate_per_s:.0f}/s, {producers} producers): p50 {pickup.latency_ms.p50} ms, "
        f"p99 {pickup.latency_ms.p99} ms; from the commit p99 {after_commit.p99} ms"
    )
    if pickup.achieved_load is not None and pickup.achieved_load < 0.9 * params.load_fraction:
        context.log(
            f"pickup: the producers reached {pickup.achieved_load} of the drain, not "
            f"{params.load_fraction}: the machine was too busy for this to be that load"
        )
    return pickup


def _idle(context: ScenarioContext[Params]) -> Idle:
    executors = max(context.params.executors)
    path = context.new_database("idle")
    args = EngineIdleArgs(
        target=path, handler="noop", executors=executors, idle_s=context.params.idle_s
    )
    [outcome] = context.run_processes([Job(args, "worker", daemon=False)])
    measured: EngineIdleOutcome = outcome
    engine_pct = 100.0 * measured.engine_cpu_s / measured.wall_s
    executors_pct = 100.0 * measured.executors_cpu_s / measured.wall_s
    idle = Idle(
        executors=executors,
        seconds=round(measured.wall_s, 3),
        engine_cpu_pct=round(engine_pct, 3),
        executors_cpu_pct=round(executors_pct, 3),
        total_cpu_pct=round(engine_pct + executors_pct, 3),
    )
    context.log(
        f"idle {idle.seconds:.1f} s: engine {engine_pct:.2f} % of a core, "
        f"executors {executors_pct:.2f} %"
    )
    return idle


def _killed(context: ScenarioContext[Params]) -> Killed:
    params = context.params
    outcome, path = _engine_drain(
        context,
        "engine-kill",
        EngineDrainArgs(
            target="",
            handler="sleep_1ms",
            executors=max(params.executors),
            tasks=params.kill_tasks,
            kills=params.kills,
            kill_every_s=params.kill_every_s,
        ),
    )
    counts = _counts(path)
    ok = (
        outcome.completed == params.kill_tasks
        and counts[TaskStatus.COMPLETED] == params.kill_tasks
        and counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING] == 0
    )
    context.check(
        "exactly_once_killed_executors",
        ok,
        f"{outcome.kills} executors killed; the engine completed {outcome.completed} of "
        f"{params.kill_tasks}; the database shows {counts[TaskStatus.COMPLETED]} completed",
    )
    return Killed(tasks=params.kill_tasks, kills=outcome.kills, ok=ok)


def _stopped(context: ScenarioContext[Params]) -> Stopped:
    params = context.params
    outcome, path = _engine_drain(
        context,
        "engine-stop",
        EngineDrainArgs(
            target="",
            handler="sleep_1ms",
            executors=max(params.executors),
            tasks=params.kill_tasks,
            stop_after=params.kill_tasks // 4,
        ),
    )
    with closing(open_queue_db(path)) as db:
        counts = TaskQueue(db).counts()
        charged = int(
            db.execute(
                "SELECT count(*) FROM task_queue WHERE status = 'queued' AND attempts > 0"
            ).fetchone()[0]
        )
    ok = (
        counts[TaskStatus.PROCESSING] == counts[TaskStatus.FAILED] == 0
        and counts[TaskStatus.COMPLETED] == outcome.completed
        and charged == 0
    )
    context.check(
        "stop_mid_drain",
        ok,
        f"completed {counts[TaskStatus.COMPLETED]}, queued {counts[TaskStatus.QUEUED]} "
        f"({charged} charged an attempt), processing {counts[TaskStatus.PROCESSING]}",
    )
    return Stopped(
        tasks=params.kill_tasks,
        completed=counts[TaskStatus.COMPLETED],
        queued=counts[TaskStatus.QUEUED],
        queued_with_attempts=charged,
        ok=ok,
    )


def run(context: ScenarioContext[Params]) -> Result:
    series = tuple(
        _drain_pair(context, handler, executors)
        for handler in context.params.handlers
        for executors in context.params.executors
    )
    noop = [p for p in series if p.handler == "noop"]
    widest = max(noop, key=lambda p: p.executors, default=None)
    # The drain of the same configuration (the pickup engine runs max(executors) executors).
    capacity = 100.0 if widest is None else widest.tasks_per_s
    pickup = _pickup(context, capacity)
    idle = _idle(context)
    killed = _killed(context)
    stopped = _stopped(context)
    four = next((p for p in noop if p.executors == 4), None)
    summary = Summary(
        drain_ratio_4=None if four is None else four.ratio_vs_bare,
        drain_ratio_max=None if widest is None else widest.ratio_vs_bare,
        drain_tasks_per_s_max=None if widest is None else widest.tasks_per_s,
        pickup_p50_ms=pickup.latency_ms.p50,
        pickup_p99_ms=pickup.latency_ms.p99,
        idle_cpu_pct=idle.total_cpu_pct,
        exactly_once_ok=all(p.exactly_once for p in series) and killed.ok and stopped.ok,
        pickup_load=pickup.achieved_load,
    )
    return Result(summary, series, pickup, idle, killed, stopped)
