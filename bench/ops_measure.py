"""Measure the operations targets on a large file: ``python -m bench ops PART [options]``.

A standalone measurement (it does not go through ``bench run``) for the figures of the
operations issue; every part prints one JSON object:

- ``build``: make the template file (``--completed`` old completed tasks, ``--queued`` queued).
- ``stats``: time ``TaskQueue.stats()`` and ``counts()`` on a copy of the template.
- ``prune``: 4 workers claim and complete for ``--baseline-s``, then keep going while
  ``prune()`` deletes the old completed tasks; claim latency without and during the prune, and
  how long each prune transaction held the write lock.
- ``backup``: 2 producers and 2 workers run while ``backup()`` copies the file with each method;
  duration, the largest WAL seen, the longest writer call during the backup, then verify,
  restore into a scratch file and ``integrity_check``.

The template is built once (``--template``) and copied for each part, so parts can be repeated.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from queue_core import QueueDatabase, TaskQueue
from queue_core.exceptions import QueueBusyError
from queue_core.maintenance import BackupMethod

SPAWN = multiprocessing.get_context("spawn")
DAY_MS = 86_400_000


def build(template: Path, completed: int, queued: int) -> dict[str, Any]:
    """Create ``template`` with ``completed`` tasks finished 30 days ago and ``queued`` due."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{template}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    with QueueDatabase(template) as db:
        db.initialize_schema()
        with db.transaction() as conn:
            conn.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO task_queue (type, payload, status, attempts, run_after_utc,
                    reserved_at_utc, processing_started_utc, finished_at_utc, locked_by,
                    created_at_utc, updated_at_utc)
                SELECT 'type' || (i % 4), '{"n":' || i || ',"pad":"' || hex(randomblob(40)) || '"}',
                    'completed', 1, t, t, t, t, 'builder', t, t
                FROM (SELECT i, strftime('%Y-%m-%d %H:%M:%f', 'now', '-30 days',
                                         '+' || (i / 1000.0) || ' seconds') AS t FROM n)
                """,
                (completed,),
            )
            # Tasks enter the queue unfinished and the counters follow their transitions, so
            # rows inserted already completed are counted here, as migration 0004 counted the
            # rows it found.
            conn.execute(
                """
                INSERT INTO finished_task_counts (type, status, n)
                SELECT type, status, count(*) FROM task_queue
                WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY type, status
                ON CONFLICT (type, status) DO UPDATE SET n = n + excluded.n
                """
            )
            conn.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO task_queue (type, payload, run_after_utc, created_at_utc,
                    updated_at_utc)
                SELECT 'type' || (i % 4), '{"n":' || i || '}',
                    strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hours'),
                    strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hours'),
                    strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hours')
                FROM n
                """,
                (queued,),
            )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "part": "build",
        "completed": completed,
        "queued": queued,
        "seconds": round(time.perf_counter() - started, 1),
        "bytes": template.stat().st_size,
    }


def copy_template(template: Path, work: Path) -> Path:
    target = work / "queue.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)
    return target


