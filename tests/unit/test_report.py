"""bench.report: PNGs, summary.md and index.html rebuilt from a results.json alone."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import plots, report
from bench.commands import main
from tests.unit.bench_results_factory import make_results, make_run, write_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# figsize x DPI of each plot for the factory's run (the checkpoint plot grows with its variants:
# two in the factory).
EXPECTED_SIZES = {
    "throughput.png": (1200, 550),
    "latency.png": (1200, 850),
    "busy_rate.png": (1000, 600),
    "busy_fairness.png": (1200, 550),
    "checkpoint.png": (1200, 780),
    "claim_backlog.png": (1000, 600),
    "claim_filters.png": (1000, 600),
    "resources.png": (1200, 750),
    "worker_throughput.png": (800, 550),
    "worker_pickup.png": (800, 550),
    "soak.png": (1200, 1000),
}


def needs_matplotlib() -> None:
    """Plots need matplotlib (the ``bench`` extra); the text of the report does not."""
    pytest.importorskip("matplotlib")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path.name} is truncated"
    return width, height


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run on GitHub Actions too: never append to the real job summary."""
    monkeypatch.delenv(report.STEP_SUMMARY_ENV, raising=False)


@pytest.fixture
def results_path(tmp_path: Path) -> Path:
    return write_results(tmp_path / "20261129-091500-linux-3f2a1c0")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full report of the factory's run, shared: drawing all six plots takes seconds."""
    needs_matplotlib()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(report.STEP_SUMMARY_ENV, raising=False)
        path = write_results(tmp_path_factory.mktemp("report") / "run")
        folder = report.build_report(path)
    assert folder == path.parent
    return folder


