"""How an idle worker learns that another connection may have queued work: a change watch.

A database hands out a :class:`ChangeWatch` through ``change_watch()``; the worker engine waits
on it and on its executors' pipes at once, and knows nothing of the backend behind it:

- SQLite (:class:`DataVersionWatch`): every commit ``write()``s frames to the ``-wal`` file,
  so the watch's handle is the operating system's notification that ``-wal`` was written
  (:mod:`queue_core.file_watch`: inotify on Linux, kqueue on macOS): an idle engine sleeps
  until some connection commits, with a look every 5 s as the safety net. A wake-up is then
  checked cheaply (the wal-index header in ``-shm``, one ``pread``) and confirmed with ``PRAGMA
  data_version``, which changes only for other connections' commits, so the engine's own
  writes do not make it claim. Where there is no notification (Windows; inotify refused; the
  ``-wal`` file gone until it comes back) the watch has no usable handle and the engine looks
  every 2 ms while work is flowing and every 10 ms once idle; each look costs one ``pread``,
  and ``data_version`` is read only when the header moved (or every 5 s).
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

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from queue_core.exceptions import QueueDatabaseError
from queue_core.file_watch import open_file_watch
from queue_core.wal_index import WalIndex

if TYPE_CHECKING:
    from queue_core.database import QueueDatabase
    from queue_core.file_watch import FileWatch

__all__ = [
    "ACTIVE_POLL_SECONDS",
    "IDLE_POLL_SECONDS",
    "RETRY_SECONDS",
    "SAFETY_POLL_SECONDS",
    "SETTLE_SECONDS",
    "ChangeWatch",
    "DataVersionWatch",
    "FileWatchOpener",
]

ACTIVE_POLL_SECONDS: Final = 0.002
"""How often a watch without a handle looks while work is flowing: at most this long passes
before an engine notices new work."""
IDLE_POLL_SECONDS: Final = 0.010
"""The same once the engine found nothing for a while: a fifth of the wake-ups, so an idle
engine stays well under 1 % of a core, and it still notices new work within 10 ms."""
SAFETY_POLL_SECONDS: Final = 5.0
"""A watch with a working handle still looks this often, and SQLite's watch then reads
``data_version`` whatever the cheap check says: a wake-up the operating system did not deliver
costs at most this much latency. Every commit on the machine writes the ``-wal`` file, so that
is the rare case, while each wake-up of an idle process is dear where its memory went cold: on
the 2-vCPU VM measured, a wake-up after seconds asleep took 3-8 ms of CPU, so a look every
second was most of an idle engine's CPU (the worker scenario's idle step, quiet, two runs each:
0.3-0.5 % of a core with looks every 5 s, 0.9 % every 2.5 s, 1.6-1.8 % every second).
PostgreSQL's watch keeps 1 s: there the safety net is what finds a task that a hand-written
``UPDATE`` put back in ``queued`` without a notification."""
SETTLE_SECONDS: Final = 0.25
"""After the ``-wal`` file was written, SQLite's watch keeps looking for this long, at growing
intervals (2, 8, 32, 128 ms after the write): the notification can arrive before the writer
published its commit in the WAL index, which takes microseconds unless the writer is
descheduled. An own commit (a heartbeat) so costs an idle engine four short looks."""
RETRY_SECONDS: Final = 1.0
"""How often SQLite's watch tries to watch a ``-wal`` file that was missing or went away."""


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


FileWatchOpener = Callable[[Path], "FileWatch | None"]
"""Opens the operating system's change notification on a file (:func:`open_file_watch`); None
where there is none. A seam: tests pass one that fails, or that picks another platform."""


