"""The write gate: an OS file lock that writers queue on before they take SQLite's write lock.

SQLite's busy handler is not a queue. A writer that finds the database locked sleeps (1, 2, 5,
10 ... up to 100 ms) and tries again, while the process that just committed takes the lock again
at once: at 16 processes some calls wait more than a second and the shares of work spread
threefold. The operating system's file locks do queue: a process blocked on one wakes as soon as
the holder lets go, and a process that dies (even by SIGKILL) has its locks released by the OS.
So every write transaction first takes an exclusive lock on a small side file
(``<database>-writer.lock``) and lets it go after ``COMMIT``; the SQLite lock behind it is then
almost always free.

Waiters queued on the lock are served in order (Linux chains blocked ``flock`` requests, Windows
grants ``LockFileEx`` requests in order), but a writer that finds the gate free takes it without
queuing, and it always does in the instant between a release and the woken waiter's turn on a
CPU. That keeps the gate cheap (no hand-off to a sleeping process when nobody waits long) but
lets running processes overtake a sleeping one again and again on a busy machine. So the
overtaking is bounded: a writer that has waited ``STARVE_AFTER_S`` holds a shared lock on a second
side file (``<database>-writer.wait``) for the rest of its wait, and while anyone does, writers
queue instead of taking a free gate (one non-blocking probe of that file per write). Measured at
16 processes on 2 busy cores (the bench's busy scenario): the longest waits were 86-180 ms with
the bound and 174-342 ms without, for up to 25 % more CPU per operation (more hand-offs); 20 ms
instead of 40 made 1.6 times as many hand-offs, 60 ms let the tail grow back. If the second
file cannot be opened the gate works without the bound.

How a queued writer waits decides the throughput. Every hand-off of the gate to a sleeping
writer leaves it idle until that writer runs. With the blocking lock call on a helper thread
(neither ``flock`` nor ``LockFileEx`` on an ordinary handle has a timeout) that took two
wake-ups, the helper's and then the caller's (170-290 us and 117 us, median, on 2 busy cores),
and the fair lock ran at 0.75-1.00 of the default's throughput at 16 processes (median 0.82
over 22 quick runs). Blocking in the calling thread (no timeout, so only as an experiment) ran
at 0.88-1.10. So where the OS allows a timed sleep in the calling thread, a queued writer
sleeps there: on Linux on a futex beside the lock (:mod:`queue_core.wake_channel`), which the
releasing writer signals, and it then tries the lock itself. Measured in the bench's busy
scenario (16 processes, quick profile, on a quiet 2-vCPU VM): 0.98-1.15 of the default's
throughput over six runs; in three of them alternating with the helper-thread version,
0.98-1.07 against 0.78-0.93, longest waits 65-89 ms against 75-98 ms. Windows and macOS keep
the helper thread. Tried earlier and measured slower: keeping the gate across a run of one
process's writes (a process keeping it between writes is descheduled like any other, and then
nobody writes: 0.45-0.81 of the throughput, waits up to 354 ms), and retrying a free gate after
short random sleeps before queuing (0.58-1.03 against 0.78-1.47 in alternating runs).

The OS calls are behind :class:`FileLock` and :class:`~queue_core.wake_channel.WakeChannel`,
so the logic (the timeout, giving up a wait that timed out, falling back) runs and is tested
anywhere with fakes: ``flock`` on POSIX, ``LockFileEx`` through ctypes on Windows. Without a wake
channel a blocked wait runs on a helper thread and the caller waits for it at most the busy
timeout; a wait given up that way releases the lock as soon as it gets it.

If the side file cannot be created (a read-only directory, say) the gate stays open: writers
fall back to SQLite's busy handler, which is correct, only less fair.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from queue_core.wake_channel import WAIT_SLICE_S, WakeChannel

__all__ = [
    "FileLock",
    "LockOpener",
    "PosixFileLock",
    "WindowsFileLock",
    "WriteGate",
    "lock_path_for",
    "open_file_lock",
    "wait_path_for",
]

LOCK_SUFFIX: Final = "-writer.lock"
WAIT_SUFFIX: Final = "-writer.wait"
STARVE_AFTER_S: Final = 0.04
"""How long a writer waits for the gate before newcomers stop overtaking it (measured, see
the module docstring)."""
_MARK_ATTEMPTS: Final = 5

# LockFileEx flags and the errors that mean "someone else holds it" (winbase.h, winerror.h).
LOCKFILE_FAIL_IMMEDIATELY: Final = 0x00000001
LOCKFILE_EXCLUSIVE_LOCK: Final = 0x00000002
ERROR_LOCK_VIOLATION: Final = 33
ERROR_IO_PENDING: Final = 997


class FileLock(Protocol):
    """An exclusive, process-owned OS lock on one open file (the seam tests replace)."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return False at once if another holder has it."""

    def acquire(self) -> None:
        """Take the lock, blocking until it is free."""

    def try_acquire_shared(self) -> bool:
        """Take the lock shared (others may share it too) if nobody holds it exclusively;
        return False at once otherwise."""

    def release(self) -> None:
        """Let the lock go."""

    def close(self) -> None:
        """Close the file (releasing the lock if held)."""


