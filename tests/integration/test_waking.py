"""SQLite's change watch: a write to ``-wal`` wakes its handle, ``data_version`` decides.

Another connection's commit is a change, the watch's own connection's commits are not; the
cheap ``-shm`` check keeps ``data_version`` reads rare; without a file watch (Windows, inotify
refused) it is polled; a ``-wal`` file that goes away and comes back is watched again.
"""

from __future__ import annotations

import os
import selectors
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core import QueueDatabase, TaskQueue, waking
from queue_core.waking import (
    ACTIVE_POLL_SECONDS,
    IDLE_POLL_SECONDS,
    SAFETY_POLL_SECONDS,
    DataVersionWatch,
)

WAIT_S = 10.0  # generous: the machine may be loaded
needs_notification = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no file change notification: it polls"
)


@pytest.fixture
def other(db_path: Path, db: QueueDatabase) -> Iterator[TaskQueue]:
    """A producer on its own connection (opened after the schema exists)."""
    producer = QueueDatabase(db_path)
    yield TaskQueue(producer)
    producer.close()


@pytest.fixture
def no_safety_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a moved wal-index header may lead to a data_version read within a test."""
    monkeypatch.setattr(waking, "SAFETY_POLL_SECONDS", 3600.0)


def readable_within(handle: int, seconds: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(handle, selectors.EVENT_READ)
        return bool(selector.select(seconds))


@needs_notification
def test_another_connections_commit_wakes_the_handle_its_own_is_no_change(
    db: QueueDatabase, other: TaskQueue
) -> None:
    watch = db.change_watch()
    assert isinstance(watch, DataVersionWatch)
    try:
        handle = watch.handle()
        assert handle is not None
        assert watch.watching
        assert watch.changed()  # nothing marked yet: claim once
        watch.mark()
        assert not watch.changed()
        assert watch.poll_seconds(False) == SAFETY_POLL_SECONDS  # the handle wakes it
        assert not readable_within(handle, 0.05)

        TaskQueue(db).enqueue("own", {})
        assert readable_within(handle, WAIT_S)  # -wal was written ...
        assert not watch.changed()  # ... by its own connection: no change
        assert not readable_within(handle, 0.05)  # changed() consumed the event

        other.enqueue("other", {})
        assert readable_within(handle, WAIT_S)
        assert watch.changed()
        assert watch.changed()  # until the next mark
        watch.mark()
        assert not watch.changed()
    finally:
        watch.close()


@needs_notification
@pytest.mark.usefixtures("no_safety_poll")
def test_the_cheap_check_reads_data_version_only_when_the_header_moved(
    db: QueueDatabase, other: TaskQueue
) -> None:
    watch = DataVersionWatch(db)
    try:
        watch.mark()
        reads = watch.data_version_reads
        for _ in range(50):
            assert not watch.changed()
        assert watch.data_version_reads == reads  # nothing committed: one pread each

        TaskQueue(db).enqueue("own", {})
        for _ in range(50):
            assert not watch.changed()
        assert watch.data_version_reads == reads + 1  # confirmed once, then the header is known

        other.enqueue("other", {})
        assert watch.changed()
        assert watch.data_version_reads == reads + 2
    finally:
        watch.close()


def test_without_a_file_watch_it_is_polled_and_still_exact(
    db: QueueDatabase, other: TaskQueue
) -> None:
    watch = DataVersionWatch(db, file_watch_opener=lambda path: None)
    try:
        assert watch.handle() is None
        assert not watch.watching
        assert watch.poll_seconds(True) == ACTIVE_POLL_SECONDS
        assert watch.poll_seconds(False) == IDLE_POLL_SECONDS
        assert watch.changed()
        watch.mark()
        assert not watch.changed()
        TaskQueue(db).enqueue("own", {})
        assert not watch.changed()
        other.enqueue("other", {})
        assert watch.changed()
        watch.mark()
        assert not watch.changed()
    finally:
        watch.close()


def test_the_default_watch_uses_the_platforms_mechanism(db: QueueDatabase) -> None:
    watch = db.change_watch()
    try:
        assert (watch.handle() is None) == (sys.platform == "win32")
    finally:
        watch.close()


class UnarmableWatch:
    """A file watch the kernel refuses to arm (inotify's watch limit reached)."""

    def __init__(self) -> None:
        self.arms = 0
        self._fd = os.open(os.devnull, os.O_RDONLY)

    @property
    def watching(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def arm(self) -> bool:
        self.arms += 1
        return False

    def consume(self) -> bool:
        return False

    def close(self) -> None:
        os.close(self._fd)


def test_a_file_watch_that_cannot_watch_falls_back_to_polling(
    db: QueueDatabase, other: TaskQueue
) -> None:
    fake = UnarmableWatch()
    watch = DataVersionWatch(db, file_watch_opener=lambda path: fake, retry_seconds=0.0)
    try:
        assert watch.handle() == fake.fileno()  # registered once, waited on in vain
        assert not watch.watching
        assert watch.poll_seconds(False) == IDLE_POLL_SECONDS
        watch.mark()
        assert fake.arms >= 1  # it keeps trying
        other.enqueue("other", {})
        assert watch.changed()  # the poll finds it
    finally:
        watch.close()


@needs_notification
def test_a_wal_file_that_goes_away_is_polled_and_watched_again_when_it_is_back(
    db: QueueDatabase, db_path: Path, other: TaskQueue
) -> None:
    wal = db_path.with_name(db_path.name + "-wal")
    away = db_path.with_name(db_path.name + "-wal-away")
    watch = DataVersionWatch(db, retry_seconds=0.0)
    try:
        handle = watch.handle()
        assert handle is not None
        watch.mark()
        assert watch.watching
        # Open connections keep writing to the moved file; nothing new opens meanwhile.
        wal.rename(away)
        assert readable_within(handle, WAIT_S)
        assert not watch.changed()
        assert not watch.watching  # the path is no longer the watched file: poll
        assert watch.poll_seconds(False) == IDLE_POLL_SECONDS
        other.enqueue("while away", {})
        assert watch.changed()  # found by polling

        away.rename(wal)
        watch.mark()  # re-arms: the file is back
        assert watch.watching
        assert watch.handle() == handle  # the same descriptor: the engine registered it once
        assert not watch.changed()
        other.enqueue("back", {})
        assert readable_within(handle, WAIT_S)
        assert watch.changed()
    finally:
        watch.close()
        if away.exists():
            away.rename(wal)


def test_a_closed_database_reads_as_changed(db: QueueDatabase) -> None:
    watch = db.change_watch()
    watch.mark()
    db.close()
    assert watch.changed()  # it cannot tell: the claim will report the error
    watch.close()
