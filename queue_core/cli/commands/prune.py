"""``prune --older-than 7d``: delete finished tasks (and their logs) past their retention."""

from __future__ import annotations

import argparse

from queue_core.cli.base import (
    EXIT_OK,
    Command,
    Progress,
    format_table,
    open_queue,
    parse_duration,
    positive_int,
    print_json,
)
from queue_core.mending import DEFAULT_PRUNE_BATCH


class PruneCommand(Command):
    name = "prune"
    help = "delete finished tasks older than a retention period, in short transactions"
    description = (
        "Delete completed, failed and cancelled tasks that finished more than --older-than ago, "
        "with their log lines, a batch per transaction so workers keep claiming meanwhile. A "
        "pruned task's idempotency key is free to be used again."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=parse_duration,
            required=True,
            metavar="DURATION",
            help="retention of finished tasks, e.g. 7d",
        )
        parser.add_argument(
            "--failed-older-than",
            type=parse_duration,
            metavar="DURATION",
            help="a different retention for failed and cancelled tasks (default: --older-than)",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_PRUNE_BATCH,
            help=f"tasks per transaction (default {DEFAULT_PRUNE_BATCH})",
        )

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        progress = Progress("pruning", unit="tasks")
        with db:
            try:
                result = queue.prune(
                    completed_older_than=args.older_than,
                    failed_older_than=args.failed_older_than or args.older_than,
                    batch_size=args.batch_size,
                    progress=progress if progress.enabled else None,
                )
            finally:
                progress.finish()
        if args.json:
            print_json(result.to_dict())
            return EXIT_OK
        rows = [[status.value, count] for status, count in result.tasks.items()]
        rows.append(["task_logs rows", result.logs])
        print(format_table(["deleted", "count"], rows))
        print(
            f"{result.transactions} transaction(s), longest held the write lock "
            f"{result.longest_lock_seconds * 1000:.1f} ms; {result.elapsed_seconds:.1f} s in all"
        )
        return EXIT_OK
