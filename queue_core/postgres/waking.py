"""The PostgreSQL change watch: LISTEN for the NOTIFY that a queued task sends.

The triggers of migrations 0006 and 0007 send ``NOTIFY prismq_task_queue`` when a statement
of the queue puts a task in ``queued`` (an enqueue, a retry, a release); the notification is
delivered when that transaction commits. :class:`NotifyWatch` LISTENs on a connection of its
own (psycopg reads notifications on an autocommit connection that runs nothing else), and its
socket is the handle an idle worker engine waits on beside its executors' pipes, so the engine
wakes as soon as a producer commits, without asking the server anything while it waits.

The safety net: a notification sent while the listener was reconnecting is lost, so
:meth:`NotifyWatch.changed` also says True once :data:`SAFETY_POLL_SECONDS` passed since the
last claim; an idle engine therefore claims once a second even when nothing woke it. A lost
listening connection is reopened on the next look (at most every
:data:`RECONNECT_SECONDS`); until then the watch is polled at the safety interval.

On Windows a selector cannot wait on libpq's socket beside the engine's pipes
(``multiprocessing.connection.wait`` takes waitable handles, which a socket is not), so there
the watch has no handle and the engine looks every 2 to 10 ms; a look reads only what the
socket already received, without a round trip to the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, Final

import psycopg

from queue_core import sql
from queue_core.waking import ACTIVE_POLL_SECONDS, IDLE_POLL_SECONDS

__all__ = ["CHANNEL", "RECONNECT_SECONDS", "SAFETY_POLL_SECONDS", "NotifyWatch"]

LOG: Final = logging.getLogger("queue_core.postgres.waking")
CHANNEL: Final = "prismq_task_queue"
"""The channel the triggers of 0006 and 0007 notify (``listen_queued_tasks`` LISTENs on it)."""
SAFETY_POLL_SECONDS: Final = 1.0
"""An idle engine claims at least this often even when no notification came."""
RECONNECT_SECONDS: Final = 1.0
"""How long a watch whose listening connection failed waits before opening another."""


class NotifyWatch:
    """A :class:`~queue_core.waking.ChangeWatch` fed by ``LISTEN``/``NOTIFY``.

    :param conninfo: the ``postgresql://`` URL (or libpq conninfo) of the queue's database.
    :param safety_poll_seconds: see :data:`SAFETY_POLL_SECONDS`.
    :param windows: use the Windows behaviour (no handle, short polls); default: ``os.name``.

    The constructor does not raise: when the server cannot be reached the watch starts without
    its connection and reports a change at every safety poll until it has one.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        safety_poll_seconds: float = SAFETY_POLL_SECONDS,
        windows: bool | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._safety = safety_poll_seconds
        self._windows = os.name == "nt" if windows is None else windows
        self._conn: psycopg.Connection[Any] | None = None
        self._pending = True  # nothing marked yet: a first claim is due
        self._marked_at = time.monotonic()
        self._reconnect_at = 0.0
        self._open()

    @property
    def listening(self) -> bool:
        """Whether the listening connection is open (False after a failure, until reopened)."""
        return self._conn is not None

    def handle(self) -> int | None:
        if self._conn is None or self._windows:
            return None
        return self._conn.pgconn.socket

    def poll_seconds(self, recently_busy: bool) -> float:
        if self._conn is not None and self._windows:
            return ACTIVE_POLL_SECONDS if recently_busy else IDLE_POLL_SECONDS
        return self._safety

    def mark(self) -> None:
        self._drain()
        self._pending = self._conn is None
        self._marked_at = time.monotonic()

    def changed(self) -> bool:
        if self._conn is None and time.monotonic() >= self._reconnect_at:
            self._open()
        if self._drain():
            self._pending = True
        return self._pending or time.monotonic() - self._marked_at >= self._safety

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to release
                conn.close()

    def _open(self) -> None:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            self._lost(exc)
            return
        try:
            conn.execute(sql.postgres_queries()["listen_queued_tasks"])
        except psycopg.Error as exc:
            conn.close()
            self._lost(exc)
            return
        self._conn = conn
        self._pending = True  # notifications sent while it was away are lost: look once

    def _drain(self) -> bool:
        """Consume the notifications already received; whether there were any."""
        if self._conn is None:
            return False
        received = 0
        try:
            for _ in self._conn.notifies(timeout=0.0):
                received += 1
        except psycopg.Error as exc:
            self.close()
            self._lost(exc)
            return True
        return received > 0

    def _lost(self, exc: psycopg.Error) -> None:
        LOG.warning(
            "listening for queued tasks failed (%s); polling every %g s until it reconnects",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            self._safety,
        )
        self._pending = True
        self._reconnect_at = time.monotonic() + RECONNECT_SECONDS
