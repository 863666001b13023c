"""What the claim's indexes (migration 0003) and the write gate cost enqueue, in one process.

Every variant gets a fresh database; the variants are interleaved round by round (each round
starting with another) so that load from elsewhere hits them alike, and each figure is the
median over the rounds. Ratios are to
the variant without the new indexes (``none``) measured in the same rounds.

    python -m bench.index_cost [--rounds 5] [--tasks 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.baseline_sql import payload
from queue_core import QueueDatabase, TaskQueue

CLAIM_INDEXES = ("ix_task_queued_region", "ix_task_queued_type_region")
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "none": ((), False),
    "region": (("ix_task_queued_region",), False),
    "type_region": (("ix_task_queued_type_region",), False),
    "both (shipped)": (CLAIM_INDEXES, False),
    "both + fair lock": (CLAIM_INDEXES, True),
}
BATCH = 100


def _measure(
    folder: Path, name: str, keep: tuple[str, ...], fair: bool, tasks: int
) -> dict[str, float]:
    path = folder / f"{name.split()[0]}-{time.perf_counter_ns()}.db"
    with QueueDatabase(path, fair_lock=fair) as db:
        db.initialize_schema()
        for index in CLAIM_INDEXES:
            if index not in keep:
                db.execute(f"DROP INDEX {index}")
        queue = TaskQueue(db)
        started = time.perf_counter()
        for i in range(tasks):
            queue.enqueue("bench", payload(i, 200), compatibility={"region": "eu"})
        single = tasks / (time.perf_counter() - started)
        items = [
            {"type": "bench", "payload": payload(i, 200), "compatibility": {"region": "eu"}}
            for i in range(BATCH)
        ]
        started = time.perf_counter()
        for _ in range(tasks // BATCH * 5):
            queue.enqueue_many(items)
        batched = tasks * 5 / (time.perf_counter() - started)
    return {"single_per_s": single, "batch_per_s": batched}


def run(rounds: int, tasks: int) -> dict[str, Any]:
    """Measure every variant ``rounds`` times; return medians and ratios to ``none``."""
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="index-cost-") as folder:
        for round_no in range(rounds):
            names = list(VARIANTS)
            # A different variant goes first each round: the first of a round ran slower.
            for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                keep, fair = VARIANTS[name]
                samples[name].append(_measure(Path(folder), name, keep, fair, tasks))
            print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)
    result: dict[str, Any] = {}
    for name, rows in samples.items():
        result[name] = {key: round(statistics.median(row[key] for row in rows)) for key in rows[0]}
    base = result["none"]
    for row in result.values():
        row["single_ratio"] = round(row["single_per_s"] / base["single_per_s"], 3)
        row["batch_ratio"] = round(row["batch_per_s"] / base["batch_per_s"], 3)
    return {"rounds": rounds, "tasks": tasks, "variants": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.index_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.tasks < BATCH:
        parser.error(f"--rounds must be >= 1 and --tasks >= {BATCH}")
    result = run(args.rounds, args.tasks)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'variant':<18} {'single/s':>9} {'ratio':>6} {'batched/s':>10} {'ratio':>6}")
    for name, row in result["variants"].items():
        print(
            f"{name:<18} {row['single_per_s']:>9} {row['single_ratio']:>6} "
            f"{row['batch_per_s']:>10} {row['batch_ratio']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
