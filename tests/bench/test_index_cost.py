"""bench.index_cost: every droppable schema object and older version, measured against shipped;
bench.instruction_count: a fixed amount of one hot-path operation for callgrind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import index_cost, instruction_count
from queue_core import QueueDatabase, TaskQueue, TaskStatus, schema, sql


def test_the_variants_drop_every_later_object_but_the_claims_own_index() -> None:
    names = [variant.name for variant in index_cost.variants()]
    assert names[0] == index_cost.SHIPPED
    assert "without ix_task_queued_region" in names
    assert "without trg_task_finished_count_enter" in names
    assert "without ix_task_lease_expiry" not in names  # the claim names it (INDEXED BY)
    assert "without ix_task_status_prio_time" not in names  # the specification's, unless --spec
    older = [m.version for m in sql.migrations()][1:-1]
    assert [name for name in names if name.startswith("schema ")] == [
        f"schema {version}" for version in reversed(older)
    ]
    assert "schema 2" in names and f"schema {schema.latest_version()}" not in names
    with_spec = [variant.name for variant in index_cost.variants(spec=True)]
    assert "without ix_task_status_prio_time" in with_spec
    assert "without uq_task_idempotency" not in with_spec  # a rule, not a cost


def test_a_tiny_measurement_reports_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    result = index_cost.measure(rounds=1, tasks=5)
    rows = result["variants"]
    assert list(rows) == [variant.name for variant in index_cost.variants()]
    for op in index_cost.OPERATIONS:
        assert rows[index_cost.SHIPPED][f"{op}_ratio"] == 1.0
        assert all(row[f"{op}_per_s"] > 0 for row in rows.values())
    assert index_cost.main(["--rounds", "1", "--tasks", "3"]) == 0
    assert "schema 2" in capsys.readouterr().out


def test_profile_names_the_hot_paths(capsys: pytest.CaptureFixture[str]) -> None:
    text = index_cost.profile(tasks=5, top=3)
    assert "== enqueue_many" in text and "== claim+complete" in text
    assert index_cost.main(["--profile", "--tasks", "3"]) == 0
    assert "claim+complete" in capsys.readouterr().out
    assert index_cost.main(["--profile", "--json"]) == 2


@pytest.mark.parametrize("operation", instruction_count.OPERATIONS)
def test_instruction_count_does_its_operation(tmp_path: Path, operation: str) -> None:
    frames = instruction_count.run(tmp_path, operation, 3)
    assert frames > 0  # every operation commits pages to the WAL
    with QueueDatabase(tmp_path / "queue.db") as db:
        counts = TaskQueue(db).counts()
    if operation == "cc":
        assert counts[TaskStatus.COMPLETED] == 4  # the warm-up and three counted
    else:
        assert counts[TaskStatus.COMPLETED] == 1


def test_instruction_count_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert instruction_count.main(["cc", "2"]) == 0
    assert "WAL frames per operation" in capsys.readouterr().err
    assert instruction_count.main(["cc", "zero"]) == 2
    assert instruction_count.main(["nope", "1"]) == 2
    assert "error: bad arguments" in capsys.readouterr().err
