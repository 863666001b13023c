"""The ``worker`` scenario's processes: a WorkerEngine draining, serving a paced producer or
idling, and that producer (their argument and outcome records are in ``bench.workers``).

The engine runs in a thread of the job process, so the job can watch it and stop it; its
executors are spawn children of the job. A job reports ready only once every executor has
imported its handlers, so process start-up is never measured.
"""

from __future__ import annotations

import os
import random
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING

import psutil

from bench.backends import open_queue_db
from bench.baseline_sql import payload
from bench.workers import (
    EngineDrainOutcome,
    EngineIdleOutcome,
    EngineServeOutcome,
    PacedProducerOutcome,
)
from queue_core import TaskQueue, WorkerEngine

if TYPE_CHECKING:
    from bench.workers import (
        EngineArgs,
        EngineDrainArgs,
        EngineIdleArgs,
        EngineServeArgs,
        PacedProducerArgs,
        Ready,
    )
    from queue_core.backend import QueueBackend

START_TIMEOUT_S = 120.0
ENGINE_WORKER_ID = "bench-engine"
POLL_S = 0.01  # coarse: the watching thread shares the GIL with the engine thread


class _EngineThread(threading.Thread):
    """Runs ``engine.run()``; keeps what it raised for :func:`_finish` to re-raise."""

    def __init__(self, engine: WorkerEngine) -> None:
        super().__init__(name="engine", daemon=True)
        self.engine = engine
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            self.engine.run()
        except BaseException as exc:
            self.errors.append(exc)


def _start_engine(db: QueueBackend, args: EngineArgs) -> tuple[WorkerEngine, _EngineThread]:
    # A fast backoff so tasks of killed executors come back at once in the kill variant.
    queue = TaskQueue(db, retry_backoff_seconds=0.01, retry_backoff_max_seconds=0.01)
    engine = WorkerEngine(
        queue,
        {"bench": f"bench.worker_handlers:{args.handler}"},
        concurrency=args.executors,
        prefetch=args.prefetch,
        handle_signals=False,
        worker_id=ENGINE_WORKER_ID,
    )
    thread = _EngineThread(engine)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not engine.ready.wait(0.05):
        if not thread.is_alive():
            cause = thread.errors[0] if thread.errors else None
            raise RuntimeError("the engine failed to start") from cause
        if time.monotonic() > deadline:
            engine.stop(now=True)
            raise TimeoutError("the engine's executors did not start")
    return engine, thread


def _finish(engine: WorkerEngine, thread: _EngineThread) -> None:
    engine.stop()
    thread.join(START_TIMEOUT_S)
    if thread.is_alive():
        raise TimeoutError("the engine did not stop")
    if thread.errors:
        raise thread.errors[0]


def engine_drain(args: EngineDrainArgs, ready: Ready) -> EngineDrainOutcome:
    """Enqueue the backlog in one transaction once the engine is up; time until drained."""
    kills_left = args.kills
    rng = random.Random(1)
    clock = time.perf_counter_ns
    with closing(open_queue_db(args.target)) as db:
        engine, thread = _start_engine(db, args)
        ready()
        with closing(open_queue_db(args.target)) as producer_db:
            items = [
                {"type": "bench", "payload": payload(i, args.pad_bytes)} for i in range(args.tasks)
            ]
            ids = TaskQueue(producer_db).enqueue_many(items)
        start = clock()
        next_kill = time.monotonic() + args.kill_every_s
        kills = 0
        target = args.tasks if args.stop_after is None else args.stop_after
        deadline = time.monotonic() + args.timeout_s
        while engine.completed < target and time.monotonic() < deadline:
            time.sleep(POLL_S)
            if kills_left and time.monotonic() >= next_kill:
                pids = engine.busy_executor_pids()
                if pids:
                    psutil.Process(rng.choice(pids)).kill()
                    kills += 1
                    kills_left -= 1
                next_kill = time.monotonic() + args.kill_every_s
        end = clock()
        _finish(engine, thread)
    return EngineDrainOutcome(
        start_ns=start,
        end_ns=end,
        ids=ids,
        completed=engine.completed,
        kills=kills,
        worker_id=engine.worker_id,
    )


def engine_serve(args: EngineServeArgs, ready: Ready) -> EngineServeOutcome:
    """Run an engine until ``expected`` tasks completed (or ``serve_s`` ran out)."""
    with closing(open_queue_db(args.target)) as db:
        engine, thread = _start_engine(db, args)
        ready()
        deadline = time.monotonic() + args.serve_s
        while engine.completed < args.expected and time.monotonic() < deadline:
            time.sleep(0.05)
        _finish(engine, thread)
    return EngineServeOutcome(completed=engine.completed)


def engine_idle(args: EngineIdleArgs, ready: Ready) -> EngineIdleOutcome:
    """CPU of an engine (its process and its executors) with nothing to do."""
    with closing(open_queue_db(args.target)) as db:
        engine, thread = _start_engine(db, args)
        ready()
        time.sleep(args.settle_s)
        me = psutil.Process(os.getpid())
        children = me.children()

        def cpu() -> tuple[float, float]:
            own = me.cpu_times()
            kids = 0.0
            for child in children:
                try:
                    times = child.cpu_times()
                    kids += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            return own.user + own.system, kids

        own0, kids0 = cpu()
        t0 = time.perf_counter()
        time.sleep(args.idle_s)
        own1, kids1 = cpu()
        wall = time.perf_counter() - t0
        _finish(engine, thread)
    return EngineIdleOutcome(
        wall_s=wall,
        engine_cpu_s=own1 - own0,
        executors_cpu_s=kids1 - kids0,
        executors=len(children),
    )


def paced_producer(args: PacedProducerArgs, ready: Ready) -> PacedProducerOutcome:
    """Enqueue ``count`` single tasks at ``rate_per_s``, stamped for the pickup probe."""
    clock = time.perf_counter_ns
    ids: list[int] = []
    took: list[int] = []
    with closing(open_queue_db(args.target)) as db:
        queue = TaskQueue(db)
        ready()
        start = clock()
        step = int(1e9 / args.rate_per_s)
        next_at = start + int(args.offset_s * 1e9)
        for _ in range(args.count):
            now = clock()
            if now < next_at:
                time.sleep((next_at - now) / 1e9)
            stamp = clock()
            ids.append(queue.enqueue("bench", {"out_dir": args.out_dir, "enqueued_ns": stamp}))
            took.append(clock() - stamp)
            next_at += step
            if next_at < clock() - 50 * step:
                next_at = clock()  # far behind (a stall): do not burst to catch up
        end = clock()
    return PacedProducerOutcome(start_ns=start, end_ns=end, ids=ids, enqueue_ns=took)
