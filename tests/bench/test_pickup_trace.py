"""bench.pickup_trace: every task is traced through each stage, and the command prints them."""

from __future__ import annotations

import pytest

from bench import pickup_trace
from bench.commands import main

pytestmark = pytest.mark.slow


def test_a_short_trace_times_every_stage_of_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    result = pickup_trace.measure(rate=200, seconds=0.5, executors=2, producers=2)
    assert result["tasks"] == result["traced"] == 100
    for name in ("total", *pickup_trace.STAGES):
        stage = result["stages_ms"][name]
        assert stage["p50"] is not None and stage["max"] is not None
    assert result["stages_ms"]["total"]["p50"] > 0
    assert result["claims"] >= 1 and result["engine_lock"]["transactions"] >= 1
    assert main(["pickup-trace", "--rate", "100", "--seconds", "0.2", "--executors", "1"]) == 0
    assert "commit_to_claim" in capsys.readouterr().out


def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pickup-trace", "--rate", "0"]) == 2
    assert "error:" in capsys.readouterr().err
