"""How many WAL frames wait for a checkpoint, read from the ``-shm`` file (the WAL index).

Why: SQLite runs its automatic checkpoint inside the ``COMMIT`` that pushes the WAL past
``wal_autocheckpoint`` pages. With the fair lock (:mod:`queue_core.write_gate`) that ``COMMIT``
still holds the gate, so every other writer waited for the whole checkpoint: measured at 16
processes, the fair lock lost half its throughput that way. Without the gate SQLite has let the
write lock go before it checkpoints, and writers carry on meanwhile. So a writer that holds the
gate checks after letting it go whether 3/4 of ``wal_autocheckpoint`` frames wait, and then
runs a ``PASSIVE`` checkpoint itself, outside the gate; SQLite's own automatic checkpoint (the
PRAGMA is unchanged) stays as the backstop and rarely fires.

The numbers come from the wal-index header, whose layout SQLite documents as a file format
(https://sqlite.org/walformat.html): ``mxFrame`` is a 32-bit native-endian integer at byte 16,
``nBackfill`` (frames already copied to the database) one at byte 96. Reading it without SQLite's
locks can see a header mid-update; that only makes a checkpoint a little early or late.

:class:`~queue_core.waking.DataVersionWatch` reads the header too (:meth:`WalIndex.header`):
every commit rewrites it, so an unchanged header tells an idle worker, for one ``pread``, that
``PRAGMA data_version`` need not be asked.

The handle is shared. On POSIX, closing ANY descriptor of a file drops every fcntl lock the
process holds on it, SQLite's own locks on ``-shm`` included (its dead-man switch and read
marks); another process could then take this one for gone and rebuild the WAL index under it.
So on POSIX each process opens ``-shm`` once per database, shares that handle between its
``WalIndex`` objects and never closes it: other connections to the file in the process (plain
``sqlite3`` ones included) cannot be counted, and the handle goes with the process. Windows locks
byte ranges per handle, so closing ours never touches SQLite's; there the handle is closed when
its last user closes, so the file can be deleted.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from typing import Final

_MX_FRAME: Final = struct.Struct("=I")
_HEADER_BYTES: Final = 100
_HEADER_COPIES_BYTES: Final = 96  # the header (48 bytes) twice; checkpoint info follows
_MX_FRAME_AT: Final = 16
_BACKFILL_AT: Final = 96


class _SharedHandles:
    """One read handle of each ``-shm`` file per process, counted by its users."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._handles: dict[Path, tuple[int, int]] = {}

    def acquire(self, path: Path) -> int:
        """The process's descriptor of ``path``, opened on first use. :raises OSError: on open.

        A bare descriptor, not a file object: one kept for the life of the process (POSIX)
        must not be reported as a leaked file when the interpreter exits.
        """
        with self._lock:
            self._forget_after_fork()
            handle, users = self._handles.get(path, (None, 0))
            if handle is None:
                handle = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._handles[path] = (handle, users + 1)
            return handle

    def release(self, path: Path) -> None:
        """One user fewer; on Windows the last one closes the handle (see the module)."""
        if not _CLOSE_WHEN_UNUSED:
            return
        with self._lock:
            self._forget_after_fork()
            handle, users = self._handles.get(path, (None, 0))
            if handle is None:
                return
            if users > 1:
                self._handles[path] = (handle, users - 1)
                return
            del self._handles[path]
        os.close(handle)

    def users(self, path: Path) -> int:
        with self._lock:
            self._forget_after_fork()
            return self._handles.get(path, (None, 0))[1]

    def _forget_after_fork(self) -> None:
        # A forked child inherits the parent's handles but none of its locks: it starts afresh
        # and leaves the inherited descriptors alone (closing them could not hurt, but there is
        # no reason to).
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._handles = {}


_CLOSE_WHEN_UNUSED: Final = os.name == "nt"
_SHARED: Final = _SharedHandles()
_READ_LOCK: Final = threading.Lock()


class WalIndex:
    """Reads the frames waiting for a checkpoint of one database; never raises."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path.with_name(db_path.name + "-shm")
        self._file: int | None = None
        self._failed = False

    def pending_frames(self) -> int | None:
        """Frames in the WAL not yet copied to the database, or None if it cannot be read."""
        if self._failed:
            return None
        try:
            if self._file is None:
                self._file = _SHARED.acquire(self._path)
            header = _read_start(self._file, _HEADER_BYTES)
        except OSError:
            self._failed = True
            self.close()
            return None
        if len(header) < _HEADER_BYTES:
            return None
        (mx_frame,) = _MX_FRAME.unpack_from(header, _MX_FRAME_AT)
        (backfilled,) = _MX_FRAME.unpack_from(header, _BACKFILL_AT)
        return max(int(mx_frame) - int(backfilled), 0)

    def header(self) -> bytes | None:
        """The wal-index header's two copies (96 bytes; every commit changes them), or None
        when ``-shm`` cannot be read now (not created yet: asked again next time).

        Read without SQLite's locks, a header being written may come out torn; a caller must
        treat a difference only as "something may have changed".
        """
        try:
            if self._file is None:
                self._file = _SHARED.acquire(self._path)
            header = _read_start(self._file, _HEADER_COPIES_BYTES)
        except OSError:
            self.close()
            return None
        return header if len(header) == _HEADER_COPIES_BYTES else None

    def close(self) -> None:
        """Give up this object's use of the shared ``-shm`` handle (see the module docstring)."""
        handle, self._file = self._file, None
        if handle is not None:
            _SHARED.release(self._path)


_HAS_PREAD: Final = hasattr(os, "pread")


def _read_start(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of the file. :raises OSError: the read failed."""
    if _HAS_PREAD:
        return os.pread(fd, size, 0)
    with _READ_LOCK:  # seek + read on a shared descriptor must not interleave
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, size)
