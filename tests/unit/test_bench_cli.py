"""``python -m bench``: one parser, one command object per subcommand, one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.commands import EXIT_USAGE, build_parser, commands, main


def test_every_command_is_registered_once() -> None:
    names = [command.name for command in commands()]
    assert names == [
        "run",
        "report",
        "compare",
        "backends",
        "schema",
        "param-style",
        "tracer-overhead",
        "index-cost",
        "trigger-cost",
        "pickup-trace",
        "ops",
    ]
    help_text = build_parser().format_help()
    for name in names:
        assert name in help_text


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        ([], "python -m bench"),
        (["nope"], "python -m bench"),
        (["run", "--quick", "--tiny"], "python -m bench run"),
        (["report"], "python -m bench report"),
        (["compare", "a.json", "b.json", "--threshold", "lots"], "python -m bench compare"),
        (["param-style", "--rounds", "x"], "python -m bench param-style"),
        (["ops", "shrink"], "python -m bench ops"),
        (["run", "--backend", "oracle"], "python -m bench run"),
        (["backends", "a.json"], "python -m bench backends"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], prog: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{prog}: error: ")


def test_a_bad_value_found_after_parsing_is_one_line_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tracer-overhead", "--rounds", "0"]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "python -m bench tracer-overhead: error: --rounds and --tasks must be at least 1"


def test_ops_refuses_a_missing_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["ops", "stats", "--template", str(tmp_path / "none.db")]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m bench ops: error: no template at ")


def test_ops_builds_a_template_and_times_stats(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template = str(tmp_path / "t.db")
    assert (
        main(["ops", "build", "--template", template, "--completed", "300", "--queued", "20"]) == 0
    )
    built = json.loads(capsys.readouterr().out)
    assert (built["completed"], built["queued"]) == (300, 20)
    work = str(tmp_path / "work")
    assert main(["ops", "stats", "--template", template, "--work", work, "--repeats", "3"]) == 0
    timed = json.loads(capsys.readouterr().out)
    assert timed["counts"]["completed"] == 300 and timed["counts"]["queued"] == 20
    assert timed["stats_ms"]["p50"] > 0
