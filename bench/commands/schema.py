"""``python -m bench schema``: the results.json records, as bench/RESULTS.md documents them."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import Command


class SchemaCommand(Command):
    name = "schema"
    help = "print, check or rewrite the results.json record reference (bench/RESULTS.md)"
    description = (
        "Generate the record reference of results.json from the results model. With --write "
        "FILE, replace FILE's generated block; with --check FILE, exit 1 when it is stale."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--write", type=Path, metavar="FILE", help="rewrite FILE's block")
        group.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if FILE is stale")
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        from bench import results, schema_doc

        target: Path | None = args.write or args.check
        if target is None:
            if args.json:
                self.print_json({"schema": results.SCHEMA, "markdown": schema_doc.render()})
            else:
                print(schema_doc.render(), end="")
            return 0
        try:
            text = target.read_text(encoding="utf-8")
            updated = schema_doc.splice(text)
        except (OSError, ValueError) as exc:
            return self.usage_error(args, f"{target}: {exc}")
        stale = updated != text
        if args.write and stale:
            target.write_text(updated, encoding="utf-8", newline="\n")
        if args.json:
            self.print_json({"file": str(target), "stale": stale, "written": bool(args.write)})
        elif args.check:
            print(f"{target}: {'stale, run --write' if stale else 'up to date'}")
        return 1 if (args.check and stale) else 0


COMMAND = SchemaCommand()
