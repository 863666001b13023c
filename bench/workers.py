"""Process entry points for the scenarios (top level, so ``spawn`` can pickle them).

Every worker opens its own connection in its own process, reports ready, waits at the start
barrier (so process start-up is not measured), does its work timing each call with
``perf_counter_ns`` here, closes its connection and puts one outcome record on the result queue.
``perf_counter_ns`` is system-wide on Linux, Windows and macOS, so the parent may compare the
start and end stamps of different processes.

Each worker kind has a frozen, picklable argument record (``ProduceArgs``, ...) whose ``run``
method is the worker, and an outcome record; a scenario starts one with
``Job(ProduceArgs(...), role)``.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from bench.backends import bare_queue, open_queue_db
from bench.baseline_sql import payload
from queue_core import QueueDatabase, TaskQueue, maintenance
from queue_core.connecting import is_postgres_url
from queue_core.database import DEFAULT_FAIR_LOCK
from queue_core.exceptions import QueueBusyError
from queue_core.tracing import TraceEvent, TransactionBegan, WriteGateEntered

Ready = Callable[[], None]


@dataclass(frozen=True)
class Failed:
    """What a worker that raised reports instead of its outcome: the traceback."""

    error: str


def entry(args: WorkerArgs, start_timeout_s: float, barrier: Any, results: Any, index: int) -> None:
    """The target of every benchmark process: run ``args.run`` and report its outcome."""
    outcome: object
    try:

        def ready() -> None:
            barrier.wait(timeout=start_timeout_s)

        outcome = args.run(ready)
    except BaseException:
        outcome = Failed(traceback.format_exc())
        with contextlib.suppress(Exception):  # best effort: wake the others
            barrier.abort()
    results.put((index, outcome))


@dataclass(frozen=True)
class Span:
    """Start and end stamps (``perf_counter_ns``) of a worker's measured work."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class ProduceArgs:
    """Enqueue ``tasks`` tasks, one per call or in batches, through the library or bare sqlite3."""

    target: str
    mode: Literal["single", "batch"]
    tasks: int
    batch_size: int
    pad_bytes: int
    index_base: int
    bare: bool

    def run(self, ready: Ready) -> ProduceOutcome:
        return produce(self, ready)


@dataclass(frozen=True)
class ProduceOutcome(Span):
    tasks: int
    calls: int
    latency_ns: list[int]


@dataclass(frozen=True)
class ClaimCompleteArgs:
    """Claim and complete until the queue is empty, through the library or bare sqlite3."""

    target: str
    worker_id: str
    bare: bool
    handler_ms: float = 0.0  # sleep this long between claim and complete, as a handler would

    def run(self, ready: Ready) -> ClaimCompleteOutcome:
        return claim_complete(self, ready)


@dataclass(frozen=True)
class ClaimCompleteOutcome(Span):
    ids: list[int]
    transactions: int
    claim_ns: list[int]
    complete_ns: list[int]
    cycle_ns: list[int]


@dataclass(frozen=True)
class BusyProducerArgs:
    """Enqueue single tasks for ``duration_s`` with a given busy timeout."""

    target: str
    duration_s: float
    busy_timeout_ms: int
    pad_bytes: int
    index_base: int
    fair_lock: bool = DEFAULT_FAIR_LOCK

    def run(self, ready: Ready) -> BusyOutcome:
        return busy_producer(self, ready)


@dataclass(frozen=True)
class BusyWorkerArgs:
    """Claim and complete for ``duration_s`` with a given busy timeout."""

    target: str
    duration_s: float
    busy_timeout_ms: int
    worker_id: str
    fair_lock: bool = DEFAULT_FAIR_LOCK

    def run(self, ready: Ready) -> BusyOutcome:
        return busy_worker(self, ready)


@dataclass(frozen=True)
class BusyOutcome(Span):
    """``ids``: the tasks a producer enqueued, or a worker completed; ``gate_contended``: writes
    that found the fair lock's write gate taken and waited for it (hand-offs to this process)."""

    role: Literal["producer", "worker"]
    operations: int
    busy_errors: int
    lock_wait_ns: list[int]
    ids: list[int]
    unfinished: int = 0
    gate_contended: int = 0


