"""What PostgreSQL's requeue NOTIFY trigger costs the hot path, by trigger design.

``python -m bench trigger-cost [--rounds N] [--tasks N] [--copies K] [--dsn URL] [--json]``
runs, in a new database (on ``--dsn``'s server, or a throwaway one), ``--tasks`` rounds of the
hot path's three one-row statements (lease a task, renew its lease, complete it: what the
queue's claim, ``extend_lease`` and ``complete`` write) inside one server-side loop, then one
UPDATE that puts every task back in ``queued`` (a bulk requeue), once per trigger design and
round, in rotating order:

- ``none``: no requeue trigger (what any design is measured against);
- ``when on status``: migration 0006's trigger, ``AFTER UPDATE OF status ... WHEN (...)``;
- ``when on requeue columns``: migration 0007's, the same WHEN on ``UPDATE OF run_after_utc,
  error_message``, columns the hot path never writes;
- ``test in function``: ``AFTER UPDATE OF status`` without WHEN, the statuses tested in the
  function;
- ``transition tables``: one ``FOR EACH STATEMENT`` trigger that looks for a task that entered
  ``queued`` in ``REFERENCING OLD TABLE / NEW TABLE``.

One copy of a trigger costs less than this machine's noise, so each design is installed
``--copies`` times (one transition-table trigger already captures every row, so it is installed
once) and the figure is the extra cost per copy: (design - none) / copies, in microseconds per
task (hot path) or per row (bulk requeue). The clock is the server process's CPU time from
``/proc/<pid>/schedstat`` when the server runs on this Linux machine, else the wall time of each
statement (``clock`` in the result says which).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

from bench.paired import alternate, ratio_cells

NONE: Final = "none"
_WHEN: Final = "WHEN (NEW.status = 'queued' AND OLD.status IS DISTINCT FROM 'queued')"
DESIGNS: Final[dict[str, str]] = {
    NONE: "",
    "when on status": "AFTER UPDATE OF status ON task_queue FOR EACH ROW "
    f"{_WHEN} EXECUTE FUNCTION notify_queued_task()",
    "when on requeue columns": "AFTER UPDATE OF run_after_utc, error_message ON task_queue "
    f"FOR EACH ROW {_WHEN} EXECUTE FUNCTION notify_queued_task()",
    "test in function": "AFTER UPDATE OF status ON task_queue FOR EACH ROW "
    "EXECUTE FUNCTION trigger_cost_test_in_function()",
    "transition tables": "AFTER UPDATE ON task_queue "
    "REFERENCING OLD TABLE AS moved_old NEW TABLE AS moved_new "
    "FOR EACH STATEMENT EXECUTE FUNCTION trigger_cost_transition_tables()",
}
ONCE: Final = frozenset({"transition tables"})
"""Designs installed once whatever ``--copies`` says."""
_FUNCTIONS: Final = """
CREATE FUNCTION trigger_cost_test_in_function() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'queued' AND OLD.status IS DISTINCT FROM 'queued' THEN
    PERFORM pg_notify('prismq_task_queue', '');
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION trigger_cost_transition_tables() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM moved_new AS n JOIN moved_old AS o USING (id)
             WHERE n.status = 'queued' AND o.status IS DISTINCT FROM 'queued') THEN
    PERFORM pg_notify('prismq_task_queue', '');
  END IF;
  RETURN NULL;
END $$;
"""
# The statements of queue_core/sql/postgres/queries.sql (lease_to_worker, extend_lease,
# complete), one task at a time, in one server-side loop: no round trips to time.
_HOT_PATH: Final = """
DO $$
DECLARE i bigint;
BEGIN
  FOR i IN SELECT id FROM task_queue ORDER BY id LOOP
    UPDATE task_queue SET status = 'processing', locked_by = 'w', attempts = attempts + 1,
        lease_until_utc = now() + interval '1 minute', reserved_at_utc = now(),
        processing_started_utc = now(), updated_at_utc = now()
    WHERE id = i;
    UPDATE task_queue SET lease_until_utc = now() + interval '2 minutes', updated_at_utc = now()
    WHERE id = i AND status = 'processing' AND locked_by = 'w';
    UPDATE task_queue SET status = 'completed', finished_at_utc = now(), updated_at_utc = now(),
        lease_until_utc = NULL
    WHERE id = i AND status = 'processing' AND locked_by = 'w';
  END LOOP;
END $$
"""
# What a retry writes (retry_failed_batch), to every task at once.
_REQUEUE: Final = """
UPDATE task_queue SET status = 'queued', attempts = 0, run_after_utc = now(),
    finished_at_utc = NULL, locked_by = NULL, lease_until_utc = NULL, updated_at_utc = now()
