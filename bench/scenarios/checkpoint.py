"""checkpoint: WAL checkpoint stalls under a continuous writer, with and without a long reader.

Four variants: the spec's ``wal_autocheckpoint=1000`` (checkpoints run inside the COMMIT that
crosses 1000 pages) against ``wal_autocheckpoint=0`` plus a background checkpointer thread
(PASSIVE every interval, TRUNCATE when the WAL passes a threshold), each alone and with a reader
holding one read transaction open for the whole run. A stall is a commit slower than 10 times
the median commit.
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
from bench.stats import NS_PER_MS, downsample_indices, latency_ms, percentile
from bench.workers import PacedWriterArgs, PacedWriterOutcome
from queue_core import QueueDatabase

if TYPE_CHECKING:
    from bench.context import ScenarioContext

STALL_FACTOR = 10.0
TIMELINE_POINTS = 2000
DEFAULT_VARIANT = "autocheckpoint"
"""The library's own policy (``wal_autocheckpoint=1000``): key figures lead with it."""


@dataclass(frozen=True)
class Params:
    """The writer is paced at ``rate_per_s`` commits of ``rows_per_commit`` tasks; the
    background checkpointer runs PASSIVE every ``checkpoint_interval_s`` and TRUNCATE above
    ``truncate_above_bytes``. ``variants``: the variants to run (None: all four)."""

    rows_per_commit: int
    pad_bytes: int
    rate_per_s: float
    wal_sample_s: float
    checkpoint_interval_s: float
    truncate_above_bytes: int
    checkpointer_busy_ms: int
    explicit_busy_ms: int
    duration_s: float
    variants: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CheckpointRecord:
    """One ``PRAGMA wal_checkpoint``: ``explicit`` for the PASSIVE and TRUNCATE run after the
    writer stopped (while the reader, if any, still reads)."""

    t_s: float
    mode: str
    duration_ms: float
    busy: int
    log: int
    checkpointed: int
    explicit: bool = False


@dataclass(frozen=True)
class Timeline:
    """Commit latency over time, downsampled to about 2000 points, always keeping every stall."""

    t_s: tuple[float, ...]
    latency_ms: tuple[float, ...]


@dataclass(frozen=True)
class WalSizes:
    t_s: tuple[float, ...]
    bytes: tuple[int, ...]


@dataclass(frozen=True)
class VariantResult:
    """One checkpoint policy; a stall is a commit slower than ``stall_threshold_ms`` (10 times
    the median commit)."""

    name: str
    description: str
    commits: int
    seconds: float
    commits_per_s: float
    commit_latency_ms: Latency
    median_ms: float
    stall_threshold_ms: float
    stalls: int
    worst_stall_ms: float
    max_wal_bytes: int
    timeline: Timeline
    wal: WalSizes
    checkpoints: tuple[CheckpointRecord, ...]


@dataclass(frozen=True)
class VariantSummary:
    stalls: int
    worst_stall_ms: float
    p99_ms: float | None
    max_ms: float | None
    max_wal_bytes: int


@dataclass(frozen=True)
class Summary:
    """Across the variants run; ``by_variant`` is keyed by variant name."""

    worst_stall_ms: float | None
    total_stalls: int
    max_wal_bytes: int | None
    by_variant: dict[str, VariantSummary]


