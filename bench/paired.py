"""Helpers shared by the standalone A/B measurements (``bench.param_style``,
``bench.tracer_overhead``): their command line, and the paired ratio of two variants.

Both run their variants back to back in each round of one process, so a ratio taken within a
round cancels most of the machine's drift; the median of those ratios is the figure and their
spread shows whether it stands out of the noise. They time with ``time.process_time()``, the
CPU time of this process (SQLite runs in it, kernel time included), because on a machine
shared with other busy processes wall time mostly measures the scheduler.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from typing import Any


def run_command(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str | None,
    rounds: int,
    tasks: int,
    measure: Callable[[int, int], dict[str, Any]],
    render: Callable[[dict[str, Any]], list[str]],
) -> int:
    """Parse the command line, run ``measure(rounds, tasks)``, print JSON or the rendering."""
    args = parse_rounds(argv, prog=prog, description=description, rounds=rounds, tasks=tasks)
    result = measure(args.rounds, args.tasks)
    lines = [json.dumps(result, indent=2)] if args.json else render(result)
    print("\n".join(lines))
    return 0


def parse_rounds(
    argv: Sequence[str] | None, *, prog: str, description: str | None, rounds: int, tasks: int
) -> argparse.Namespace:
    """Parse ``--rounds N --tasks N --json``; exits with status 2 on bad usage."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds (default {rounds})")
    parser.add_argument(
        "--tasks", type=int, default=tasks, help=f"tasks per round (default {tasks})"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.tasks < 1:
        parser.error("--rounds and --tasks must be at least 1")
    return args


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """The median and range of ``numerators[i] / denominators[i]`` over the rounds."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators, strict=True))
    return {
        "median": round(statistics.median(ratios), 4),
        "min": round(ratios[0], 4),
        "max": round(ratios[-1], 4),
    }
