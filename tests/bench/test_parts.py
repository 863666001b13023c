"""The harness's pieces on made-up data: gate, accounting, stats, environment, sampler."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bench import environment, gate, stats
from bench.accounting import exactly_once
from bench.context import Job, run_processes
from bench.results import (
    Accounting,
    Check,
    Correctness,
    Latency,
    MetricVerdict,
    ScenarioRun,
    Shares,
)
from bench.runner import fold_pytest_benchmark, make_run_id
from bench.sampler import ResourceSampler, file_size
from bench.stats import describe_ms, downsample_indices, histogram_ms, latency_ms, percentile
from bench.workers import (
    BusyProducerArgs,
    BusyWorkerArgs,
    ClaimCompleteArgs,
    PacedWriterArgs,
    ProduceArgs,
)
from tests.unit.bench_results_factory import make_run


def with_summary(name: str, **changes: Any) -> ScenarioRun:
    """The factory's scenario ``name``, its summary changed."""
    entry = make_run().scenarios[name]
    summary = dataclasses.replace(entry.result.summary, **changes)
    return dataclasses.replace(entry, result=dataclasses.replace(entry.result, summary=summary))


def scenarios_ok(**overrides: ScenarioRun) -> dict[str, ScenarioRun]:
    made = {
        "init": with_summary("init", n=20, median_ms=12.0),
        "connect": with_summary("connect", n=100, median_ms=1.5),
        "claim": with_summary("claim", min_tx_per_s=900.0),
        "busy": with_summary("busy", max_busy_rate_5000=0.0),
    }
    made.update(overrides)
    return made


def by_id(metrics: Sequence[MetricVerdict]) -> dict[str, MetricVerdict]:
    return {m.id: m for m in metrics}


def test_gate_passes_good_results() -> None:
    metrics = gate.evaluate(scenarios_ok(), 91.0)
    assert [m.status for m in metrics] == ["PASS"] * 5
    assert by_id(metrics)["init_ms"].statistic == "median of 20"
    assert gate.passed(metrics, correctness_ok=True)


def test_gate_fails_a_slow_claim_sweep() -> None:
    made = scenarios_ok(claim=with_summary("claim", min_tx_per_s=99.5))
    metrics = by_id(gate.evaluate(made, 91.0))
    assert metrics["tx_per_s"].status == "FAIL"
    assert metrics["tx_per_s"].value == 99.5
    assert not gate.passed(list(metrics.values()), correctness_ok=True)
    assert "FAIL" in gate.table(list(metrics.values()))


def test_gate_busy_rate_is_a_percentage() -> None:
    made = scenarios_ok(busy=with_summary("busy", max_busy_rate_5000=0.012))
    metric = by_id(gate.evaluate(made, None))["busy_rate_pct"]
    assert metric.value == pytest.approx(1.2)
    assert metric.status == "FAIL"


def test_gate_boundaries_are_strict() -> None:
    made = scenarios_ok(init=with_summary("init", n=20, median_ms=100.0))
    assert by_id(gate.evaluate(made, 80.0))["init_ms"].status == "FAIL"
    assert by_id(gate.evaluate(made, 80.0))["coverage_pct"].status == "FAIL"


def test_gate_not_measured_and_errored() -> None:
    errored = dataclasses.replace(make_run().scenarios["claim"], status="error", result=None)
    made = scenarios_ok(claim=errored)
    del made["busy"]
    metrics = by_id(gate.evaluate(made, None))
    assert metrics["busy_rate_pct"].status == "NOT_MEASURED"
    assert metrics["coverage_pct"].status == "NOT_MEASURED"
    assert metrics["tx_per_s"].status == "FAIL"
    assert metrics["tx_per_s"].value is None
    assert gate.passed([metrics["busy_rate_pct"], metrics["coverage_pct"]], correctness_ok=True)


