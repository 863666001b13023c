"""``python -m bench param-style``, ``tracer-overhead``, ``index-cost`` and ``trigger-cost``: the
standalone A/B measurements of the core (``bench.param_style``, ``bench.tracer_overhead``,
``bench.index_cost``, ``bench.trigger_cost``), each a module with
``measure(rounds, tasks) -> dict`` and ``render(result) -> list[str]``."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from bench.commands import Command
from queue_core.connecting import is_postgres_url


class PairedCommand(Command):
    """Run one A/B measurement module for ``--rounds`` rounds of ``--tasks`` tasks."""

    def __init__(self, name: str, module: str, help: str, rounds: int, tasks: int) -> None:
        self.name, self.module, self.help = name, module, help
        self.description = f"{help} (bench.{module}: see its docstring). Variants alternate "
        self.description += "within each round of one process; figures are paired ratios."
        self.rounds, self.tasks = rounds, tasks

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--rounds", type=int, default=self.rounds, help=f"rounds (default {self.rounds})"
        )
        parser.add_argument(
            "--tasks", type=int, default=self.tasks, help=f"tasks per round (default {self.tasks})"
        )
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.rounds < 1 or args.tasks < 1:
            return self.usage_error(args, "--rounds and --tasks must be at least 1")
        module = importlib.import_module(f"bench.{self.module}")
        from bench.backends import BackendUnavailableError

        try:
            result = module.measure(args.rounds, args.tasks, **self.options(args))
        except BackendUnavailableError as exc:
            return self.usage_error(args, str(exc))
        if args.json:
            self.print_json(result)
        else:
            print("\n".join(module.render(result)))
        return 0

    def options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Keyword arguments of ``measure`` from this command's own options (none here)."""
        return {}


class IndexCostCommand(PairedCommand):
    """``index-cost``: the paired options plus ``--spec`` and ``--profile``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--spec",
            action="store_true",
            help="also drop each of the specification's own indexes in turn (for reference)",
        )
        parser.add_argument(
            "--profile",
            action="store_true",
            help="instead, profile enqueue_many and claim+complete on the shipped schema",
        )

    def run(self, args: argparse.Namespace) -> int:
        if not args.profile:
            return super().run(args)
        if args.tasks < 1:
            return self.usage_error(args, "--tasks must be at least 1")
        if args.json:
            return self.usage_error(args, "--profile prints a text profile; drop --json")
        from bench import index_cost

        print(index_cost.profile(args.tasks), end="")
        return 0

    def options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"spec": args.spec}


class TriggerCostCommand(PairedCommand):
    """``trigger-cost``: the paired options plus ``--copies`` and ``--dsn``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--copies",
            type=int,
            default=20,
            help="install each trigger design this many times, so it stands out of the noise"
            " (default 20)",
        )
        parser.add_argument(
            "--dsn",
            metavar="URL",
            help="a postgresql:// URL of a server to measure on (its user needs CREATEDB);"
            " default: a throwaway server on this machine",
        )

    def run(self, args: argparse.Namespace) -> int:
        if args.copies < 1:
            return self.usage_error(args, "--copies must be at least 1")
        if args.dsn is not None and not is_postgres_url(args.dsn):
            return self.usage_error(args, f"--dsn must be a postgresql:// URL, not {args.dsn!r}")
        return super().run(args)

    def options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"copies": args.copies, "dsn": args.dsn}


PARAM_STYLE = PairedCommand(
    "param-style",
    "param_style",
    "named against positional SQL parameters on enqueue, claim and complete",
    rounds=10,
    tasks=2000,
)
TRACER_OVERHEAD = PairedCommand(
    "tracer-overhead",
    "tracer_overhead",
    "what a QueueDatabase tracer costs, against bare sqlite3",
    rounds=9,
    tasks=1000,
)
INDEX_COST = IndexCostCommand(
    "index-cost",
    "index_cost",
    "what each index and trigger costs enqueue, enqueue_many and claim+complete",
    rounds=9,
    tasks=1000,
)
TRIGGER_COST = TriggerCostCommand(
    "trigger-cost",
    "trigger_cost",
    "what designs of PostgreSQL's requeue NOTIFY trigger cost the claim/complete statements",
    rounds=6,
    tasks=2000,
)