def stats_part(path: Path, repeats: int) -> dict[str, Any]:
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        queue.stats()  # warm the cache: a dashboard polls a warm connection
        timings: dict[str, list[float]] = {"stats": [], "counts": [], "count_star_scan": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            snapshot = queue.stats()
            t1 = time.perf_counter()
            queue.counts()
            t2 = time.perf_counter()
            db.execute("SELECT status, count(*) FROM task_queue GROUP BY status").fetchall()
            t3 = time.perf_counter()
            timings["stats"].append(t1 - t0)
            timings["counts"].append(t2 - t1)
            timings["count_star_scan"].append(t3 - t2)
    return {
        "part": "stats",
        "repeats": repeats,
        "counts": {status.value: n for status, n in snapshot.counts.items()},
        **{f"{name}_ms": _summary(values) for name, values in timings.items()},
    }


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(value * 1000 for value in seconds)
    return {
        "p50": round(statistics.median(ms), 3),
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "max": round(ms[-1], 3),
    }


def claim_worker(path: str, worker_id: str, stop: Any, out: Any) -> None:
    """Claim, complete and enqueue a replacement until ``stop`` is set, so the queue depth stays
    the same all run; report (wall-clock start, claim seconds) of every claim."""
    samples: list[tuple[float, float]] = []
    busy = 0
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                task = queue.claim_one(worker_id)
            except QueueBusyError:
                busy += 1
                continue
            samples.append((time.time(), time.perf_counter() - t0))
            if task is None:
                time.sleep(0.001)
                continue
            try:
                queue.complete(task.id, worker_id)
                queue.enqueue(task.type, task.payload)
            except QueueBusyError:
                busy += 1
    out.put({"worker": worker_id, "samples": samples, "busy": busy})


def producer(path: str, index: int, stop: Any, out: Any) -> None:
    """Enqueue one task at a time until ``stop`` is set; report each call's latency."""
    samples: list[tuple[float, float]] = []
    with QueueDatabase(path) as db:
        queue = TaskQueue(db)
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            queue.enqueue("made", {"producer": index, "n": n})
            samples.append((time.time(), time.perf_counter() - t0))
            n += 1
            time.sleep(0.0005)
    out.put({"worker": f"producer-{index}", "samples": samples, "busy": 0})


def _start(target: Any, args_list: list[tuple[Any, ...]]) -> tuple[list[Any], Any, Any]:
    stop = SPAWN.Event()
    out = SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*args, stop, out)) for args in args_list]
    for proc in procs:
        proc.start()
    return procs, stop, out


def _collect(procs: list[Any], stop: Any, out: Any) -> list[dict[str, Any]]:
    stop.set()
    reports = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return reports


def _window(reports: list[dict[str, Any]], start: float, end: float) -> list[float]:
    return [
        seconds
        for report in reports
        for at, seconds in report["samples"]
        if start <= at < end and not report["worker"].startswith("producer")
    ]


def prune_part(
    path: Path, baseline_s: float, batch_size: int, pause_s: float | None, lock_target_s: float
) -> dict[str, Any]:
    """Claim latency of 4 workers for ``baseline_s`` before the prune, during it, and for
    ``baseline_s`` after it; "without" pools before and after, so that load from elsewhere on
    the machine weighs on both sides alike."""
    procs, stop, out = _start(claim_worker, [(str(path), f"w{i}") for i in range(4)])
    time.sleep(3.0)  # the workers start (spawn) and warm up
    base_start = time.time()
    time.sleep(baseline_s)
    base_end = time.time()
    with QueueDatabase(path) as db:
        result = TaskQueue(db).prune(
            completed_older_than=timedelta(days=7),
            failed_older_than=None,
            batch_size=batch_size,
            pause_seconds=pause_s,
            lock_target_seconds=lock_target_s,
        )
    prune_end = time.time()
    time.sleep(baseline_s)
    after_end = time.time()
    reports = _collect(procs, stop, out)
    before = _window(reports, base_start, base_end)
    after = _window(reports, prune_end, after_end)
    without = before + after
    during = _window(reports, base_end, prune_end)
    p99_without = _summary(without)["p99"]
    p99_during = _summary(during)["p99"]
    return {
        "part": "prune",
        "batch_size": batch_size,
        "pause_s": pause_s,
        "lock_target_ms": lock_target_s * 1000,
        "prune": result.to_dict(),
        "claims_without": len(without),
        "claims_during": len(during),
        "prune_lock_ms": _summary(list(result.lock_holds)),
        "claim_ms_before": _summary(before),
        "claim_ms_after": _summary(after),
        "claim_ms_without": _summary(without),
        "claim_ms_during": _summary(during),
        "p99_ratio": round(p99_during / p99_without, 2),
        "prune_holds_over_50ms": [
            [index, round(held * 1000, 1)]
            for index, held in enumerate(result.lock_holds)
            if held > 0.050
        ],
        "busy_errors": sum(report["busy"] for report in reports),
    }