@dataclass(frozen=True)
class PacedWriterArgs:
    """Commit ``rows_per_commit`` tasks per transaction, ``rate_per_s`` times a second."""

    target: str
    duration_s: float
    rows_per_commit: int
    pad_bytes: int
    rate_per_s: float
    pragma_overrides: tuple[tuple[str, int | str], ...] = ()

    def run(self, ready: Ready) -> PacedWriterOutcome:
        return paced_writer(self, ready)


@dataclass(frozen=True)
class PacedWriterOutcome(Span):
    at_ns: list[int]
    latency_ns: list[int]


@dataclass(frozen=True)
class EngineArgs:
    """A WorkerEngine (in a thread of the job process) running ``bench.worker_handlers``'s
    ``handler`` for type ``bench`` with ``executors`` executors. Its job must be started with
    ``Job(..., daemon=False)``: the executors are children of the job."""

    target: str
    handler: str
    executors: int
    prefetch: int | None = None


@dataclass(frozen=True)
class EngineDrainArgs(EngineArgs):
    """Once the engine is up, enqueue ``tasks`` in one transaction and time the drain.

    ``kills`` > 0 SIGKILLs a random busy executor every ``kill_every_s`` meanwhile;
    ``stop_after`` stops the engine gracefully once that many tasks completed."""

    tasks: int = 0
    pad_bytes: int = 64
    kills: int = 0
    kill_every_s: float = 0.1
    stop_after: int | None = None
    timeout_s: float = 240.0

    def run(self, ready: Ready) -> EngineDrainOutcome:
        from bench import engine_jobs

        return engine_jobs.engine_drain(self, ready)


@dataclass(frozen=True)
class EngineDrainOutcome(Span):
    ids: list[int]
    completed: int
    kills: int
    worker_id: str


@dataclass(frozen=True)
class EngineServeArgs(EngineArgs):
    """Run the engine until ``expected`` tasks completed or ``serve_s`` ran out."""

    expected: int = 0
    serve_s: float = 60.0

    def run(self, ready: Ready) -> EngineServeOutcome:
        from bench import engine_jobs

        return engine_jobs.engine_serve(self, ready)


@dataclass(frozen=True)
class EngineServeOutcome:
    completed: int


@dataclass(frozen=True)
class EngineIdleArgs(EngineArgs):
    """Measure the CPU of the engine process and its executors over ``idle_s`` of nothing."""

    idle_s: float = 10.0
    settle_s: float = 1.0

    def run(self, ready: Ready) -> EngineIdleOutcome:
        from bench import engine_jobs

        return engine_jobs.engine_idle(self, ready)


@dataclass(frozen=True)
class EngineIdleOutcome:
    wall_s: float
    engine_cpu_s: float
    executors_cpu_s: float
    executors: int


@dataclass(frozen=True)
class PacedProducerArgs:
    """Enqueue ``count`` single tasks at ``rate_per_s``, each stamped with the
    ``perf_counter_ns`` just before its enqueue (for the pickup probe handler); the first one
    ``offset_s`` after the start (producers sharing a rate interleave their commits)."""

    target: str
    rate_per_s: float
    count: int
    out_dir: str
    offset_s: float = 0.0

    def run(self, ready: Ready) -> PacedProducerOutcome:
        from bench import engine_jobs

        return engine_jobs.paced_producer(self, ready)


@dataclass(frozen=True)
class PacedProducerOutcome(Span):
    """``enqueue_ns[i]``: how long the enqueue of ``ids[i]`` took (its wait for the write lock
    included), so the pickup can be split into enqueue and commit-to-handler-start."""

    ids: list[int]
    enqueue_ns: list[int]


@dataclass(frozen=True)
class SoakProducerArgs:
    """Enqueue one task at a time, ``rate_per_s`` times a second, for ``duration_s``."""

    target: str
    duration_s: float
    rate_per_s: float
    pad_bytes: int
    index: int

    def run(self, ready: Ready) -> SoakProducerOutcome:
        return soak_producer(self, ready)


