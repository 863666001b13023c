"""Which queued tasks a claim takes: the claim strategies and their index-friendly queries.

A claim matches tasks by region (a task without a region matches every worker; a worker without
a region gets only such tasks) and optionally by type. Each (type, region) pair of a claim is an
*arm*, one seek into a partial index of queued tasks (migration 0003) in claim order, so the
cost of a pick does not depend on the backlog: it grows with the number of arms (types x 2) and,
for the band-based strategies, with the number of distinct priorities among queued tasks.

Strategies:

- ``priority`` (the default): priority (lower first), then ``run_after_utc``, then id.
- ``fifo``: the due task that arrived first, by ``run_after_utc`` then id, whatever its priority.
  A task becomes due (arrives) at ``run_after_utc``: a retried task arrives again after its
  backoff.
- ``lifo``: the due task that arrived last.
- ``weighted_random``: first a priority band at random, band ``k`` (0 = the most urgent band
  that has a due task) with weight ``1 / (k + 1)``, then the oldest due task in that band. Lower
  priorities get a proportionally smaller but never zero share, so none starves behind a steady
  stream of urgent work. No ``ORDER BY random()``: only the head of each band is read.

The picks only read; :class:`LookThenLockClaimer`, SQLite's claim algorithm, leases what they
pick (PostgreSQL's is :mod:`queue_core.postgres.claiming`).
"""

from __future__ import annotations

import enum
import heapq
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from queue_core import sql

if TYPE_CHECKING:
    from queue_core.database import QueueDatabase

__all__ = [
    "Arm",
    "ClaimRequest",
    "ClaimResult",
    "ClaimStrategy",
    "LookThenLockClaimer",
    "any_due",
    "arms_for",
    "band_weights",
    "next_due",
    "pick",
    "sort_key",
    "statement",
    "weighted_pick",
]

Rows = Callable[[str, Mapping[str, Any]], Iterable[Sequence[Any]]]
"""Runs one statement with named parameters and returns its rows (a connection's ``execute``)."""

Arm = Mapping[str, Any]
"""The named parameters of one (type, region) pair: ``{"region": ...}`` or with ``"type"``."""

_FILTERS: Final = {
    False: "AND region IS :region",
    True: "AND type = :type AND region IS :region",
}
_MARKER: Final = "/*filter*/"


class ClaimStrategy(str, enum.Enum):
    """The order in which a claim takes due tasks (see the module docstring)."""

    FIFO = "fifo"
    LIFO = "lifo"
    PRIORITY = "priority"
    WEIGHTED_RANDOM = "weighted_random"

    @classmethod
    def parse(cls, value: Any) -> ClaimStrategy:
        """Return the strategy named by ``value`` (a member or its name).

        :raises TypeError: ``value`` is neither a ClaimStrategy nor a str.
        :raises ValueError: no strategy has that name.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(f"strategy must be a ClaimStrategy or str, not {type(value).__name__}")
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(member.value for member in cls)
            raise ValueError(f"unknown claim strategy {value!r}; choose one of {names}") from None


@dataclass(frozen=True)
class ClaimRequest:
    """One validated claim: who, which tasks, in which order, until when."""

    worker_id: str
    types: list[str] | None
    """Only these task types (None: any)."""
    region: str | None
    """The worker's region: tasks of this region and tasks without one match."""
    strategy: ClaimStrategy
    now: str
    """The claim's moment, as stored UTC text."""
    lease_until: str
    """When the leases end, as stored UTC text."""
    limit: int


@dataclass(frozen=True)
class ClaimResult:
    """What a claim leased (rows of ``{task_columns}``, in claim order) and released."""

    rows: list[Any]
    released: int
    """Expired leases the claim released (requeued, or failed on their last attempt)."""


def sort_key(strategy: ClaimStrategy) -> tuple[Callable[[Any], tuple[Any, ...]], bool]:
    """How to put leased rows in the order ``strategy`` takes them: (key, reverse).

    ``weighted_random`` has no such order; its callers keep the order they picked in.
    """
    if strategy is ClaimStrategy.PRIORITY:
        return _priority_order, False
    return _arrival_order, strategy is ClaimStrategy.LIFO


def _priority_order(row: Any) -> tuple[Any, ...]:
    return (row["priority"], row["run_after_utc"], row["id"])


