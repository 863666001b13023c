"""``retry``: put failed (or cancelled) tasks back in the queue with a fresh set of attempts."""

from __future__ import annotations

import argparse

from queue_core.cli.base import (
    EXIT_OK,
    Command,
    UsageError,
    non_empty,
    open_queue,
    print_json,
    task_id,
)
from queue_core.cli.commands.tasks import task_table


class RetryCommand(Command):
    name = "retry"
    help = "requeue failed or cancelled tasks (attempts start again from 0)"
    description = (
        "Requeue the given failed or cancelled tasks, or with --failed every failed task (of "
        "--type). Attempts are reset to 0, so each task gets its full max_attempts again. With "
        "ids, either every task is requeued or none is."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ids", nargs="*", type=task_id, metavar="ID")
        parser.add_argument("--failed", action="store_true", help="retry every failed task")
        parser.add_argument("--type", type=non_empty, help="with --failed: only this type")

    def run(self, args: argparse.Namespace) -> int:
        if args.failed and args.ids:
            raise UsageError("give task ids or --failed, not both")
        if not args.failed and not args.ids:
            raise UsageError("give the ids of the tasks to retry, or --failed")
        if args.type is not None and not args.failed:
            raise UsageError("--type only goes with --failed")
        db, queue = open_queue(args)
        with db:
            if args.failed:
                count = queue.retry_failed(type=args.type)
                if args.json:
                    print_json({"retried": count, "type": args.type})
                else:
                    kind = f" of type {args.type}" if args.type else ""
                    print(f"requeued {count} failed task(s){kind}")
                return EXIT_OK
            tasks = queue.retry_many(args.ids)
        if args.json:
            print_json({"retried": [task.to_dict() for task in tasks]})
        else:
            print(task_table(tasks))
        return EXIT_OK
