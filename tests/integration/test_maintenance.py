"""Backups (verified, rotated), verify, restore, checkpoints, optimize, vacuum, integrity."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import QueueDatabase, TaskQueue, TaskStatus, maintenance
from queue_core.maintenance import BackupError, QueueInUseError


def _fill(queue: TaskQueue, count: int = 20) -> None:
    queue.enqueue_many([{"type": "t", "payload": {"i": i}} for i in range(count)])
    for task in queue.claim("w", limit=count // 2):
        queue.log(task.id, "INFO", "done")
        queue.complete(task.id, "w")


@pytest.mark.parametrize("method", ["vacuum_into", "backup_api"])
def test_backup_is_a_verified_single_file_queue(
    queue: TaskQueue, tmp_path: Path, method: maintenance.BackupMethod
) -> None:
    _fill(queue)
    seen: list[tuple[int, int]] = []
    dest = tmp_path / "copies" / "one.db"
    info = maintenance.backup(
        queue.db, dest, method=method, progress=lambda done, total: seen.append((done, total))
    )
    assert info.path == dest and info.bytes == dest.stat().st_size and info.method == method
    assert seen and seen[-1][0] == seen[-1][1] == info.bytes
    assert not Path(f"{dest}-wal").exists() and not Path(f"{dest}.partial").exists()
    assert maintenance.verify(dest).ok
    with QueueDatabase(dest) as copy:
        counts = TaskQueue(copy).counts()
    assert counts[TaskStatus.COMPLETED] == 10 and counts[TaskStatus.QUEUED] == 10


def test_backup_never_overwrites_and_refuses_an_unknown_method(
    db: QueueDatabase, tmp_path: Path
) -> None:
    existing = tmp_path / "there.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        maintenance.backup(db, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(ValueError, match="method"):
        maintenance.backup(db, tmp_path / "x.db", method="copy")  # type: ignore[arg-type]


def test_rotation_keeps_the_newest(db: QueueDatabase, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    taken = [maintenance.backup_rotated(db, folder, keep=3) for _ in range(5)]
    listed = maintenance.list_backups(folder)
    assert [info.path for info in listed] == [info.path for info in reversed(taken[-3:])]
    assert taken[-1].removed == (taken[1].path,)
    (folder / "notes.txt").write_text("not a backup", encoding="utf-8")
    other = folder / "other-20200101T000000000Z.db"  # another queue's backup, older than all
    other.write_bytes(b"")
    maintenance.backup_rotated(db, folder, keep=1)
    assert len(maintenance.list_backups(folder, stem="queue")) == 1
    assert (folder / "notes.txt").exists()  # rotation only ever removes backups
    assert other.exists()  # ... of this queue
    with pytest.raises(ValueError):
        maintenance.backup_rotated(db, folder, keep=0)
    assert maintenance.list_backups(tmp_path / "absent") == []


def test_verify_names_what_is_wrong(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 500)
    assert not maintenance.verify(garbage).ok
    assert "does not exist" in maintenance.verify(tmp_path / "absent.db").problems[0]
    empty = tmp_path / "empty.db"
    QueueDatabase(empty).close()
    assert maintenance.verify(empty).problems == ["it has no queue schema (user_version 0)"]


def test_restore_refuses_while_the_queue_is_open(queue: TaskQueue, tmp_path: Path) -> None:
    _fill(queue)
    copy = maintenance.backup(queue.db, tmp_path / "b.db").path
    with pytest.raises(QueueInUseError, match="open"):
        maintenance.restore(queue.db.path, copy)
    assert TaskQueue(queue.db).counts()[TaskStatus.COMPLETED] == 10  # untouched, still usable


def test_restore_puts_the_backup_in_place_and_keeps_the_old_content(
    db_path: Path, tmp_path: Path
) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        queue = TaskQueue(db)
        _fill(queue)
        copy = maintenance.backup(db, tmp_path / "b.db").path
        queue.enqueue("after-backup", 1)
    safety = maintenance.restore(db_path, copy)
    assert safety is not None and safety.name.startswith("queue.db.before-restore-")
    with QueueDatabase(db_path) as db:
        assert TaskQueue(db).counts()[TaskStatus.QUEUED] == 10  # the later enqueue is gone
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert maintenance.integrity_check(db) == []
    with QueueDatabase(safety) as old:
        assert TaskQueue(old).counts()[TaskStatus.QUEUED] == 11


def test_restore_refuses_a_bad_backup_and_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    with QueueDatabase(db_path) as db:
        db.initialize_schema()
        TaskQueue(db).enqueue("t", 1)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"x" * 8192)
    with pytest.raises(BackupError, match="cannot be restored"):
        maintenance.restore(db_path, bad)
    with pytest.raises(BackupError, match="queue file itself"):
        maintenance.restore(db_path, db_path)
    with QueueDatabase(db_path) as db:
        assert sum(TaskQueue(db).counts().values()) == 1
    assert [p.name for p in tmp_path.iterdir() if "before-restore" in p.name] == []


def test_checkpoint_modes(db: QueueDatabase) -> None:
    TaskQueue(db).enqueue_many([{"type": "t", "payload": "x" * 500} for _ in range(200)])
    result = maintenance.checkpoint(db, "TRUNCATE")
    assert result.complete and result.busy == 0
    assert Path(f"{db.path}-wal").stat().st_size == 0
    assert maintenance.checkpoint(db).mode == "PASSIVE"
    with pytest.raises(ValueError, match="mode"):
        maintenance.checkpoint(db, "SOMETIMES")  # type: ignore[arg-type]


def test_optimize_vacuum_and_integrity_check(queue: TaskQueue) -> None:
    _fill(queue, 50)
    maintenance.optimize(queue.db)
    maintenance.vacuum(queue.db)
    assert maintenance.integrity_check(queue.db) == []


def test_integrity_check_finds_counters_that_drifted(db: QueueDatabase) -> None:
    queue = TaskQueue(db)
    _fill(queue, 4)
    db.execute("UPDATE finished_task_counts SET n = n + 3")
    (problem,) = maintenance.integrity_check(db)
    assert problem == "finished_task_counts says 5 completed task(s) of type 't', the table holds 2"


def test_the_wal_shrinks_to_journal_size_limit_after_a_checkpoint(db: QueueDatabase) -> None:
    limit = int(db.execute("PRAGMA journal_size_limit").fetchone()[0])
    assert limit == 16 * 1024 * 1024
    wal = Path(f"{db.path}-wal")
    queue = TaskQueue(db)
    queue.enqueue_many([{"type": "t", "payload": "x" * 4000} for _ in range(5000)])
    assert wal.stat().st_size > limit  # one big transaction outgrows the limit
    assert maintenance.checkpoint(db).complete  # PASSIVE, nothing else reading
    queue.enqueue("t", 1)  # the next commit restarts the WAL and truncates it
    assert wal.stat().st_size <= limit
