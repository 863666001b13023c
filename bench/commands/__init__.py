"""The subcommands of ``python -m bench``: one small command object per module.

Each command has a name, a one-line help, its own arguments and a ``run`` function returning
the exit status; ``bench/__main__.py`` builds one parser from ``COMMANDS``. Bad usage prints
one line (``python -m bench <command>: error: ...``) and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Command(ABC):
    """One subcommand."""

    name: str
    help: str
    description: str

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this command's options on its own sub-parser."""

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit status."""

    @staticmethod
    def add_json(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="print the outcome as one JSON object on stdout"
        )

    @staticmethod
    def usage_error(args: argparse.Namespace, message: str) -> int:
        """Report bad input (an unreadable file, say) as one line; the usage exit status."""
        print(f"{args.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    @staticmethod
    def print_json(data: Any) -> None:
        print(json.dumps(data, indent=1, allow_nan=False))


def commands() -> Sequence[Command]:
    """Every subcommand, in the order ``--help`` lists them."""
    from bench.commands import backends, compare, ops, paired, pickup, report, run, schema

    return (
        run.COMMAND,
        report.COMMAND,
        compare.COMMAND,
        backends.COMMAND,
        schema.COMMAND,
        paired.PARAM_STYLE,
        paired.TRACER_OVERHEAD,
        paired.INDEX_COST,
        paired.TRIGGER_COST,
        pickup.COMMAND,
        ops.COMMAND,
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m bench",
        description="PrismQ queue_core stress harness: scenarios, success-metric gate, reports.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands():
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command, prog=sub.prog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.argv = arguments
    handler: Command = args.handler
    return handler.run(args)
