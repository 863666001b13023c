"""bench.tracer_overhead: the three variants run the same work and report ratios to bare."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import tracer_overhead
from queue_core import QueueDatabase, TaskQueue


def test_a_tiny_measurement_reports_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert tracer_overhead.tracer_supported()
    result = tracer_overhead.measure(rounds=3, tasks=4)
    assert set(result["operations"]) == set(tracer_overhead.OPERATIONS)
    for row in result["operations"].values():
        assert row["bare_per_s"] > 0
        for name in tracer_overhead.VARIANTS[1:]:
            assert row[f"{name}_over_bare"] > 0
    assert tracer_overhead.main(["--rounds", "1", "--tasks", "2"]) == 0
    assert "library+lock_tracer" in capsys.readouterr().out


def test_the_counting_tracer_sees_every_kind_of_event(tmp_path: Path) -> None:
    tracer = tracer_overhead.CountingTracer()
    with QueueDatabase(tmp_path / "q.db", tracer=tracer) as db:
        db.initialize_schema()
        TaskQueue(db).claim("w")
    assert set(tracer.counts) == {"Connected", "Statement", "TransactionBegan"}
