"""The write gate's logic through its OS seam: timeouts, given-up waits, Windows calls, fallback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from queue_core.database import _first_keyword
from queue_core.write_gate import (
    ERROR_IO_PENDING,
    ERROR_LOCK_VIOLATION,
    LOCKFILE_EXCLUSIVE_LOCK,
    LOCKFILE_FAIL_IMMEDIATELY,
    FileLock,
    WindowsFileLock,
    WriteGate,
)

WAIT = 10.0


class SharedLock:
    """One OS lock that several fake "processes" (FakeFileLock handles) contend for."""

    def __init__(self) -> None:
        self.owner: object | None = None
        self.sharers: set[object] = set()
        self.changed = threading.Condition()


class FakeFileLock:
    """A :class:`FileLock` handle on a :class:`SharedLock`, with the real blocking behaviour."""

    def __init__(self, shared: SharedLock) -> None:
        self.shared = shared
        self.closed = False
        self.blocking_calls = 0

    def _free_for_me(self) -> bool:
        return self.shared.owner in (None, self) and not self.shared.sharers - {self}

    def try_acquire(self) -> bool:
        with self.shared.changed:
            if not self._free_for_me():
                return False
            self.shared.owner = self
            return True

    def acquire(self) -> None:
        self.blocking_calls += 1
        with self.shared.changed:
            self.shared.changed.wait_for(self._free_for_me, WAIT)
            assert self._free_for_me()
            self.shared.owner = self

    def try_acquire_shared(self) -> bool:
        with self.shared.changed:
            if self.shared.owner not in (None, self):
                return False
            self.shared.sharers.add(self)
            return True

    def release(self) -> None:
        with self.shared.changed:
            assert self.shared.owner is self or self in self.shared.sharers
            if self.shared.owner is self:
                self.shared.owner = None
            self.shared.sharers.discard(self)
            self.shared.changed.notify_all()

    def close(self) -> None:
        self.closed = True
        with self.shared.changed:
            if self.shared.owner is self:
                self.shared.owner = None
            self.shared.sharers.discard(self)
            self.shared.changed.notify_all()


def _eventually(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds or WAIT runs out (for state another thread sets)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_an_idle_gate_is_taken_without_a_helper_thread() -> None:
    lock = FakeFileLock(SharedLock())
    gate = WriteGate(lock)
    assert gate.acquire(1.0) and gate.held
    gate.release()
    assert not gate.held and lock.shared.owner is None
    assert lock.blocking_calls == 0
    gate.close()
    assert lock.closed


def test_a_waiter_gets_the_gate_as_soon_as_the_holder_lets_go() -> None:
    shared = SharedLock()
    other = FakeFileLock(shared)
    assert other.try_acquire()
    gate = WriteGate(FakeFileLock(shared))
    releaser = threading.Timer(0.05, other.release)
    releaser.start()
    started = time.perf_counter()
    assert gate.acquire(WAIT)
    assert time.perf_counter() - started < WAIT / 2
    assert gate.held
    gate.release()
    gate.close()
    releaser.join()


def test_a_wait_that_times_out_gives_up_its_place_and_releases_the_lock_later() -> None:
    shared = SharedLock()
    other = FakeFileLock(shared)
    assert other.try_acquire()
    mine = FakeFileLock(shared)
    gate = WriteGate(mine)
    assert gate.acquire(0.05) is False
    assert not gate.held
    assert gate.acquire(0) is False  # no fast path while the given-up wait is pending
    other.release()
    # The helper gets the lock for the wait that was given up, and lets it go at once.
    with shared.changed:
        assert shared.changed.wait_for(lambda: shared.owner is None and mine.blocking_calls, WAIT)
    assert gate.acquire(WAIT) and gate.held
    assert other.try_acquire() is False
    gate.release()
    assert other.try_acquire()
    other.release()
    gate.close()


def test_an_os_error_while_waiting_is_raised() -> None:
    class Broken(FakeFileLock):
        def try_acquire(self) -> bool:
            return False

        def acquire(self) -> None:
            raise OSError(37, "no locks available")

    gate = WriteGate(Broken(SharedLock()))
    with pytest.raises(OSError, match="no locks"):
        gate.acquire(WAIT)
    gate.close()


def test_closing_during_a_wait_closes_the_file_when_the_wait_ends() -> None:
    shared = SharedLock()
    other = FakeFileLock(shared)
    assert other.try_acquire()
    mine = FakeFileLock(shared)
    gate = WriteGate(mine)
    assert gate.acquire(0.02) is False
    gate.close()
    assert not mine.closed  # the helper still waits on it
    other.release()
    deadline = time.monotonic() + WAIT
    while not mine.closed and time.monotonic() < deadline:
        time.sleep(0.005)
    assert mine.closed
    assert shared.owner is None


# -- the bound on overtaking: long waiters mark themselves, newcomers then queue -------------


def test_while_a_writer_starves_newcomers_queue_instead_of_taking_a_free_gate() -> None:
    gate_lock, wait_lock = SharedLock(), SharedLock()
    starving_elsewhere = FakeFileLock(wait_lock)  # another process's long waiter
    mine = FakeFileLock(gate_lock)
    gate = WriteGate(mine, FakeFileLock(wait_lock))
    assert not gate.starving_waiters
    assert gate.acquire(WAIT)
    gate.release()
    assert mine.blocking_calls == 0  # nobody starving: a free gate is simply taken

    assert starving_elsewhere.try_acquire_shared()
    assert gate.starving_waiters
    assert gate.acquire(WAIT)  # the gate is free, yet the write queues for it
    assert mine.blocking_calls == 1
    gate.release()
    starving_elsewhere.release()
    assert not gate.starving_waiters
    gate.close()


@pytest.mark.parametrize("sleeps_on", ["helper thread", "wake channel"])
def test_a_writer_that_waits_long_marks_itself_until_its_wait_ends(sleeps_on: str) -> None:
    gate_lock, wait_lock = SharedLock(), SharedLock()
    wake = FakeWakeChannel() if sleeps_on == "wake channel" else None
    holder = FakeFileLock(gate_lock)
    assert holder.try_acquire()
    waiter = WriteGate(
        FakeFileLock(gate_lock), FakeFileLock(wait_lock), starve_after=0.01, wake=wake
    )
    observer = WriteGate(FakeFileLock(SharedLock()), FakeFileLock(wait_lock))
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(WAIT)))
    thread.start()
    assert _eventually(lambda: observer.starving_waiters)
    holder.release()
    if wake is not None:
        wake.advance()  # what the holder's gate does around letting go
        wake.wake_one()
    thread.join(WAIT)
    assert got == [True] and waiter.held
    assert not observer.starving_waiters  # the mark went with the wait
    waiter.release()

    # A wait given up at the busy timeout lets its mark go too.
    assert holder.try_acquire()
    assert waiter.acquire(0.05) is False
    assert not observer.starving_waiters
    holder.release()
    waiter.close()
    observer.close()
    assert _eventually(lambda: gate_lock.owner is None)


def test_a_wait_shorter_than_the_threshold_never_marks() -> None:
    gate_lock, wait_lock = SharedLock(), SharedLock()
    holder = FakeFileLock(gate_lock)
    assert holder.try_acquire()
    marks = FakeFileLock(wait_lock)
    gate = WriteGate(FakeFileLock(gate_lock), marks, starve_after=WAIT)
    assert gate.acquire(0.05) is False
    assert not wait_lock.sharers
    holder.release()
    gate.close()
    assert marks.closed


# -- Windows: LockFileEx through ctypes, here with a fake kernel32 --------------------------


class FakeKernel32:
    def __init__(self, results: list[tuple[bool, int]]) -> None:
        self.results = results
        self.calls: list[tuple[str, int, int]] = []
        self.error = 0

    def lock_file_ex(self, handle: int, flags: int) -> bool:
        self.calls.append(("lock", handle, flags))
        ok, self.error = self.results.pop(0)
        return ok

    def unlock_file_ex(self, handle: int) -> bool:
        self.calls.append(("unlock", handle, 0))
        ok, self.error = self.results.pop(0)
        return ok

    def last_error(self) -> int:
        return self.error


def test_windows_lock_flags_and_errors() -> None:
    closed: list[bool] = []
    api = FakeKernel32(
        [(True, 0), (False, ERROR_LOCK_VIOLATION), (False, ERROR_IO_PENDING), (False, 5)]
    )
    lock: FileLock = WindowsFileLock(42, api, lambda: closed.append(True))
    assert lock.try_acquire() is True
    assert lock.try_acquire() is False
    assert lock.try_acquire() is False
    with pytest.raises(OSError, match="Windows error 5"):
        lock.try_acquire()
    nowait = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY
    assert api.calls == [("lock", 42, nowait)] * 4
    api.results = [(True, 0), (True, 0), (False, 6), (False, 158)]
    api.calls.clear()
    lock.acquire()
    lock.release()
    with pytest.raises(OSError, match="Windows error 6"):
        lock.acquire()
    with pytest.raises(OSError, match="UnlockFileEx"):
        lock.release()
    assert api.calls[0] == ("lock", 42, LOCKFILE_EXCLUSIVE_LOCK)  # blocking: no FAIL_IMMEDIATELY
    api.results = [(True, 0), (False, ERROR_LOCK_VIOLATION)]
    api.calls.clear()
    assert lock.try_acquire_shared() is True
    assert lock.try_acquire_shared() is False
    assert api.calls == [("lock", 42, LOCKFILE_FAIL_IMMEDIATELY)] * 2  # shared: no EXCLUSIVE
    lock.close()
    assert closed == [True]


def test_the_gate_logic_runs_on_the_windows_lock() -> None:
    """A contended LockFileEx goes to the helper thread, which makes the blocking call."""
    api = FakeKernel32([(False, ERROR_LOCK_VIOLATION), (True, 0), (True, 0)])
    gate = WriteGate(WindowsFileLock(7, api, lambda: None))
    assert gate.acquire(WAIT)
    gate.release()
    assert [c[2] for c in api.calls] == [
        LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
        LOCKFILE_EXCLUSIVE_LOCK,
        0,
    ]
    gate.close()


def test_writes_are_told_from_reads() -> None:
    assert _first_keyword("  -- a comment\n/* another */ UPDATE t SET x = 1") == "UPDATE"
    assert _first_keyword("select 1") == "SELECT"
    assert _first_keyword("WITH x AS (SELECT 1) SELECT * FROM x") == "WITH"
    assert _first_keyword("-- only a comment") == ""


# -- waiting in the calling thread on a wake channel (Linux's futex; here a fake) -----------


class FakeWakeChannel:
    """A release count with the futex's rule: a sleep ends early only for a wake-up sent
    while it sleeps, or because the count moved from the one the sleeper saw."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()
        self.sleepers = 0
        self.wakes_due = 0
        self.wakes_sent = 0
        self.sleepers_by_thread: set[str] = set()

    def sequence(self) -> int:
        return self.count

    def wait(self, seen: int, timeout: float) -> bool:
        with self.changed:
            if self.count != seen:
                return False
            self.sleepers += 1
            self.sleepers_by_thread.add(threading.current_thread().name)
            try:
                woken = self.changed.wait_for(lambda: self.wakes_due > 0, timeout)
                if woken:
                    self.wakes_due -= 1
                return woken
            finally:
                self.sleepers -= 1

    def advance(self) -> None:
        with self.changed:
            self.count += 1

    def wake_one(self) -> None:
        with self.changed:
            self.wakes_sent += 1
            if self.sleepers > self.wakes_due:
                self.wakes_due += 1
                self.changed.notify_all()

    def close(self) -> None:
        pass


