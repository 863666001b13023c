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

This module only reads; :class:`queue_core.task_queue.TaskQueue` leases what it picks.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Final

from queue_core import sql

__all__ = [
    "Arm",
    "ClaimStrategy",
    "any_due",
    "arms_for",
    "band_weights",
    "next_due",
    "pick",
    "statement",
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
    return _weighted_pick(keyed, limit, rng)


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


def _weighted_pick(keyed: list[tuple[int, str, int]], limit: int, rng: random.Random) -> list[int]:
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
