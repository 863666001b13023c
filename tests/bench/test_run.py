"""A full run of every scenario at the tiny profile: structure, accounting, handles, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench import gate, results, scenarios
from bench.commands import main
from bench.runner import RunOptions, execute
from bench.scenarios import query

LATENCY_KEYS = {"p50", "p95", "p99", "max"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("reports")
    lines: list[str] = []
    status, path, run = execute(
        RunOptions(
            profile="tiny",
            out_dir=out,
            workdir=tmp_path_factory.mktemp("work"),
            coverage_json=None,
            report=False,
            command=["pytest"],
            progress=lines.append,
        )
    )
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    return {"status": status, "path": path, "run": run, "results": on_disk, "lines": lines}


def test_results_file_matches_the_contract(tiny_run: dict[str, Any]) -> None:
    results = tiny_run["results"]
    assert tiny_run["path"].name == "results.json"
    assert tiny_run["path"].parent.name == results["run_id"]
    assert results["schema"] == "prismq-bench/2.1"
    assert results["profile"] == "tiny"
    for key in ("started_utc", "finished_utc", "duration_s", "command"):
        assert results[key] is not None, key
    assert "parameters" not in results  # each scenario's params are written once, below
    env = results["environment"]
    for key in (
        "os",
        "python",
        "sqlite_version",
        "cores_logical",
        "ram_bytes",
        "filesystem",
        "git_commit",
        "defender_realtime",
        "ci",
    ):
        assert key in env, key
    assert set(results["scenarios"]) == set(scenarios.NAMES)
    for name, entry in results["scenarios"].items():
        assert entry["status"] == "ok", (name, entry["error"])
        assert entry["duration_s"] > 0
        assert entry["params"] == results_model_params(name)
        resources = entry["resources"]
        assert resources["interval_s"] > 0
        assert isinstance(resources["processes"], list)
        assert isinstance(resources["files"], list)
    assert [m["id"] for m in results["metrics"]] == [m.id for m in gate.METRICS]
    assert results["correctness"]["ok"] is True
    assert results["passed"] is (tiny_run["status"] == 0)


def results_model_params(name: str) -> Any:
    from bench.profiles import profile

    return results.to_jsonable(profile("tiny")[name])


def test_the_written_file_reads_back_as_the_run(tiny_run: dict[str, Any]) -> None:
    """results.json goes through the model both ways: reading it gives the run that was written."""
    assert results.load(tiny_run["path"]) == tiny_run["run"]


def test_every_metric_but_coverage_is_measured(tiny_run: dict[str, Any]) -> None:
    by_id = {m["id"]: m for m in tiny_run["results"]["metrics"]}
    for metric_id in ("init_ms", "connect_ms", "tx_per_s", "busy_rate_pct"):
        assert by_id[metric_id]["value"] is not None
        assert by_id[metric_id]["status"] in (gate.PASS, gate.FAIL)
    assert by_id["coverage_pct"]["status"] == gate.NOT_MEASURED
    assert by_id["coverage_pct"]["value"] is None


def test_timing_scenarios_have_samples(tiny_run: dict[str, Any]) -> None:
    for name, minimum in (("init", 20), ("connect", 100)):
        entry = tiny_run["results"]["scenarios"][name]
        assert entry["summary"]["n"] == minimum
        assert len(entry["samples"]["ms"]) == minimum
        assert entry["summary"]["median_ms"] > 0


def test_insert_series(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["insert"]
    assert {(r["mode"], r["processes"]) for r in entry["series"]} == {
        ("single", 1),
        ("single", 2),
        ("batch", 1),
        ("batch", 2),
    }
    for row in entry["series"]:
        assert row["tasks_per_s"] > 0
        assert row["bare_tasks_per_s"] > 0
        assert row["ratio_vs_bare"] == pytest.approx(
            row["tasks_per_s"] / row["bare_tasks_per_s"], rel=1e-3
        )
        assert set(row["latency_ms"]) == LATENCY_KEYS
        assert sum(row["latency_hist"]["counts"]) == row["calls"]
    assert entry["summary"]["single_tasks_per_s_1p"] > 0


def test_claim_counts_every_task_exactly_once(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["claim"]
    backlog = entry["params"]["backlog"]
    for row in entry["series"]:
        once = row["exactly_once"]
        assert once == {
            **once,
            "expected": backlog,
            "completed": backlog,
            "duplicates": 0,
            "lost": 0,
            "ok": True,
        }
        assert row["transactions"] >= 2 * backlog
        assert row["tx_per_s"] > 0
    checks = [c for c in tiny_run["results"]["correctness"]["checks"] if c["scenario"] == "claim"]
    assert len(checks) == 2 * len(entry["series"])
    assert all(c["ok"] for c in checks)


def test_busy_counts_errors_per_timeout(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["busy"]
    timeouts = {r["busy_timeout_ms"] for r in entry["series"]}
    assert timeouts == {0, 5000}
    for row in entry["series"]:
        assert 0 <= row["busy_rate"] <= 1
        assert row["busy_rate"] == pytest.approx(row["busy_errors"] / row["operations"], abs=1e-5)
        assert row["exactly_once"]["ok"]
        assert set(row["lock_wait_ms"]) == LATENCY_KEYS
        assert len(row["operations_by_process"]) == row["processes"]
        assert 0 < row["share"]["jain"] <= 1
    assert entry["summary"]["max_busy_rate_5000"] is not None
    # At 5000 ms each process count ran with the default (no fair lock) and then with it,
    # compared in the summary.
    assert [r["fair_lock"] for r in entry["series"] if r["busy_timeout_ms"] == 5000] == [
        False,
        True,
    ]
    assert entry["summary"]["default_fair_lock"] is False
    fairness = entry["summary"]["fair_lock"]
    assert fairness["processes"] == 2
    assert fairness["throughput_ratio"] > 0
    assert set(fairness["goals_met"]) == {"lock_wait_max", "shares", "throughput"}


def test_checkpoint_variants(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["checkpoint"]
    names = [v["name"] for v in entry["variants"]]
    assert names == ["autocheckpoint", "background_reader"]
    for variant in entry["variants"]:
        assert variant["commits"] > 0
        assert len(variant["timeline"]["t_s"]) == len(variant["timeline"]["latency_ms"])
        assert len(variant["wal"]["t_s"]) == len(variant["wal"]["bytes"]) > 0
        stalls = [x for x in variant["timeline"]["latency_ms"] if x > variant["stall_threshold_ms"]]
        assert len(stalls) == variant["stalls"]
        modes = [c["mode"] for c in variant["checkpoints"] if c["explicit"]]
        assert modes == ["PASSIVE", "TRUNCATE"]
        for record in variant["checkpoints"]:
            assert {"t_s", "mode", "duration_ms", "busy", "log", "checkpointed"} <= set(record)
    reader = entry["variants"][1]
    # The reader pins its snapshot, so the explicit TRUNCATE cannot finish.
    truncate = [c for c in reader["checkpoints"] if c["explicit"] and c["mode"] == "TRUNCATE"]
    assert truncate[0]["busy"] == 1


def test_query_uses_the_claim_index(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["query"]
    assert [r["backlog"] for r in entry["series"]] == [500, 2000]
    for row in entry["series"]:
        assert row["claim_uses_index"] is True
        assert any("ix_task_queued_region" in line for line in row["claim_plan"])
        assert any("ix_task_queued_type_region" in line for line in row["claim_typed_plan"])
        assert row["count_plan"]
        assert row["claim_ms"]["p50"] > 0
        assert set(row["claims_ms"]) == set(query.CASES)
        assert row["claim_ratio"]["default"] == 1.0
    assert entry["summary"]["claim_p50_growth"] > 0
    assert entry["summary"]["filtered_claim_max_ratio"] > 0
    assert entry["summary"]["strategy_claim_max_ratio"] > 0


def test_soak_accounts_for_every_task_and_keeps_a_timeline(tiny_run: dict[str, Any]) -> None:
    entry = tiny_run["results"]["scenarios"]["soak"]
    summary = entry["summary"]
    assert summary["enqueued"] > 0
    assert summary["enqueued"] == summary["completed"] + summary["live_at_end"]
    assert summary["pruned"] > 0  # retention ran (0.5 s at the tiny profile)
    timeline = entry["timeline"]
    assert len(timeline["t_s"]) == len(timeline["file_bytes"]) == len(timeline["wal_bytes"]) > 5
    assert len(timeline["depth"]) == len(timeline["t_s"])
    assert min(timeline["t_s"]) >= 0
    assert len(entry["claims"]) == 6
    assert entry["backup"]["verified"] is True
    for key in ("first_third_p99_ms", "last_third_p99_ms", "p99_ratio", "bounded", "steady"):
        assert key in summary
    checks = {c["name"] for c in tiny_run["results"]["correctness"]["checks"]}
    assert "soak: every task accounted for" in checks
    assert "soak: claim p99 steady (last third vs first)" not in checks  # gate off when tiny


def test_progress_line_per_scenario(tiny_run: dict[str, Any]) -> None:
    lines = tiny_run["lines"]
    total = len(scenarios.NAMES)
    for number, name in enumerate(scenarios.NAMES, start=1):
        assert f"[{number}/{total}] {name}: running" in lines
        assert any(line.startswith(f"[{number}/{total}] {name}: ok in ") for line in lines)
    assert any("results: " in line for line in lines)


def test_no_database_handle_stays_open(tiny_run: dict[str, Any]) -> None:
    assert tiny_run["results"]["scenarios"]
    leaked = [
        f.path
        for f in psutil.Process(os.getpid()).open_files()
        if f.path.endswith((".db", ".db-wal", ".db-shm", "-wal", "-shm"))
    ]
    assert leaked == []


def test_cli_runs_one_scenario(tmp_path: Path) -> None:
    status = main(
        [
            "run",
            "--tiny",
            "--scenario",
            "init",
            "--out",
            str(tmp_path),
            "--coverage-json",
            str(tmp_path / "missing.json"),
            "--no-report",
            "--workdir",
            str(tmp_path / "work"),
        ]
    )
    (path,) = tmp_path.glob("*/results.json")
    results = json.loads(path.read_text(encoding="utf-8"))
    assert list(results["scenarios"]) == ["init"]
    statuses = {m["id"]: m["status"] for m in results["metrics"]}
    assert statuses["connect_ms"] == gate.NOT_MEASURED
    assert status == (0 if results["passed"] else 1)


def test_cli_fails_the_run_on_a_failing_metric(tmp_path: Path) -> None:
    coverage = tmp_path / "coverage.json"
    coverage.write_text(json.dumps({"totals": {"percent_covered": 42.0}}), encoding="utf-8")
    status = main(
        [
            "run",
            "--tiny",
            "--scenario",
            "connect",
            "--out",
            str(tmp_path / "out"),
            "--coverage-json",
            str(coverage),
            "--no-report",
        ]
    )
    assert status == 1
    (path,) = (tmp_path / "out").glob("*/results.json")
    metrics = {m["id"]: m for m in json.loads(path.read_text(encoding="utf-8"))["metrics"]}
    assert metrics["coverage_pct"] == {**metrics["coverage_pct"], "value": 42.0, "status": "FAIL"}


def test_cli_rejects_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--tiny", "--scenario", "nope"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m bench run: error: unknown scenario(s) nope")