def test_a_queued_writer_sleeps_on_the_wake_channel_in_its_own_thread() -> None:
    shared, wake = SharedLock(), FakeWakeChannel()
    holder = WriteGate(FakeFileLock(shared), wake=wake)
    waiter_lock = FakeFileLock(shared)
    waiter = WriteGate(waiter_lock, wake=wake)
    assert holder.acquire(WAIT)
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(WAIT)), name="writer")
    thread.start()
    assert _eventually(lambda: wake.sleepers == 1)
    holder.release()  # counts the release, lets go, wakes the sleeper
    thread.join(WAIT)
    assert got == [True] and waiter.held and waiter.contended
    assert wake.count == 1 and wake.wakes_sent == 1
    assert wake.sleepers_by_thread == {"writer"}  # the caller slept, no helper thread did
    assert waiter_lock.blocking_calls == 0
    assert waiter._thread is None  # never started
    waiter.release()
    holder.close()
    waiter.close()


def test_a_writer_sleeping_on_the_channel_gives_up_at_its_timeout() -> None:
    shared, wake = SharedLock(), FakeWakeChannel()
    holder = FakeFileLock(shared)
    assert holder.try_acquire()
    gate = WriteGate(FakeFileLock(shared), wake=wake)
    started = time.perf_counter()
    assert gate.acquire(0.05) is False
    assert 0.04 <= time.perf_counter() - started < WAIT
    assert not gate.held
    holder.release()
    assert gate.acquire(WAIT)  # nothing was left behind
    gate.release()
    gate.close()


def test_a_woken_writer_that_gives_up_passes_the_wake_on() -> None:
    shared = SharedLock()
    wake = FakeWakeChannel()
    holder = FakeFileLock(shared)
    assert holder.try_acquire()
    gate = WriteGate(FakeFileLock(shared), wake=wake)
    calls = 0
    original = wake.wait

    def woken_then_late(seen: int, timeout: float) -> bool:
        nonlocal calls
        calls += 1
        time.sleep(timeout)  # the whole timeout goes by ...
        return True  # ... and then the wake-up arrives, too late to use

    wake.wait = woken_then_late  # type: ignore[method-assign]
    assert gate.acquire(0.02) is False
    assert calls >= 1 and wake.wakes_sent == 1  # the unused wake-up went to the next sleeper
    wake.wait = original  # type: ignore[method-assign]
    holder.release()
    gate.close()