@dataclass(frozen=True)
class SoakProducerOutcome(Span):
    enqueued: int
    busy_errors: int


@dataclass(frozen=True)
class SoakWorkerArgs:
    """Claim, work ``work_ms`` (a sleep standing in for the task), complete, for
    ``duration_s``, timing every claim."""

    target: str
    duration_s: float
    worker_id: str
    work_ms: float

    def run(self, ready: Ready) -> SoakWorkerOutcome:
        return soak_worker(self, ready)


@dataclass(frozen=True)
class SoakWorkerOutcome(Span):
    """``at_ns`` and ``claim_ns``: when each claim started and how long it took."""

    at_ns: list[int]
    claim_ns: list[int]
    completed: int
    busy_errors: int


@dataclass(frozen=True)
class SoakPrunerArgs:
    """Every ``interval_s``, prune completed tasks older than ``retention_s``."""

    target: str
    duration_s: float
    retention_s: float
    interval_s: float

    def run(self, ready: Ready) -> SoakPrunerOutcome:
        return soak_pruner(self, ready)


@dataclass(frozen=True)
class SoakPrunerOutcome(Span):
    """One entry per prune call: when it started, tasks deleted, its longest lock hold."""

    at_ns: list[int]
    deleted: list[int]
    longest_lock_ms: list[float]


@dataclass(frozen=True)
class SoakBackupArgs:
    """At ``at_s`` after the start, take one online backup into ``backup_dir`` and verify it."""

    target: str
    backup_dir: str
    at_s: float
    keep: int

    def run(self, ready: Ready) -> SoakBackupOutcome:
        return soak_backup(self, ready)


@dataclass(frozen=True)
class SoakBackupOutcome(Span):
    at_ns: int
    seconds: float
    bytes: int
    verified: bool
    problems: list[str]


WorkerArgs = (
    ProduceArgs
    | ClaimCompleteArgs
    | BusyProducerArgs
    | BusyWorkerArgs
    | PacedWriterArgs
    | EngineDrainArgs
    | EngineServeArgs
    | EngineIdleArgs
    | PacedProducerArgs
    | SoakProducerArgs
    | SoakWorkerArgs
    | SoakPrunerArgs
    | SoakBackupArgs
)
"""Every kind of benchmark process; a new kind adds its record here."""


def produce(args: ProduceArgs, ready: Ready) -> ProduceOutcome:
    """Enqueue ``tasks`` tasks one per call ("single") or in ``enqueue_many`` batches."""
    target = args.target
    mode, tasks, batch_size = args.mode, args.tasks, args.batch_size
    pad, base = args.pad_bytes, args.index_base
    latencies: list[int] = []
    clock = time.perf_counter_ns
    if args.bare:
        with bare_queue(target) as bare:
            ready()
            start = clock()
            if mode == "single":
                for i in range(tasks):
                    t0 = clock()
                    bare.enqueue(base + i, pad)
                    latencies.append(clock() - t0)
            else:
                for first in range(0, tasks, batch_size):
                    indices = range(base + first, base + min(first + batch_size, tasks))
                    t0 = clock()
                    bare.enqueue_many(indices, pad)
                    latencies.append(clock() - t0)
            end = clock()
    else:
        with closing(open_queue_db(target)) as db:
            queue = TaskQueue(db)
            ready()
            start = clock()
            if mode == "single":
                for i in range(tasks):
                    item = payload(base + i, pad)
                    t0 = clock()
                    queue.enqueue("bench", item)
                    latencies.append(clock() - t0)
            else:
                for first in range(0, tasks, batch_size):
                    items = [
                        {"type": "bench", "payload": payload(base + i, pad)}
                        for i in range(first, min(first + batch_size, tasks))
                    ]
                    t0 = clock()
                    queue.enqueue_many(items)
                    latencies.append(clock() - t0)
            end = clock()
    return ProduceOutcome(
        start_ns=start, end_ns=end, tasks=tasks, calls=len(latencies), latency_ns=latencies
    )


