"""``check``: integrity of the file and of the queue's bookkeeping; exit 1 on a problem."""

from __future__ import annotations

import argparse

from queue_core import maintenance
from queue_core.cli.base import (
    EXIT_FAILURE,
    EXIT_OK,
    Command,
    open_sqlite_database,
    print_json,
)
from queue_core.schema import schema_version


class CheckCommand(Command):
    name = "check"
    help = "integrity_check, foreign keys and the task counters (exit 1 if a problem is found)"

    def run(self, args: argparse.Namespace) -> int:
        with open_sqlite_database(args) as db:
            problems = maintenance.integrity_check(db)
            version = schema_version(db)
            path = db.path
        if args.json:
            print_json(
                {
                    "path": str(path),
                    "schema_version": version,
                    "ok": not problems,
                    "problems": problems,
                }
            )
        elif problems:
            print(f"{path}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"{path}: ok (schema version {version})")
        return EXIT_FAILURE if problems else EXIT_OK
