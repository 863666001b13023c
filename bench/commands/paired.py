"""``python -m bench param-style`` and ``python -m bench tracer-overhead``: the standalone A/B
measurements of the core (``bench.param_style``, ``bench.tracer_overhead``), each a module with
``measure(rounds, tasks) -> dict`` and ``render(result) -> list[str]``."""

from __future__ import annotations

import argparse
import importlib

from bench.commands import Command


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
        result = module.measure(args.rounds, args.tasks)
        if args.json:
            self.print_json(result)
        else:
            print("\n".join(module.render(result)))
        return 0


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
