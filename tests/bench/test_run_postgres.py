"""``bench run --backend postgres`` at the tiny profile, against the session's server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bench.runner import RunOptions, execute
from bench.scenarios import claim


@pytest.mark.slow
def test_a_postgres_run_measures_claim_exactly_once_and_skips_sqlite_only_scenarios(
    postgres_server_url: str, tmp_path: Path
) -> None:
    lines: list[str] = []
    status, path, run = execute(
        RunOptions(
            profile="tiny",
            scenarios=["init", "claim"],
            out_dir=tmp_path / "reports",
            workdir=tmp_path / "work",
            coverage_json=None,
            report=False,
            command=["pytest"],
            progress=lines.append,
            backend="postgres",
            dsn=postgres_server_url,
        )
    )
    assert status == 0, "\n".join(lines)
    assert run.backend == "postgres" and path.parent.name.endswith("-postgres")
    assert run.postgres is not None and run.postgres.source == "dsn"
    assert run.postgres.version and "fsync" in run.postgres.settings
    assert run.scenarios["init"].status == "skipped"
    assert "SQLite-only" in (run.scenarios["init"].error or "")
    assert "bench: skipped (SQLite-only): init" in lines
    result = run.result("claim", claim.Result)
    assert result is not None and result.summary.exactly_once_ok
    checks = [c for c in run.correctness.checks if c.scenario == "claim"]
    assert len(checks) == 2 * len(result.series) and all(c.ok for c in checks)
    assert all(p.tasks == 100 and p.bare_tasks_per_s > 0 for p in result.series)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'prismq_bench_%'"
        ).fetchone()
    assert left == (0,)  # every measurement's database was dropped
