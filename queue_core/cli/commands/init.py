"""``init``: create the queue database, or migrate it to the newest schema."""

from __future__ import annotations

import argparse

from queue_core.cli.base import EXIT_OK, Command, open_database, print_json


class InitCommand(Command):
    name = "init"
    help = "create the database or migrate its schema (run once before starting workers)"

    def run(self, args: argparse.Namespace) -> int:
        with open_database(args, create=True) as db:
            version = db.initialize_schema()
            path = db.location
        if args.json:
            print_json({"path": path, "schema_version": version})
        else:
            print(f"{path}: schema version {version}")
        return EXIT_OK
