"""``python -m bench backends A.json B.json``: a SQLite run and a PostgreSQL run side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import Command
from bench.results import ResultsError


class BackendsCommand(Command):
    name = "backends"
    help = "a SQLite and a PostgreSQL results.json side by side"
    description = (
        "Put a SQLite run and a PostgreSQL run (either order) side by side: backends.md with "
        "each figure, its ratio and the better backend, and backends.png (claim+complete drain "
        "against worker processes, engine drain against executors, both backends)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("first", type=Path, help="a results.json")
        parser.add_argument("second", type=Path, help="the other backend's results.json")
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="where backends.md and backends.png go (default: the PostgreSQL run's folder)",
        )
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        from bench import results, side_by_side

        try:
            first, second = results.load(args.first), results.load(args.second)
            comparison = side_by_side.compare_backends(first, second)
        except ResultsError as exc:
            return self.usage_error(args, str(exc))
        postgres_path = args.second if second.backend == "postgres" else args.first
        folder = args.out or postgres_path.parent
        lite, pg = (first, second) if first.backend == "sqlite" else (second, first)
        try:
            markdown, plot = side_by_side.write(lite, pg, folder)
        except OSError as exc:
            return self.usage_error(args, f"cannot write into {folder}: {exc.strerror or exc}")
        if args.json:
            self.print_json(
                {
                    "sqlite_run": comparison.sqlite_run,
                    "postgres_run": comparison.postgres_run,
                    "postgres_scales": comparison.postgres_scales,
                    "sqlite_flat": comparison.sqlite_flat,
                    "rows": side_by_side.rows_as_dicts(comparison.rows),
                    "markdown": str(markdown),
                    "plot": None if plot is None else str(plot),
                }
            )
        else:
            print(side_by_side.render_markdown(comparison))
            print(f"written: {markdown}" + ("" if plot is None else f", {plot}"))
        return 0


COMMAND = BackendsCommand()
