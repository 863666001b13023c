"""Waking the next writer queued for the write gate in its own thread, with a timeout.

A writer that finds the write gate (:mod:`queue_core.write_gate`) taken must sleep until it is let
go, but for no longer than the busy timeout. Neither ``flock`` nor ``LockFileEx`` on an ordinary
handle has a timeout, so without this module the blocking lock call runs on a helper thread and
the calling thread waits for that thread: two threads to wake, one after the other, each time
the gate passes to a sleeping writer, and the writer that finally writes has been asleep.

On Linux the calling thread sleeps on a futex instead: a 32-bit release count at the start of a
small shared side file (``<database>-writer.wake``) that every process maps. The gate's holder
adds one to it before letting go and wakes one sleeper after; a waiter reads it, tries the gate,
and sleeps only if the count has not moved since (the kernel checks that atomically, so no
release between the try and the sleep is missed). The gate itself stays an OS file lock, so a
holder killed by SIGKILL still lets go.

At most one woken waiter is on its way at a time: a second word says a wake-up was sent and the
waiter it woke has not run yet, and releases meanwhile wake nobody. Without that, every release
of a busy gate woke one more sleeper while the first was still waiting for a CPU; they all ran,
all but one found the gate taken again and went back to the end of the queue, and the gate went
to a sleeper on most writes. Measured at 16 processes on 2 cores (the bench's busy scenario,
quick profile): without the flag 0.75-0.86 of the default's throughput over five runs, with it
0.98-1.15 over six (``flock`` itself behaves this way: the kernel wakes only the first request
blocked on the released lock). Both words are hints, never the lock: a woken waiter that dies
before it runs leaves the flag set, and a holder that dies between letting go and waking leaves
a sleeper asleep; either costs the sleepers at most ``WAIT_SLICE_S``, after which they try the
gate again and clear the flag.

Elsewhere (Windows, macOS, or a CPU whose futex system call number is not listed here)
:func:`open_wake_channel` returns None and the gate keeps its helper thread.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import sys
from pathlib import Path
from typing import Final, Protocol

__all__ = [
    "FutexApi",
    "FutexWakeChannel",
    "WakeChannel",
    "open_wake_channel",
    "wake_path_for",
]

WAKE_SUFFIX: Final = "-writer.wake"
WAIT_SLICE_S: Final = 0.05
"""The longest one sleep lasts before the waiter tries the gate again (it is woken sooner when
the gate is let go); it bounds what a holder killed between letting go and waking costs."""
_MAP_SIZE: Final = mmap.PAGESIZE
_WAKING_OFFSET: Final = 64

# The futex(2) system call's number by machine (asm/unistd.h); other machines use the helper
# thread. 98 is the generic table's, shared by arm64 and riscv64.
_FUTEX_SYSCALL: Final = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98}
_FUTEX_WAIT: Final = 0
_FUTEX_WAKE: Final = 1


class WakeChannel(Protocol):
    """A count of gate releases that waiters can sleep on (the seam tests replace)."""

    def sequence(self) -> int:
        """The release count now; read it before trying the gate, pass it to :meth:`wait`."""

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep until woken by :meth:`wake_one`, for at most ``timeout`` seconds, unless the
        count is no longer ``seen``; True only if a :meth:`wake_one` woke this waiter."""

    def advance(self) -> None:
        """Count one release; only the gate's holder calls it, just before letting go."""

    def wake_one(self) -> None:
        """Wake the waiter that has slept longest, unless one woken before has not run yet;
        called after letting the gate go."""

    def close(self) -> None:
        """Unmap the side file; no other method may be called afterwards."""


class FutexApi(Protocol):
    """The two futex(2) operations :class:`FutexWakeChannel` makes (a fake in tests)."""

    def wait(self, address: int, expected: int, timeout: float) -> int:
        """``FUTEX_WAIT``: 0 when woken, else the errno (``EAGAIN``, ``ETIMEDOUT``, ``EINTR``)."""

    def wake(self, address: int, count: int) -> int:
        """``FUTEX_WAKE``: how many waiters were woken."""