@pytest.fixture
def only(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Draw only the named plots (the others are not even attempted): keeps tests quick."""

    def restrict(*filenames: str) -> None:
        if filenames:
            needs_matplotlib()
        specs = tuple(spec for spec in plots.PLOTS if spec.filename in filenames)
        monkeypatch.setattr(plots, "PLOTS", specs)

    return restrict


def test_every_plot_is_a_png_of_its_fixed_size(built: Path) -> None:
    folder = built
    assert {spec.filename for spec in plots.PLOTS} == set(EXPECTED_SIZES)
    for name, size in EXPECTED_SIZES.items():
        assert png_size(folder / name) == size, name


def test_summary_has_the_metric_table_key_figures_environment_and_plot_links(
    built: Path,
) -> None:
    folder = built
    summary = (folder / "summary.md").read_text(encoding="utf-8")

    assert "| Metric | Status | Value | Limit | Statistic |" in summary
    assert "| Database initialisation | PASS | 12.3 ms | < 100 ms | synthetic |" in summary
    assert "| Connection overhead | PASS | 1.4 ms | < 10 ms |" in summary
    assert "| SQLITE_BUSY error rate | PASS | 0 % | < 1 % |" in summary
    assert "PASS" in summary.splitlines()[0]
    assert "### Key figures" in summary
    assert "| Insert, single | enqueue, 1 process | 818 tasks/s |" in summary
    # The key figures lead with the library's default checkpoint policy and name the variant.
    assert "| Worst commit stall | autocheckpoint, the default | 141 ms |" in summary
    assert summary.index("the default | 141 ms") < summary.index("Worst commit stall, any")
    assert "**SQLite:** 3.40.1" in summary
    assert "**RAM:** 24 GiB" in summary
    for name in EXPECTED_SIZES:
        assert f"[{name}]({name})" in summary


def test_a_failing_metric_shows_as_fail(tmp_path: Path, only: Callable[..., None]) -> None:
    only()
    results = make_results()
    metric = next(m for m in results["metrics"] if m["id"] == "tx_per_s")
    metric.update(value=42.0, status="FAIL")
    results["passed"] = False
    folder = report.build_report(write_results(tmp_path / "run", results))

    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert "| Transaction throughput | FAIL | 42 /s | > 100 /s |" in summary
    assert "FAIL" in summary.splitlines()[0]
    assert '<td class="FAIL">FAIL</td>' in (folder / "index.html").read_text(encoding="utf-8")


def test_index_html_embeds_every_plot_and_escapes_text(built: Path) -> None:
    folder = built
    page = (folder / "index.html").read_text(encoding="utf-8")

    for name in EXPECTED_SIZES:
        png = (folder / name).read_bytes()
        assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    # The factory's CPU name has <, > , & and quotes in it.
    assert "Synthetic CPU &lt;fast&gt; &amp; &quot;quoted&quot;" in page
    assert "<fast>" not in page
    assert page.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("busy", "missing"),
        ("busy", "error"),
        ("checkpoint", "error"),
        ("query", "skipped"),
        ("insert", "missing"),
    ],
)
def test_a_missing_or_failed_scenario_skips_its_plot(
    tmp_path: Path, only: Callable[..., None], name: str, how: str
) -> None:
    only("throughput.png", "busy_rate.png", "checkpoint.png", "claim_backlog.png")
    results = make_results()
    if how == "missing":
        del results["scenarios"][name]
    else:
        results["scenarios"][name].update(status=how, error="boom <b>" if how == "error" else None)
        for key in ("series", "summary", "variants"):
            results["scenarios"][name].pop(key, None)
    stale = tmp_path / "run" / "busy_rate.png"
    stale.parent.mkdir()
    stale.write_bytes(b"stale png from an earlier build")

    folder = report.build_report(write_results(tmp_path / "run", results))

    summary = (folder / "summary.md").read_text(encoding="utf-8")
    skipped = {
        "busy": "busy_rate.png",
        "checkpoint": "checkpoint.png",
        "query": "claim_backlog.png",
    }.get(name)
    if skipped is not None:
        assert not (folder / skipped).exists()
        assert "*skipped*" in summary
        assert f"scenario '{name}'" in summary
    else:  # insert: the throughput and latency plots still draw the claim half
        png_size(folder / "throughput.png")
    if how == "error":
        assert "boom &lt;b&gt;" in (folder / "index.html").read_text(encoding="utf-8")


def test_a_single_scenario_run_gets_a_report(tmp_path: Path) -> None:
    """``python -m bench run --scenario busy`` writes one scenario; the rest are skipped."""
    needs_matplotlib()
    results = make_results()
    results["scenarios"] = {"busy": results["scenarios"]["busy"]}
    for metric in results["metrics"]:
        if metric["id"] != "busy_rate_pct":
            metric.update(value=None, status="NOT_MEASURED")

    folder = report.build_report(write_results(tmp_path / "run", results))

    assert png_size(folder / "busy_rate.png") == EXPECTED_SIZES["busy_rate.png"]
    assert png_size(folder / "busy_fairness.png") == EXPECTED_SIZES["busy_fairness.png"]
    assert png_size(folder / "resources.png") == EXPECTED_SIZES["resources.png"]
    skipped = (
        "throughput.png",
        "latency.png",
        "checkpoint.png",
        "claim_backlog.png",
        "worker_throughput.png",
        "worker_pickup.png",
        "soak.png",
        "claim_filters.png",
    )
    for name in skipped:
        assert not (folder / name).exists()
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert "| Database initialisation | NOT_MEASURED | n/a | < 100 ms |" in summary
    assert summary.count("*skipped*") == len(skipped)


def test_the_step_summary_is_appended_as_utf8(
    results_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, only: Callable[..., None]
) -> None:
    only()
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("# earlier step ✓\n", encoding="utf-8")
    monkeypatch.setenv(report.STEP_SUMMARY_ENV, str(step_summary))

    folder = report.build_report(results_path)

    text = step_summary.read_bytes().decode("utf-8")  # strict: fails on anything but UTF-8
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert text == "# earlier step ✓\n" + summary
    assert "✅" in text


def test_no_step_summary_when_asked_or_unset(
    results_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, only: Callable[..., None]
) -> None:
    only()
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv(report.STEP_SUMMARY_ENV, str(step_summary))
    report.build_report(results_path, step_summary=False)
    assert not step_summary.exists()
    monkeypatch.delenv(report.STEP_SUMMARY_ENV)
    report.build_report(results_path)
    assert not step_summary.exists()


def test_main_rebuilds_a_report(
    results_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    only: Callable[..., None],
) -> None:
    only("busy_rate.png")
    step_summary = results_path.parent / "gh.md"
    monkeypatch.setenv(report.STEP_SUMMARY_ENV, str(step_summary))

    assert main(["report", str(results_path), "--no-step-summary"]) == 0

    assert "index.html" in capsys.readouterr().out
    assert (results_path.parent / "index.html").exists()
    png_size(results_path.parent / "busy_rate.png")
    assert not step_summary.exists()


def test_main_reports_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    assert main(["report", str(tmp_path / "list.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("python -m bench report: error: ") for line in err)


def test_the_plots_are_deterministic(
    built: Path, tmp_path: Path, only: Callable[..., None]
) -> None:
    """Same results.json, same PNG bytes: two runs' plots can be diffed."""
    only("busy_rate.png", "claim_backlog.png")
    again = report.build_report(write_results(tmp_path / "again"))
    for name in ("busy_rate.png", "claim_backlog.png"):
        assert (again / name).read_bytes() == (built / name).read_bytes(), name


def test_matplotlib_is_imported_lazily_and_pyplot_never(results_path: Path) -> None:
    needs_matplotlib()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import bench.report, bench.compare, bench.plots\n"
        "assert 'matplotlib' not in sys.modules, 'bench imports matplotlib eagerly'\n"
        "bench.plots.PLOTS = bench.plots.PLOTS[2:3]  # one plot is enough here\n"
        "bench.report.build_report(Path(sys.argv[1]), step_summary=False)\n"
        "assert 'matplotlib.figure' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(results_path)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_correctness_checks_fold_away_unless_one_failed() -> None:
    results = make_results()
    page = report.render_html(make_run(results), ())
    assert "<details>" in page and "<details open>" not in page
    checks = results["correctness"]["checks"]
    checks[0] = {**checks[0], "ok": False, "detail": "lost 1"}
    results["correctness"]["ok"] = False
    page = report.render_html(make_run(results), ())
    assert "<details open>" in page
    assert f"<summary>{len(checks)} checks</summary>" in page
