"""``tasks``: list tasks, newest first, optionally of one status and type."""

from __future__ import annotations

import argparse

from queue_core.cli.base import (
    EXIT_OK,
    Command,
    format_table,
    non_empty,
    open_queue,
    positive_int,
    print_json,
)
from queue_core.models import Task, TaskStatus


class TasksCommand(Command):
    name = "tasks"
    help = "list tasks, newest first"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--status", choices=[status.value for status in TaskStatus])
        parser.add_argument("--type", type=non_empty, metavar="TYPE")
        parser.add_argument(
            "--limit", type=positive_int, default=20, help="at most this many (default 20)"
        )

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        with db:
            tasks = queue.list_tasks(
                status=None if args.status is None else TaskStatus(args.status),
                type=args.type,
                limit=args.limit,
            )
        if args.json:
            print_json([task.to_dict() for task in tasks])
        else:
            print(task_table(tasks))
        return EXIT_OK


def task_table(tasks: list[Task]) -> str:
    """The table ``tasks``, ``retry`` and ``cancel`` print."""
    return format_table(
        ["id", "type", "status", "prio", "attempts", "run_after_utc", "locked_by", "error"],
        [
            [
                task.id,
                task.type,
                task.status.value,
                task.priority,
                f"{task.attempts}/{task.max_attempts}",
                task.to_dict()["run_after_utc"],
                task.locked_by,
                _short(task.error_message),
            ]
            for task in tasks
        ],
    )


def _short(text: str | None, width: int = 60) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
