"""Task, Worker and TaskLog: validation, dict round-trips, construction from rows."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queue_core import LOG_LEVELS, Task, TaskLog, TaskStatus, Worker

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def full_task(**changes: Any) -> Task:
    values: dict[str, Any] = {
        "id": 7, "type": "render", "payload": {"format": "png", "n": [1, 2]}, "priority": 3,
        "compatibility": {"region": "eu"}, "status": TaskStatus.PROCESSING, "attempts": 2,
        "max_attempts": 5, "run_after_utc": NOW, "lease_until_utc": NOW, "reserved_at_utc": NOW,
        "processing_started_utc": NOW, "finished_at_utc": None, "locked_by": "w1",
        "error_message": "earlier failure", "idempotency_key": "k", "created_at_utc": NOW,
        "updated_at_utc": NOW,
    }  # fmt: skip
    values.update(changes)
    return Task(**values)


def test_task_round_trips_through_a_dict_and_json() -> None:
    task = full_task()
    data = task.to_dict()
    assert data["status"] == "processing"
    assert data["run_after_utc"] == "2026-01-02 03:04:05.678"
    assert Task.from_dict(json.loads(json.dumps(data))) == task
    assert Task.from_dict({**data, "run_after_utc": NOW}) == task


def test_task_generated_column_views() -> None:
    task = full_task()
    assert (task.region, task.format) == ("eu", "png")
    plain = Task(id=1, type="t", payload=[1])
    assert (plain.region, plain.format, plain.status) == (None, None, TaskStatus.QUEUED)
    assert not TaskStatus.QUEUED.is_final and TaskStatus.FAILED.is_final


def test_status_text_is_accepted_and_normalised() -> None:
    assert full_task(status="completed").status is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"id": "7"}, TypeError),
        ({"id": True}, TypeError),
        ({"type": ""}, ValueError),
        ({"type": None}, TypeError),
        ({"payload": {"x": {1, 2}}}, TypeError),
        ({"payload": float("nan")}, ValueError),
        ({"priority": 1.0}, TypeError),
        ({"compatibility": '{"region": "eu"}'}, TypeError),
        ({"compatibility": {"region": 3}}, TypeError),
        ({"status": "running"}, ValueError),
        ({"attempts": -1}, ValueError),
        ({"max_attempts": "5"}, TypeError),
        ({"run_after_utc": "2026-01-01 00:00:00"}, TypeError),
        ({"lease_until_utc": datetime(2026, 1, 1)}, ValueError),
        ({"locked_by": ""}, ValueError),
        ({"error_message": 5}, TypeError),
        ({"idempotency_key": " "}, ValueError),
    ],
)
def test_task_validation(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        full_task(**changes)


def test_task_from_dict_refuses_unknown_or_missing_fields() -> None:
    with pytest.raises(ValueError, match="unknown Task fields"):
        Task.from_dict({**full_task().to_dict(), "colour": "red"})
    with pytest.raises(TypeError):
        Task.from_dict({"id": 1, "type": "t"})
    with pytest.raises(TypeError, match="timestamp"):
        Task.from_dict({**full_task().to_dict(), "created_at_utc": 12345})


@given(JSON, st.integers(-1000, 1000))
def test_any_json_payload_round_trips(payload: Any, priority: int) -> None:
    task = Task(id=1, type="t", payload=payload, priority=priority)
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_task_from_row() -> None:
    row = {
        "id": 3, "type": "t", "priority": 100, "payload": '{"format": "jpg"}',
        "compatibility": "{}", "status": "queued", "attempts": 0, "max_attempts": 5,
        "run_after_utc": "2026-01-02 03:04:05", "lease_until_utc": None,
        "reserved_at_utc": None, "processing_started_utc": None, "finished_at_utc": None,
        "locked_by": None, "error_message": None, "idempotency_key": None,
        "created_at_utc": "2026-01-02 03:04:05.678", "updated_at_utc": "2026-01-02 03:04:05.678",
    }  # fmt: skip
    task = Task.from_row(row)
    assert task.payload == {"format": "jpg"} and task.format == "jpg"
    assert task.run_after_utc == NOW.replace(microsecond=0)
    assert task.created_at_utc == NOW


def test_worker() -> None:
    worker = Worker("w1", {"gpu": True}, NOW)
    assert Worker.from_dict(worker.to_dict()) == worker
    row = {"worker_id": "w1", "capabilities": '{"gpu": true}'}
    assert Worker.from_row({**row, "heartbeat_utc": "2026-01-02 03:04:05.678"}) == worker
    assert Worker.from_dict({"worker_id": "w2"}) == Worker("w2")
    for bad, error in [
        ({"worker_id": ""}, ValueError),
        ({"worker_id": "w", "capabilities": []}, TypeError),
        ({"worker_id": "w", "capabilities": {"x": object()}}, TypeError),
        ({"worker_id": "w", "extra": 1}, ValueError),
    ]:
        with pytest.raises(error):
            Worker.from_dict(bad)


def test_task_log() -> None:
    log = TaskLog(1, 7, "INFO", "started", {"step": [1, 2]}, NOW)
    assert TaskLog.from_dict(json.loads(json.dumps(log.to_dict()))) == log
    assert TaskLog.from_row(
        {"log_id": 1, "task_id": 7, "level": "INFO", "message": "started",
         "details": '{"step": [1, 2]}', "at_utc": "2026-01-02 03:04:05.678"}
    ) == log  # fmt: skip
    assert TaskLog.from_dict({"task_id": 7, "level": "DEBUG"}).log_id is None
    assert set(LOG_LEVELS) == {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    for bad, error in [({"level": "LOUD"}, ValueError), ({"level": 1}, TypeError),
                       ({"task_id": "7"}, TypeError), ({"log_id": "1"}, TypeError),
                       ({"message": 3}, TypeError), ({"details": {1, 2}}, TypeError),
                       ({"colour": "red"}, ValueError)]:  # fmt: skip
        with pytest.raises(error):
            TaskLog.from_dict({"task_id": 7, "level": "INFO", **bad})