def claim_complete(args: ClaimCompleteArgs, ready: Ready) -> ClaimCompleteOutcome:
    """Claim one task and complete it, again and again, until the queue is empty.

    ``handler_ms`` > 0 sleeps that long between claim and complete (counted in complete_ns).
    """
    target, worker_id = args.target, args.worker_id
    handler_s = args.handler_ms / 1000
    clock = time.perf_counter_ns
    ids: list[int] = []
    claim_ns: list[int] = []
    complete_ns: list[int] = []
    cycle_ns: list[int] = []
    transactions = 0
    if args.bare:
        with bare_queue(target) as bare:
            ready()
            start = clock()
            while True:
                t0 = clock()
                task_id = bare.claim_one(worker_id)
                t1 = clock()
                transactions += 1
                if task_id is None:
                    break
                if handler_s:
                    time.sleep(handler_s)
                bare.complete(task_id, worker_id)
                t2 = clock()
                transactions += 1
                ids.append(task_id)
                claim_ns.append(t1 - t0)
                complete_ns.append(t2 - t1)
                cycle_ns.append(t2 - t0)
            end = clock()
    else:
        with closing(open_queue_db(target)) as db:
            queue = TaskQueue(db)
            ready()
            start = clock()
            while True:
                t0 = clock()
                task = queue.claim_one(worker_id)
                t1 = clock()
                transactions += 1
                if task is None:
                    break
                if handler_s:
                    time.sleep(handler_s)
                queue.complete(task.id, worker_id)
                t2 = clock()
                transactions += 1
                ids.append(task.id)
                claim_ns.append(t1 - t0)
                complete_ns.append(t2 - t1)
                cycle_ns.append(t2 - t0)
            end = clock()
    return ClaimCompleteOutcome(
        start_ns=start,
        end_ns=end,
        ids=ids,
        transactions=transactions,
        claim_ns=claim_ns,
        complete_ns=complete_ns,
        cycle_ns=cycle_ns,
    )


def busy_producer(args: BusyProducerArgs, ready: Ready) -> BusyOutcome:
    """Enqueue single tasks for ``duration_s``, counting every QueueBusyError that comes back."""
    duration = args.duration_s
    pad, base = args.pad_bytes, args.index_base
    clock = time.perf_counter_ns
    waits: list[int] = []
    ids: list[int] = []
    busy = operations = 0
    lock_waits = LockWaits()
    traced = not is_postgres_url(args.target)
    opened = open_queue_db(
        args.target,
        busy_timeout_ms=args.busy_timeout_ms,
        fair_lock=args.fair_lock,
        tracer=lock_waits if traced else None,
    )
    with closing(opened) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        deadline = start + int(duration * 1e9)
        i = 0
        while clock() < deadline:
            t0 = clock()
            operations += 1
            lock_waits.gate_ns = None
            try:
                ids.append(queue.enqueue("bench", payload(base + i, pad)))
            except QueueBusyError:
                busy += 1
            waits.append(lock_waits.single_statement_wait(clock() - t0))
            i += 1
        end = clock()
    return BusyOutcome(
        start_ns=start,
        end_ns=end,
        role="producer",
        operations=operations,
        busy_errors=busy,
        lock_wait_ns=waits,
        ids=ids,
        gate_contended=lock_waits.gate_contended,
    )


class LockWaits:
    """A tracer keeping how long the last ``BEGIN IMMEDIATE`` waited for the write lock, and
    the last write's wait at the fair lock's write gate."""

    def __init__(self) -> None:
        self.last_ns = 0
        self.gate_ns: int | None = None
        self.gate_contended = 0

    def __call__(self, event: TraceEvent) -> None:
        if isinstance(event, TransactionBegan):
            self.last_ns = int(event.lock_wait_seconds * 1e9)
        elif isinstance(event, WriteGateEntered):
            self.gate_ns = int(event.lock_wait_seconds * 1e9)
            self.gate_contended += event.contended

    def single_statement_wait(self, call_ns: int) -> int:
        """The lock wait of one autocommit write (``gate_ns`` reset to None before it).

        Through the write gate: the wait there (SQLite's lock behind it is free; the call also
        runs the statement, and sometimes a checkpoint after letting the gate go, neither of
        which is a wait). Without it SQLite's busy handler waits inside the statement, so the
        whole call stands for the wait: a tiny insert or update plus, now and then, SQLite's
        own checkpoint after the commit.
        """
        return call_ns if self.gate_ns is None else self.gate_ns