def _arrival_order(row: Any) -> tuple[Any, ...]:
    return (row["run_after_utc"], row["id"])


class LookThenLockClaimer:
    """SQLite's claim: look without a lock, then lease under the one write lock.

    The claim first looks without any lock: when no task matches and no lease has expired it
    returns nothing without taking the write lock. Otherwise one ``BEGIN IMMEDIATE``
    transaction releases expired leases back to the queue (or fails them on their last
    attempt) and leases the tasks it saw. When other workers took some of them in between, it
    picks once more under the lock and returns what it got: no error and no retry loop. A claim
    right after one that found tasks skips the look (the queue was not empty a moment ago, and
    the look would cost two reads), so at most one empty claim in a row takes the write lock.
    """

    def __init__(self, db: QueueDatabase, rng: random.Random) -> None:
        self._db = db
        self._rng = rng
        self._queries = db.queries
        # Whether the next claim looks without a lock first: after a claim that found nothing.
        self._look_first = True

    def claim(self, request: ClaimRequest) -> ClaimResult:
        """Lease up to ``request.limit`` due tasks; see the class docstring.

        :raises QueueBusyError: the write lock stayed taken for the whole busy timeout.
        """
        order, limit, now = request.strategy, request.limit, request.now
        arms = arms_for(request.types, request.region)
        if self._look_first:
            # Look before locking: an empty poll reads a few index entries and writes nothing.
            expired = self._db.execute(
                self._queries["expired_lease_exists"], {"now": now}
            ).fetchone()
            ids = pick(self._db.execute, order, arms, now, limit, self._rng)
            if not ids and expired is None:
                return ClaimResult([], 0)
        else:
            # The last claim found work, so this one most likely will too: the look would only
            # add two reads. Release and pick under the lock, as the look would have.
            expired, ids = True, []
        lease_params = {
            "worker_id": request.worker_id,
            "lease_until": request.lease_until,
            "now": now,
        }
        by_ids = self._queries["claim_by_ids"]
        rows: list[Any] = []
        released = 0
        self._look_first = True  # unless this claim gets tasks (an error leaves it looking)
        with self._db.transaction() as conn:
            # Released tasks may come first in claim order, and a claim that did not look has
            # no pick: either way, pick anew under the lock.
            pick_anew = expired is not None
            if expired is True:
                # It did not look. A read of the lease index costs less than the UPDATE that
                # would find nothing to release (which opens a statement journal for its
                # triggers): 3 % of a claim+complete's instructions.
                expired = conn.execute(
                    self._queries["expired_lease_exists"], {"now": now}
                ).fetchone()
            if expired is not None:
                released = int(
                    conn.execute(self._queries["release_expired_leases"], {"now": now}).rowcount
                )
            if pick_anew:
                if order is ClaimStrategy.PRIORITY and len(arms) == 1:
                    # One arm in priority order: pick and lease in one statement; for one task
                    # by id = (subquery), which needs no temporary table for an IN list.
                    name = "claim_first_in_order" if limit == 1 else "claim_in_order"
                    query = statement(name, "type" in arms[0])
                    cursor = conn.execute(query, {**arms[0], **lease_params, "limit": limit})
                    rows = sorted(cursor, key=_priority_order)
                    ids = [int(row["id"]) for row in rows]
                else:
                    ids = pick(conn.execute, order, arms, now, limit, self._rng)
            if ids and not rows:
                rows = conn.execute(by_ids, {**lease_params, "ids": json.dumps(ids)}).fetchall()
            if len(rows) < len(ids):
                # Other workers took some of the look's tasks: pick again under the lock, once,
                # and take what is there now.
                taken = {int(row["id"]) for row in rows}
                more = [
                    task_id
                    for task_id in pick(conn.execute, order, arms, now, limit, self._rng)
                    if task_id not in taken
                ][: limit - len(rows)]
                if more:
                    rows += conn.execute(
                        by_ids, {**lease_params, "ids": json.dumps(more)}
                    ).fetchall()
                ids = [task_id for task_id in ids if task_id in taken] + more
        self._look_first = not rows
        # RETURNING order is arbitrary; hand tasks out in the order they were picked.
        rank = {task_id: position for position, task_id in enumerate(ids)}
        rows.sort(key=lambda row: rank[int(row["id"])])
        return ClaimResult(rows, released)

    def next_due(self, types: list[str] | None, region: str | None) -> str | None:
        """When the first matching queued task becomes due (stored UTC text), or None."""
        return next_due(self._db.execute, arms_for(types, region))


