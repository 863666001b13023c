"""``worker``: run a WorkerEngine on the queue until SIGINT/SIGTERM (Ctrl+C/Ctrl+Break)."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Mapping
from typing import Any

from queue_core.claiming import ClaimStrategy
from queue_core.cli.base import EXIT_OK, Command, UsageError, open_database, print_json
from queue_core.executor import import_reference
from queue_core.task_queue import DEFAULT_LEASE_SECONDS
from queue_core.worker_engine import WorkerEngine

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WorkerCommand(Command):
    name = "worker"
    help = "run handlers for queued tasks in child processes until stopped (Ctrl+C, SIGTERM)"
    description = (
        "Claim tasks and run their handlers in spawn child processes. HANDLERS names a mapping "
        "of task type to handler function, as package.module:NAME. The first Ctrl+C (or "
        "SIGTERM, Ctrl+Break) stops claiming and lets running handlers finish within --grace "
        "seconds; a second one stops at once. Exits 0 after a graceful stop."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("handlers", metavar="HANDLERS", help="package.module:MAPPING")
        parser.add_argument(
            "--concurrency", type=int, default=4, metavar="N", help="executor processes (default 4)"
        )
        parser.add_argument("--region", default=None, help="also claim tasks for this region")
        parser.add_argument(
            "--types",
            default=None,
            metavar="a,b",
            help="claim only these types (default: every type in HANDLERS)",
        )
        parser.add_argument(
            "--strategy",
            default=None,
            choices=[strategy.value for strategy in ClaimStrategy],
            help="claim order (default: priority)",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=DEFAULT_LEASE_SECONDS,
            metavar="SECONDS",
            help="lease of each claimed task (default 30)",
        )
        parser.add_argument(
            "--prefetch",
            type=int,
            default=None,
            metavar="N",
            help="claimed tasks waiting beyond the running ones (default: 4 per executor)",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="how long running handlers may finish after a stop (default 10)",
        )
        parser.add_argument("--worker-id", default=None, help="default: engine-HOST-PID")
        parser.add_argument(
            "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
        )

    def run(self, args: argparse.Namespace) -> int:
        handlers = load_handlers(args.handlers)
        types = None if args.types is None else [t.strip() for t in args.types.split(",")]
        for value, option in ((args.lease, "--lease"), (args.grace, "--grace")):
            if not math.isfinite(value) or value < 0 or (option == "--lease" and value == 0):
                raise UsageError(f"{option} must be a positive number of seconds, not {value}")
        logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
        with open_database(args) as db:
            try:
                engine = WorkerEngine(
                    db,
                    handlers,
                    concurrency=args.concurrency,
                    region=args.region,
                    types=types,
                    strategy=args.strategy,
                    lease_seconds=args.lease,
                    prefetch=args.prefetch,
                    worker_id=args.worker_id,
                    shutdown_grace=args.grace,
                )
            except (TypeError, ValueError) as exc:
                raise UsageError(str(exc)) from exc
            engine.run()
        summary = {
            "worker_id": engine.worker_id,
            "completed": engine.completed,
            "failed": engine.failed,
        }
        if args.json:
            print_json(summary)
        else:
            print(
                f"{engine.worker_id}: stopped, {engine.completed} completed, "
                f"{engine.failed} failed for good"
            )
        return EXIT_OK


def load_handlers(reference: str) -> Mapping[str, Any]:
    """Import ``package.module:NAME`` and check it is a mapping of task type to handler.

    :raises UsageError: the reference does not import, or is not such a mapping.
    """
    try:
        handlers = import_reference(reference)
    except ValueError as exc:
        raise UsageError(f"HANDLERS: {exc}") from exc
    if not isinstance(handlers, Mapping) or not handlers:
        raise UsageError(f"{reference} must be a non-empty mapping of task type to handler")
    return handlers
