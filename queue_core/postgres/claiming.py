"""PostgreSQL's claim: pick and lease in one ``FOR UPDATE SKIP LOCKED`` statement.

SQLite has one write lock, so :class:`~queue_core.claiming.LookThenLockClaimer` looks without it
first and keeps its hold short. PostgreSQL locks rows: concurrent claims each lock the first
due tasks *nobody else holds* (``SKIP LOCKED``) and lease them in the same statement
(``claim_in_order`` in ``sql/postgres/queries.sql``), so claims never wait for each other and
never lease one task twice. The order, filters, lease and fencing are SQLite's: the same
:class:`~queue_core.claiming.ClaimStrategy` orders, the region rule (a task without a region
matches every worker), and the same columns set.

A claim first releases expired leases (its own statement, also ``SKIP LOCKED``), then claims.
``weighted_random`` draws its priority bands in Python with the queue's random source, as on
SQLite: it reads each band's oldest due tasks, picks, and leases the picked ids with
``claim_by_ids`` (``SKIP LOCKED`` again), picking once more if others took some meanwhile.
"""

from __future__ import annotations

import random
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from queue_core import sql
from queue_core.claiming import ClaimRequest, ClaimResult, ClaimStrategy, sort_key, weighted_pick

if TYPE_CHECKING:
    from queue_core.postgres.database import PostgresDatabase

__all__ = ["SkipLockedClaimer", "statement"]

_ORDERS: Final = {
    ClaimStrategy.PRIORITY: "priority, run_after_utc, id",
    ClaimStrategy.FIFO: "run_after_utc, id",
    ClaimStrategy.LIFO: "run_after_utc DESC, id DESC",
}
_MARKER: Final = "/*order*/"


@cache
def statement(strategy: ClaimStrategy) -> str:
    """``claim_in_order`` with the ORDER BY of ``strategy`` (not ``weighted_random``).

    :raises KeyError: ``weighted_random``, which has no single order.
    """
    return sql.postgres_queries()["claim_in_order"].replace(_MARKER, _ORDERS[strategy])


class SkipLockedClaimer:
    """PostgreSQL's claim algorithm for one queue (see the module docstring)."""

    def __init__(self, db: PostgresDatabase, rng: random.Random) -> None:
        self._db = db
        self._rng = rng
        self._queries = db.queries

    def claim(self, request: ClaimRequest) -> ClaimResult:
        """Release expired leases, then lease up to ``request.limit`` due tasks.

        :raises QueueBusyError: a statement kept losing races or waited too long for a lock.
        :raises QueueDatabaseError: any other database error (a subclass says why).
        """
        db = self._db
        released = db.execute(
            self._queries["release_expired_leases"], {"now": request.now}
        ).rowcount
        params: dict[str, Any] = {
            "worker_id": request.worker_id,
            "lease_until": request.lease_until,
            "now": request.now,
            "types": request.types,
            "region": request.region,
            "limit": request.limit,
        }
        if request.strategy is ClaimStrategy.WEIGHTED_RANDOM:
            return ClaimResult(self._weighted(params, request.limit), released)
        rows = db.execute(statement(request.strategy), params).fetchall()
        key, reverse = sort_key(request.strategy)
        rows.sort(key=key, reverse=reverse)  # RETURNING order is arbitrary
        return ClaimResult(rows, released)

    def _weighted(self, params: dict[str, Any], limit: int) -> list[Any]:
        ids = self._pick(params, limit, set())
        rows = self._by_ids(params, ids) if ids else []
        if len(rows) < len(ids):
            # Other claims took some of the pick: pick once more from what is left.
            taken = {int(row["id"]) for row in rows}
            more = self._pick(params, limit, set(ids))[: limit - len(rows)]
            if more:
                rows += self._by_ids(params, more)
            ids = [task_id for task_id in ids if task_id in taken] + more
        rank = {task_id: position for position, task_id in enumerate(ids)}
        rows.sort(key=lambda row: rank[int(row["id"])])
        return rows

    def _pick(self, params: dict[str, Any], limit: int, skip: set[int]) -> list[int]:
        heads = self._db.execute(self._queries["claim_band_heads"], params).fetchall()
        keyed = [
            (int(priority), str(run_after), int(task_id))
            for priority, run_after, task_id in heads
            if int(task_id) not in skip
        ]
        return weighted_pick(keyed, limit, self._rng)

    def _by_ids(self, params: dict[str, Any], ids: list[int]) -> list[Any]:
        return self._db.execute(self._queries["claim_by_ids"], {**params, "ids": ids}).fetchall()
