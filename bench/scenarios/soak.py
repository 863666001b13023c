"""soak: producers, workers, a pruner and one backup together for a fixed time.

Two producers enqueue at a steady rate, workers claim and complete, a pruner deletes completed
tasks older than ``retention_s`` every ``prune_interval_s``, and one online backup runs at
``backup_at_fraction`` of the run. The parent samples the file and WAL sizes and the queue
depth (``TaskQueue.stats()``); the workers time every claim.

The gate of this scenario (two checks, unless ``gate`` is off as in the tiny profile):

- **sizes bounded**: once retention runs, the file stops growing: its largest size in the last
  third is at most ``size_growth_limit`` times the largest in the middle third, and the WAL in
  the last third stays under twice ``journal_size_limit``;
- **claim latency steady**: claim p99 in the last third is within ``p99_ratio_limit`` (1.5x) of
  the first third.

Plus accounting: every enqueued task was completed (pruned or still there) or is still live.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.context import Job
from bench.results import Latency
from bench.sampler import file_size
from bench.scenarios._common import create_database
from bench.stats import NS_PER_MS, latency_ms, percentile
from bench.workers import (
    SoakBackupArgs,
    SoakBackupOutcome,
    SoakProducerArgs,
    SoakProducerOutcome,
    SoakPrunerArgs,
    SoakPrunerOutcome,
    SoakWorkerArgs,
    SoakWorkerOutcome,
)
from queue_core import PRAGMAS, QueueDatabase, TaskQueue, TaskStatus

if TYPE_CHECKING:
    from bench.context import ScenarioContext

MIB = 1024 * 1024


@dataclass(frozen=True)
class Params:
    """``rate_per_s`` is per producer; each worker spends ``work_ms`` on a task between claim
    and complete; ``windows`` is how many claim-latency windows the run is cut into for the
    plot. ``gate`` off logs the gate's verdicts without failing the run."""

    duration_s: float
    producers: int
    workers: int
    rate_per_s: float
    pad_bytes: int
    retention_s: float
    prune_interval_s: float
    backup_at_fraction: float
    sample_interval_s: float
    work_ms: float = 5.0
    windows: int = 30
    gate: bool = True
    size_growth_limit: float = 1.25
    p99_ratio_limit: float = 1.5


@dataclass(frozen=True)
class Timeline:
    """Samples taken by the parent: seconds since the start, sizes in bytes, live tasks."""

    t_s: tuple[float, ...]
    file_bytes: tuple[int, ...]
    wal_bytes: tuple[int, ...]
    depth: tuple[int, ...]


@dataclass(frozen=True)
class ClaimWindow:
    """Claim latency over one slice of the run."""

    t_s: float
    claims: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class PruneRecord:
    t_s: float
    deleted: int
    longest_lock_ms: float


@dataclass(frozen=True)
class BackupRecord:
    t_s: float
    seconds: float
    bytes: int
    verified: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """Thirds are of ``duration_s``; ``bounded`` and ``steady`` are the gate's two verdicts."""

    seconds: float
    enqueued: int
    completed: int
    pruned: int
    live_at_end: int
    claim_latency_ms: Latency
    first_third_p99_ms: float | None
    last_third_p99_ms: float | None
    p99_ratio: float | None
    steady: bool
    max_file_bytes_middle: int
    max_file_bytes_last: int
    max_wal_bytes_last: int
    max_wal_bytes: int
    bounded: bool
    longest_prune_lock_ms: float
    backup_seconds: float | None


@dataclass(frozen=True)
class Result:
    summary: Summary
    timeline: Timeline
    claims: tuple[ClaimWindow, ...]
    prunes: tuple[PruneRecord, ...]
    backup: BackupRecord | None


