"""One harness run: profile, run id, a fresh temporary directory per scenario, progress lines,
the gate, ``reports/<run-id>/results.json`` and (if its module is there) the report."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import environment, gate, results, scenarios
from bench.backends import postgres_server, refused_scenarios
from bench.context import ScenarioContext
from bench.profiles import profile as load_profile
from bench.results import (
    Backend,
    Benchmark,
    BenchmarkStats,
    Check,
    Correctness,
    PostgresServer,
    PytestBenchmark,
    Run,
    ScenarioRun,
    Status,
)
from bench.sampler import ResourceSampler


@dataclass
class RunOptions:
    """Everything ``python -m bench run`` can be told."""

    profile: str = "default"
    scenarios: Sequence[str] = field(default_factory=lambda: scenarios.NAMES)
    out_dir: Path = field(default_factory=lambda: Path("reports"))
    workdir: Path | None = None
    coverage_json: Path | None = field(default_factory=lambda: Path("reports/coverage.json"))
    pytest_benchmark_json: Path | None = None
    report: bool = True
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    sample_interval_s: float | None = None
    progress: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    backend: Backend = "sqlite"
    dsn: str | None = None  # PostgreSQL: this server instead of a throwaway one


def utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def make_run_id(
    moment: datetime, os_name: str, commit: str | None, backend: Backend = "sqlite"
) -> str:
    """``20261129-091500-linux-3f2a1c0``: UTC start, OS, short commit (``nogit`` outside one),
    and ``-postgres`` for a PostgreSQL run."""
    run_id = f"{moment:%Y%m%d-%H%M%S}-{os_name.lower() or 'unknown'}-{(commit or 'nogit')[:7]}"
    return run_id if backend == "sqlite" else f"{run_id}-{backend}"


def run_scenario(
    name: str,
    params: Any,
    *,
    profile: str,
    base: Path,
    progress: Callable[[str], None],
    interval_s: float,
    backend: Backend = "sqlite",
    server_url: str | None = None,
) -> tuple[ScenarioRun, list[Check]]:
    """Run one scenario in a fresh temporary directory (and, on PostgreSQL, fresh databases
    on ``server_url``); its typed entry and checks."""
    sampler = ResourceSampler(interval_s)
    folder = Path(tempfile.mkdtemp(prefix=f"prismq-bench-{name}-", dir=base))
    context: ScenarioContext[Any] = ScenarioContext(
        name=name,
        profile=profile,
        params=params,
        workdir=folder,
        sampler=sampler,
        progress=progress,
        backend=backend,
        server_url=server_url,
    )
    status: Status = "ok"
    error: str | None = None
    result: Any = None
    started = time.perf_counter()
    sampler.start()
    try:
        result = scenarios.load(name).run(context)
    except Exception as exc:
        status = "error"
        error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        context.check("completed", False, f"{type(exc).__name__}: {exc}")
    finally:
        resources = sampler.stop()
        duration = round(time.perf_counter() - started, 3)
        try:
            context.cleanup()
        except Exception as exc:  # a database left behind must not hide the measurements
            progress(f"  {name}: could not drop its databases ({type(exc).__name__}: {exc})")
        # Every connection is closed by now; Windows could not delete open files.
        shutil.rmtree(folder, ignore_errors=True)
    entry = ScenarioRun(name, status, error, duration, params, result, resources)
    return entry, context.checks


def fold_pytest_benchmark(path: Path | None) -> PytestBenchmark | None:
    """The pytest-benchmark JSON, reduced to each benchmark's statistics."""
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found: list[Benchmark] = []
    for b in data.get("benchmarks", []):
        stats = b.get("stats") or {}
        known = {f.name: stats.get(f.name) for f in dataclasses.fields(BenchmarkStats)}
        found.append(
            Benchmark(
                name=b.get("name"),
                fullname=b.get("fullname"),
                stats=results.decode(BenchmarkStats, known, "stats"),
                extra_info=dict(b.get("extra_info") or {}),
            )
        )
    return PytestBenchmark(file=str(path), benchmarks=tuple(found))


def skipped_entry(name: str, params: Any, backend: Backend) -> ScenarioRun:
    """The entry of a scenario this backend does not run: status ``skipped``, and why."""
    return ScenarioRun(
        name,
        "skipped",
        f"SQLite-only scenario, not run with --backend {backend}",
        0.0,
        params,
        None,
        results.Resources(interval_s=0.0),
    )


