"""``python -m queue_core``: the queue's command line.

One :class:`~queue_core.cli.base.Command` object per subcommand, each in its own module under
``queue_core/cli/commands/`` and listed in :data:`queue_core.cli.commands.COMMANDS`. This module
builds the one parser from them and turns errors into exit codes:

- 0: the command did what it was asked;
- 1: the command ran but found a problem, or the queue failed (busy, corrupt file, ...);
- 2: bad usage: an unknown option, a malformed value (``7x`` for a duration), an unknown task
  id, a task in the wrong status for the command. One line on stderr, and nothing was changed.

``check`` exits 1 when it finds a problem, ``backups --verify`` when a backup is bad and
``restore`` when another process has the queue open.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from queue_core.cli.base import EXIT_FAILURE, EXIT_USAGE, PROG, Command, UsageError
from queue_core.cli.commands import COMMANDS
from queue_core.exceptions import (
    QueueDatabaseError,
    QueueLocationError,
    TaskNotFoundError,
    TaskStateError,
)

__all__ = ["build_parser", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _shared_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # Accepted before and after the command; a value given after the command wins. Below the
    # command the default is SUPPRESS so that an absent option leaves the top-level value alone.
    default_db = None if top_level else argparse.SUPPRESS
    default_json = False if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        default=default_db,
        help="the queue database: a SQLite file or a postgresql:// URL "
        "(default: $PRISMQ_QUEUE_DB_PATH, else the platform default file)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default_json,
        help="print machine-readable JSON instead of tables",
    )


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of ``python -m queue_core`` with one subparser per command."""
    parser = _OneLineParser(
        prog=PROG,
        description="Operate PrismQ's task queue: inspect, mend, maintain and run workers.",
    )
    _shared_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        _shared_options(sub, top_level=False)
        command.add_arguments(sub)
        sub.set_defaults(handler=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args.handler
    try:
        return command.run(args)
    except (UsageError, TaskNotFoundError, TaskStateError, QueueLocationError) as exc:
        print(f"{PROG} {command.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QueueDatabaseError as exc:
        logging.getLogger("queue_core").debug("%s failed", command.name, exc_info=True)
        print(f"{PROG} {command.name}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`... | head`): exit quietly like other command-line tools, and
        # point stdout at nothing so the flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        # A path the command was given cannot be used (a backup folder that is a file, say).
        print(f"{PROG} {command.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG} {command.name}: interrupted", file=sys.stderr)
        return 130
