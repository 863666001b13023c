"""connect: the time to open an existing database with every PRAGMA applied."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.scenarios.init import Samples
from bench.stats import NS_PER_MS, SampleStats, describe_ms
from queue_core import QueueDatabase
from queue_core.tracing import Connected, TraceEvent

if TYPE_CHECKING:
    from bench.context import ScenarioContext

__all__ = ["Params", "Result", "Samples", "Summary", "run"]


@dataclass(frozen=True)
class Params:
    repetitions: int


@dataclass(frozen=True)
class Summary(SampleStats):
    """The samples' statistics; ``connect_only_median_ms`` is the connection step alone,
    without the path checks (the ``Connected`` tracer event)."""

    connect_only_median_ms: float | None


@dataclass(frozen=True)
class Result:
    summary: Summary
    samples: Samples


def run(context: ScenarioContext[Params]) -> Result:
    repetitions = context.params.repetitions
    path = context.new_db_path("connect")
    with QueueDatabase(path) as db:
        db.initialize_schema()
    samples: list[float] = []
    inner: list[float] = []

    def on_connect(event: TraceEvent) -> None:
        if isinstance(event, Connected):
            inner.append(event.seconds * 1000)

    for _ in range(repetitions + 1):
        t0 = time.perf_counter_ns()
        db = QueueDatabase(path, tracer=on_connect, trace_statements=False)
        t1 = time.perf_counter_ns()
        db.close()
        samples.append((t1 - t0) / NS_PER_MS)
    samples, inner = samples[1:], inner[1:]  # the first open pays one-off costs
    summary = Summary(
        **vars(describe_ms(samples)), connect_only_median_ms=describe_ms(inner).median_ms
    )
    context.log(
        f"median {summary.median_ms:.3f} ms, p95 {summary.p95_ms:.3f} ms, "
        f"max {summary.max_ms:.3f} ms over {repetitions}"
    )
    return Result(summary, Samples(tuple(round(value, 4) for value in samples)))