def execute(options: RunOptions) -> tuple[int, Path, Run]:
    """Run the chosen scenarios; write results.json; return (exit status, its path, the run).

    With ``backend="postgres"`` the scenarios run against the server ``dsn`` names, or a
    throwaway one started for the run; scenarios that only SQLite runs are recorded as
    skipped.

    :raises BackendUnavailableError: PostgreSQL was asked for and cannot be used.
    """
    if options.backend != "postgres":
        return _execute(options, None, None)
    with postgres_server(options.dsn, options.progress) as (server_url, server):
        return _execute(options, server_url, server)


def _execute(
    options: RunOptions, server_url: str | None, server: PostgresServer | None
) -> tuple[int, Path, Run]:
    params_all = load_profile(options.profile, options.backend)
    chosen = [name for name in scenarios.NAMES if name in set(options.scenarios)]
    unknown = set(options.scenarios) - set(scenarios.NAMES)
    if unknown:
        raise ValueError(f"unknown scenario(s) {sorted(unknown)}; choose from {scenarios.NAMES}")
    interval = options.sample_interval_s or (0.1 if options.profile == "tiny" else 0.25)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    base_parent = options.workdir or Path(tempfile.gettempdir())
    base_parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="prismq-bench-", dir=base_parent))
    env = environment.collect(base)
    run_id = make_run_id(started, env.os, env.git_commit, options.backend)
    progress = options.progress
    entries: dict[str, ScenarioRun] = {}
    checks: list[Check] = []
    refused = refused_scenarios(options.backend, chosen)
    for name in refused:
        entries[name] = skipped_entry(name, params_all[name], options.backend)
    chosen = [name for name in chosen if name not in refused]
    where = "" if server is None else f", backend postgres ({server.source} server {server.url})"
    progress(
        f"bench: run {run_id}, profile {options.profile}{where}, scenarios {', '.join(chosen)}"
    )
    if refused:
        progress(f"bench: skipped (SQLite-only): {', '.join(refused)}")
    try:
        for number, name in enumerate(chosen, start=1):
            progress(f"[{number}/{len(chosen)}] {name}: running")
            entry, found = run_scenario(
                name,
                params_all[name],
                profile=options.profile,
                base=base,
                progress=progress,
                interval_s=interval,
                backend=options.backend,
                server_url=server_url,
            )
            entries[name] = entry
            checks.extend(found)
            failed_checks = sum(1 for c in found if not c.ok)
            note = f", {failed_checks} failed checks" if failed_checks else ""
            progress(
                f"[{number}/{len(chosen)}] {name}: {entry.status} in {entry.duration_s:.1f} s{note}"
            )
            if entry.error is not None:
                progress(entry.error.rstrip())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    correctness = Correctness(ok=all(c.ok for c in checks), checks=tuple(checks))
    metrics = gate.evaluate(entries, gate.read_coverage(options.coverage_json))
    folder = new_run_folder(options.out_dir, run_id)
    run = Run(
        schema=results.SCHEMA,
        run_id=folder.name,
        profile=options.profile,
        started_utc=utc_text(started),
        finished_utc=utc_text(datetime.now(timezone.utc)),
        duration_s=round(time.perf_counter() - t0, 3),
        command=tuple(options.command),
        environment=env,
        scenarios=entries,
        correctness=correctness,
        metrics=metrics,
        passed=gate.passed(metrics, correctness.ok),
        pytest_benchmark=fold_pytest_benchmark(options.pytest_benchmark_json),
        backend=options.backend,
        postgres=server,
    )
    path = results.write(run, folder / "results.json")
    if options.report:
        build_report(path, progress)
    progress("")
    progress(gate.table(run.metrics, run.correctness))
    for check in checks:
        if not check.ok:
            progress(f"FAILED CHECK {check.scenario}/{check.name}: {check.detail}")
    progress(f"\nresults: {path}")
    progress(f"bench: {'PASSED' if run.passed else 'FAILED'} in {run.duration_s:.1f} s")
    return (0 if run.passed else 1), path, run


def new_run_folder(out_dir: Path, run_id: str) -> Path:
    """``out_dir/run_id``, or ``run_id-2``, ``-3``... when that exists; created."""
    folder = out_dir / run_id
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = out_dir / f"{run_id}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def build_report(path: Path, progress: Callable[[str], None]) -> None:
    """Plots and summary through ``bench.report`` when it (and matplotlib) can be imported."""
    try:
        from bench import report
    except ImportError as exc:
        progress(f"note: no report ({exc}); results.json is complete without it")
        return
    try:
        built = report.build_report(path)
    except ImportError as exc:
        progress(f"note: no report ({exc}); results.json is complete without it")
        return
    except Exception as exc:  # the report must never hide the measurements
        progress(f"note: the report failed ({type(exc).__name__}: {exc})")
        return
    progress(f"report: {built}")
