"""File change notification: the mechanism per platform, inotify for real on Linux, kqueue's
logic through a fake kernel (it cannot run here), and every failure leaving the caller to poll."""

from __future__ import annotations

import os
import selectors
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from queue_core import file_watch
from queue_core.file_watch import InotifyWatch, KqueueWatch, open_file_watch

WAIT_S = 10.0
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def readable_within(handle: int, seconds: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(handle, selectors.EVENT_READ)
        return bool(selector.select(seconds))


def append(path: Path, data: bytes = b"x") -> None:
    with path.open("ab") as f:
        f.write(data)


@dataclass
class FakeKevent:
    ident: int
    filter: int = 0
    flags: int = 0
    fflags: int = 0


class FakeKqueue:
    """A kqueue: records what was registered, hands out the events a test queued."""

    def __init__(self, kernel: FakeKqueueModule) -> None:
        self._kernel = kernel
        self._fd = os.open(os.devnull, os.O_RDONLY)

    def fileno(self) -> int:
        return self._fd

    def control(self, changes: list[FakeKevent] | None, max_events: int, timeout: float) -> Any:
        if changes:
            self._kernel.registered.extend(changes)
        events, self._kernel.pending = self._kernel.pending[:max_events], []
        return events

    def close(self) -> None:
        os.close(self._fd)


class FakeKqueueModule:
    KQ_FILTER_VNODE = -4
    KQ_EV_ADD = 0x1
    KQ_EV_CLEAR = 0x20
    KQ_NOTE_DELETE = 0x1
    KQ_NOTE_WRITE = 0x2
    KQ_NOTE_EXTEND = 0x4
    KQ_NOTE_ATTRIB = 0x8
    KQ_NOTE_LINK = 0x10
    KQ_NOTE_RENAME = 0x20

    def __init__(self) -> None:
        self.registered: list[FakeKevent] = []
        self.pending: list[FakeKevent] = []
        self.queues: list[FakeKqueue] = []

    def kqueue(self) -> FakeKqueue:
        self.queues.append(FakeKqueue(self))
        return self.queues[-1]

    def kevent(self, ident: int, filter: int, flags: int, fflags: int) -> FakeKevent:
        return FakeKevent(ident, filter, flags, fflags)


def test_each_platform_gets_its_mechanism_and_windows_none(tmp_path: Path) -> None:
    target = tmp_path / "q.db-wal"
    target.write_bytes(b"")
    assert open_file_watch(target, platform="win32") is None
    kernel = FakeKqueueModule()
    mac = open_file_watch(target, platform="darwin", kqueue_module=kernel)
    assert isinstance(mac, KqueueWatch)
    assert mac.watching
    mac.close()
    bsd = open_file_watch(target, platform="freebsd14", kqueue_module=FakeKqueueModule())
    assert isinstance(bsd, KqueueWatch)
    bsd.close()
    assert open_file_watch(target, platform="darwin", kqueue_module=object()) is None
    if sys.platform.startswith("linux"):
        linux = open_file_watch(target, platform="linux")
        assert isinstance(linux, InotifyWatch)
        assert linux.watching
        linux.close()


def test_no_inotify_in_the_c_library_means_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> Any:
        raise OSError("the C library has no inotify")

    monkeypatch.setattr(file_watch, "_load_libc", missing)
    assert open_file_watch(tmp_path / "q.db-wal", platform="linux") is None


class RefusingLibc:
    """inotify with the per-user limits reached."""

    def __init__(self, *, instances: bool) -> None:
        self._instances = instances

    def inotify_init1(self, flags: int) -> int:
        return -1 if self._instances else os.open(os.devnull, os.O_RDONLY)

    def inotify_add_watch(self, fd: int, path: bytes, mask: int) -> int:
        return -1  # ENOSPC: max_user_watches

    def inotify_rm_watch(self, fd: int, wd: int) -> int:
        return 0


def test_inotify_refused_by_the_kernel_is_an_error_or_an_unarmed_watch(tmp_path: Path) -> None:
    target = tmp_path / "q.db-wal"
    target.write_bytes(b"")
    with pytest.raises(OSError, match="inotify_init1"):
        InotifyWatch(target, RefusingLibc(instances=True))
    watch = InotifyWatch(target, RefusingLibc(instances=False))
    assert not watch.arm()
    assert not watch.watching
    watch.close()


@linux_only
def test_inotify_reports_writes_and_the_file_going_and_coming_back(tmp_path: Path) -> None:
    target = tmp_path / "q.db-wal"
    watch = InotifyWatch(target)
    try:
        assert not watch.arm()  # not there yet
        target.write_bytes(b"")
        assert watch.arm()
        assert not watch.consume()
        append(target)
        assert readable_within(watch.fileno(), WAIT_S)
        assert watch.consume()
        assert watch.watching
        assert not readable_within(watch.fileno(), 0.05)  # consumed

        target.unlink()
        assert readable_within(watch.fileno(), WAIT_S)
        assert watch.consume()
        assert not watch.watching

        target.write_bytes(b"")  # a new file under the same name
        assert watch.arm()
        append(target)
        assert readable_within(watch.fileno(), WAIT_S)
        assert watch.consume()
        assert watch.watching
    finally:
        watch.close()


@linux_only
def test_inotify_notices_the_file_renamed_away(tmp_path: Path) -> None:
    target = tmp_path / "q.db-wal"
    target.write_bytes(b"")
    watch = InotifyWatch(target)
    try:
        assert watch.arm()
        target.rename(tmp_path / "elsewhere")
        assert readable_within(watch.fileno(), WAIT_S)
        assert watch.consume()
        assert not watch.watching
    finally:
        watch.close()


@pytest.mark.skipif(sys.platform == "win32", reason="an open file cannot be unlinked on Windows")
def test_kqueue_registers_a_vnode_filter_and_reads_its_events(tmp_path: Path) -> None:
    target = tmp_path / "q.db-wal"
    kernel = FakeKqueueModule()
    watch = KqueueWatch(target, kernel)
    try:
        assert watch.fileno() == kernel.queues[0].fileno()
        assert not watch.arm()  # no file yet
        target.write_bytes(b"")
        assert watch.arm()
        (registered,) = kernel.registered
        assert registered.filter == kernel.KQ_FILTER_VNODE
        assert registered.flags == kernel.KQ_EV_ADD | kernel.KQ_EV_CLEAR
        assert registered.fflags & kernel.KQ_NOTE_WRITE
        assert registered.fflags & kernel.KQ_NOTE_EXTEND
        assert registered.fflags & kernel.KQ_NOTE_DELETE

        assert not watch.consume()
        kernel.pending = [FakeKevent(registered.ident, fflags=kernel.KQ_NOTE_WRITE)]
        assert watch.consume()
        assert watch.watching

        # A link-count change with the file still at its path (a hard link made) is harmless.
        kernel.pending = [FakeKevent(registered.ident, fflags=kernel.KQ_NOTE_LINK)]
        assert watch.consume()
        assert watch.watching

        kernel.pending = [FakeKevent(registered.ident, fflags=kernel.KQ_NOTE_DELETE)]
        assert watch.consume()
        assert not watch.watching
        assert watch.arm()  # still at its path here: watched again
        assert len(kernel.registered) == 2

        target.unlink()
        kernel.pending = [FakeKevent(kernel.registered[1].ident, fflags=kernel.KQ_NOTE_LINK)]
        assert watch.consume()
        assert not watch.watching  # unlinked: the path no longer names the watched file
    finally:
        watch.close()