@dataclass(frozen=True)
class Result:
    summary: Summary
    variants: tuple[VariantResult, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    background: bool
    reader: bool


VARIANTS = (
    Variant(
        "autocheckpoint",
        "wal_autocheckpoint=1000 (the spec): PASSIVE inside COMMIT",
        background=False,
        reader=False,
    ),
    Variant(
        "autocheckpoint_reader",
        "wal_autocheckpoint=1000 with a reader holding one long read transaction",
        background=False,
        reader=True,
    ),
    Variant(
        "background",
        "wal_autocheckpoint=0 and a background checkpointer thread "
        "(PASSIVE periodically, TRUNCATE above a WAL size)",
        background=True,
        reader=False,
    ),
    Variant(
        "background_reader",
        "background checkpointer with a reader holding one long read transaction",
        background=True,
        reader=True,
    ),
)


@dataclass(frozen=True)
class _Checkpointed:
    at_ns: int
    mode: str
    duration_ms: float
    busy: int
    log: int
    checkpointed: int


def checkpoint(db: QueueDatabase, mode: str) -> _Checkpointed:
    """Run ``PRAGMA wal_checkpoint(mode)`` on ``db``; its timing and (busy, log, checkpointed)."""
    t0 = time.perf_counter_ns()
    row = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    t1 = time.perf_counter_ns()
    return _Checkpointed(
        at_ns=t0,
        mode=mode,
        duration_ms=round((t1 - t0) / NS_PER_MS, 4),
        busy=int(row[0]),
        log=int(row[1]),
        checkpointed=int(row[2]),
    )


class Reader(threading.Thread):
    """Holds one read transaction (a pinned snapshot) until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="bench-reader", daemon=True)
        self.path = path
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with QueueDatabase(self.path) as db:
                conn = db.get_connection()
                conn.execute("BEGIN")
                conn.execute("SELECT count(*) FROM task_queue").fetchall()
                self.ready.set()
                self.stop.wait()
                conn.execute("COMMIT")
        except BaseException as exc:
            self.error = exc
            self.ready.set()


class Checkpointer(threading.Thread):
    """A background checkpointer on its own connection."""

    def __init__(self, path: Path, interval_s: float, truncate_bytes: int, busy_ms: int) -> None:
        super().__init__(name="bench-checkpointer", daemon=True)
        self.path, self.interval_s = path, interval_s
        self.truncate_bytes, self.busy_ms = truncate_bytes, busy_ms
        self.stop = threading.Event()
        self.records: list[_Checkpointed] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        wal = Path(f"{self.path}-wal")
        try:
            with QueueDatabase(
                self.path, busy_timeout_ms=self.busy_ms, pragma_overrides={"wal_autocheckpoint": 0}
            ) as db:
                while not self.stop.wait(self.interval_s):
                    self.records.append(checkpoint(db, "PASSIVE"))
                    if file_size(wal) > self.truncate_bytes:
                        self.records.append(checkpoint(db, "TRUNCATE"))
        except BaseException as exc:
            self.error = exc


class WalWatcher(threading.Thread):
    """Samples the WAL file's size with ``os.stat`` every ``interval_s``."""

    def __init__(self, path: Path, interval_s: float) -> None:
        super().__init__(name="bench-wal-watcher", daemon=True)
        self.wal = Path(f"{path}-wal")
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.samples: list[tuple[int, int]] = []

    def run(self) -> None:
        while True:
            self.samples.append((time.perf_counter_ns(), file_size(self.wal)))
            if self.stop.wait(self.interval_s):
                break
        self.samples.append((time.perf_counter_ns(), file_size(self.wal)))


def _variant(context: ScenarioContext[Params], variant: Variant) -> VariantResult:
    params = context.params
    path = context.new_db_path(f"checkpoint-{variant.name}")
    create_database(path)
    overrides: tuple[tuple[str, int | str], ...] = (
        (("wal_autocheckpoint", 0),) if variant.background else ()
    )
    watcher = WalWatcher(path, params.wal_sample_s)
    reader = Reader(path) if variant.reader else None
    checkpointer = (
        Checkpointer(
            path,
            params.checkpoint_interval_s,
            params.truncate_above_bytes,
            params.checkpointer_busy_ms,
        )
        if variant.background
        else None
    )
    explicit: list[_Checkpointed] = []
    # Opened before the writer, so the writer's close is not the last one (which would
    # checkpoint and delete the WAL) and the explicit checkpoints below have work to do.
    holder = QueueDatabase(path, busy_timeout_ms=params.explicit_busy_ms)
    watcher.start()
    try:
        if reader is not None:
            reader.start()
            reader.ready.wait(timeout=30)
            if reader.error is not None:
                raise RuntimeError(f"reader failed: {reader.error!r}")
        if checkpointer is not None:
            checkpointer.start()
        job = Job(
            PacedWriterArgs(
                target=str(path),
                duration_s=params.duration_s,
                rows_per_commit=params.rows_per_commit,
                pad_bytes=params.pad_bytes,
                rate_per_s=params.rate_per_s,
                pragma_overrides=overrides,
            ),
            "writer",
        )
        outcome: PacedWriterOutcome
        (outcome,) = context.run_processes([job])
        if checkpointer is not None:
            checkpointer.stop.set()
            checkpointer.join(timeout=30)
        # Explicit checkpoints after the writer stopped (the reader, if any, still reads).
        explicit.append(checkpoint(holder, "PASSIVE"))
        explicit.append(checkpoint(holder, "TRUNCATE"))
    finally:
        holder.close()
        if checkpointer is not None:
            checkpointer.stop.set()
            checkpointer.join(timeout=30)
        if reader is not None:
            reader.stop.set()
            reader.join(timeout=30)
        watcher.stop.set()
        watcher.join(timeout=30)
    if checkpointer is not None and checkpointer.error is not None:
        raise RuntimeError(f"checkpointer failed: {checkpointer.error!r}")

    origin = outcome.start_ns
    latencies = [ns / NS_PER_MS for ns in outcome.latency_ns]
    at_s = [(ns - origin) / 1e9 for ns in outcome.at_ns]
    median = percentile(latencies, 50) if latencies else 0.0
    threshold = median * STALL_FACTOR
    stall_idx = [i for i, value in enumerate(latencies) if value > threshold]
    keep = downsample_indices(len(latencies), TIMELINE_POINTS, stall_idx)
    wal_keep = downsample_indices(len(watcher.samples), TIMELINE_POINTS)
    wal_t = [round((watcher.samples[i][0] - origin) / 1e9, 4) for i in wal_keep]
    wal_b = [watcher.samples[i][1] for i in wal_keep]
    background = checkpointer.records if checkpointer is not None else []
    checkpoints = tuple(
        CheckpointRecord(
            t_s=round((record.at_ns - origin) / 1e9, 4),
            mode=record.mode,
            duration_ms=record.duration_ms,
            busy=record.busy,
            log=record.log,
            checkpointed=record.checkpointed,
            explicit=explicit_run,
        )
        for records, explicit_run in ((background, False), (explicit, True))
        for record in records
    )
    seconds = (outcome.end_ns - origin) / 1e9
    return VariantResult(
        name=variant.name,
        description=variant.description,
        commits=len(latencies),
        seconds=round(seconds, 4),
        commits_per_s=round(len(latencies) / seconds, 2) if seconds > 0 else 0.0,
        commit_latency_ms=latency_ms(outcome.latency_ns),
        median_ms=round(median, 4),
        stall_threshold_ms=round(threshold, 4),
        stalls=len(stall_idx),
        worst_stall_ms=round(max((latencies[i] for i in stall_idx), default=0.0), 4),
        max_wal_bytes=max((size for _, size in watcher.samples), default=0),
        timeline=Timeline(
            t_s=tuple(round(at_s[i], 4) for i in keep),
            latency_ms=tuple(round(latencies[i], 4) for i in keep),
        ),
        wal=WalSizes(tuple(wal_t), tuple(wal_b)),
        checkpoints=checkpoints,
    )


def run(context: ScenarioContext[Params]) -> Result:
    names = context.params.variants
    chosen = [v for v in VARIANTS if names is None or v.name in names]
    variants: list[VariantResult] = []
    for variant in chosen:
        row = _variant(context, variant)
        variants.append(row)
        context.log(
            f"{variant.name:22} {row.commits} commits, median {row.median_ms:.3f} ms, "
            f"p99 {row.commit_latency_ms.p99} ms, {row.stalls} stalls, worst "
            f"{row.worst_stall_ms:.1f} ms, max WAL {row.max_wal_bytes / 1e6:.1f} MB"
        )
    summary = Summary(
        worst_stall_ms=max((v.worst_stall_ms for v in variants), default=None),
        total_stalls=sum(v.stalls for v in variants),
        max_wal_bytes=max((v.max_wal_bytes for v in variants), default=None),
        by_variant={
            v.name: VariantSummary(
                stalls=v.stalls,
                worst_stall_ms=v.worst_stall_ms,
                p99_ms=v.commit_latency_ms.p99,
                max_ms=v.commit_latency_ms.max,
                max_wal_bytes=v.max_wal_bytes,
            )
            for v in variants
        },
    )
    return Result(summary, tuple(variants))
