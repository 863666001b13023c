"""How an idle worker learns that another connection may have queued work: a change watch.

A database hands out a :class:`ChangeWatch` through ``change_watch()``; the worker engine waits
on it and on its executors' pipes at once, and knows nothing of the backend behind it:

- SQLite (:class:`DataVersionWatch`): ``PRAGMA data_version`` changes whenever another
  connection commits. Reading it takes no lock and costs microseconds, so the engine looks
  every 2 ms while work is flowing and every 10 ms once idle. There is nothing to wait on.
- PostgreSQL (``queue_core.postgres.waking.NotifyWatch``): a trigger sends ``NOTIFY`` when a
  task enters ``queued``, and the watch LISTENs on a connection of its own; its socket is the
  :meth:`~ChangeWatch.handle` the engine waits on, so it wakes the moment a producer commits.
  A slow timed poll is the safety net.

The protocol in use, for any backend:

1. :meth:`~ChangeWatch.mark` just before a claim: changes from here on are reported;
2. when the claim came up short, wait on :meth:`~ChangeWatch.handle` (if any) for at most
   :meth:`~ChangeWatch.poll_seconds`, then ask :meth:`~ChangeWatch.changed`; claim again when it
   says True.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from queue_core.exceptions import QueueDatabaseError

if TYPE_CHECKING:
    from queue_core.database import QueueDatabase

__all__ = ["ACTIVE_POLL_SECONDS", "IDLE_POLL_SECONDS", "ChangeWatch", "DataVersionWatch"]

ACTIVE_POLL_SECONDS: Final = 0.002
"""How often a watch without a handle looks while work is flowing: at most this long passes
before an engine notices new work."""
IDLE_POLL_SECONDS: Final = 0.010
"""The same once the engine found nothing for a while: a fifth of the wake-ups, so an idle
engine stays well under 1 % of a core, and it still notices new work within 10 ms."""


class ChangeWatch(Protocol):
    """Tells an idle worker when another connection may have queued work.

    A watch belongs to one worker and is used from one thread. It never raises: a watch that
    cannot tell (a lost connection) answers True, so the worker claims and learns the truth
    from the claim.
    """

    def handle(self) -> int | None:
        """A socket that becomes readable when a change may have been committed, for
        ``selectors``; None when this watch has nothing to wait on and must be polled."""
        ...

    def poll_seconds(self, recently_busy: bool) -> float:
        """The longest a worker should wait before asking :meth:`changed` again.

        ``recently_busy``: the worker found work in the last few seconds (a polled watch then
        looks more often).
        """
        ...

    def mark(self) -> None:
        """Start watching from now; call it just before a claim, whose result covers all that
        was committed before."""
        ...

    def changed(self) -> bool:
        """Whether another connection may have queued work since :meth:`mark`.

        It consumes what made the handle readable, and stays True until the next
        :meth:`mark`.
        """
        ...

    def close(self) -> None:
        """Release what the watch holds (PostgreSQL: its listening connection)."""
        ...


class DataVersionWatch:
    """SQLite's watch: ``PRAGMA data_version`` of the worker's own connection.

    The number changes when any other connection commits to the file (never for this
    connection's own commits), so a changed number means there may be something new.
    """

    def __init__(self, db: QueueDatabase) -> None:
        self._db = db
        self._token: int | None = None

    def handle(self) -> None:
        return None

    def poll_seconds(self, recently_busy: bool) -> float:
        return ACTIVE_POLL_SECONDS if recently_busy else IDLE_POLL_SECONDS

    def mark(self) -> None:
        self._token = self._read()

    def changed(self) -> bool:
        return self._token is None or self._read() != self._token

    def close(self) -> None:
        """Nothing to release: the watch reads through the worker's own connection."""

    def _read(self) -> int | None:
        try:
            return self._db.data_version()
        except QueueDatabaseError:
            return None  # cannot tell: changed() says True and the claim reports the error