def backup_part(path: Path, method: BackupMethod, work: Path) -> dict[str, Any]:
    from queue_core import maintenance

    dest = work / f"backup-{method}.db"
    dest.unlink(missing_ok=True)
    procs, stop, out = _start(claim_worker, [(str(path), f"w{i}") for i in range(2)])
    producers, pstop, pout = _start(producer, [(str(path), i) for i in range(2)])
    time.sleep(3.0)
    wal = Path(f"{path}-wal")
    largest_wal = 0
    sampling = threading.Event()

    def sample_wal() -> None:
        nonlocal largest_wal
        while not sampling.is_set():
            with contextlib.suppress(FileNotFoundError):
                largest_wal = max(largest_wal, wal.stat().st_size)
            time.sleep(0.01)

    wal_before = wal.stat().st_size if wal.exists() else 0
    sampler = threading.Thread(target=sample_wal)
    sampler.start()
    before_start = time.time()
    time.sleep(3.0)
    start = time.time()
    with QueueDatabase(path) as db:
        info = maintenance.backup(db, dest, method=method)
    end = time.time()
    largest_during = largest_wal
    time.sleep(3.0)  # writers go on: the next checkpoints recycle the WAL and truncate it
    wal_after = wal.stat().st_size if wal.exists() else 0
    sampling.set()
    sampler.join()
    reports = _collect(procs, stop, out) + _collect(producers, pstop, pout)
    writer_calls = [
        seconds for report in reports for at, seconds in report["samples"] if start <= at < end
    ]
    before_calls = [
        seconds
        for report in reports
        for at, seconds in report["samples"]
        if before_start <= at < start
    ]
    verified = maintenance.verify(dest)
    restored = work / "restored.db"  # restore() into a scratch file: the live one stays as it is
    for suffix in ("", "-wal", "-shm"):
        Path(f"{restored}{suffix}").unlink(missing_ok=True)
    restore_start = time.perf_counter()
    maintenance.restore(restored, dest, keep_current=False)
    restore_seconds = time.perf_counter() - restore_start
    with QueueDatabase(restored) as db:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        counts = TaskQueue(db).counts()
    return {
        "part": "backup",
        "method": method,
        "seconds": round(end - start, 2),
        "backup": info.to_dict(),
        "wal_bytes_before": wal_before,
        "largest_wal_bytes": largest_during,
        "wal_bytes_3s_after": wal_after,
        "writer_calls_during": len(writer_calls),
        "writer_ms_during": _summary(writer_calls) if writer_calls else None,
        "writer_ms_before": _summary(before_calls) if before_calls else None,
        "verify": verified.to_dict(),
        "restore_seconds": round(restore_seconds, 2),
        "restored_integrity": ok,
        "restored_tasks": sum(counts.values()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m bench ops`` (and ``python -m bench.ops_measure``)."""
    parser.add_argument("part", choices=["build", "stats", "prune", "backup"])
    parser.add_argument("--template", type=Path, default=Path("ops-template.db"))
    parser.add_argument("--work", type=Path, default=Path("ops-work"))
    parser.add_argument("--completed", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--pause-s", type=float, default=None)
    parser.add_argument("--lock-target-ms", type=float, default=20.0)
    parser.add_argument("--method", choices=["vacuum_into", "backup_api"], default="backup_api")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the part ``args`` name and return its report (one JSON-ready dict)."""
    if args.part == "build":
        report = build(args.template, args.completed, args.queued)
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        path = copy_template(args.template, args.work)
        if args.part == "stats":
            report = stats_part(path, args.repeats)
        elif args.part == "prune":
            report = prune_part(
                path, args.baseline_s, args.batch_size, args.pause_s, args.lock_target_ms / 1000
            )
        else:
            report = backup_part(path, args.method, args.work)
    report["cpu_count"] = os.cpu_count()
    report["sqlite"] = sqlite3.sqlite_version
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.ops_measure``: the same as ``python -m bench ops``."""
    from bench.commands import main as bench_main

    return bench_main(["ops", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
