"""``cancel ID...``: withdraw queued or running tasks."""

from __future__ import annotations

import argparse

from queue_core.cli.base import EXIT_OK, Command, open_queue, print_json, task_id
from queue_core.cli.commands.tasks import task_table


class CancelCommand(Command):
    name = "cancel"
    help = "cancel queued or running tasks (all of them, or none)"
    description = (
        "Cancel queued or running tasks. A running task's worker is not interrupted, but its "
        "complete/fail calls are refused from now on, so its result is discarded. Either every "
        "given task is cancelled or none is."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ids", nargs="+", type=task_id, metavar="ID")

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        with db:
            tasks = queue.cancel_many(args.ids)
        if args.json:
            print_json({"cancelled": [task.to_dict() for task in tasks]})
        else:
            print(task_table(tasks))
        return EXIT_OK
