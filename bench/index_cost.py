"""What each schema object costs the hot paths: enqueue, enqueue_many and claim+complete.

``python -m bench index-cost [--rounds N] [--tasks N] [--spec] [--profile] [--json]`` (also
``python -m bench.index_cost``) builds a fresh database per variant and round, runs the same work
on it through ``TaskQueue`` in this process, and reports each variant's rates as the median of
its per-round ratios to ``shipped`` (the schema every migration builds). The variants:

- ``shipped``: every migration;
- ``without X``: shipped, with the index or trigger X dropped, for every index and trigger a
  migration after the specification's ``0001`` adds (with ``--spec``, the specification's own
  indexes too, for reference: they are the contract and stay). Never dropped: the lease index
  of ``0002``, which the claim's statements name (``INDEXED BY``), and unique indexes (rules);
- ``schema N``: the same code on a file migrated only to version N, for every earlier version
  from 2 up: ``schema 2`` is the schema before the filtered-claim and operations migrations.

The work per variant and round: ``--tasks`` single ``enqueue`` calls (autocommit), five times as
many tasks through ``enqueue_many`` in batches of 100, then ``--tasks`` rounds of ``claim_one``
and ``complete`` (one worker, no region: the harness's ``claim`` scenario). Variants run in a
rotating order within each round. Times are the CPU time of this process
(``time.process_time()``, SQLite's work and the kernel's WAL writes included), because on a
machine shared with other busy processes wall time mostly measures the scheduler.

``--profile`` instead runs the work once on the shipped schema under cProfile and prints, for
``enqueue_many`` and for claim+complete, the functions that took the most time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.baseline_sql import payload
from bench.paired import alternate, ratio_cells
from queue_core import QueueDatabase, TaskQueue, schema, sql

OPERATIONS = ("enqueue", "enqueue_many", "claim+complete")
BATCH = 100
BATCHED_TASKS_PER_TASK = 5
PAD_BYTES = 200
WORKER = "index-cost"
SHIPPED = "shipped"
# Statements of the claim that name an index: dropping that index would break the claim.
_CLAIM_STATEMENTS = ("release_expired_leases", "expired_lease_exists")


@dataclass(frozen=True)
class Variant:
    """A schema to measure: the file migrated to ``version``, then ``drop`` run."""

    name: str
    version: int
    drop: tuple[str, ...] = ()


def _objects(version: int) -> list[tuple[str, str]]:
    """(type, name) of every index and trigger a file of ``version`` has, in creation order,
    except unique indexes: they are rules (idempotency), not a cost to weigh."""
    with (
        tempfile.TemporaryDirectory(prefix="index-cost-objects-") as folder,
        QueueDatabase(Path(folder) / "objects.db") as db,
    ):
        schema.migrate(db, _chain(version))
        rows = db.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger')"
            " AND sql NOT LIKE 'CREATE UNIQUE %' AND name NOT LIKE 'sqlite_autoindex_%'"
            " ORDER BY rowid"
        ).fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def claim_indexes() -> frozenset[str]:
    """The indexes the claim's statements name with ``INDEXED BY``."""
    queries = sql.queries()
    return frozenset(
        name
        for statement in _CLAIM_STATEMENTS
        for name in re.findall(r"INDEXED BY (\w+)", queries[statement])
    )


def variants(*, spec: bool = False) -> list[Variant]:
    """``shipped``, each droppable object of it removed in turn, and each older version."""
    latest = schema.latest_version()
    spec_objects = set(_objects(1))
    kept = claim_indexes()
    found = [Variant(SHIPPED, latest)]
    for kind, name in _objects(latest):
        if name in kept or ((kind, name) in spec_objects and not spec):
            continue
        statement = f"DROP {kind.upper()} {name}"
        found.append(Variant(f"without {name}", latest, (statement,)))
    older = [m.version for m in sql.migrations() if 1 < m.version < latest]
    found += [Variant(f"schema {version}", version) for version in reversed(older)]
    return found


def _chain(version: int) -> tuple[sql.Migration, ...]:
    """The migrations up to ``version`` (numbers may skip one that only the other backend
    needed)."""
    return tuple(m for m in sql.migrations() if m.version <= version)


def _build(path: Path, variant: Variant) -> None:
    with QueueDatabase(path) as db:
        schema.migrate(db, _chain(variant.version))
        for statement in variant.drop:
            db.execute(statement)


