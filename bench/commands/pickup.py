"""``python -m bench pickup-trace``: where the worker engine's pickup latency goes, stage by
stage (``bench.pickup_trace``)."""

from __future__ import annotations

import argparse

from bench.commands import Command


class PickupTraceCommand(Command):
    name = "pickup-trace"
    help = "time each task's enqueue, claim, hand-off and handler start under a steady rate"
    description = (
        "Run a worker engine (4 executors by default) and paced producers on a temporary "
        "database and print, per stage of a task's way from enqueue to handler start, its "
        "percentiles (see bench.pickup_trace)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rate", type=float, default=4000.0, help="tasks/s in total")
        parser.add_argument("--seconds", type=float, default=5.0, help="how long to enqueue")
        parser.add_argument("--executors", type=int, default=4, help="engine executors")
        parser.add_argument("--producers", type=int, default=1, help="producer processes")
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.rate <= 0 or args.seconds <= 0 or args.executors < 1 or args.producers < 1:
            return self.usage_error(
                args, "--rate and --seconds must be positive, --executors and --producers >= 1"
            )
        from bench import pickup_trace

        result = pickup_trace.measure(args.rate, args.seconds, args.executors, args.producers)
        if args.json:
            self.print_json(result)
        else:
            print("\n".join(pickup_trace.render(result)))
        return 0


COMMAND = PickupTraceCommand()
