"""``python -m bench compare OLD.json NEW.json``: what changed between two runs."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from bench.commands import Command
from bench.results import ResultsError


def threshold(text: str) -> float:
    """``0.15`` or ``15%``."""
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a threshold: {text}") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"threshold out of range: {text}")
    return value


class CompareCommand(Command):
    name = "compare"
    help = "compare two results.json files"
    description = (
        "Compare two results.json files: change per metric and key figure, regressions flagged. "
        "The exit status is NEW's gate: 1 when a metric fails or correctness failed."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from bench.compare import DEFAULT_THRESHOLD, EXIT_REGRESSION

        parser.add_argument("old", type=Path, help="the reference results.json (the baseline)")
        parser.add_argument("new", type=Path, help="the results.json to judge")
        parser.add_argument(
            "--threshold",
            type=threshold,
            default=DEFAULT_THRESHOLD,
            help="relative worsening flagged as a regression: 0.15 or 15%% (default 0.15)",
        )
        parser.add_argument(
            "--fail-on-regression",
            action="store_true",
            help=f"exit {EXIT_REGRESSION} when any regression is flagged (default: only print)",
        )
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        from bench import compare, results

        try:
            old, new = results.load(args.old), results.load(args.new)
        except ResultsError as exc:
            return self.usage_error(args, str(exc))
        comparison = compare.compare_results(old, new, threshold=args.threshold)
        if args.json:
            data = dataclasses.asdict(comparison)
            for row in data["rows"]:
                if row["change"] is not None and math.isinf(row["change"]):
                    row["change"] = "+inf" if row["change"] > 0 else "-inf"
            data["regressions"] = [row.id for row in comparison.regressions]
            data["gate_ok"] = comparison.gate_ok
            self.print_json(data)
        else:
            print(compare.format_comparison(comparison))
        if not comparison.gate_ok:
            return compare.EXIT_GATE_FAILED
        if args.fail_on_regression and comparison.regressions:
            return compare.EXIT_REGRESSION
        return compare.EXIT_OK


COMMAND = CompareCommand()
