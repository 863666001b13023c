"""The queue's SQL through bare ``psycopg``: PostgreSQL's twin of ``bench.baseline_sql``.

Same statements as the library (``queue_core.sql.postgres_queries()``, the claim is
``claim_in_order`` in priority order), the same session settings, one autocommit connection,
but none of the library's validation, retries, error translation or model building. The
throughput scenarios divide the library's rate by this one on PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import psycopg

from bench.baseline_sql import BareQueue, claim_params, task_params
from queue_core import sql
from queue_core.claiming import ClaimStrategy
from queue_core.postgres.claiming import statement
from queue_core.timestamps import to_db_text, utc_now

_Q = sql.postgres_queries()
_CLAIM = statement(ClaimStrategy.PRIORITY)


class BarePostgresQueue(BareQueue):
    """enqueue / enqueue_many / claim_one / complete on one bare psycopg connection."""

    queries = _Q

    def __init__(self, url: str, *, lock_timeout_ms: int = 5000) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(_Q["session_settings"], {"lock_timeout": f"{lock_timeout_ms}ms"})

    def enqueue(self, index: int, pad_bytes: int) -> int:
        row = self.conn.execute(_Q["enqueue"], task_params(index, pad_bytes)).fetchone()
        assert row is not None  # no idempotency key: the insert always returns its id
        return int(row[0])

    def enqueue_many(self, indices: Iterable[int], pad_bytes: int) -> int:
        now = to_db_text(utc_now())
        batch = [task_params(index, pad_bytes, now_text=now) for index in indices]
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(_Q["enqueue"], batch)
        return len(batch)

    def claim_one(self, worker_id: str, lease_seconds: float = 30.0) -> int | None:
        moment = utc_now()
        now = to_db_text(moment)
        until = to_db_text(moment + timedelta(seconds=lease_seconds))
        self.conn.execute(_Q["release_expired_leases"], {"now": now})
        row = self.conn.execute(_CLAIM, claim_params(worker_id, until, now)).fetchone()
        return None if row is None else int(row[0])
