"""``restore BACKUP``: put a verified backup in place of the queue (workers must be stopped)."""

from __future__ import annotations

import argparse
from pathlib import Path

from queue_core import maintenance
from queue_core.cli.base import EXIT_OK, Command, UsageError, database_path, print_json


class RestoreCommand(Command):
    name = "restore"
    help = "replace the queue with a verified backup (refused while anything has the queue open)"
    description = (
        "Verify BACKUP, then write it over the queue file. Refused while another process has "
        "the queue open: stop workers and producers first. The current content is saved next to "
        "the queue as <name>.before-restore-<UTC time>.db unless --no-keep-current is given."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("backup", type=Path, metavar="BACKUP", help="the backup file")
        parser.add_argument(
            "--no-keep-current",
            dest="keep_current",
            action="store_false",
            help="do not save the current content first",
        )

    def run(self, args: argparse.Namespace) -> int:
        target = database_path(args)
        if not args.backup.is_file():
            raise UsageError(f"{args.backup} is not a backup file")
        safety = maintenance.restore(target, args.backup, keep_current=args.keep_current)
        if args.json:
            print_json(
                {
                    "path": str(target),
                    "restored_from": str(args.backup.absolute()),
                    "previous_saved_to": None if safety is None else str(safety),
                }
            )
        else:
            print(f"{target}: restored from {args.backup.absolute()}")
            if safety is not None:
                print(f"the previous content is in {safety}")
        return EXIT_OK