def test_gate_fails_on_lost_tasks_even_when_metrics_pass() -> None:
    metrics = gate.evaluate(scenarios_ok(), 95.0)
    assert not gate.passed(metrics, correctness_ok=False)
    checks = (Check("claim", "a", ok=False), Check("claim", "b", ok=True))
    text = gate.table(metrics, Correctness(ok=False, checks=checks))
    assert "1/2 checks ok" in text


def test_read_coverage(tmp_path: Path) -> None:
    good = tmp_path / "coverage.json"
    good.write_text(json.dumps({"totals": {"percent_covered": 93.25}}), encoding="utf-8")
    assert gate.read_coverage(good) == 93.25
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert gate.read_coverage(bad) is None
    assert gate.read_coverage(tmp_path / "missing.json") is None
    assert gate.read_coverage(None) is None


def test_exactly_once_accounting() -> None:
    clean = exactly_once([1, 2, 3], [3, 1, 2], db_completed=3)
    assert clean == Accounting(
        expected=3, completed=3, duplicates=0, lost=0, unexpected=0, db_completed=3, ok=True
    )
    duplicated = exactly_once([1, 2, 3], [1, 2, 3, 2], db_completed=3)
    assert (duplicated.duplicates, duplicated.ok) == (1, False)
    lost = exactly_once([1, 2, 3], [1, 2], db_completed=2)
    assert (lost.lost, lost.ok) == (1, False)
    stray = exactly_once([1, 2], [1, 2, 9])
    assert (stray.unexpected, stray.ok) == (1, False)
    db_disagrees = exactly_once([1, 2], [1, 2], db_completed=1)
    assert not db_disagrees.ok
    pending = exactly_once([1, 2, 3, 4], [1, 2], db_completed=2, pending_ids=[3, 4])
    assert pending.ok
    assert pending.expected == 2


def test_stats() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert latency_ms([]) == Latency(p50=None, p95=None, p99=None, max=None)
    assert latency_ms([1_000_000, 3_000_000]).max == 3.0
    assert describe_ms([]).n == 0
    assert describe_ms([1.0, 2.0, 3.0]).median_ms == 2.0
    hist = histogram_ms([1_000, 50_000, 2_000_000, 2_000_000])
    assert sum(hist.counts) == 4
    assert len(hist.edges_ms) == len(hist.counts) + 1
    assert histogram_ms([]).n == 0


def test_shares_of_the_work() -> None:
    assert stats.shares([10, 10, 10]) == Shares(1.0, 1.0, 1.0)
    spread = stats.shares([5, 10, 15])
    assert (spread.min_over_mean, spread.max_over_mean) == (0.5, 1.5)
    assert spread.jain == round(30**2 / (3 * (25 + 100 + 225)), 4)
    assert stats.shares([0, 0, 30]).jain == round(1 / 3, 4)
    assert stats.shares([]) == Shares(None, None, None)


def test_downsample_keeps_stalls() -> None:
    assert downsample_indices(10, 100) == list(range(10))
    picked = downsample_indices(100_000, 2000, keep=[12_345, 99_998])
    assert len(picked) <= 2003
    assert {12_345, 99_998, 0, 99_999} <= set(picked)
    assert picked == sorted(set(picked))


class FakeSystem(environment.System):
    def __init__(self, name: str, answers: dict[str, str | None]) -> None:
        self._name = name
        self.answers = answers
        self.commands: list[list[str]] = []

    def name(self) -> str:
        return self._name

    def run(
        self, command: list[str], *, timeout: float = 10.0, cwd: Path | None = None
    ) -> str | None:
        self.commands.append(command)
        return self.answers.get(command[0])

    def read_text(self, path: str) -> str | None:
        return "processor : 0\nmodel name : Fake CPU 3000\n" if "cpuinfo" in path else None

    def env(self, name: str) -> str | None:
        return {"GITHUB_ACTIONS": "true"}.get(name)


