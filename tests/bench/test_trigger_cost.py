"""bench.trigger_cost: every requeue trigger design measured against none, on the session's
PostgreSQL server; the command's usage errors."""

from __future__ import annotations

import pytest

from bench import trigger_cost
from bench.commands import main


@pytest.mark.postgres
def test_a_tiny_measurement_reports_every_design(
    postgres_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = trigger_cost.measure(
        rounds=2, tasks=10, copies=2, dsn=postgres_server_url, progress=lambda line: None
    )
    assert list(result["designs"]) == list(trigger_cost.DESIGNS)
    assert result["clock"] in {"server_cpu", "wall"} and result["server"] == "dsn"
    installed = {design: row["copies"] for design, row in result["designs"].items()}
    assert installed == {
        "none": 0,
        "when on status": 2,
        "when on requeue columns": 2,
        "test in function": 2,
        "transition tables": 1,
    }
    for row in result["designs"].values():
        for op in trigger_cost.OPERATIONS:
            assert row[f"{op}_us"] > 0 and row[f"{op}_ratio"] > 0
    assert result["designs"]["none"]["hot_path_ratio_range"] == [1.0, 1.0]
    lines = trigger_cost.render(result)
    assert len(lines) == 2 + len(trigger_cost.DESIGNS)
    assert lines[-1].startswith("transition tables")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--copies", "0"], "--copies must be at least 1"),
        (["--dsn", "queue.db"], "--dsn must be a postgresql:// URL"),
        (["--rounds", "0"], "--rounds and --tasks must be at least 1"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trigger-cost", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
