"""``backups [DIR]``: list the backups in a directory, newest first."""

from __future__ import annotations

import argparse
from pathlib import Path

from queue_core import maintenance
from queue_core.cli.base import (
    EXIT_FAILURE,
    EXIT_OK,
    Command,
    UsageError,
    database_path,
    format_table,
    print_json,
)


class BackupsCommand(Command):
    name = "backups"
    help = "list the backups in a backup directory, newest first (--verify checks each)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="backup directory")
        parser.add_argument(
            "--verify", action="store_true", help="check each backup (exit 1 if one is bad)"
        )

    def run(self, args: argparse.Namespace) -> int:
        directory = args.dir or maintenance.default_backup_dir(database_path(args))
        if args.dir is not None and not args.dir.is_dir():
            raise UsageError(f"{args.dir} is not a directory")
        found = maintenance.list_backups(directory)
        checks = [maintenance.verify(info.path) for info in found] if args.verify else []
        if args.json:
            entries = [info.to_dict() for info in found]
            for entry, check in zip(entries, checks, strict=False):  # no checks without --verify
                entry["verify"] = check.to_dict()
            print_json({"directory": str(directory), "backups": entries})
        else:
            headers = ["taken_at_utc", "bytes", "path"] + (["verified"] if args.verify else [])
            rows = []
            for index, info in enumerate(found):
                taken = None if info.taken_at is None else f"{info.taken_at:%Y-%m-%d %H:%M:%S}"
                row: list[object] = [taken, info.bytes, str(info.path)]
                if args.verify:
                    check = checks[index]
                    row.append("ok" if check.ok else "; ".join(check.problems))
                rows.append(row)
            print(format_table(headers, rows) if rows else f"no backups in {directory}")
        return EXIT_FAILURE if any(not check.ok for check in checks) else EXIT_OK
