"""``backup [DIR]``: an online, verified backup into a directory that keeps the newest N."""

from __future__ import annotations

import argparse
from pathlib import Path

from queue_core import maintenance
from queue_core.cli.base import (
    EXIT_OK,
    Command,
    Progress,
    database_path,
    format_bytes,
    open_sqlite_database,
    positive_int,
    print_json,
)


class BackupCommand(Command):
    name = "backup"
    help = "copy the live queue into a backup directory (workers keep running), keep the newest N"
    description = (
        "Take a consistent copy of the queue while producers and workers keep running, verify "
        "it (integrity_check, schema), store it as DIR/<name>-<UTC time>.db and delete all but "
        "the newest --keep backups there. DIR defaults to 'backups' next to the queue file."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="backup directory")
        parser.add_argument(
            "--keep",
            type=positive_int,
            default=maintenance.DEFAULT_KEEP,
            help=f"backups to keep in DIR (default {maintenance.DEFAULT_KEEP})",
        )

    def run(self, args: argparse.Namespace) -> int:
        directory = args.dir or maintenance.default_backup_dir(database_path(args))
        progress = Progress("backing up", unit="bytes")
        with open_sqlite_database(args) as db:
            try:
                info = maintenance.backup_rotated(
                    db, directory, keep=args.keep, progress=progress if progress.enabled else None
                )
            finally:
                progress.finish()
        if args.json:
            print_json(info.to_dict())
            return EXIT_OK
        print(f"{info.path}: {format_bytes(info.bytes)}, verified, in {info.seconds or 0:.2f} s")
        for old in info.removed:
            print(f"removed old backup {old}")
        return EXIT_OK
