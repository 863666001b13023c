"""bench.results: the one owner of results.json (version, records, number rule, "ran OK")."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bench import results, schema_doc
from bench.commands import main
from bench.scenarios import busy, checkpoint, claim, insert
from tests.unit.bench_results_factory import make_results, make_run, write_results

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baseline" / "results.json"


# The first committed baseline (ac302e7), schema 1: params written twice, no fair lock, no
# worker or soak scenario. Kept compressed so the loader keeps reading every committed baseline.
BASELINE_V1 = ROOT / "tests" / "data" / "results_v1_ac302e7.json.gz"
# The second (8e240b8), schema 2: before the backend and postgres fields of 2.1.
BASELINE_V2 = ROOT / "tests" / "data" / "results_v2_8e240b8.json.gz"


@pytest.fixture(params=["current", "v1", "v2"])
def committed_baseline(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "current":
        return BASELINE
    path = tmp_path / "results.json"
    packed = BASELINE_V1 if request.param == "v1" else BASELINE_V2
    path.write_bytes(gzip.decompress(packed.read_bytes()))
    return path


def test_the_current_baseline_has_the_current_schema() -> None:
    assert results.load(BASELINE).schema == results.SCHEMA == "prismq-bench/2.1"


def test_the_committed_baselines_still_load(committed_baseline: Path) -> None:
    """Schema 1 (params written twice), 2 and 2.1; the model reads them all, typed."""
    run = results.load(committed_baseline)
    assert run.schema in ("prismq-bench/1", "prismq-bench/2", "prismq-bench/2.1")
    assert all(entry.ok for entry in run.scenarios.values())
    found = run.result("claim", claim.Result)
    assert found is not None
    assert found.summary.min_tx_per_s == run.metric(results.TX_PER_S).value  # type: ignore[union-attr]
    assert isinstance(run.scenarios["busy"].params, busy.Params)
    assert run.scenarios["insert"].params.processes == (1, 2, 4, 8)
    stalls = run.result("checkpoint", checkpoint.Result)
    assert stalls is not None and checkpoint.DEFAULT_VARIANT in stalls.summary.by_variant


def test_write_then_load_gives_the_same_run(tmp_path: Path) -> None:
    run = make_run()
    path = results.write(run, tmp_path / "results.json")
    assert results.load(path) == run
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "parameters" not in data
    assert data["scenarios"]["insert"]["params"]["batch_size"] == 100


@pytest.mark.parametrize("schema", ["prismq-bench/3", "prismq-bench/99.1", "other/1", None])
def test_an_unknown_schema_is_refused_in_one_line(tmp_path: Path, schema: str | None) -> None:
    data = make_results()
    data["schema"] = schema
    with pytest.raises(results.ResultsError) as raised:
        results.load(write_results(tmp_path, data))
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / "results.json") in message


def test_a_minor_version_of_a_known_major_is_read(tmp_path: Path) -> None:
    data = make_results()
    data["schema"] = "prismq-bench/2.1"
    data["a_key_added_later"] = {"readers": "ignore it"}
    assert results.load(write_results(tmp_path, data)).run_id == data["run_id"]


def test_a_malformed_value_names_its_path(tmp_path: Path) -> None:
    data = make_results()
    data["scenarios"]["insert"]["series"][0]["tasks_per_s"] = "fast"
    with pytest.raises(results.ResultsError, match=r"scenarios\.insert\.series\[0\]\.tasks_per_s"):
        results.load(write_results(tmp_path, data))


def test_the_scenario_ok_rule() -> None:
    data = make_results()
    data["scenarios"]["busy"].update(status="error", error="boom")
    del data["scenarios"]["query"]
    run = make_run(data)
    assert run.result("busy", busy.Result) is None
    assert run.why_not("busy") == "scenario 'busy' has status 'error': boom"
    assert run.why_not("query") == "scenario 'query' did not run"
    assert run.result("insert", insert.Result) is not None
    assert run.result("insert", busy.Result) is None  # the wrong record is no result either


def test_a_scenario_this_harness_does_not_know_is_kept_but_has_no_result() -> None:
    data = make_results()
    data["scenarios"]["soak_from_the_future"] = {
        **data["scenarios"]["init"],
        "params": {"hours": 8},
    }
    entry = make_run(data).scenarios["soak_from_the_future"]
    assert entry.params == {"hours": 8}
    assert not entry.ok
    assert entry.why_not() == "scenario 'soak_from_the_future' is not one this harness knows"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1234.5, "tasks/s", "1,234 tasks/s"),
        (1000, "", "1,000"),
        (999.4, "ms", "999 ms"),
        (0.12345, "ms", "0.123 ms"),
        (0, "%", "0 %"),
        (None, "ms", "n/a"),
        (True, "", "yes"),
        ("text", "", "text"),
    ],
)
def test_the_one_number_rule(value: object, unit: str, text: str) -> None:
    assert results.fmt_number(value, unit) == text


def test_results_md_is_generated_from_the_model() -> None:
    """bench/RESULTS.md cannot drift: its record reference is the model's own output."""
    path = ROOT / "bench" / "RESULTS.md"
    assert schema_doc.check(path), "stale: run python -m bench schema --write bench/RESULTS.md"
    text = path.read_text(encoding="utf-8")
    for name in ("insert.Point", "busy.Summary", "checkpoint.VariantResult", "MetricVerdict"):
        assert f"#### `{name}`" in text
    assert "| `max_busy_rate_5000` | number or null |" in text


def test_schema_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "RESULTS.md"
    stale.write_text(f"# doc\n\n{schema_doc.BEGIN}\nold\n{schema_doc.END}\n", encoding="utf-8")
    assert main(["schema", "--check", str(stale)]) == 1
    assert main(["schema", "--write", str(stale)]) == 0
    capsys.readouterr()
    assert main(["schema", "--check", str(stale), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "file": str(stale),
        "stale": False,
        "written": False,
    }
    assert stale.read_text(encoding="utf-8").startswith("# doc\n")
    unmarked = tmp_path / "plain.md"
    unmarked.write_text("# no block\n", encoding="utf-8")
    assert main(["schema", "--check", str(unmarked)]) == 2
