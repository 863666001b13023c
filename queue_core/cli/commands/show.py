"""``show ID``: one task, every field, and its log lines."""

from __future__ import annotations

import argparse
import json

from queue_core.cli.base import EXIT_OK, Command, format_table, open_queue, print_json, task_id


class ShowCommand(Command):
    name = "show"
    help = "one task with all its fields and its log"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", type=task_id, help="the task id")

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        with db:
            task = queue.get(args.id)
            logs = queue.logs(args.id)
        if args.json:
            print_json({"task": task.to_dict(), "logs": [line.to_dict() for line in logs]})
            return EXIT_OK
        fields = task.to_dict()
        for name in ("payload", "compatibility"):
            fields[name] = json.dumps(fields[name], ensure_ascii=False)
        print(format_table(["field", "value"], [[name, value] for name, value in fields.items()]))
        print()
        if logs:
            print(
                format_table(
                    ["at_utc", "level", "message", "details"],
                    [
                        [
                            line.to_dict()["at_utc"],
                            line.level,
                            line.message,
                            None if line.details is None else json.dumps(line.details),
                        ]
                        for line in logs
                    ],
                )
            )
        else:
            print("(no log lines)")
        return EXIT_OK
