"""init: the time to create a new database (directory, connect, PRAGMAs, schema)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.stats import NS_PER_MS, SampleStats, describe_ms
from queue_core import QueueDatabase

if TYPE_CHECKING:
    from bench.context import ScenarioContext


@dataclass(frozen=True)
class Params:
    repetitions: int


@dataclass(frozen=True)
class Samples:
    """Every measured sample, in ms, in the order taken."""

    ms: tuple[float, ...]


@dataclass(frozen=True)
class Summary(SampleStats):
    """The samples' statistics; ``first_ms`` is the unmeasured first creation (one-off imports)."""

    first_ms: float


@dataclass(frozen=True)
class Result:
    summary: Summary
    samples: Samples


def create_once(context: ScenarioContext[Params], label: str) -> float:
    """Create one new database in a directory that does not exist yet; return the ms taken."""
    folder = context.workdir / "init" / label / "nested"
    path = folder / "queue.db"
    t0 = time.perf_counter_ns()
    db = QueueDatabase(path)  # creates the missing directories, connects, applies PRAGMAs
    try:
        db.initialize_schema()
        t1 = time.perf_counter_ns()
    finally:
        db.close()
    return (t1 - t0) / NS_PER_MS


def run(context: ScenarioContext[Params]) -> Result:
    repetitions = context.params.repetitions
    context.sampler.watch(None)
    first_ms = create_once(context, "warmup")  # the first pays one-off imports and caches
    samples = [create_once(context, f"rep-{i:04d}") for i in range(repetitions)]
    stats = describe_ms(samples)
    summary = Summary(**vars(stats), first_ms=round(first_ms, 4))
    context.log(
        f"median {summary.median_ms:.2f} ms, p95 {summary.p95_ms:.2f} ms, "
        f"max {summary.max_ms:.2f} ms over {repetitions}"
    )
    return Result(summary, Samples(tuple(round(value, 4) for value in samples)))
