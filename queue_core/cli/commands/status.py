"""``status``: the queue at a glance (counts per status and type, due work, leases, workers)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from queue_core.cli.base import (
    EXIT_OK,
    Command,
    add_stale_option,
    format_table,
    open_queue,
    parse_duration,
    print_json,
)
from queue_core.models import TaskStatus


class StatusCommand(Command):
    name = "status"
    help = "counts per status and type, due tasks, leases, stale workers, recent throughput"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--window",
            type=parse_duration,
            default=timedelta(minutes=15),
            help="how far back completions and failures are counted (default 15m)",
        )
        add_stale_option(parser)

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        with db:
            stats = queue.stats(window=args.window, stale_after=args.stale)
        if args.json:
            print_json(stats.to_dict())
            return EXIT_OK
        statuses = list(TaskStatus)
        rows = [
            [task_type, *(counts.get(status, 0) for status in statuses)]
            for task_type, counts in stats.counts_by_type.items()
        ]
        rows.append(["(all)", *(stats.counts[status] for status in statuses)])
        print(format_table(["type", *(status.value for status in statuses)], rows))
        oldest = stats.oldest_due_age_seconds
        window = _minutes(stats.window_seconds)
        print()
        print(
            format_table(
                ["measure", "value"],
                [
                    ["due now", stats.due_now],
                    ["oldest due waiting (s)", None if oldest is None else round(oldest, 1)],
                    ["in flight", stats.in_flight],
                    ["expired leases", stats.expired_leases],
                    ["workers", stats.workers],
                    [f"stale workers (> {stats.stale_after_seconds:g}s)", len(stats.stale_workers)],
                    [f"completed in last {window}", stats.completed_in_window],
                    [f"failed in last {window}", stats.failed_in_window],
                ],
            )
        )
        return EXIT_OK


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"
