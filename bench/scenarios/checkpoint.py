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
from typing import TYPE_CHECKING, Any

from bench.context import Job
from bench.sampler import file_size
from bench.scenarios._common import create_database
from bench.stats import NS_PER_MS, downsample_indices, latency_ms, percentile
from queue_core import QueueDatabase

if TYPE_CHECKING:
    from bench.context import ScenarioContext

STALL_FACTOR = 10.0
TIMELINE_POINTS = 2000


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


def checkpoint(db: QueueDatabase, mode: str) -> dict[str, Any]:
    """Run ``PRAGMA wal_checkpoint(mode)`` on ``db``; its timing and (busy, log, checkpointed)."""
    t0 = time.perf_counter_ns()
    row = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    t1 = time.perf_counter_ns()
    return {
        "at_ns": t0,
        "mode": mode,
        "duration_ms": round((t1 - t0) / NS_PER_MS, 4),
        "busy": int(row[0]),
        "log": int(row[1]),
        "checkpointed": int(row[2]),
    }


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
        self.records: list[dict[str, Any]] = []
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


def _variant(context: ScenarioContext, variant: Variant) -> dict[str, Any]:
    params = context.params
    path = context.new_db_path(f"checkpoint-{variant.name}")
    create_database(path)
    overrides = {"wal_autocheckpoint": 0} if variant.background else {}
    watcher = WalWatcher(path, float(params["wal_sample_s"]))
    reader = Reader(path) if variant.reader else None
    checkpointer = (
        Checkpointer(
            path,
            float(params["checkpoint_interval_s"]),
            int(params["truncate_above_bytes"]),
            int(params["checkpointer_busy_ms"]),
        )
        if variant.background
        else None
    )
    explicit: list[dict[str, Any]] = []
    # Opened before the writer, so the writer's close is not the last one (which would
    # checkpoint and delete the WAL) and the explicit checkpoints below have work to do.
    holder = QueueDatabase(path, busy_timeout_ms=int(params["explicit_busy_ms"]))
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
            "paced_writer",
            {
                "db_path": str(path),
                "duration_s": float(params["duration_s"]),
                "rows_per_commit": int(params["rows_per_commit"]),
                "pad_bytes": int(params["pad_bytes"]),
                "rate_per_s": float(params["rate_per_s"]),
                "pragma_overrides": overrides,
            },
            "writer",
        )
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

    origin = int(outcome["start_ns"])
    latencies = [ns / NS_PER_MS for ns in outcome["latency_ns"]]
    at_s = [(ns - origin) / 1e9 for ns in outcome["at_ns"]]
    median = percentile(latencies, 50) if latencies else 0.0
    threshold = median * STALL_FACTOR
    stall_idx = [i for i, value in enumerate(latencies) if value > threshold]
    keep = downsample_indices(len(latencies), TIMELINE_POINTS, stall_idx)
    wal_keep = downsample_indices(len(watcher.samples), TIMELINE_POINTS)
    wal_t = [round((watcher.samples[i][0] - origin) / 1e9, 4) for i in wal_keep]
    wal_b = [watcher.samples[i][1] for i in wal_keep]
    records = (checkpointer.records if checkpointer is not None else []) + [
        {**record, "explicit": True} for record in explicit
    ]
    checkpoints = [
        {"t_s": round((record.pop("at_ns") - origin) / 1e9, 4), **record} for record in records
    ]
    for record in checkpoints:
        record.setdefault("explicit", False)
    seconds = (int(outcome["end_ns"]) - origin) / 1e9
    return {
        "name": variant.name,
        "description": variant.description,
        "commits": len(latencies),
        "seconds": round(seconds, 4),
        "commits_per_s": round(len(latencies) / seconds, 2) if seconds > 0 else 0.0,
        "commit_latency_ms": latency_ms(outcome["latency_ns"]),
        "median_ms": round(median, 4),
        "stall_threshold_ms": round(threshold, 4),
        "stalls": len(stall_idx),
        "worst_stall_ms": round(max((latencies[i] for i in stall_idx), default=0.0), 4),
        "max_wal_bytes": max((size for _, size in watcher.samples), default=0),
        "timeline": {
            "t_s": [round(at_s[i], 4) for i in keep],
            "latency_ms": [round(latencies[i], 4) for i in keep],
        },
        "wal": {"t_s": wal_t, "bytes": wal_b},
        "checkpoints": checkpoints,
    }


def run(context: ScenarioContext) -> dict[str, Any]:
    names = context.params.get("variants")
    chosen = [v for v in VARIANTS if names is None or v.name in names]
    variants: list[dict[str, Any]] = []
    for variant in chosen:
        row = _variant(context, variant)
        variants.append(row)
        context.log(
            f"{variant.name:22} {row['commits']} commits, median {row['median_ms']:.3f} ms, "
            f"p99 {row['commit_latency_ms']['p99']} ms, {row['stalls']} stalls, worst "
            f"{row['worst_stall_ms']:.1f} ms, max WAL {row['max_wal_bytes'] / 1e6:.1f} MB"
        )
    summary = {
        "worst_stall_ms": max((v["worst_stall_ms"] for v in variants), default=None),
        "total_stalls": sum(v["stalls"] for v in variants),
        "max_wal_bytes": max((v["max_wal_bytes"] for v in variants), default=None),
        "by_variant": {
            v["name"]: {
                "stalls": v["stalls"],
                "worst_stall_ms": v["worst_stall_ms"],
                "p99_ms": v["commit_latency_ms"]["p99"],
                "max_ms": v["commit_latency_ms"]["max"],
                "max_wal_bytes": v["max_wal_bytes"],
            }
            for v in variants
        },
    }
    return {"summary": summary, "variants": variants}
