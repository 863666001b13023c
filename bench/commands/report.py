"""``python -m bench report RESULTS.json``: rebuild the plots, summary.md and index.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import Command
from bench.results import ResultsError


class ReportCommand(Command):
    name = "report"
    help = "build plots and summary from a results.json"
    description = "Rebuild the plots, summary.md and index.html of a run from its results.json."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("results", type=Path, help="path to reports/<run-id>/results.json")
        parser.add_argument(
            "--no-step-summary",
            action="store_true",
            help="do not append summary.md to $GITHUB_STEP_SUMMARY even when it is set",
        )
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        from bench import report

        try:
            folder = report.build_report(args.results, step_summary=not args.no_step_summary)
        except ResultsError as exc:
            return self.usage_error(args, str(exc))
        index = folder / report.INDEX_NAME
        if args.json:
            self.print_json(
                {
                    "folder": str(folder),
                    "index": str(index),
                    "summary": str(folder / report.SUMMARY_NAME),
                }
            )
        else:
            print(f"report written to {index}")
        return 0


COMMAND = ReportCommand()
