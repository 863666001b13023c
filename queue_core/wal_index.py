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
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Final

_MX_FRAME: Final = struct.Struct("=I")
_HEADER_BYTES: Final = 100
_MX_FRAME_AT: Final = 16
_BACKFILL_AT: Final = 96


class WalIndex:
    """Reads the frames waiting for a checkpoint of one database; never raises."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path.with_name(db_path.name + "-shm")
        self._file: BinaryIO | None = None
        self._failed = False

    def pending_frames(self) -> int | None:
        """Frames in the WAL not yet copied to the database, or None if it cannot be read."""
        if self._failed:
            return None
        try:
            if self._file is None:
                self._file = self._path.open("rb", buffering=0)
            self._file.seek(0)
            header = self._file.read(_HEADER_BYTES)
        except OSError:
            self._failed = True
            self.close()
            return None
        if len(header) < _HEADER_BYTES:
            return None
        (mx_frame,) = _MX_FRAME.unpack_from(header, _MX_FRAME_AT)
        (backfilled,) = _MX_FRAME.unpack_from(header, _BACKFILL_AT)
        return max(int(mx_frame) - int(backfilled), 0)

    def close(self) -> None:
        """Close the ``-shm`` handle (Windows cannot delete a file while it is open)."""
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()
