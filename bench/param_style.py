"""Named (``:now``) against positional (``?``) SQL parameters on the queue's hot statements.

``python -m bench param-style [--rounds N] [--tasks N] [--json]`` runs enqueue, claim (with its
release of expired leases) and complete through bare ``sqlite3`` on one database, once with
positional and once with named parameters per round, alternating which goes first, and prints
the median time per call of each style and the median of the per-round ratios. Both styles run
the statement text of ``queries.sql``; the other style is derived from it by renaming each
placeholder in order, so the two differ only in binding: a tuple literal, or a dict literal
holding each repeated value once, built inside the timed loop as the library would build it.
Also an ``enqueue_batch`` of the same tasks through ``executemany`` in one transaction.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.baseline_sql import connect, payload
from bench.paired import alternate, paired_ratio
from queue_core import QueueDatabase, sql
from queue_core.timestamps import to_db_text, utc_now

_ENQUEUE_ORDER = (
    "type",
    "priority",
    "payload",
    "compatibility",
    "max_attempts",
    "run_after",
    "idempotency_key",
    "now",
    "now",
)
# The parameters of each measured statement, in the order they appear in its text.
PARAMETER_ORDER: dict[str, tuple[str, ...]] = {
    "enqueue": _ENQUEUE_ORDER,
    "enqueue_batch": _ENQUEUE_ORDER,
    "release_expired_leases": ("now", "now", "now"),
    "claim": (
        "worker_id",
        "lease_until",
        "now",
        "now",
        "now",
        "now",
        "types",
        "types",
        "region",
        "limit",
    ),
    "complete": ("now", "now", "task_id", "worker_id"),
}
OPERATIONS = ("enqueue", "claim", "complete", "enqueue_batch")
STYLES = ("positional", "named")
WORKER = "param-style-worker"
_PLACEHOLDER = re.compile(r"\?|:[a-z_]+\b")


def restyle(text: str, order: Sequence[str], *, named: bool) -> str:
    """Rewrite every placeholder of ``text`` as ``?``, or as ``:name`` taken from ``order``.

    :raises ValueError: the statement has another number of placeholders than ``order``, or
        names them differently.
    """
    found = _PLACEHOLDER.findall(text)
    if len(found) != len(order):
        raise ValueError(f"{len(found)} placeholders in the statement, {len(order)} names given")
    named_in_text = [name[1:] for name in found if name != "?"]
    if named_in_text and named_in_text != list(order):
        raise ValueError(f"the statement names {named_in_text}, not {list(order)}")
    names = iter(order)
    return _PLACEHOLDER.sub(lambda _: f":{next(names)}" if named else "?", text)


def statements(style: str) -> dict[str, str]:
    """The measured statements of ``queries.sql`` with ``style`` placeholders."""
    queries = sql.queries()
    named = style == "named"
    return {
        name: restyle(queries[name], order, named=named) for name, order in PARAMETER_ORDER.items()
    }


def _run_style(path: Path, style: str, tasks: int, pad: int) -> dict[str, float]:
    """Enqueue ``tasks``, claim each, complete each, then enqueue ``tasks`` in one batch.

    Returns the seconds per call of each (per task for the batch). The batched tasks are left
    queued behind a ``run_after`` far in the future, so later rounds never claim them.
    """
    q = statements(style)
    conn = connect(path)
    try:
        texts = [json.dumps(payload(i, pad), separators=(",", ":")) for i in range(tasks)]
        ids: list[int] = []
        t0 = time.process_time()
        for text in texts:
            now = to_db_text(utc_now())
            if style == "named":
                params: Any = {
                    "type": "bench",
                    "priority": 100,
                    "payload": text,
                    "compatibility": "{}",
                    "max_attempts": 5,
                    "run_after": now,
                    "idempotency_key": None,
                    "now": now,
                }
            else:
                params = ("bench", 100, text, "{}", 5, now, None, now, now)
            ids.append(conn.execute(q["enqueue"], params).fetchall()[0][0])
        t1 = time.process_time()
        claimed: list[int] = []
        for _ in range(tasks):
            moment = utc_now()
            now = to_db_text(moment)
            until = to_db_text(moment + timedelta(seconds=30))
            conn.execute("BEGIN IMMEDIATE")
            if style == "named":
                conn.execute(q["release_expired_leases"], {"now": now})
                rows = conn.execute(
                    q["claim"],
                    {
                        "worker_id": WORKER,
                        "lease_until": until,
                        "now": now,
                        "types": None,
                        "region": None,
                        "limit": 1,
                    },
                ).fetchall()
            else:
                conn.execute(q["release_expired_leases"], (now, now, now))
                rows = conn.execute(
                    q["claim"], (WORKER, until, now, now, now, now, None, None, None, 1)
                ).fetchall()
            conn.execute("COMMIT")
            claimed.append(rows[0][0])
        t2 = time.process_time()
        for task_id in claimed:
            now = to_db_text(utc_now())
            if style == "named":
                cursor = conn.execute(
                    q["complete"], {"now": now, "task_id": task_id, "worker_id": WORKER}
                )
            else:
                cursor = conn.execute(q["complete"], (now, now, task_id, WORKER))
            if cursor.rowcount != 1:
                raise RuntimeError(f"complete of task {task_id} matched nothing")
        t3 = time.process_time()
        later = "9999-01-01 00:00:00.000"
        now = to_db_text(utc_now())
        conn.execute("BEGIN IMMEDIATE")
        if style == "named":
            conn.executemany(
                q["enqueue_batch"],
                [
                    {
                        "type": "bench",
                        "priority": 100,
                        "payload": text,
                        "compatibility": "{}",
                        "max_attempts": 5,
                        "run_after": later,
                        "idempotency_key": None,
                        "now": now,
                    }
                    for text in texts
                ],
            )
        else:
            conn.executemany(
                q["enqueue_batch"],
                [("bench", 100, text, "{}", 5, later, None, now, now) for text in texts],
            )
        conn.execute("COMMIT")
        t4 = time.process_time()
    finally:
        conn.close()
    if sorted(claimed) != ids:
        raise RuntimeError(f"{style}: claimed other tasks than were enqueued")
    return {
        "enqueue": (t1 - t0) / tasks,
        "claim": (t2 - t1) / tasks,
        "complete": (t3 - t2) / tasks,
        "enqueue_batch": (t4 - t3) / tasks,
    }


def measure(rounds: int, tasks: int, pad: int = 200) -> dict[str, Any]:
    """Alternate the two styles for ``rounds`` rounds on one database; medians and ratios."""
    with tempfile.TemporaryDirectory(prefix="param-style-") as folder:
        path = Path(folder) / "queue.db"
        with QueueDatabase(path) as db:
            db.initialize_schema()
        # One unmeasured round of each warms the page cache and SQLite's statement cache.
        for style in STYLES:
            _run_style(path, style, min(tasks, 200), pad)
        samples = alternate(
            rounds, {style: partial(_run_style, path, style, tasks, pad) for style in STYLES}
        )
    result: dict[str, Any] = {"rounds": rounds, "tasks_per_round": tasks, "operations": {}}
    for op in OPERATIONS:
        pos = statistics.median(samples["positional"][op])
        nam = statistics.median(samples["named"][op])
        ratio = paired_ratio(samples["named"][op], samples["positional"][op])
        result["operations"][op] = {
            "positional_us": round(pos * 1e6, 2),
            "named_us": round(nam * 1e6, 2),
            "named_over_positional": ratio["median"],
            "round_ratio_min": ratio["min"],
            "round_ratio_max": ratio["max"],
        }
    return result


def render(result: dict[str, Any]) -> list[str]:
    """The result as terminal lines: one per operation."""
    lines = [
        f"{result['rounds']} rounds x {result['tasks_per_round']} tasks, styles alternating;"
        " median per call"
    ]
    for op, row in result["operations"].items():
        lines.append(
            f"  {op:<13}  positional {row['positional_us']:8.2f} us  named {row['named_us']:8.2f}"
            f" us  named/positional {row['named_over_positional']:.3f}"
            f" (rounds {row['round_ratio_min']:.3f}-{row['round_ratio_max']:.3f})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.param_style``: the same as ``python -m bench param-style``."""
    from bench.commands import main as bench_main

    return bench_main(["param-style", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