def busy_worker(args: BusyWorkerArgs, ready: Ready) -> BusyOutcome:
    """Claim and complete for ``duration_s``, counting every QueueBusyError; then finish up.

    A task whose ``complete`` got busy is retried (each attempt counts as an operation) so
    nothing stays leased when the run ends.
    """
    duration = args.duration_s
    worker_id = args.worker_id
    clock = time.perf_counter_ns
    waits: list[int] = []
    ids: list[int] = []
    busy = operations = unfinished = 0
    claim_waits = LockWaits()
    # SQLite reports a claim's lock wait through the tracer; PostgreSQL has no tracer, and a
    # claim there is one statement whose whole latency stands for its wait.
    traced = not is_postgres_url(args.target)
    opened = open_queue_db(
        args.target,
        busy_timeout_ms=args.busy_timeout_ms,
        fair_lock=args.fair_lock,
        tracer=claim_waits if traced else None,
    )
    with closing(opened) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        deadline = start + int(duration * 1e9)
        while clock() < deadline:
            operations += 1
            t0 = clock()
            claim_waits.last_ns = 0  # a claim that finds nothing takes no lock: it waits 0
            try:
                task = queue.claim_one(worker_id)
            except QueueBusyError:
                busy += 1
                waits.append(claim_waits.last_ns if traced else clock() - t0)
                continue
            waits.append(claim_waits.last_ns if traced else clock() - t0)
            if task is None:
                time.sleep(0.001)
                continue
            give_up = max(deadline, clock()) + int(30e9)
            while True:
                operations += 1
                t0 = clock()
                claim_waits.gate_ns = None
                try:
                    queue.complete(task.id, worker_id)
                except QueueBusyError:
                    busy += 1
                    waits.append(claim_waits.single_statement_wait(clock() - t0))
                    if clock() > give_up:
                        unfinished += 1
                        break
                    continue
                waits.append(claim_waits.single_statement_wait(clock() - t0))
                ids.append(task.id)
                break
        end = clock()
    return BusyOutcome(
        start_ns=start,
        end_ns=end,
        role="worker",
        operations=operations,
        busy_errors=busy,
        lock_wait_ns=waits,
        ids=ids,
        unfinished=unfinished,
        gate_contended=claim_waits.gate_contended,
    )


def paced_writer(args: PacedWriterArgs, ready: Ready) -> PacedWriterOutcome:
    """Commit ``rows_per_commit`` tasks per transaction for ``duration_s``, timing each commit.

    ``rate_per_s`` paces the commits (0: back to back) so the WAL grows at a known speed.
    """
    path, duration = Path(args.target), args.duration_s
    rows, pad, rate = args.rows_per_commit, args.pad_bytes, args.rate_per_s
    overrides: dict[str, int | str] = dict(args.pragma_overrides)
    clock = time.perf_counter_ns
    at_ns: list[int] = []
    latency_ns: list[int] = []
    with QueueDatabase(path, pragma_overrides=overrides) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        deadline = start + int(duration * 1e9)
        step = int(1e9 / rate) if rate > 0 else 0
        next_at = start
        n = 0
        while True:
            now = clock()
            if now >= deadline:
                break
            if step and now < next_at:
                time.sleep((next_at - now) / 1e9)
            items = [{"type": "bench", "payload": payload(n * rows + i, pad)} for i in range(rows)]
            t0 = clock()
            queue.enqueue_many(items)
            t1 = clock()
            at_ns.append(t0)
            latency_ns.append(t1 - t0)
            n += 1
            next_at += step
            if step and next_at < t1 - 50 * step:
                next_at = t1  # far behind (a long stall): do not burst to catch up
        end = clock()
    return PacedWriterOutcome(start_ns=start, end_ns=end, at_ns=at_ns, latency_ns=latency_ns)