class _Sampler(threading.Thread):
    """Samples file size, WAL size and queue depth every ``interval_s`` until stopped."""

    def __init__(self, path: Path, interval_s: float) -> None:
        super().__init__(name="bench-soak-sampler", daemon=True)
        self.path, self.interval_s = path, interval_s
        self.wal = Path(f"{path}-wal")
        self.stop = threading.Event()
        self.samples: list[tuple[int, int, int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with QueueDatabase(self.path) as db:
                queue = TaskQueue(db)
                while True:
                    counts = queue.counts()
                    depth = counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING]
                    self.samples.append(
                        (time.perf_counter_ns(), file_size(self.path), file_size(self.wal), depth)
                    )
                    if self.stop.wait(self.interval_s):
                        break
        except BaseException as exc:
            self.error = exc


def run(context: ScenarioContext[Params]) -> Result:
    params = context.params
    path = context.new_db_path("soak")
    create_database(path)
    backup_dir = context.workdir / "soak-backups"
    jobs = [
        Job(
            SoakProducerArgs(str(path), params.duration_s, params.rate_per_s, params.pad_bytes, i),
            "producer",
        )
        for i in range(params.producers)
    ]
    jobs += [
        Job(
            SoakWorkerArgs(str(path), params.duration_s, f"soak-worker-{i}", params.work_ms),
            "worker",
        )
        for i in range(params.workers)
    ]
    jobs.append(
        Job(
            SoakPrunerArgs(
                str(path), params.duration_s, params.retention_s, params.prune_interval_s
            ),
            "pruner",
        )
    )
    jobs.append(
        Job(
            SoakBackupArgs(
                str(path), str(backup_dir), params.duration_s * params.backup_at_fraction, 2
            ),
            "backup",
        )
    )
    context.log(
        f"{params.producers} producers x {params.rate_per_s:g}/s, {params.workers} workers, "
        f"prune every {params.prune_interval_s:g} s, one backup, {params.duration_s:g} s"
    )
    sampler = _Sampler(path, params.sample_interval_s)
    sampler.start()
    try:
        outcomes = context.run_processes(jobs, timeout_s=params.duration_s + 180.0)
    finally:
        sampler.stop.set()
        sampler.join(timeout=30)
    if sampler.error is not None:
        raise RuntimeError(f"the soak sampler failed: {sampler.error!r}")
    producers = [o for o in outcomes if isinstance(o, SoakProducerOutcome)]
    workers = [o for o in outcomes if isinstance(o, SoakWorkerOutcome)]
    (pruner,) = [o for o in outcomes if isinstance(o, SoakPrunerOutcome)]
    backups = [o for o in outcomes if isinstance(o, SoakBackupOutcome)]
    start_ns = min(o.start_ns for o in outcomes)
    with QueueDatabase(path) as db:
        counts = TaskQueue(db).counts()
    return _result(context, params, start_ns, sampler.samples, producers, workers, pruner,
                   backups[0] if backups else None, counts)  # fmt: skip


def _seconds(at_ns: int, start_ns: int) -> float:
    return round((at_ns - start_ns) / 1e9, 4)


def _result(
    context: ScenarioContext[Params],
    params: Params,
    start_ns: int,
    samples: list[tuple[int, int, int, int]],
    producers: list[SoakProducerOutcome],
    workers: list[SoakWorkerOutcome],
    pruner: SoakPrunerOutcome,
    backup: SoakBackupOutcome | None,
    counts: dict[TaskStatus, int],
) -> Result:
    duration = params.duration_s
    third = duration / 3
    samples = [sample for sample in samples if sample[0] >= start_ns]  # from the start on
    timeline = Timeline(
        t_s=tuple(_seconds(at, start_ns) for at, _, _, _ in samples),
        file_bytes=tuple(size for _, size, _, _ in samples),
        wal_bytes=tuple(wal for _, _, wal, _ in samples),
        depth=tuple(depth for _, _, _, depth in samples),
    )
    claims = sorted(
        (_seconds(at, start_ns), ns)
        for worker in workers
        for at, ns in zip(worker.at_ns, worker.claim_ns, strict=True)
    )
    width = duration / params.windows
    windows = []
    for index in range(params.windows):
        low, high = index * width, (index + 1) * width
        in_window = [ns / NS_PER_MS for t, ns in claims if low <= t < high]
        windows.append(
            ClaimWindow(
                t_s=round(low + width / 2, 3),
                claims=len(in_window),
                p50_ms=round(percentile(in_window, 50), 4) if in_window else None,
                p99_ms=round(percentile(in_window, 99), 4) if in_window else None,
            )
        )

    def p99_between(low: float, high: float) -> float | None:
        values = [ns / NS_PER_MS for t, ns in claims if low <= t < high]
        return round(percentile(values, 99), 4) if values else None

    first, last = p99_between(0, third), p99_between(2 * third, duration + 1)
    p99_ratio = None if not first or last is None else round(last / first, 3)
    steady = p99_ratio is not None and p99_ratio <= params.p99_ratio_limit

    def largest(values: tuple[int, ...], low: float, high: float) -> int:
        picked = [v for t, v in zip(timeline.t_s, values, strict=True) if low <= t < high]
        return max(picked, default=0)

    file_middle = largest(timeline.file_bytes, third, 2 * third)
    file_last = largest(timeline.file_bytes, 2 * third, duration + 1)
    wal_last = largest(timeline.wal_bytes, 2 * third, duration + 1)
    wal_limit = 2 * int(PRAGMAS["journal_size_limit"])
    bounded = file_last <= file_middle * params.size_growth_limit and wal_last <= wal_limit

    prunes = tuple(
        PruneRecord(_seconds(at, start_ns), deleted, round(lock_ms, 3))
        for at, deleted, lock_ms in zip(
            pruner.at_ns, pruner.deleted, pruner.longest_lock_ms, strict=True
        )
    )
    backup_record = None
    if backup is not None:
        backup_record = BackupRecord(
            _seconds(backup.at_ns, start_ns),
            round(backup.seconds, 3),
            backup.bytes,
            backup.verified,
            tuple(backup.problems),
        )
    enqueued = sum(p.enqueued for p in producers)
    completed = sum(w.completed for w in workers)
    pruned = sum(record.deleted for record in prunes)
    live = counts[TaskStatus.QUEUED] + counts[TaskStatus.PROCESSING]
    context.check(
        "soak: every task accounted for",
        enqueued == completed + live and counts[TaskStatus.COMPLETED] + pruned == completed,
        f"enqueued {enqueued} = completed {completed} + live {live}; completed in the file "
        f"{counts[TaskStatus.COMPLETED]} + pruned {pruned} = {completed}",
    )
    context.check(
        "soak: the backup taken under load verified",
        backup_record is not None and backup_record.verified,
        "no backup ran" if backup_record is None else
        ("ok" if backup_record.verified else "; ".join(backup_record.problems)),
    )  # fmt: skip
    size_detail = (
        f"file: last third max {file_last / MIB:.1f} MiB vs middle third "
        f"{file_middle / MIB:.1f} MiB (limit x{params.size_growth_limit:g}); WAL last third max "
        f"{wal_last / MIB:.1f} MiB (limit {wal_limit / MIB:.0f} MiB)"
    )
    p99_detail = (
        f"claim p99 first third {first} ms, last third {last} ms, ratio {p99_ratio} "
        f"(limit {params.p99_ratio_limit:g})"
    )
    if params.gate:
        context.check("soak: file and WAL sizes bounded once retention runs", bounded, size_detail)
        context.check("soak: claim p99 steady (last third vs first)", steady, p99_detail)
    else:
        context.log(f"gate off (this profile): {size_detail}; {p99_detail}")
    all_claims = [ns for worker in workers for ns in worker.claim_ns]
    summary = Summary(
        seconds=round(max(o.end_ns for o in workers) / 1e9 - start_ns / 1e9, 3) if workers else 0,
        enqueued=enqueued,
        completed=completed,
        pruned=pruned,
        live_at_end=live,
        claim_latency_ms=latency_ms(all_claims),
        first_third_p99_ms=first,
        last_third_p99_ms=last,
        p99_ratio=p99_ratio,
        steady=steady,
        max_file_bytes_middle=file_middle,
        max_file_bytes_last=file_last,
        max_wal_bytes_last=wal_last,
        max_wal_bytes=max(timeline.wal_bytes, default=0),
        bounded=bounded,
        longest_prune_lock_ms=max((p.longest_lock_ms for p in prunes), default=0.0),
        backup_seconds=None if backup_record is None else backup_record.seconds,
    )
    return Result(summary, timeline, tuple(windows), prunes, backup_record)