class DataVersionWatch:
    """SQLite's watch: a file watch on ``-wal`` wakes it, ``PRAGMA data_version`` decides.

    Whether another connection committed is always decided by ``PRAGMA data_version`` of the
    worker's own connection: it changes when any other connection commits to the file, never for
    this connection's own commits, so the engine's own heartbeats and claims do not count. Two
    things keep that read (a WAL read transaction, ~80 us) rare:

    - the handle (see the module docstring) wakes the worker only when ``-wal`` was written;
    - the wal-index header in ``-shm``, read with one ``pread``, must differ from the one seen
      at :meth:`mark` (or at the last ``data_version`` read) before ``data_version`` is read.
      Every commit rewrites that header. At least every :data:`SAFETY_POLL_SECONDS`
      ``data_version`` is read regardless, so a header that cannot be trusted (an ``-shm``
      replaced while this process held the old one) delays a change by that much at most.

    :param file_watch_opener: see :data:`FileWatchOpener`; None: no file watch (poll only).
    :param retry_seconds: how often a watch whose ``-wal`` went away (or was not there yet)
        tries to watch it again.
    """

    def __init__(
        self,
        db: QueueDatabase,
        *,
        file_watch_opener: FileWatchOpener | None = open_file_watch,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._db = db
        self._token: int | None = None
        self._pending = False
        self._wal_path = db.path.with_name(db.path.name + "-wal")
        self._wal_index = WalIndex(db.path)
        self._seen_header: bytes | None = None
        self._checked_at = -math.inf  # when data_version was last read (the safety net)
        self._event_at = -math.inf  # when the file watch last reported a write
        self._retry_seconds = retry_seconds
        self._retry_at = time.monotonic() + retry_seconds
        self._file_watch = None if file_watch_opener is None else file_watch_opener(self._wal_path)
        self.data_version_reads = 0
        """How many times ``data_version`` was read (tests and the bench count them)."""

    @property
    def watching(self) -> bool:
        """Whether the handle wakes the worker on commits now (else it must be polled)."""
        return self._file_watch is not None and self._file_watch.watching

    def handle(self) -> int | None:
        # The same descriptor while the file watch lives, even while it watches nothing: the
        # engine registers it once and learns from poll_seconds() how often to look meanwhile.
        return None if self._file_watch is None else self._file_watch.fileno()

    def poll_seconds(self, recently_busy: bool) -> float:
        if not self.watching:
            return ACTIVE_POLL_SECONDS if recently_busy else IDLE_POLL_SECONDS
        now = time.monotonic()
        if now >= self._event_at + SETTLE_SECONDS:
            return SAFETY_POLL_SECONDS
        # Settling after a write (see SETTLE_SECONDS): look 2, 8, 32, 128 ms after it, so a
        # commit published late is still seen soon, for four wake-ups per write.
        return max(ACTIVE_POLL_SECONDS, 3 * (now - self._event_at))

    def mark(self) -> None:
        self._consume()
        header = self._wal_index.header()  # before data_version: see changed()
        self._token = self._read()
        self._seen_header = header
        self._pending = self._token is None

    def changed(self) -> bool:
        self._consume()
        if self._pending:
            return True
        now = time.monotonic()
        header = self._wal_index.header()
        if (
            header is not None
            and header == self._seen_header
            and now - self._checked_at < SAFETY_POLL_SECONDS
            and not self._db.closed
        ):
            return False
        # The header was read first: a commit it shows is one data_version shows too.
        version = self._read()
        if version is None or version != self._token:
            self._pending = True
            return True
        self._seen_header = header  # own commits (or none): look again once it changes
        return False

    def close(self) -> None:
        """Close the file watch and give up the ``-shm`` handle (see :mod:`queue_core.wal_index`);
        the worker's connection stays open."""
        file_watch, self._file_watch = self._file_watch, None
        if file_watch is not None:
            file_watch.close()
        self._wal_index.close()

    def _consume(self) -> None:
        """Take the file watch's events; re-arm it when its file came back."""
        file_watch = self._file_watch
        if file_watch is None:
            return
        now = time.monotonic()
        if file_watch.consume():
            # The event follows the write() of the frames; the writer updates the wal-index
            # header only after that. Look often for a while, so a commit made visible just
            # after this look is not left to the safety net.
            self._event_at = now
        if not file_watch.watching and now >= self._retry_at:
            self._retry_at = now + self._retry_seconds
            if file_watch.arm():
                self._event_at = now  # what was written meanwhile

    def _read(self) -> int | None:
        self._checked_at = time.monotonic()
        self.data_version_reads += 1
        try:
            return self._db.data_version()
        except QueueDatabaseError:
            return None  # cannot tell: changed() says True and the claim reports the error
