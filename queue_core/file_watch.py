"""Operating-system notification that a file was written: inotify on Linux, kqueue on macOS/BSD.

Why: SQLite in WAL mode ``write()``s every commit's frames to the ``-wal`` file (the ``-shm``
WAL index is memory-mapped, and writes through a mapping notify nothing). Watching the ``-wal``
file therefore gives an idle worker a descriptor that becomes readable when any connection, in
any process, commits: it can sleep in ``select`` instead of asking SQLite every few
milliseconds. :class:`~queue_core.waking.DataVersionWatch` uses it as its handle.

A :class:`FileWatch` has one descriptor for its whole life (the inotify instance, the kqueue),
so a worker registers it once; what it watches can come and go: :meth:`FileWatch.arm` attaches
it to the file (again), and once the file is deleted, renamed or replaced the watch stops
``watching`` until it is armed again. The caller polls meanwhile: a watch is only ever a way to
wake sooner, never the only way to learn of a change.

- Linux: ``inotify`` through ``ctypes`` on the C library (no dependency). It watches the inode,
  not a descriptor, so it opens nothing of the file.
- macOS and the BSDs: ``select.kqueue`` with an ``EVFILT_VNODE`` filter on a descriptor of the
  file. Closing that descriptor is safe although POSIX drops a process's fcntl locks on a file
  when any of its descriptors closes: SQLite keeps its WAL locks on ``-shm`` and the database
  file, never on ``-wal``.
- Windows: none (:func:`open_file_watch` returns None). Directory change notifications report a
  file that stays open only when its metadata is flushed, which is not when SQLite commits.

Everything the operating system is asked goes through the ``platform`` and module arguments of
:func:`open_file_watch`, :class:`InotifyWatch` and :class:`KqueueWatch`, so tests choose the
mechanism and replace the kernel with a fake.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import struct
import sys
from pathlib import Path
from typing import Any, Final, Protocol

__all__ = ["FileWatch", "InotifyWatch", "KqueueWatch", "open_file_watch"]

LOG: Final = logging.getLogger("queue_core.file_watch")

# <sys/inotify.h>
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004  # an unlink changes the link count
IN_MOVE_SELF: Final = 0x00000800
IN_DELETE_SELF: Final = 0x00000400
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000  # the watch was removed (file gone, or inotify_rm_watch)
_INOTIFY_MASK: Final = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF
_GONE: Final = IN_DELETE_SELF | IN_UNMOUNT | IN_IGNORED
_MAYBE_GONE: Final = IN_ATTRIB | IN_MOVE_SELF
_EVENT: Final = struct.Struct("=iIII")  # wd, mask, cookie, len (then len bytes of name)
_READ_BYTES: Final = 4096
# inotify_init1's flags are O_NONBLOCK and O_CLOEXEC by definition (they differ per architecture);
# absent on Windows, where only the tests build an InotifyWatch, with a fake C library.
_IN_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_IN_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


class FileWatch(Protocol):
    """A descriptor that becomes readable when a watched file is written."""

    @property
    def watching(self) -> bool:
        """Whether the file is being watched now (False before :meth:`arm` succeeded and after
        the file went away)."""
        ...

    def fileno(self) -> int:
        """The descriptor to wait on; the same for the life of the watch."""
        ...

    def arm(self) -> bool:
        """Watch the file at the path now, unless already watching; whether it is watched.

        Never raises: a missing file or a kernel limit leaves it unwatched.
        """
        ...

    def consume(self) -> bool:
        """Read what made the descriptor readable; whether anything happened to the file (a
        write, or the file going away, after which :attr:`watching` is False)."""
        ...

    def close(self) -> None:
        """Release the descriptor(s)."""
        ...


def open_file_watch(
    path: Path, *, platform: str | None = None, kqueue_module: Any = None
) -> FileWatch | None:
    """A :class:`FileWatch` of ``path`` (armed if the file exists), or None where the platform
    has no usable mechanism or the kernel refused one (the caller then polls).

    :param platform: ``sys.platform`` by default; tests pick a mechanism with it.
    :param kqueue_module: what provides ``kqueue``/``kevent`` (``select`` by default).
    """
    platform = sys.platform if platform is None else platform
    watch: FileWatch
    try:
        if platform.startswith("linux"):
            watch = InotifyWatch(path)
        elif platform == "darwin" or "bsd" in platform:
            module = select if kqueue_module is None else kqueue_module
            if not hasattr(module, "kqueue"):
                return None
            watch = KqueueWatch(path, module)
        else:
            return None
    except OSError as exc:
        LOG.info("no file change notification for %s (%s); polling instead", path, exc)
        return None
    watch.arm()
    return watch


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Libc(Protocol):
    def inotify_init1(self, flags: int) -> int: ...
    def inotify_add_watch(self, fd: int, path: bytes, mask: int) -> int: ...
    def inotify_rm_watch(self, fd: int, wd: int) -> int: ...


def _load_libc() -> _Libc:
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError) as exc:
        raise OSError(f"the C library has no inotify ({exc})") from exc
    return libc  # type: ignore[no-any-return]


class InotifyWatch:
    """Linux: an inotify instance with (at most) one watch on the file.

    :raises OSError: inotify is unavailable (no symbol, or the per-user instance limit).
    """

    def __init__(self, path: Path, libc: _Libc | None = None) -> None:
        self._path = path
        self._libc = _load_libc() if libc is None else libc
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        self._fd = fd
        self._wd: int | None = None
        self._identity: tuple[int, int] | None = None

    @property
    def watching(self) -> bool:
        return self._wd is not None

    def fileno(self) -> int:
        return self._fd

    def arm(self) -> bool:
        if self._wd is not None:
            return True
        identity = _identity(self._path)
        if identity is None:
            return False
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(self._path), _INOTIFY_MASK)
        if wd < 0:  # ENOENT (gone meanwhile), ENOSPC (max_user_watches), EACCES
            return False
        self._wd, self._identity = wd, identity
        if _identity(self._path) != identity:  # replaced between stat and add_watch
            self._disarm()
            return False
        return True

    def consume(self) -> bool:
        happened = False
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return happened
            except OSError:
                self._disarm()
                return True
            if not data:
                return happened
            happened = True
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if wd != self._wd and not mask & IN_Q_OVERFLOW:
                    continue  # left over from an earlier watch of the file
                if mask & _GONE or (mask & _MAYBE_GONE and _identity(self._path) != self._identity):
                    self._disarm()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        self._wd = None
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        # An instance left unclosed would hold one of the user's few inotify instances (128
        # by default) until the process ends.
        with contextlib.suppress(OSError, AttributeError):
            self.close()

    def _disarm(self) -> None:
        wd, self._wd = self._wd, None
        if wd is not None:
            self._libc.inotify_rm_watch(self._fd, wd)  # fails harmlessly if already removed


class KqueueWatch:
    """macOS/BSD: a kqueue with an ``EVFILT_VNODE`` filter on a descriptor of the file.

    :param kq: the module providing ``kqueue``, ``kevent`` and the ``KQ_*`` constants.
    :raises OSError: the kqueue could not be created.
    """

    def __init__(self, path: Path, kq: Any) -> None:
        self._path = path
        self._kq_module = kq
        self._kqueue: Any = kq.kqueue()
        self._file: int | None = None
        self._identity: tuple[int, int] | None = None
        self._gone = kq.KQ_NOTE_DELETE | kq.KQ_NOTE_RENAME | getattr(kq, "KQ_NOTE_REVOKE", 0)
        self._maybe_gone = kq.KQ_NOTE_LINK | kq.KQ_NOTE_ATTRIB
        self._fflags = kq.KQ_NOTE_WRITE | kq.KQ_NOTE_EXTEND | self._gone | self._maybe_gone

    @property
    def watching(self) -> bool:
        return self._file is not None

    def fileno(self) -> int:
        return int(self._kqueue.fileno())

    def arm(self) -> bool:
        if self._file is not None:
            return True
        kq = self._kq_module
        try:
            # O_EVTONLY (macOS): a descriptor for events only, which does not keep a volume busy.
            flags = os.O_RDONLY | getattr(os, "O_EVTONLY", 0) | _IN_CLOEXEC
            fd = os.open(self._path, flags)
        except OSError:
            return False
        try:
            identity = os.fstat(fd)
            event = kq.kevent(
                fd,
                filter=kq.KQ_FILTER_VNODE,
                flags=kq.KQ_EV_ADD | kq.KQ_EV_CLEAR,
                fflags=self._fflags,
            )
            self._kqueue.control([event], 0, 0)
        except OSError:
            os.close(fd)
            return False
        self._file, self._identity = fd, (identity.st_dev, identity.st_ino)
        return True

    def consume(self) -> bool:
        try:
            events = self._kqueue.control(None, 16, 0)
        except OSError:
            self._disarm()
            return True
        for event in events:
            if event.fflags & self._gone or (
                event.fflags & self._maybe_gone and _identity(self._path) != self._identity
            ):
                self._disarm()
        return bool(events)

    def close(self) -> None:
        self._disarm()
        self._kqueue.close()

    def _disarm(self) -> None:
        fd, self._file = self._file, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing it also removes its filter from the kqueue