@cache
def statement(name: str, typed: bool) -> str:
    """The named claim statement of ``queries.sql`` with the filter of an arm with or without
    a type filled in.

    :raises KeyError: no statement has that name.
    """
    return sql.queries()[name].replace(_MARKER, _FILTERS[typed])


def arms_for(types: Sequence[str] | None, region: str | None) -> list[dict[str, Any]]:
    """The arms of a claim for ``types`` (None: any) by a worker in ``region`` (None: none)."""
    regions: list[str | None] = [None] if region is None else [region, None]
    if types is None:
        return [{"region": r} for r in regions]
    unique = list(dict.fromkeys(types))
    return [{"type": t, "region": r} for t in unique for r in regions]


def any_due(rows: Rows, arms: Sequence[Arm], now: str) -> bool:
    """Tell whether any arm has a due queued task: the cheap look before taking the write lock."""
    for arm in arms:
        query = statement("claim_due_in_order", "type" in arm)
        for _ in rows(query, {**arm, "now": now, "limit": 1}):
            return True
    return False


def next_due(rows: Rows, arms: Sequence[Arm]) -> str | None:
    """The earliest ``run_after_utc`` of a queued task in any arm (due or not), or None.

    One seek per arm and priority band into the arm's index, whatever the backlog.
    """
    times = []
    for arm in arms:
        for (first,) in rows(statement("next_due_in_arm", "type" in arm), arm):
            if first is not None:
                times.append(str(first))
    return min(times, default=None)


def band_weights(bands: int) -> list[float]:
    """The weight of each priority band for ``weighted_random``, most urgent first."""
    return [1.0 / (rank + 1) for rank in range(bands)]


def pick(
    rows: Rows,
    strategy: ClaimStrategy,
    arms: Sequence[Arm],
    now: str,
    limit: int,
    rng: random.Random,
) -> list[int]:
    """The ids of up to ``limit`` due tasks in the order ``strategy`` takes them."""
    if strategy is ClaimStrategy.PRIORITY:
        keyed = _gather(rows, "claim_due_in_order", arms, now, limit)
        return [row[2] for row in heapq.nsmallest(limit, keyed)]
    if strategy is ClaimStrategy.LIFO:
        keyed = _gather(rows, "claim_band_heads_newest", arms, now, limit)
        return [row[2] for row in heapq.nlargest(limit, keyed, key=_arrival)]
    keyed = _gather(rows, "claim_band_heads_oldest", arms, now, limit)
    if strategy is ClaimStrategy.FIFO:
        return [row[2] for row in heapq.nsmallest(limit, keyed, key=_arrival)]
    return weighted_pick(keyed, limit, rng)


def _gather(
    rows: Rows, name: str, arms: Sequence[Arm], now: str, limit: int
) -> list[tuple[int, str, int]]:
    found: dict[int, tuple[int, str, int]] = {}
    for arm in arms:
        for priority, run_after, task_id in rows(
            statement(name, "type" in arm), {**arm, "now": now, "limit": limit}
        ):
            found[int(task_id)] = (int(priority), str(run_after), int(task_id))
    return list(found.values())


def _arrival(row: tuple[int, str, int]) -> tuple[str, int]:
    return (row[1], row[2])


def weighted_pick(keyed: list[tuple[int, str, int]], limit: int, rng: random.Random) -> list[int]:
    """``weighted_random``'s pick from (priority, run_after, id) rows: up to ``limit`` ids.

    Each slot draws a band (see :func:`band_weights`) and takes that band's oldest task.
    """
    bands: dict[int, list[tuple[int, str, int]]] = {}
    for row in keyed:
        bands.setdefault(row[0], []).append(row)
    # Each band oldest first, and reversed so that pop() takes the oldest.
    queues = [sorted(bands[p], key=_arrival, reverse=True) for p in sorted(bands)]
    picked: list[int] = []
    while queues and len(picked) < limit:
        index = rng.choices(range(len(queues)), weights=band_weights(len(queues)))[0]
        picked.append(queues[index].pop()[2])
        if not queues[index]:
            del queues[index]
    return picked
