"""``python -m bench ops PART``: the operations measurements on a large file (bench.ops_measure:
build a template, then time stats(), prune under claiming workers, or a backup under load)."""

from __future__ import annotations

import argparse
import json

from bench.commands import Command


class OpsCommand(Command):
    name = "ops"
    help = "operations targets on a 1M-task file: stats, prune under load, backup under load"
    description = (
        "Build a template file once (build), then measure on a fresh copy of it: stats() and "
        "counts() (stats), prune of the old completed tasks while 4 workers claim (prune), or "
        "an online backup, verify and restore under producers and workers (backup). Prints one "
        "JSON object; see bench/ops_measure.py."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from bench import ops_measure

        ops_measure.add_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from bench import ops_measure

        if args.part != "build" and not args.template.is_file():
            return self.usage_error(args, f"no template at {args.template}; run `ops build` first")
        print(json.dumps(ops_measure.measure(args), indent=2))
        return 0


COMMAND = OpsCommand()
