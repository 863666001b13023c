"""``python -m bench run|report|compare``: the harness's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.profiles import PROFILES
from bench.scenarios import NAMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="PrismQ queue_core stress harness: scenarios, success-metric gate, reports.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the scenarios and write reports/<run-id>/results.json",
        description="Run stress scenarios in real (spawn) processes; exit 1 when a metric "
        "fails or a task was lost or duplicated.",
    )
    size = run.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="profile",
        action="store_const",
        const="quick",
        help="the CI profile (under 5 minutes on 2 cores)",
    )
    size.add_argument(
        "--tiny",
        dest="profile",
        action="store_const",
        const="tiny",
        help="each scenario for a second or two (used by the tests)",
    )
    size.add_argument(
        "--profile",
        dest="profile",
        choices=sorted(PROFILES),
        help="a profile by name (default: default, under 15 minutes)",
    )
    run.set_defaults(profile="default")
    run.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help=f"run only this scenario (repeatable or comma separated): {', '.join(NAMES)}",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="where reports/<run-id>/ goes (default: ./reports)",
    )
    run.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="parent of the temporary directories (default: the system temp dir)",
    )
    run.add_argument(
        "--coverage-json",
        type=Path,
        default=Path("reports/coverage.json"),
        help="coverage.py JSON written by `nox -s tests` (default: reports/coverage.json)",
    )
    run.add_argument(
        "--pytest-benchmark-json",
        type=Path,
        default=None,
        help="fold this pytest-benchmark JSON into results.json",
    )
    run.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="write results.json only, no plots or summary",
    )
    commands.add_parser(
        "report", help="build plots and summary from a results.json", add_help=False
    )
    commands.add_parser("compare", help="compare two results.json files", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("report", "compare"):
        # Written separately; imported only when asked for.
        if args[0] == "report":
            from bench import report

            return int(report.main(args[1:]))
        from bench import compare

        return int(compare.main(args[1:]))
    options = build_parser().parse_args(args)
    from bench.runner import RunOptions, execute

    chosen = [
        name.strip()
        for item in (options.scenario or [])
        for name in item.split(",")
        if name.strip()
    ]
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        build_parser().error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}"
        )
    status, _, _ = execute(
        RunOptions(
            profile=options.profile,
            scenarios=chosen or NAMES,
            out_dir=options.out,
            workdir=options.workdir,
            coverage_json=options.coverage_json,
            pytest_benchmark_json=options.pytest_benchmark_json,
            report=options.report,
            command=["python", "-m", "bench", *args],
        )
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