def wake_path_for(db_path: Path) -> Path:
    """The side file holding a database's release count: ``<database>-writer.wake``."""
    return db_path.with_name(db_path.name + WAKE_SUFFIX)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _LinuxFutex:  # exercised by the Linux tests; other platforms never build it
    """:class:`FutexApi` through ``syscall(2)`` in libc (ctypes lets go of the GIL meanwhile)."""

    def __init__(self, number: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._syscall.argtypes = [
            ctypes.c_long,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_uint32,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_uint32,
        ]
        self._number = number

    def wait(self, address: int, expected: int, timeout: float) -> int:
        seconds = max(0.0, timeout)
        whole = int(seconds)
        span = _Timespec(whole, int((seconds - whole) * 1e9))
        result = self._syscall(
            self._number, address, _FUTEX_WAIT, expected, ctypes.addressof(span), None, 0
        )
        return 0 if result == 0 else ctypes.get_errno()

    def wake(self, address: int, count: int) -> int:
        return int(self._syscall(self._number, address, _FUTEX_WAKE, count, None, None, 0))


class FutexWakeChannel:
    """:class:`WakeChannel` on a 32-bit word at the start of a shared file mapping."""

    def __init__(self, mapping: mmap.mmap, futex: FutexApi) -> None:
        self._mapping = mapping
        # An aligned 4-byte load or store through ctypes is one machine access, never torn.
        self._word: ctypes.c_uint32 | None = ctypes.c_uint32.from_buffer(mapping)
        # Its own cache line: waiters write it while others read the count.
        self._waking: ctypes.c_uint32 | None = ctypes.c_uint32.from_buffer(mapping, _WAKING_OFFSET)
        self._address = ctypes.addressof(self._word)
        self._futex = futex

    def sequence(self) -> int:
        return self._counter().value

    def wait(self, seen: int, timeout: float) -> bool:
        woken = self._futex.wait(self._address, seen, timeout) == 0
        waking = self._flag()
        # Woken: this is the waiter on its way, so the next release may wake another. Not woken
        # (timed out, or the count had moved): clear it too, so that a flag left by a woken
        # waiter that died cannot outlive one sleep; at worst two woken waiters are on their way.
        if woken or waking.value:
            waking.value = 0
        return woken

    def advance(self) -> None:
        counter = self._counter()
        counter.value = (counter.value + 1) & 0xFFFFFFFF

    def wake_one(self) -> None:
        waking = self._flag()
        if waking.value:
            return  # a woken waiter has not run yet; it will try the gate
        waking.value = 1
        if self._futex.wake(self._address, 1) == 0:
            waking.value = 0  # nobody was asleep

    def close(self) -> None:
        # The ctypes view pins the mapping; drop it first or close() raises BufferError.
        self._word = None
        self._waking = None
        self._mapping.close()

    def _counter(self) -> ctypes.c_uint32:
        if self._word is None:
            raise ValueError("the wake channel is closed")
        return self._word

    def _flag(self) -> ctypes.c_uint32:
        if self._waking is None:
            raise ValueError("the wake channel is closed")
        return self._waking


def open_wake_channel(path: Path) -> WakeChannel | None:
    """Map (creating) the side file at ``path`` and return a futex wake channel on it.

    :returns: None where there is no futex (not Linux, a machine not listed, a 32-bit Python).
    :raises OSError: the file cannot be created, extended or mapped.
    """
    if sys.platform.startswith("linux"):
        return _open_futex_channel(path)
    else:  # noqa: RET505 - both branches must stay for mypy --platform win32/darwin
        return None


def _open_futex_channel(path: Path) -> WakeChannel | None:
    number = _FUTEX_SYSCALL.get(platform.machine().lower())
    if number is None or ctypes.sizeof(ctypes.c_void_p) != 8:  # a 32-bit Python numbers them apart
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        # Never shrink: another process may be counting in it already. Extending to the same
        # size twice (two processes racing here) changes nothing.
        if os.fstat(fd).st_size < _MAP_SIZE:
            os.ftruncate(fd, _MAP_SIZE)
        mapping = mmap.mmap(fd, _MAP_SIZE)
    finally:
        os.close(fd)  # the mapping keeps the file open
    return FutexWakeChannel(mapping, _LinuxFutex(number))
