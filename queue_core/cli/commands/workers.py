"""``workers``: registered workers, their last heartbeat, and which are stale."""

from __future__ import annotations

import argparse

from queue_core.cli.base import (
    EXIT_OK,
    Command,
    add_stale_option,
    format_table,
    open_queue,
    print_json,
)


class WorkersCommand(Command):
    name = "workers"
    help = "registered workers and their heartbeats (--stale 60s marks silent ones)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_stale_option(parser)
        parser.add_argument("--only-stale", action="store_true", help="list only stale workers")

    def run(self, args: argparse.Namespace) -> int:
        db, queue = open_queue(args)
        with db:
            now = queue.now()
            workers = queue.workers()
        entries = []
        for worker in workers:
            age = None
            if worker.heartbeat_utc is not None:
                age = (now - worker.heartbeat_utc).total_seconds()
            stale = age is None or age > args.stale.total_seconds()
            if args.only_stale and not stale:
                continue
            entries.append((worker, age, stale))
        if args.json:
            print_json(
                [
                    {**worker.to_dict(), "age_seconds": age, "stale": stale}
                    for worker, age, stale in entries
                ]
            )
            return EXIT_OK
        print(
            format_table(
                ["worker_id", "heartbeat_utc", "age_s", "stale", "capabilities"],
                [
                    [
                        worker.worker_id,
                        worker.to_dict()["heartbeat_utc"],
                        None if age is None else round(age, 1),
                        "yes" if stale else "no",
                        ", ".join(f"{k}={v}" for k, v in worker.capabilities.items()) or None,
                    ]
                    for worker, age, stale in entries
                ],
            )
        )
        return EXIT_OK
