"""``python -m bench``: one parser, one command object per subcommand, one-line usage errors."""

from __future__ import annotations

import pytest

from bench.commands import EXIT_USAGE, build_parser, commands, main


def test_every_command_is_registered_once() -> None:
    names = [command.name for command in commands()]
    assert names == ["run", "report", "compare", "schema", "param-style", "tracer-overhead"]
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
