"""The wake channel: its logic through the futex seam anywhere, the real futex on Linux."""

from __future__ import annotations

import mmap
import struct
import threading
import time
from pathlib import Path

import pytest

from queue_core import wake_channel
from queue_core.wake_channel import FutexWakeChannel, open_wake_channel, wake_path_for

WAIT = 10.0
ETIMEDOUT = 110


class FakeFutex:
    """Records the calls; ``sleepers`` is how many waiters a wake could find."""

    def __init__(self, sleepers: int = 0, wait_result: int = 0) -> None:
        self.sleepers = sleepers
        self.wait_result = wait_result
        self.calls: list[tuple[str, int]] = []

    def wait(self, address: int, expected: int, timeout: float) -> int:
        self.calls.append(("wait", expected))
        return self.wait_result

    def wake(self, address: int, count: int) -> int:
        self.calls.append(("wake", count))
        woken = min(count, self.sleepers)
        self.sleepers -= woken
        return woken


def _channel(futex: FakeFutex) -> tuple[FutexWakeChannel, mmap.mmap]:
    mapping = mmap.mmap(-1, mmap.PAGESIZE)
    return FutexWakeChannel(mapping, futex), mapping


def _wakes(futex: FakeFutex) -> int:
    return sum(1 for call, _ in futex.calls if call == "wake")


def test_advance_counts_releases_and_wraps_at_32_bits() -> None:
    channel, mapping = _channel(FakeFutex())
    assert channel.sequence() == 0
    channel.advance()
    channel.advance()
    assert channel.sequence() == 2
    struct.pack_into("=I", mapping, 0, 0xFFFFFFFF)
    channel.advance()
    assert channel.sequence() == 0
    channel.close()


def test_a_wait_passes_the_count_it_saw_to_the_kernel() -> None:
    futex = FakeFutex(wait_result=0)
    channel, _ = _channel(futex)
    assert channel.wait(7, 0.5) is True
    futex.wait_result = ETIMEDOUT
    assert channel.wait(8, 0.5) is False
    assert futex.calls == [("wait", 7), ("wait", 8)]
    channel.close()


def test_only_one_woken_waiter_is_on_its_way_at_a_time() -> None:
    futex = FakeFutex(sleepers=3)
    channel, _ = _channel(futex)
    channel.wake_one()
    channel.wake_one()  # the first woken waiter has not run: nobody more is woken
    assert _wakes(futex) == 1
    assert channel.wait(channel.sequence(), 0.5)  # that waiter runs (its wait returns 0)
    channel.wake_one()
    assert _wakes(futex) == 2
    channel.close()


def test_a_wake_that_found_nobody_asleep_leaves_no_flag() -> None:
    futex = FakeFutex(sleepers=0)
    channel, _ = _channel(futex)
    channel.wake_one()
    channel.wake_one()
    assert _wakes(futex) == 2
    channel.close()


def test_a_flag_left_by_a_woken_waiter_that_never_ran_is_cleared_by_the_next_timeout() -> None:
    futex = FakeFutex(sleepers=2, wait_result=ETIMEDOUT)
    channel, _ = _channel(futex)
    channel.wake_one()  # wakes a waiter that is then killed before it runs
    channel.wake_one()
    assert _wakes(futex) == 1
    assert channel.wait(channel.sequence(), 0.05) is False  # another sleeper's slice ends
    channel.wake_one()
    assert _wakes(futex) == 2
    channel.close()


def test_a_closed_channel_refuses_use() -> None:
    channel, mapping = _channel(FakeFutex())
    channel.close()
    assert mapping.closed
    for use in (channel.sequence, channel.advance, channel.wake_one):
        with pytest.raises(ValueError, match="closed"):
            use()


def test_no_channel_where_there_is_no_futex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "queue.db-writer.wake"
    monkeypatch.setattr(wake_channel.sys, "platform", "win32")
    assert open_wake_channel(path) is None
    monkeypatch.setattr(wake_channel.sys, "platform", "linux")
    monkeypatch.setattr(wake_channel.platform, "machine", lambda: "sparc64")
    assert open_wake_channel(path) is None
    assert not path.exists()  # nothing is created where nothing will be used


# -- the real futex ---------------------------------------------------------------------


@pytest.fixture
def wake_file(tmp_path: Path) -> Path:
    path = wake_path_for(tmp_path / "queue.db")
    probe = open_wake_channel(path)
    if probe is None:
        pytest.skip("no futex on this platform: the write gate uses its helper thread")
    probe.close()
    return path


def test_the_side_file_sits_next_to_the_database(tmp_path: Path) -> None:
    assert wake_path_for(tmp_path / "queue.db") == tmp_path / "queue.db-writer.wake"


def test_two_mappings_of_the_file_share_the_count(wake_file: Path) -> None:
    first, second = open_wake_channel(wake_file), open_wake_channel(wake_file)
    assert first is not None and second is not None
    first.advance()
    first.advance()
    assert second.sequence() == 2
    second.close()
    third = open_wake_channel(wake_file)  # reopening neither shrinks nor clears it
    assert third is not None and third.sequence() == 2
    third.close()
    first.close()


def test_a_real_wait_returns_at_once_when_the_count_moved_and_times_out_otherwise(
    wake_file: Path,
) -> None:
    channel = open_wake_channel(wake_file)
    assert channel is not None
    seen = channel.sequence()
    channel.advance()
    started = time.perf_counter()
    assert channel.wait(seen, WAIT) is False
    assert time.perf_counter() - started < WAIT / 2
    started = time.perf_counter()
    assert channel.wait(channel.sequence(), 0.05) is False
    assert time.perf_counter() - started >= 0.04
    channel.close()


def test_a_sleeper_on_one_mapping_is_woken_through_another(wake_file: Path) -> None:
    sleeper, waker = open_wake_channel(wake_file), open_wake_channel(wake_file)
    assert sleeper is not None and waker is not None
    woken: list[bool] = []
    thread = threading.Thread(target=lambda: woken.append(sleeper.wait(sleeper.sequence(), WAIT)))
    thread.start()
    deadline = time.perf_counter() + WAIT
    # A wake sent before the thread sleeps finds nobody; send until one lands.
    while thread.is_alive() and time.perf_counter() < deadline:
        waker.wake_one()
        thread.join(0.01)
    assert woken == [True]
    sleeper.close()
    waker.close()
