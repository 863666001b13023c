"""PostgreSQL's claim: pick and lease in one ``FOR UPDATE SKIP LOCKED`` statement.

SQLite has one write lock, so :class:`~queue_core.claiming.LookThenLockClaimer` looks without it
first and keeps its hold short. PostgreSQL locks rows: concurrent claims each lock the first
due tasks *nobody else holds* (``SKIP LOCKED``) and lease them in the same statement
(``claim_in_order`` for ``priority``, ``claim_by_arrival`` for ``fifo`` and ``lifo``, in
``sql/postgres/queries.sql``), so claims never wait for each other and never lease one task
twice. The order, filters, lease and fencing are SQLite's: the same
:class:`~queue_core.claiming.ClaimStrategy` orders, the region rule (a task without a region
matches every worker), and the same columns set.

A claim first releases expired leases (a statement of its own, also ``SKIP LOCKED``), then
claims; both go in one round trip (a pipeline) and one transaction.
``weighted_random`` draws its priority bands in Python with the queue's random source, as on
SQLite: it reads each band's oldest due tasks, picks, and leases the picked ids with
``claim_by_ids`` (``SKIP LOCKED`` again), picking once more if others took some meanwhile.
"""

from __future__ import annotations

import json
import random
from functools import cache
from typing import TYPE_CHECKING, Any, Final, cast

from queue_core import sql
from queue_core.claiming import ClaimRequest, ClaimResult, ClaimStrategy, sort_key, weighted_pick

if TYPE_CHECKING:
    from queue_core.postgres.database import PostgresDatabase

__all__ = ["SkipLockedClaimer", "statement"]

# The statement of each strategy, and the ORDER BY list its /*order*/ marker stands for.
_STATEMENTS: Final = {
    ClaimStrategy.PRIORITY: ("claim_in_order", "priority, run_after_utc, id"),
    ClaimStrategy.FIFO: ("claim_by_arrival", "run_after_utc, id"),
    ClaimStrategy.LIFO: ("claim_by_arrival", "run_after_utc DESC, id DESC"),
}
_MARKER: Final = "/*order*/"


@cache
def statement(strategy: ClaimStrategy) -> str:
    """The one statement that claims in ``strategy``'s order (not ``weighted_random``).

    :raises KeyError: ``weighted_random``, which has no single order.
    """
    name, order = _STATEMENTS[strategy]
    return sql.postgres_queries()[name].replace(_MARKER, order)


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
        params: dict[str, Any] = {
            "worker_id": request.worker_id,
            "lease_until": request.lease_until,
            "now": request.now,
            "types": request.types,
            "region": request.region,
            "limit": request.limit,
        }
        release = (self._queries["release_expired_leases"], {"now": request.now})
        if request.strategy is ClaimStrategy.WEIGHTED_RANDOM:
            released = self._db.execute(*release).rowcount
            return ClaimResult(self._weighted(params, request.limit), released)
        # One round trip: the release and the claim, in one transaction (or the caller's), so
        # the claim may lease what the release just put back, as on SQLite.
        freed, claimed = self._db.execute_together([release, (statement(request.strategy), params)])
        rows = claimed.fetchall()
        key, reverse = sort_key(request.strategy)
        rows.sort(key=key, reverse=reverse)  # RETURNING order is arbitrary
        return ClaimResult(rows, freed.rowcount)

    def next_due(self, types: list[str] | None, region: str | None) -> str | None:
        """When the first matching queued task becomes due (stored UTC text), or None."""
        params = {"types": None if types is None else json.dumps(types), "region": region}
        row = self._db.execute(self._queries["next_due_queued"], params).fetchone()
        return cast("str | None", row[0])

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
