"""The harness's backends: results schema 2.1, --backend/--dsn usage, and the side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import backends, side_by_side
from bench import results as model
from bench.commands import EXIT_USAGE, main
from bench.commands.run import _without_password
from tests.unit.bench_results_factory import make_results, make_run, write_results

SERVER = {
    "source": "throwaway",
    "url": "postgresql://postgres@127.0.0.1:5999/postgres",
    "version": "15.18",
    "settings": {"fsync": "on", "synchronous_commit": "on"},
}


def postgres_results(rates: tuple[float, ...] = (100.0, 180.0, 300.0, 320.0)) -> dict[str, Any]:
    """The factory's run, as PostgreSQL: claim drain rising with the process count."""
    data = make_results()
    data["schema"] = model.SCHEMA
    data["backend"] = "postgres"
    data["postgres"] = SERVER
    data["run_id"] = "pg-run"
    for point, rate in zip(data["scenarios"]["claim"]["series"], rates, strict=True):
        point["tasks_per_s"] = rate
    return data


def test_a_file_without_a_backend_measured_sqlite() -> None:
    data = make_results()
    data["schema"] = "prismq-bench/2"
    assert "backend" not in data
    run = model.from_dict(data)
    assert run.backend == "sqlite" and run.postgres is None


def test_a_postgres_run_round_trips(tmp_path: Path) -> None:
    run = model.from_dict(postgres_results())
    assert run.backend == "postgres"
    assert run.postgres == model.PostgresServer(**SERVER)  # type: ignore[arg-type]
    path = model.write(run, tmp_path / "results.json")
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["schema"] == "prismq-bench/2.1"
    assert on_disk["backend"] == "postgres" and on_disk["postgres"]["version"] == "15.18"
    assert model.load(path) == run


def test_a_sqlite_run_writes_no_postgres_key(tmp_path: Path) -> None:
    on_disk = json.loads(model.write(make_run(), tmp_path / "r.json").read_text("utf-8"))
    assert on_disk["backend"] == "sqlite" and "postgres" not in on_disk


def test_an_unknown_backend_is_refused() -> None:
    data = postgres_results()
    data["backend"] = "oracle"
    with pytest.raises(model.ResultsError, match="backend"):
        model.from_dict(data)


def test_only_the_shared_scenarios_run_on_postgres() -> None:
    chosen = ["init", "insert", "claim", "checkpoint", "busy", "worker", "soak"]
    assert backends.refused_scenarios("sqlite", chosen) == []
    assert backends.refused_scenarios("postgres", chosen) == ["init", "checkpoint", "soak"]


def test_passwords_never_reach_the_results() -> None:
    url = "postgresql://bench:secret@db.example:5432/queue"
    assert backends.masked(url) == "postgresql://bench:***@db.example:5432/queue"
    assert backends.masked("postgresql://bench@db/queue") == "postgresql://bench@db/queue"
    argv = ["run", "--dsn", url, f"--dsn={url}", "--quick"]
    shown = _without_password(argv)
    assert "secret" not in " ".join(shown)
    assert shown[-1] == "--quick" and shown[3].startswith("--dsn=postgresql://bench:***@")


def test_with_database_swaps_only_the_database() -> None:
    url = "postgresql://u@h:1/postgres?sslmode=disable"
    assert backends.with_database(url, "q") == "postgresql://u@h:1/q?sslmode=disable"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dsn", "postgresql://x@y/z"], "--dsn needs --backend postgres"),
        (["--backend", "postgres", "--dsn", "/tmp/q.db"], "--dsn must be a postgresql:// URL"),
        (["--backend", "postgres", "--scenario", "soak"], "soak run on SQLite only"),
    ],
)
def test_bad_backend_usage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["run", "--tiny", *argv]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m bench run: error: ") and message in line


def test_an_unreachable_dsn_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("psycopg")
    dsn = "postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2"
    argv = ["run", "--tiny", "--backend", "postgres", "--dsn", dsn, "--out", str(tmp_path)]
    assert main(argv) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert "cannot reach PostgreSQL at postgresql://nobody:***@127.0.0.1:1/none" in line
    assert "pw@" not in line


def test_side_by_side_puts_each_figure_beside_the_other_backends() -> None:
    lite, pg = make_run(), model.from_dict(postgres_results())
    comparison = side_by_side.compare_backends(pg, lite)  # either order
    assert (comparison.sqlite_run, comparison.postgres_run) == (lite.run_id, "pg-run")
    rows = {row.id: row for row in comparison.rows}
    one = rows["claim_1p"]
    assert one.sqlite == side_by_side.claim_rate(lite, 1) and one.postgres == 100.0
    assert one.sqlite is not None
    assert one.ratio == round(one.sqlite / 100.0, 3)
    assert one.faster == "sqlite" and one.by == round(one.sqlite / 100.0, 2)
    assert rows["pickup_rate"].faster is None  # a condition, not a race
    assert comparison.postgres_scales is True
    assert comparison.sqlite_flat is False  # the factory's SQLite rate falls with processes
    text = side_by_side.render_markdown(comparison)
    assert "| claim+complete drain, 1 process | tasks/s |" in text
    assert "rises at every step 1→2→4 processes: **yes**" in text
    assert "SQLite is better at: " in text


def test_side_by_side_needs_one_run_of_each_backend() -> None:
    with pytest.raises(model.ResultsError, match="one SQLite and one PostgreSQL"):
        side_by_side.compare_backends(make_run(), make_run())


def test_a_scaling_that_falls_back_is_not_a_rise() -> None:
    pg = model.from_dict(postgres_results((100.0, 180.0, 150.0, 320.0)))
    assert side_by_side.compare_backends(make_run(), pg).postgres_scales is False


def test_backends_command_writes_markdown_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    lite = write_results(tmp_path / "lite")
    pg = write_results(tmp_path / "pg", postgres_results())
    out = tmp_path / "side"
    assert main(["backends", str(lite), str(pg), "--out", str(out), "--json"]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported["postgres_scales"] is True
    assert Path(reported["markdown"]) == out / "backends.md"
    assert (out / "backends.png").stat().st_size > 10_000
    assert "claim+complete drain" in (out / "backends.md").read_text(encoding="utf-8")
    assert main(["backends", str(lite), str(pg)]) == 0  # default: the PostgreSQL run's folder
    assert (tmp_path / "pg" / "backends.md").is_file()


def test_backends_command_refuses_two_sqlite_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_results(tmp_path / "a")
    second = write_results(tmp_path / "b")
    assert main(["backends", str(first), str(second)]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert "need one SQLite and one PostgreSQL results file" in line


def test_postgres_runs_use_smaller_task_counts_at_the_same_process_counts() -> None:
    from bench.profiles import POSTGRES_SIZES, profile

    for name, sizes in POSTGRES_SIZES.items():
        lite, pg = profile(name), profile(name, "postgres")
        for scenario, changed in sizes.items():
            for field, value in changed.items():
                assert getattr(pg[scenario], field) == value < getattr(lite[scenario], field)
        assert pg["claim"].processes == lite["claim"].processes
        assert pg["worker"].executors == lite["worker"].executors
    assert profile("tiny", "postgres") == profile("tiny")
