"""The queue's SQL through bare ``sqlite3``: what this schema allows on this machine.

Same statements (``queue_core.sql.queries()``), same PRAGMAs (``queue_core.PRAGMAS``), same
``BEGIN IMMEDIATE`` transactions as the library, but none of its validation, locking, error
translation or model building. The throughput scenarios divide the library's rate by this one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from queue_core import PRAGMAS, sql
from queue_core.database import PER_CONNECTION_PRAGMAS
from queue_core.timestamps import to_db_text, utc_now

_Q = sql.queries()
PER_CONNECTION = PER_CONNECTION_PRAGMAS


def connect(
    path: Path, *, busy_timeout_ms: int = 5000, overrides: Mapping[str, int | str] | None = None
) -> sqlite3.Connection:
    """A bare connection with the library's PRAGMAs (the database must already be in WAL)."""
    pragmas = {**PRAGMAS, **(overrides or {}), "busy_timeout": busy_timeout_ms}
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute(f"PRAGMA page_size = {int(pragmas['page_size'])}")
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    for name in PER_CONNECTION:
        conn.execute(f"PRAGMA {name} = {pragmas[name]}")
    return conn


def payload(index: int, pad_bytes: int) -> dict[str, Any]:
    """The payload every scenario enqueues (the same for library and bare runs)."""
    return {"n": index, "format": "webp", "pad": "x" * pad_bytes}


def task_params(index: int, pad_bytes: int, *, now_text: str | None = None) -> tuple[Any, ...]:
    """Parameters of the ``enqueue``/``enqueue_batch`` statements for one task."""
    now = now_text or to_db_text(utc_now())
    return (
        "bench",
        100,
        json.dumps(payload(index, pad_bytes), separators=(",", ":")),
        "{}",
        5,
        now,
        None,
        now,
        now,
    )


def claim_params(worker_id: str, lease_until: str, now: str, limit: int = 1) -> dict[str, Any]:
    """Parameters of the ``claim`` statement for any type and region (named, as the library)."""
    return {
        "worker_id": worker_id,
        "lease_until": lease_until,
        "now": now,
        "types": None,
        "region": None,
        "limit": limit,
    }


class BareQueue:
    """enqueue / enqueue_many / claim_one / complete on one bare connection.

    ``bench.baseline_pg.BarePostgresQueue`` is its PostgreSQL twin: it keeps ``close``, the
    ``with`` block and ``complete``, and brings its own connection and statements.
    """

    queries: Mapping[str, str] = _Q
    conn: Any

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.conn = connect(path, busy_timeout_ms=busy_timeout_ms)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> BareQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, index: int, pad_bytes: int) -> int:
        rows = self.conn.execute(_Q["enqueue"], task_params(index, pad_bytes)).fetchall()
        return int(rows[0][0])

    def enqueue_many(self, indices: Iterable[int], pad_bytes: int) -> int:
        now = to_db_text(utc_now())
        batch = [task_params(index, pad_bytes, now_text=now) for index in indices]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_Q["enqueue_batch"], batch)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(batch)

    def claim_one(self, worker_id: str, lease_seconds: float = 30.0) -> int | None:
        moment = utc_now()
        now = to_db_text(moment)
        until = to_db_text(moment + timedelta(seconds=lease_seconds))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_Q["release_expired_leases"], {"now": now})
            rows = conn.execute(_Q["claim"], claim_params(worker_id, until, now)).fetchall()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return int(rows[0][0]) if rows else None

    def complete(self, task_id: int, worker_id: str) -> None:
        now = to_db_text(utc_now())
        cursor = self.conn.execute(
            self.queries["complete"], {"now": now, "task_id": task_id, "worker_id": worker_id}
        )
        if cursor.rowcount != 1:
            raise RuntimeError(f"bare complete of task {task_id} by {worker_id} matched nothing")


_BULK_INSERT = """
WITH RECURSIVE seq(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
INSERT INTO task_queue (type, priority, payload, compatibility, max_attempts, run_after_utc,
                        idempotency_key, created_at_utc, updated_at_utc)
SELECT 'bench', n % 10, json_object('n', n, 'format', 'webp', 'pad', ?), ?, 5, ?, NULL, ?, ?
FROM seq
"""


def bulk_load(
    path: Path, start: int, count: int, *, pad_bytes: int = 32, region: str | None = None
) -> None:
    """Append ``count`` queued tasks (ids ``start..``) in one transaction, fast.

    The rows are generated inside SQLite by a recursive CTE: about four times faster than
    ``executemany`` from Python (1M rows in roughly 15 s on a 2-core VM), with the same columns,
    indexes and generated columns. Priorities spread over 0..9 so the claim index has shape.
    ``region`` goes into every task's ``compatibility`` (default: no region).
    """
    if count <= 0:
        return
    now = to_db_text(utc_now() - timedelta(minutes=5))
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        compatibility = "{}" if region is None else json.dumps({"region": region})
        conn.execute(
            _BULK_INSERT,
            (start, start + count - 1, "x" * pad_bytes, compatibility, now, now, now),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