def soak_producer(args: SoakProducerArgs, ready: Ready) -> SoakProducerOutcome:
    """Enqueue at a steady pace; a call that comes back busy is counted and not retried."""
    clock = time.perf_counter_ns
    interval_ns = int(1e9 / args.rate_per_s)
    enqueued = busy = 0
    with QueueDatabase(Path(args.target)) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        end_at = start + int(args.duration_s * 1e9)
        due = start
        while due < end_at:
            try:
                queue.enqueue("soak", payload(args.index * 10_000_000 + enqueued, args.pad_bytes))
                enqueued += 1
            except QueueBusyError:
                busy += 1
            due += interval_ns
            pause = due - clock()
            if pause > 0:
                time.sleep(pause / 1e9)
        end = clock()
    return SoakProducerOutcome(start_ns=start, end_ns=end, enqueued=enqueued, busy_errors=busy)


def soak_worker(args: SoakWorkerArgs, ready: Ready) -> SoakWorkerOutcome:
    """Claim one task, work on it and complete it until the time is up; an empty queue waits
    1 ms."""
    clock = time.perf_counter_ns
    at_ns: list[int] = []
    claim_ns: list[int] = []
    completed = busy = 0
    with QueueDatabase(Path(args.target)) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        end_at = start + int(args.duration_s * 1e9)
        while clock() < end_at:
            t0 = clock()
            try:
                task = queue.claim_one(args.worker_id)
            except QueueBusyError:
                busy += 1
                continue
            at_ns.append(t0)
            claim_ns.append(clock() - t0)
            if task is None:
                time.sleep(0.001)
                continue
            if args.work_ms > 0:
                time.sleep(args.work_ms / 1000)
            while True:
                try:
                    queue.complete(task.id, args.worker_id)
                    break
                except QueueBusyError:
                    busy += 1
            completed += 1
        end = clock()
    return SoakWorkerOutcome(
        start_ns=start,
        end_ns=end,
        at_ns=at_ns,
        claim_ns=claim_ns,
        completed=completed,
        busy_errors=busy,
    )


def soak_pruner(args: SoakPrunerArgs, ready: Ready) -> SoakPrunerOutcome:
    """Prune completed tasks past the retention, then sleep, until the time is up."""
    clock = time.perf_counter_ns
    at_ns: list[int] = []
    deleted: list[int] = []
    longest: list[float] = []
    with QueueDatabase(Path(args.target)) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        end_at = start + int(args.duration_s * 1e9)
        while clock() + int(args.interval_s * 1e9) < end_at:
            time.sleep(args.interval_s)
            t0 = clock()
            try:
                result = queue.prune(
                    completed_older_than=timedelta(seconds=args.retention_s),
                    failed_older_than=None,
                )
            except QueueBusyError:
                continue
            at_ns.append(t0)
            deleted.append(result.total)
            longest.append(result.longest_lock_seconds * 1000)
        end = clock()
    return SoakPrunerOutcome(
        start_ns=start, end_ns=end, at_ns=at_ns, deleted=deleted, longest_lock_ms=longest
    )


def soak_backup(args: SoakBackupArgs, ready: Ready) -> SoakBackupOutcome:
    """Wait until ``at_s``, take one rotated backup and verify it."""
    clock = time.perf_counter_ns
    with QueueDatabase(Path(args.target)) as db:
        ready()
        start = clock()
        time.sleep(args.at_s)
        at = clock()
        info = maintenance.backup_rotated(db, args.backup_dir, keep=args.keep)
        seconds = (clock() - at) / 1e9
    check = maintenance.verify(info.path)
    return SoakBackupOutcome(
        start_ns=start,
        end_ns=clock(),
        at_ns=at,
        seconds=seconds,
        bytes=info.bytes,
        verified=check.ok,
        problems=list(check.problems),
    )
