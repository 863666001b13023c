"""Exactly-once accounting: every task completed once, none lost, none duplicated."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from bench.results import Accounting


def exactly_once(
    expected_ids: Iterable[int],
    completed_ids: Iterable[int],
    db_completed: int | None = None,
    *,
    pending_ids: Iterable[int] = (),
) -> Accounting:
    """Compare what workers say they completed with what should have been completed.

    :param expected_ids: every task that was enqueued.
    :param completed_ids: the concatenation of every worker's successfully completed ids.
    :param db_completed: how many tasks the database shows ``completed`` (``counts()``).
    :param pending_ids: tasks legitimately not completed yet (still queued when a timed run
        ended); they are neither lost nor expected.
    """
    expected = set(expected_ids)
    pending = set(pending_ids) & expected
    tally = Counter(completed_ids)
    duplicates = sum(count - 1 for count in tally.values() if count > 1)
    done = set(tally)
    must_complete = expected - pending
    lost = len(must_complete - done)
    unexpected = len(done - expected)
    db_ok = db_completed is None or db_completed == len(done)
    ok = duplicates == 0 and lost == 0 and unexpected == 0 and db_ok
    return Accounting(
        expected=len(must_complete),
        completed=sum(tally.values()),
        duplicates=duplicates,
        lost=lost,
        unexpected=unexpected,
        db_completed=db_completed,
        ok=ok,
    )


def describe(result: Accounting) -> str:
    """A one-line text of an :func:`exactly_once` result for the correctness checks."""
    return (
        f"expected {result.expected}, completed {result.completed}, "
        f"duplicates {result.duplicates}, lost {result.lost}, "
        f"unexpected {result.unexpected}, db completed {result.db_completed}"
    )
