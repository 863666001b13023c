"""``python -m bench run``: run the scenarios and write ``reports/<run-id>/results.json``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.backends import BACKENDS, POSTGRES_SCENARIOS, masked, refused_scenarios
from bench.commands import Command
from bench.profiles import PROFILES
from bench.scenarios import NAMES
from queue_core.connecting import is_postgres_url


class RunCommand(Command):
    name = "run"
    help = "run the scenarios and write reports/<run-id>/results.json"
    description = (
        "Run stress scenarios in real (spawn) processes; exit 1 when a metric fails or a task "
        "was lost or duplicated."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        size = parser.add_mutually_exclusive_group()
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
        parser.set_defaults(profile="default")
        parser.add_argument(
            "--scenario",
            action="append",
            metavar="NAME",
            help=f"run only this scenario (repeatable or comma separated): {', '.join(NAMES)}",
        )
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            default="sqlite",
            help=(
                "the database to measure (default: sqlite); postgres runs "
                f"{', '.join(POSTGRES_SCENARIOS)} against a throwaway server started on this "
                "machine, or --dsn"
            ),
        )
        parser.add_argument(
            "--dsn",
            metavar="URL",
            help="with --backend postgres: measure this server (a postgresql:// URL whose user "
            "may CREATE DATABASE) instead of a throwaway one",
        )
        parser.add_argument(
            "--out",
            type=Path,
            default=Path("reports"),
            help="where reports/<run-id>/ goes (default: ./reports)",
        )
        parser.add_argument(
            "--workdir",
            type=Path,
            default=None,
            help="parent of the temporary directories (default: the system temp dir)",
        )
        parser.add_argument(
            "--coverage-json",
            type=Path,
            default=Path("reports/coverage.json"),
            help="coverage.py JSON written by `nox -s tests` (default: reports/coverage.json)",
        )
        parser.add_argument(
            "--pytest-benchmark-json",
            type=Path,
            default=None,
            help="fold this pytest-benchmark JSON into results.json",
        )
        parser.add_argument(
            "--no-report",
            dest="report",
            action="store_false",
            help="write results.json only, no plots or summary",
        )
        self.add_json(parser)

    def run(self, args: argparse.Namespace) -> int:
        chosen = [
            name.strip()
            for item in (args.scenario or [])
            for name in item.split(",")
            if name.strip()
        ]
        unknown = sorted(set(chosen) - set(NAMES))
        if unknown:
            return self.usage_error(
                args, f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}"
            )
        if args.dsn is not None and args.backend != "postgres":
            return self.usage_error(args, "--dsn needs --backend postgres")
        if args.dsn is not None and not is_postgres_url(args.dsn):
            return self.usage_error(args, f"--dsn must be a postgresql:// URL, not {args.dsn!r}")
        refused = refused_scenarios(args.backend, chosen)
        if refused:
            return self.usage_error(
                args,
                f"scenario(s) {', '.join(refused)} run on SQLite only; with --backend "
                f"{args.backend} choose from {', '.join(POSTGRES_SCENARIOS)}",
            )
        from bench.backends import BackendUnavailableError
        from bench.runner import RunOptions, execute

        def to_stderr(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        options = RunOptions(
            profile=args.profile,
            scenarios=chosen or NAMES,
            out_dir=args.out,
            workdir=args.workdir,
            coverage_json=args.coverage_json,
            pytest_benchmark_json=args.pytest_benchmark_json,
            report=args.report,
            command=["python", "-m", "bench", *_without_password(args.argv)],
            backend=args.backend,
            dsn=args.dsn,
        )
        if args.json:  # stdout carries the JSON alone; progress goes to stderr
            options.progress = to_stderr
        try:
            status, path, run = execute(options)
        except BackendUnavailableError as exc:
            return self.usage_error(args, str(exc))
        if args.json:
            self.print_json(
                {
                    "run_id": run.run_id,
                    "results": str(path),
                    "passed": run.passed,
                    "correct": run.correctness.ok,
                    "metrics": {m.id: {"value": m.value, "status": m.status} for m in run.metrics},
                }
            )
        return status


def _without_password(argv: list[str]) -> list[str]:
    """The command line as results.json records it: a --dsn's password masked."""
    shown = []
    for arg in argv:
        option, equals, value = arg.rpartition("=")
        if is_postgres_url(arg):
            arg = masked(arg)
        elif equals and is_postgres_url(value):
            arg = f"{option}={masked(value)}"
        shown.append(arg)
    return shown


COMMAND = RunCommand()