"""
OPERATIONS: Final = ("hot_path", "bulk_requeue")


class _ServerClock:
    """CPU time of one server process in seconds, or wall time where that cannot be read."""

    def __init__(self, backend_pid: int) -> None:
        self._stat = Path(f"/proc/{backend_pid}/schedstat")
        self.kind = "server_cpu" if self._stat.exists() else "wall"

    def __call__(self) -> float:
        if self.kind == "server_cpu":
            return int(self._stat.read_text(encoding="ascii").split()[0]) / 1e9
        return time.perf_counter()


def _install(conn: Any, design: str, copies: int) -> None:
    conn.execute("DROP TRIGGER IF EXISTS trg_task_notify_requeue ON task_queue")
    for copy in range(copies):
        conn.execute(f"DROP TRIGGER IF EXISTS trigger_cost_{copy} ON task_queue")
    if DESIGNS[design]:
        for copy in range(1 if design in ONCE else copies):
            conn.execute(f"CREATE TRIGGER trigger_cost_{copy} {DESIGNS[design]}")


def _run_once(
    conn: Any, clock: _ServerClock, design: str, tasks: int, copies: int
) -> dict[str, float]:
    """Microseconds per task of the hot path and per row of the bulk requeue."""
    _install(conn, NONE, copies)
    conn.execute("TRUNCATE task_logs, task_queue, finished_task_counts")
    conn.execute(
        "INSERT INTO task_queue (type, payload) SELECT 't', '{}' FROM generate_series(1, %s)",
        (tasks,),
    )
    conn.execute("VACUUM ANALYZE task_queue")
    _install(conn, design, copies)
    t0 = clock()
    conn.execute(_HOT_PATH)
    t1 = clock()
    conn.execute(_REQUEUE)
    t2 = clock()
    return {"hot_path": (t1 - t0) / tasks * 1e6, "bulk_requeue": (t2 - t1) / tasks * 1e6}


def measure(
    rounds: int,
    tasks: int,
    *,
    copies: int = 20,
    dsn: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Each design's cost per copy on the hot path and on a bulk requeue.

    :raises bench.backends.BackendUnavailableError: no psycopg, no server, or ``dsn`` is not
        reachable (one line).
    """
    import psycopg

    from bench.backends import create_postgres_database, drop_postgres_database, postgres_server

    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    with postgres_server(dsn, say) as (server_url, server):
        url = create_postgres_database(server_url, "trigger_cost")
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(_FUNCTIONS)
                clock = _ServerClock(conn.info.backend_pid)
                _run_once(conn, clock, NONE, min(tasks, 200), copies)  # unmeasured warm-up
                samples = alternate(
                    rounds,
                    {
                        design: partial(_run_once, conn, clock, design, tasks, copies)
                        for design in DESIGNS
                    },
                    after_round=lambda index: say(f"round {index + 1}/{rounds} done"),
                )
        finally:
            drop_postgres_database(server_url, url)
    result: dict[str, Any] = {
        "rounds": rounds,
        "tasks_per_round": tasks,
        "copies": copies,
        "clock": clock.kind,
        "server": server.source,
        "designs": {},
    }
    for design, ops in samples.items():
        installed = 0 if design == NONE else 1 if design in ONCE else copies
        row: dict[str, Any] = {"copies": installed}
        for op in OPERATIONS:
            median = statistics.median(ops[op])
            extra = median - statistics.median(samples[NONE][op])
            row[f"{op}_us"] = round(median, 2)
            row[f"{op}_us_per_copy"] = round(extra / installed, 3) if installed else 0.0
            row.update(ratio_cells(f"{op}_ratio", ops[op], samples[NONE][op]))
        result["designs"][design] = row
    return result


def render(result: dict[str, Any]) -> list[str]:
    """The result as terminal lines: one per design."""
    unit = "server CPU" if result["clock"] == "server_cpu" else "wall time"
    lines = [
        f"{result['rounds']} rounds x {result['tasks_per_round']} tasks, {unit};"
        f" each design installed {result['copies']} times (transition tables once)",
        f"{'design':<26}{'hot path: us/task, +us per copy':>34}"
        f"{'bulk requeue: us/row, +us per copy':>38}",
    ]
    for design, row in result["designs"].items():
        cells = []
        for op in OPERATIONS:
            low, high = row[f"{op}_ratio_range"]
            cells.append(
                f"{row[f'{op}_us']:8.2f} {row[f'{op}_us_per_copy']:+7.3f}"
                f" (x{row[f'{op}_ratio']:.3f}, {low:.2f}-{high:.2f})"
            )
        lines.append(f"{design:<26}{cells[0]:>34}{cells[1]:>38}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.trigger_cost``: the same as ``python -m bench trigger-cost``."""
    from bench.commands import main as bench_main

    return bench_main(["trigger-cost", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
