"""SQLite's change watch: data_version, polled; another connection's commit is a change."""

from __future__ import annotations

from pathlib import Path

from queue_core import QueueDatabase, TaskQueue
from queue_core.waking import ACTIVE_POLL_SECONDS, IDLE_POLL_SECONDS, DataVersionWatch


def test_another_connections_commit_is_a_change_its_own_is_not(
    db: QueueDatabase, db_path: Path
) -> None:
    watch = db.change_watch()
    assert isinstance(watch, DataVersionWatch)
    assert watch.handle() is None
    assert watch.poll_seconds(True) == ACTIVE_POLL_SECONDS
    assert watch.poll_seconds(False) == IDLE_POLL_SECONDS
    assert watch.changed()  # nothing marked yet: claim once
    watch.mark()
    assert not watch.changed()
    TaskQueue(db).enqueue("own", {})
    assert not watch.changed()
    with QueueDatabase(db_path) as other:
        TaskQueue(other).enqueue("other", {})
    assert watch.changed()
    assert watch.changed()  # until the next mark
    watch.mark()
    assert not watch.changed()
    watch.close()


def test_a_closed_database_reads_as_changed(db: QueueDatabase) -> None:
    watch = db.change_watch()
    watch.mark()
    db.close()
    assert watch.changed()  # it cannot tell: the claim will report the error