def _work(queue: TaskQueue, tasks: int, clock: Callable[[], float]) -> dict[str, float]:
    """Run the three operations; return each one's rate in tasks per second of ``clock``."""
    items = [{"type": "bench", "payload": payload(i, PAD_BYTES)} for i in range(BATCH)]
    t0 = clock()
    for i in range(tasks):
        queue.enqueue("bench", payload(i, PAD_BYTES))
    t1 = clock()
    batches = max(1, tasks * BATCHED_TASKS_PER_TASK // BATCH)
    for _ in range(batches):
        queue.enqueue_many(items)
    t2 = clock()
    for _ in range(tasks):
        task = queue.claim_one(WORKER)
        if task is None:
            raise RuntimeError("the claim found no task")
        queue.complete(task.id, WORKER)
    t3 = clock()
    return {
        "enqueue": tasks / (t1 - t0),
        "enqueue_many": batches * BATCH / (t2 - t1),
        "claim+complete": tasks / (t3 - t2),
    }


def _measure_once(folder: Path, variant: Variant, tasks: int) -> dict[str, float]:
    path = folder / f"v{time.perf_counter_ns()}.db"
    _build(path, variant)
    with QueueDatabase(path) as db:
        rates = _work(TaskQueue(db), tasks, time.process_time)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return rates


def measure(rounds: int, tasks: int, *, spec: bool = False) -> dict[str, Any]:
    """Rates of every variant over ``rounds`` rounds; ratios to ``shipped`` taken per round."""
    chosen = variants(spec=spec)
    with tempfile.TemporaryDirectory(prefix="index-cost-") as folder:
        _measure_once(Path(folder), chosen[0], min(tasks, 200))  # unmeasured warm-up
        rates = alternate(
            rounds,
            {v.name: partial(_measure_once, Path(folder), v, tasks) for v in chosen},
            after_round=lambda index: print(
                f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True
            ),
        )
    result: dict[str, Any] = {"rounds": rounds, "tasks_per_round": tasks, "variants": {}}
    for name in rates:
        row: dict[str, Any] = {}
        for op in OPERATIONS:
            row[f"{op}_per_s"] = round(statistics.median(rates[name][op]))
            row.update(ratio_cells(f"{op}_ratio", rates[name][op], rates[SHIPPED][op]))
        result["variants"][name] = row
    return result


def render(result: dict[str, Any]) -> list[str]:
    """The result as terminal lines: one per variant, rate and ratio to shipped per operation."""
    lines = [
        f"{result['rounds']} rounds x {result['tasks_per_round']} tasks; median rate (tasks/s of"
        " CPU time) and the median (range) over rounds of its ratio to shipped",
        f"{'variant':<42}" + "".join(f"{op:>32}" for op in OPERATIONS),
    ]
    for name, row in result["variants"].items():
        cells = []
        for op in OPERATIONS:
            low, high = row[f"{op}_ratio_range"]
            cells.append(f"{row[f'{op}_per_s']:>9} {row[f'{op}_ratio']:.3f} ({low:.2f}-{high:.2f})")
        lines.append(f"{name:<42}" + "".join(f"{cell:>32}" for cell in cells))
    return lines


def profile(tasks: int, top: int = 25) -> str:
    """cProfile of ``enqueue_many`` and of claim+complete on the shipped schema, as text."""
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="index-cost-profile-") as folder:
        path = Path(folder) / "profile.db"
        _build(path, Variant(SHIPPED, schema.latest_version()))
        with QueueDatabase(path) as db:
            queue = TaskQueue(db)
            items = [{"type": "bench", "payload": payload(i, PAD_BYTES)} for i in range(BATCH)]
            parts: list[tuple[str, Callable[[], None]]] = [
                ("enqueue_many", lambda: _enqueue_batches(queue, items, tasks)),
                ("claim+complete", lambda: _claim_complete(queue, tasks)),
            ]
            for title, work in parts:
                profiler = cProfile.Profile(time.process_time)
                profiler.runcall(work)
                out.write(f"== {title}: {tasks} tasks ==\n")
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _enqueue_batches(queue: TaskQueue, items: Sequence[dict[str, Any]], tasks: int) -> None:
    for _ in range(max(1, tasks // len(items))):
        queue.enqueue_many(items)


def _claim_complete(queue: TaskQueue, tasks: int) -> None:
    for _ in range(tasks):
        task = queue.claim_one(WORKER)
        if task is None:
            return
        queue.complete(task.id, WORKER)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.index_cost``: the same as ``python -m bench index-cost``."""
    from bench.commands import main as bench_main

    return bench_main(["index-cost", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