@pytest.mark.parametrize(
    ("answer", "expected"), [("True", True), ("False", False), (None, None), ("garbage", None)]
)
def test_defender_probe_on_windows(answer: str | None, expected: bool | None) -> None:
    system = FakeSystem("Windows", {"powershell": answer})
    assert environment.defender_realtime(system) is expected
    assert system.commands == [environment.DEFENDER_PROBE]


def test_defender_is_not_asked_elsewhere() -> None:
    system = FakeSystem("Linux", {"powershell": "True"})
    assert environment.defender_realtime(system) is None
    assert system.commands == []


def test_environment_with_a_fake_system(tmp_path: Path) -> None:
    system = FakeSystem("Linux", {"git": None})
    env = environment.collect(tmp_path, system=system, repo_root=tmp_path)
    assert env.cpu == "Fake CPU 3000"
    assert env.git_commit is None
    assert env.git_dirty is None
    assert env.ci == "github-actions"
    assert env.defender_realtime is None
    assert env.cores_logical is not None and env.cores_logical >= 1


def test_environment_of_this_machine(tmp_path: Path) -> None:
    env = environment.collect(tmp_path)
    assert env.sqlite_version
    assert env.ram_bytes is not None and env.ram_bytes > 0
    if os.name == "posix":
        assert env.filesystem


def test_sampler_records_this_process_and_file_sizes(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    db.write_bytes(b"x" * 100)
    sampler = ResourceSampler(interval_s=0.01)
    sampler.watch(db)
    sampler.sample_once()  # primes cpu_percent
    sampler.sample_once()
    assert [p.role for p in sampler.processes] == ["parent"]
    assert sampler.processes[0].rss_bytes > 0
    assert (sampler.files[-1].db_bytes, sampler.files[-1].wal_bytes) == (100, 0)
    assert file_size(tmp_path / "missing") == 0
    sampler.start()
    resources = sampler.stop()
    assert resources.interval_s == 0.01


def test_a_failing_process_fails_the_group(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    args = ClaimCompleteArgs(target=str(blocker / "queue.db"), worker_id="w0", bare=True)
    with pytest.raises(RuntimeError, match="benchmark process failed"):
        run_processes(None, [Job(args, "worker")], timeout_s=60)


def test_worker_args_are_frozen_and_survive_pickling() -> None:
    """spawn pickles every argument record; each kind's record must come back equal."""
    every = [
        ProduceArgs("q.db", "batch", 10, 5, 64, 0, bare=False),
        ClaimCompleteArgs("q.db", "w0", bare=True),
        BusyProducerArgs("q.db", 0.5, 5000, 64, 0),
        BusyWorkerArgs("q.db", 0.5, 0, "w1"),
        PacedWriterArgs("q.db", 0.5, 10, 64, 300.0, (("wal_autocheckpoint", 0),)),
    ]
    for args in every:
        assert pickle.loads(pickle.dumps(args)) == args
        with pytest.raises(dataclasses.FrozenInstanceError):
            args.target = "elsewhere"  # type: ignore[misc]
        assert Job(args, "worker").kind == type(args).__name__


def test_run_id() -> None:
    moment = datetime(2026, 11, 29, 9, 15, 0, tzinfo=timezone.utc)
    assert make_run_id(moment, "Linux", "3f2a1c0deadbeef") == "20261129-091500-linux-3f2a1c0"
    assert make_run_id(moment, "Windows", None) == "20261129-091500-windows-nogit"


def test_fold_pytest_benchmark(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps(
            {
                "benchmarks": [
                    {"name": "test_x", "fullname": "t::test_x", "stats": {"mean": 0.5, "rounds": 3}}
                ]
            }
        ),
        encoding="utf-8",
    )
    folded = fold_pytest_benchmark(path)
    assert folded is not None
    assert folded.benchmarks[0].stats.mean == 0.5
    assert folded.benchmarks[0].stats.rounds == 3
    assert fold_pytest_benchmark(tmp_path / "missing.json") is None
