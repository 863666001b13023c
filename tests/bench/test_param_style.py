"""bench.param_style: the named-versus-positional measurement runs and compares like with like."""

from __future__ import annotations

import pytest

from bench import param_style
from queue_core import sql


def test_restyle_turns_each_placeholder_into_the_other_style() -> None:
    order = ("now", "now", "task_id")
    named = param_style.restyle("SET a = ?, b = ? WHERE id = ?", order, named=True)
    assert named == "SET a = :now, b = :now WHERE id = :task_id"
    assert param_style.restyle(named, order, named=False) == "SET a = ?, b = ? WHERE id = ?"
    with pytest.raises(ValueError, match="placeholders"):
        param_style.restyle("WHERE id = ?", order, named=True)
    with pytest.raises(ValueError, match="names"):
        param_style.restyle("SET a = :at, b = :at WHERE id = :id", order, named=False)


def test_both_styles_run_the_shipped_statements() -> None:
    shipped = sql.queries()
    positional, named = param_style.statements("positional"), param_style.statements("named")
    for name in param_style.PARAMETER_ORDER:
        assert shipped[name] in (positional[name], named[name])
        assert "?" not in named[name] and ":" not in positional[name].replace("%H:%M:%f", "")


def test_a_tiny_measurement_reports_every_operation(capsys: pytest.CaptureFixture[str]) -> None:
    result = param_style.measure(rounds=2, tasks=5)
    assert set(result["operations"]) == set(param_style.OPERATIONS)
    for row in result["operations"].values():
        assert row["positional_us"] > 0 and row["named_us"] > 0
        assert row["round_ratio_min"] <= row["named_over_positional"] <= row["round_ratio_max"]
    assert param_style.main(["--rounds", "1", "--tasks", "3"]) == 0
    assert "named/positional" in capsys.readouterr().out
