"""Trace events of a QueueDatabase: what a tracer passed to it receives.

A tracer is any callable taking one event. :class:`~queue_core.database.QueueDatabase` calls
it, in the thread that does the work and while holding the instance's lock, with:

- :class:`Connected` each time it opens its connection (with the PRAGMAs applied);
- :class:`Statement` for every statement SQLite runs on that connection: the instance's own
  ``execute`` calls, statements run on the connection a :meth:`transaction` yields,
  ``BEGIN``/``COMMIT``/``ROLLBACK`` and the PRAGMAs of a connect (unless the instance was made
  with ``trace_statements=False``: these events are the costly ones);
- :class:`TransactionBegan` after each ``BEGIN IMMEDIATE`` of a :meth:`transaction`, with how
  long it waited for the write lock, also when it gave up with ``QueueBusyError``;
- :class:`WriteGateEntered` (only with ``fair_lock=True``) when a write, a single statement or
  a :meth:`transaction`, got through the write gate (:mod:`queue_core.write_gate`), with how
  long it waited there, also when it gave up.

Example (how long each transaction waited for the write lock)::

    waits = []

    def tracer(event):
        if isinstance(event, TransactionBegan):
            waits.append(event.lock_wait_seconds)

    db = QueueDatabase("queue.db", tracer=tracer, trace_statements=False)

A tracer should be quick and should not raise: an exception from it propagates out of the
connect or ``transaction()`` that called it (the new connection is closed, the transaction
rolled back first), while one raised for a :class:`Statement` is swallowed by ``sqlite3``'s
trace callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Connected:
    """The instance opened its connection: ``seconds`` spent in connect and PRAGMAs."""

    path: str
    seconds: float


@dataclass(frozen=True)
class Statement:
    """SQLite is about to run ``sql``; bound values appear inlined as SQL literals."""

    sql: str


@dataclass(frozen=True)
class TransactionBegan:
    """A ``BEGIN IMMEDIATE`` returned after ``lock_wait_seconds``.

    ``acquired`` is False when it gave up (the busy timeout ran out, and ``transaction()``
    raises :class:`~queue_core.exceptions.QueueBusyError` next).
    """

    lock_wait_seconds: float
    acquired: bool = True


@dataclass(frozen=True)
class WriteGateEntered:
    """A write of a ``fair_lock=True`` instance got through the write gate after
    ``lock_wait_seconds``: the time it waited to get to write (SQLite's lock behind the gate is
    then almost always free), without the statement or the checkpoint a writer may run after
    it let the gate go.

    ``contended`` is True when the write found the gate taken by another writer and waited for
    it, instead of finding it free; ``entered`` is False when the busy timeout ran out first
    (the call raises :class:`~queue_core.exceptions.QueueBusyError` next).
    """

    lock_wait_seconds: float
    contended: bool
    entered: bool = True


TraceEvent = Connected | Statement | TransactionBegan | WriteGateEntered
"""Every event a tracer may receive; more kinds may be added, so ignore unknown ones."""

Tracer = Callable[[TraceEvent], None]
"""The type of a tracer: called with one event, its return value ignored."""