LockOpener = Callable[[Path], FileLock]
"""Opens (creating if needed) the lock file at a path; raises ``OSError`` if it cannot."""


def lock_path_for(db_path: Path) -> Path:
    """The side file a database's writers lock: ``<database>-writer.lock``."""
    return db_path.with_name(db_path.name + LOCK_SUFFIX)


def wait_path_for(db_path: Path) -> Path:
    """The side file long waiters share-lock: ``<database>-writer.wait``."""
    return db_path.with_name(db_path.name + WAIT_SUFFIX)


class PosixFileLock:
    """``flock`` on a file descriptor: owned by the open file, so two connections of one
    process exclude each other too (``fcntl`` record locks would merge them)."""

    def __init__(self, fd: int) -> None:
        import fcntl

        self._fd = fd
        # Any: typeshed declares no flock on Windows, where this class is never built.
        self._fcntl: Any = fcntl

    def try_acquire(self) -> bool:
        return self._try(self._fcntl.LOCK_EX)

    def acquire(self) -> None:
        self._fcntl.flock(self._fd, self._fcntl.LOCK_EX)

    def try_acquire_shared(self) -> bool:
        return self._try(self._fcntl.LOCK_SH)

    def _try(self, mode: int) -> bool:
        try:
            self._fcntl.flock(self._fd, mode | self._fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        self._fcntl.flock(self._fd, self._fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class WindowsApi(Protocol):
    """The kernel32 calls :class:`WindowsFileLock` makes (a fake in tests)."""

    def lock_file_ex(self, handle: int, flags: int) -> bool:
        """``LockFileEx(handle, flags, 0, 1, 0, &overlapped)`` on byte 0; True on success."""

    def unlock_file_ex(self, handle: int) -> bool:
        """``UnlockFileEx(handle, 0, 1, 0, &overlapped)`` on byte 0; True on success."""

    def last_error(self) -> int:
        """``GetLastError()`` of the calling thread after a failed call."""


class WindowsFileLock:
    """``LockFileEx`` on byte 0 of the file. Windows grants waiting lock requests in order and
    releases the locks of a process that ends, however it ends."""

    def __init__(self, handle: int, api: WindowsApi, close: Callable[[], None]) -> None:
        self._handle = handle
        self._api = api
        self._close = close

    def try_acquire(self) -> bool:
        return self._try(LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY)

    def try_acquire_shared(self) -> bool:
        return self._try(LOCKFILE_FAIL_IMMEDIATELY)

    def _try(self, flags: int) -> bool:
        if self._api.lock_file_ex(self._handle, flags):
            return True
        error = self._api.last_error()
        if error in (ERROR_LOCK_VIOLATION, ERROR_IO_PENDING):
            return False
        raise OSError(error, f"LockFileEx failed (Windows error {error})")

    def acquire(self) -> None:
        if not self._api.lock_file_ex(self._handle, LOCKFILE_EXCLUSIVE_LOCK):
            error = self._api.last_error()
            raise OSError(error, f"LockFileEx failed (Windows error {error})")

    def release(self) -> None:
        if not self._api.unlock_file_ex(self._handle):
            error = self._api.last_error()
            raise OSError(error, f"UnlockFileEx failed (Windows error {error})")

    def close(self) -> None:
        self._close()


def open_file_lock(path: Path) -> FileLock:
    """Open (creating) ``path`` and return the running OS's :class:`FileLock` on it.

    :raises OSError: the file cannot be created or opened, or the OS has no such lock.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if sys.platform == "win32":
            import msvcrt

            return WindowsFileLock(msvcrt.get_osfhandle(fd), _Kernel32(), lambda: os.close(fd))
        else:  # noqa: RET505 - both branches must stay for mypy --platform win32
            return PosixFileLock(fd)
    except BaseException:
        os.close(fd)
        raise


class _Kernel32:  # pragma: no cover - needs Windows; type-checked with mypy --platform win32
    """:class:`WindowsApi` through ctypes."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        class Overlapped(ctypes.Structure):
            _fields_ = [
                ("Internal", ctypes.c_void_p),
                ("InternalHigh", ctypes.c_void_p),
                ("Offset", wintypes.DWORD),
                ("OffsetHigh", wintypes.DWORD),
                ("hEvent", wintypes.HANDLE),
            ]

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        self._lock = kernel32.LockFileEx
        self._lock.argtypes = [
            wintypes.HANDLE,
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.DWORD,
            ctypes.POINTER(Overlapped),
        ]
        self._lock.restype = wintypes.BOOL
        self._unlock = kernel32.UnlockFileEx
        self._unlock.argtypes = [
            wintypes.HANDLE,
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.DWORD,
            ctypes.POINTER(Overlapped),
        ]
        self._unlock.restype = wintypes.BOOL
        self._overlapped = Overlapped
        self._byref = ctypes.byref
        self._get_last_error: Callable[[], int] = ctypes.get_last_error  # type: ignore[attr-defined,unused-ignore]

    def lock_file_ex(self, handle: int, flags: int) -> bool:
        overlapped = self._overlapped()
        return bool(self._lock(handle, flags, 0, 1, 0, self._byref(overlapped)))

    def unlock_file_ex(self, handle: int) -> bool:
        overlapped = self._overlapped()
        return bool(self._unlock(handle, 0, 1, 0, self._byref(overlapped)))

    def last_error(self) -> int:
        return self._get_last_error()


@dataclass
class _Request:
    done: threading.Event = field(default_factory=threading.Event)
    granted: bool = False
    abandoned: bool = False
    error: OSError | None = None


class WriteGate:
    """One process's place in the queue of writers of one database.

    Not for concurrent use: :class:`~queue_core.database.QueueDatabase` calls it under its own
    lock, one write at a time.
    """

    def __init__(
        self,
        lock: FileLock,
        starving: FileLock | None = None,
        *,
        starve_after: float = STARVE_AFTER_S,
        wake: WakeChannel | None = None,
    ) -> None:
        self._lock = lock
        # Where there is one, waiters sleep on it in their own thread (see wake_channel);
        # None: the blocking lock call runs on a helper thread.
        self._wake = wake
        # Shared-locked by writers of any process that have waited longer than starve_after;
        # None: no such bound (the side file could not be opened), waiters may be overtaken.
        self._starving = starving
        self._starve_after = starve_after
        self._mutex = threading.Lock()
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Blocking waits handed to the helper thread and not finished; while one is, the file's
        # lock may be granted to it at any moment, so no other attempt may touch the lock.
        self._pending = 0
        self._held = False
        self._contended = False

    @property
    def contended(self) -> bool:
        """True if the last :meth:`acquire` found the gate taken and waited for it in the OS
        queue (whether it got the gate or not)."""
        return self._contended

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and its :meth:`release`."""
        return self._held

    def acquire(self, timeout: float) -> bool:
        """Take the gate, waiting at most ``timeout`` seconds; return False if that ran out.

        :raises OSError: the OS lock call failed (not merely busy).
        """
        if self._held:
            raise RuntimeError("the write gate is already held")
        with self._mutex:
            idle = self._pending == 0
        self._contended = False
        if idle and self._nobody_starving() and self._lock.try_acquire():
            self._held = True
            return True
        if timeout <= 0:
            return False
        self._contended = True
        if self._wake is not None:
            return self._wait_woken(self._wake, timeout)
        request = _Request()
        with self._mutex:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="queue_core-write-gate", daemon=True
                )
                self._thread.start()
        self._requests.put(request)
        self._wait(request, timeout)
        with self._mutex:
            if request.error is not None:
                raise request.error
            if request.granted:
                self._held = True
                return True
            request.abandoned = True
            return False

    @property
    def starving_waiters(self) -> bool:
        """True while a writer (of any process) has waited for the gate longer than
        ``starve_after``; newcomers then queue instead of taking a free gate first."""
        return not self._nobody_starving()

    def _nobody_starving(self) -> bool:
        # The probe holds the side file exclusively for two system calls; a starving waiter
        # marking itself in that instant retries (see _wait).
        starving = self._starving
        if starving is None:
            return True
        if starving.try_acquire():
            starving.release()
            return True
        return False

    def _wait(self, request: _Request, timeout: float) -> None:
        starving = self._starving
        if starving is None or timeout <= self._starve_after:
            request.done.wait(timeout)
            return
        if request.done.wait(self._starve_after):
            return
        marked = self._mark_starving(starving)
        try:
            request.done.wait(timeout - self._starve_after)
        finally:
            if marked:
                starving.release()

    @staticmethod
    def _mark_starving(starving: FileLock) -> bool:
        # Waited too long: mark it, so that writers arriving now queue behind this one instead
        # of taking the gate in the instant between its release and this waiter's wake-up.
        return any(starving.try_acquire_shared() for _ in range(_MARK_ATTEMPTS))

    def _wait_woken(self, wake: WakeChannel, timeout: float) -> bool:
        started = time.perf_counter()
        deadline = started + timeout
        mark_at = started + self._starve_after
        starving = self._starving
        marked = woken = False
        try:
            while True:
                seen = wake.sequence()
                # A queued writer takes a free gate even while someone starves: the starving
                # writer sleeps in the same queue, and only newcomers must stay out of it.
                if self._lock.try_acquire():
                    self._held = True
                    return True
                now = time.perf_counter()
                if now >= deadline:
                    if woken:
                        wake.wake_one()  # the wake-up this writer will not use goes on
                    return False
                unmarked = starving is not None and not marked
                if unmarked and now >= mark_at:
                    assert starving is not None
                    marked = self._mark_starving(starving)
                # Sleep no later than the deadline, nor past the moment to mark.
                until = mark_at if unmarked and now < mark_at < deadline else deadline
                woken = wake.wait(seen, min(until - now, WAIT_SLICE_S))
        finally:
            if marked and starving is not None:
                starving.release()

    def release(self) -> None:
        """Let the gate go (nothing happens if it is not held)."""
        if self._held:
            self._held = False
            wake = self._wake
            if wake is None:
                self._lock.release()
                return
            wake.advance()
            self._lock.release()
            wake.wake_one()

    def close(self) -> None:
        """Release, stop the helper thread once its wait ends, and close the lock files."""
        self.release()
        if self._starving is not None:
            self._starving.close()
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        if self._thread is not None:
            self._requests.put(None)
        with self._mutex:
            if self._pending == 0:
                self._lock.close()
            else:
                # The helper still waits on the file; it closes it when the wait ends.
                self._close_when_idle = True

    _close_when_idle = False

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            error: OSError | None = None
            try:
                self._lock.acquire()
            except OSError as exc:
                error = exc
            with self._mutex:
                self._pending -= 1
                if error is not None:
                    request.error = error
                elif request.abandoned or self._close_when_idle:
                    self._lock.release()
                else:
                    request.granted = True
                if self._close_when_idle and self._pending == 0:
                    self._lock.close()
                request.done.set()
