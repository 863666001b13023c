"""bench.compare: change per metric, regression flags, and the exit code of the NEW run's gate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import compare
from bench.commands import main
from tests.unit.bench_results_factory import make_results, make_run, write_results


def metric(results: dict[str, Any], metric_id: str) -> dict[str, Any]:
    return next(m for m in results["metrics"] if m["id"] == metric_id)


def row(comparison: compare.Comparison, row_id: str) -> compare.Row:
    return next(r for r in comparison.rows if r.id == row_id)


def run_main(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *args: str) -> int:
    old_path = write_results(tmp_path / "old", old)
    new_path = write_results(tmp_path / "new", new)
    return main(["compare", str(old_path), str(new_path), *args])


def test_a_run_against_itself_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(tmp_path, make_results(), make_results()) == compare.EXIT_OK

    out = capsys.readouterr().out
    assert "REGRESSION" not in out
    assert "Result: no failures, no regressions" in out
    assert "Database initialisation" in out
    assert "Insert, single [enqueue, 1 process]" in out


def test_a_metric_fail_in_new_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = make_results()
    metric(new, "init_ms").update(value=140.0, status="FAIL")
    new["passed"] = False

    assert run_main(tmp_path, make_results(), new) == compare.EXIT_GATE_FAILED
    assert "metric FAIL: init_ms" in capsys.readouterr().out


def test_a_metric_fail_with_no_value_exits_non_zero(tmp_path: Path) -> None:
    """The harness marks a metric whose scenario errored FAIL with value null."""
    new = make_results()
    metric(new, "busy_rate_pct").update(value=None, status="FAIL")
    assert run_main(tmp_path, make_results(), new) == compare.EXIT_GATE_FAILED


def test_a_correctness_failure_in_new_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = make_results()
    new["correctness"]["ok"] = False
    new["correctness"]["checks"][0].update(ok=False, detail="3 duplicates")

    assert run_main(tmp_path, make_results(), new) == compare.EXIT_GATE_FAILED
    out = capsys.readouterr().out
    assert "NEW FAILED" in out
    assert "claim.exactly_once: 3 duplicates" in out


def test_failures_in_old_only_do_not_fail(tmp_path: Path) -> None:
    old = make_results()
    old["correctness"]["ok"] = False
    metric(old, "tx_per_s").update(value=50.0, status="FAIL")
    assert run_main(tmp_path, old, make_results()) == compare.EXIT_OK


def test_a_20_percent_throughput_drop_is_a_regression_10_percent_is_not() -> None:
    old = make_results()
    drop20, drop10 = make_results(), make_results()
    base = old["scenarios"]["insert"]["summary"]["single_tasks_per_s_1p"]
    drop20["scenarios"]["insert"]["summary"]["single_tasks_per_s_1p"] = base * 0.8
    drop10["scenarios"]["insert"]["summary"]["single_tasks_per_s_1p"] = base * 0.9

    flagged = row(
        compare.compare_results(make_run(old), make_run(drop20)), "insert.single_tasks_per_s_1p"
    )
    assert flagged.regression
    assert flagged.change == pytest.approx(-0.2)
    assert not row(
        compare.compare_results(make_run(old), make_run(drop10)), "insert.single_tasks_per_s_1p"
    ).regression


def test_regressions_print_but_exit_zero_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = make_results()
    new["scenarios"]["claim"]["summary"]["max_tasks_per_s"] *= 0.5

    assert run_main(tmp_path, make_results(), new) == compare.EXIT_OK
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert "-50.0%" in out
    assert run_main(tmp_path, make_results(), new, "--fail-on-regression") == (
        compare.EXIT_REGRESSION
    )


@pytest.mark.parametrize(
    ("metric_id", "old_value", "new_value", "regression"),
    [
        # "<" metrics: higher is worse.
        ("init_ms", 10.0, 12.0, True),
        ("init_ms", 10.0, 8.0, False),
        ("connect_ms", 1.0, 1.1, False),
        # ">" metrics: lower is worse.
        ("tx_per_s", 500.0, 400.0, True),
        ("tx_per_s", 500.0, 600.0, False),
        ("coverage_pct", 95.0, 90.0, False),  # -5 %: within the threshold
    ],
)
def test_direction_follows_the_metric_op(
    metric_id: str, old_value: float, new_value: float, regression: bool
) -> None:
    old, new = make_results(), make_results()
    metric(old, metric_id)["value"] = old_value
    metric(new, metric_id)["value"] = new_value

    assert (
        row(compare.compare_results(make_run(old), make_run(new)), metric_id).regression
        is regression
    )


def test_lower_is_better_key_figures() -> None:
    old, new = make_results(), make_results()
    for variant in new["scenarios"]["checkpoint"]["summary"]["by_variant"].values():
        variant["worst_stall_ms"] *= 1.5
    new["scenarios"]["query"]["summary"]["claim_p50_growth"] *= 0.5

    comparison = compare.compare_results(make_run(old), make_run(new))
    assert row(comparison, "checkpoint.default.worst_stall_ms").regression
    assert row(comparison, "checkpoint.worst_stall_ms").regression
    assert not row(comparison, "query.claim_p50_growth").regression


def test_the_stall_figures_name_their_variant_and_lead_with_the_default() -> None:
    comparison = compare.compare_results(make_run(), make_run())
    stalls = [r for r in comparison.rows if r.label.startswith("Worst commit stall")]
    assert [r.id for r in stalls] == [
        "checkpoint.default.worst_stall_ms",
        "checkpoint.worst_stall_ms",
    ]
    assert stalls[0].variant == "autocheckpoint, the default"
    assert stalls[1].variant == "autocheckpoint"  # the factory's worst variant
    text = compare.format_comparison(comparison)
    assert "Worst commit stall [autocheckpoint, the default]" in text


def test_the_threshold_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = make_results()
    metric(new, "init_ms")["value"] *= 1.10
    run_main(tmp_path, make_results(), new, "--threshold", "5%")
    assert "REGRESSION" in capsys.readouterr().out
    run_main(tmp_path, make_results(), new, "--threshold", "0.2")
    assert "REGRESSION" not in capsys.readouterr().out


def test_a_busy_rate_from_zero_is_not_flagged_below_the_noise_floor() -> None:
    old, new = make_results(), make_results()
    new["scenarios"]["busy"]["summary"]["max_busy_rate_5000"] = 0.0004  # 0.04 %
    metric(new, "busy_rate_pct")["value"] = 0.04

    comparison = compare.compare_results(make_run(old), make_run(new))
    figure = row(comparison, "busy.max_busy_rate_5000")
    assert figure.change == math.inf
    assert figure.new == pytest.approx(0.04)
    assert not figure.regression
    assert not row(comparison, "busy_rate_pct").regression
    new["scenarios"]["busy"]["summary"]["max_busy_rate_5000"] = 0.005  # 0.5 %
    assert row(
        compare.compare_results(make_run(old), make_run(new)), "busy.max_busy_rate_5000"
    ).regression


def test_missing_metrics_and_scenarios_print_na(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = make_results(), make_results()
    del new["scenarios"]["checkpoint"]
    new["scenarios"]["query"].update(status="error", error="boom")
    new["metrics"] = [m for m in new["metrics"] if m["id"] != "coverage_pct"]
    del old["scenarios"]["busy"]
    metric(old, "connect_ms").update(value=None, status="NOT_MEASURED")

    assert run_main(tmp_path, old, new) == compare.EXIT_OK

    comparison = compare.compare_results(make_run(old), make_run(new))
    for row_id in (
        "checkpoint.default.worst_stall_ms",
        "checkpoint.worst_stall_ms",
        "query.claim_p50_growth",
        "coverage_pct",
    ):
        assert row(comparison, row_id).new is None
        assert row(comparison, row_id).change is None
        assert not row(comparison, row_id).regression
    assert row(comparison, "busy.max_busy_rate_5000").old is None
    assert row(comparison, "connect_ms").old is None
    lines = capsys.readouterr().out.splitlines()
    stall = next(line for line in lines if "Worst commit stall" in line)
    assert stall.split()[-2:] == ["n/a", "n/a"]


def test_a_different_os_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    new = make_results()
    new["environment"]["os"] = "Windows"
    text = compare.format_comparison(compare.compare_results(make_run(), make_run(new)))
    assert "different OS (Linux -> Windows)" in text


def test_unreadable_input_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_results(tmp_path / "good")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([1, 2]), encoding="utf-8")

    assert main(["compare", str(good), str(tmp_path / "missing.json")]) == compare.EXIT_USAGE
    assert main(["compare", str(good), str(bad)]) == compare.EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("python -m bench compare: error: ") for line in err)
    assert "missing.json: cannot read" in err[0]


def test_an_unknown_major_version_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = make_results()
    future["schema"] = "prismq-bench/99"
    assert run_main(tmp_path, make_results(), future) == compare.EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert "prismq-bench/99" in line and "newer than this harness reads" in line


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = make_results()
    new["scenarios"]["busy"]["summary"]["max_busy_rate_5000"] = 0.005
    assert run_main(tmp_path, make_results(), new, "--json") == compare.EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == ["busy.max_busy_rate_5000"]
    assert data["gate_ok"] is True
    busy = next(r for r in data["rows"] if r["id"] == "busy.max_busy_rate_5000")
    assert busy["change"] == "+inf"


def test_bad_usage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["compare", "only-one.json"])
    assert raised.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m bench compare: error: ")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (100.0, 80.0, -0.2),
        (-10.0, -5.0, 0.5),
        (0.0, 0.0, 0.0),
        (0.0, 1.0, math.inf),
        (None, 1.0, None),
        (1.0, None, None),
    ],
)
def test_relative_change(old: float | None, new: float | None, expected: float | None) -> None:
    assert compare.relative_change(old, new) == (
        expected if expected is None else pytest.approx(expected)
    )
