"""One rule per field: the queue's arguments and the models refuse a bad value alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queue_core import QueueBackend, Task, TaskLog, TaskQueue, TaskStatus, Worker
from queue_core.validation import INT64_MAX, INT64_MIN, check_text

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# (enqueue keyword, Task field, bad value): each bad value must raise the same exception type
# from enqueue(...) and from Task(...).
SHARED_FIELDS: list[tuple[str, str, Any]] = [
    ("type", "type", ""),
    ("type", "type", " \t\n"),
    ("type", "type", "\u2003"),  # an em space: whitespace to isspace() and to strip() alike
    ("type", "type", 3),
    ("type", "type", None),
    ("payload", "payload", {"x": {1, 2}}),
    ("payload", "payload", math.nan),
    ("payload", "payload", b"bytes"),
    ("priority", "priority", 1.5),
    ("priority", "priority", True),
    ("priority", "priority", 2**63),
    ("priority", "priority", -(2**63) - 1),
    ("compatibility", "compatibility", ["eu"]),
    ("compatibility", "compatibility", '{"region": "eu"}'),
    ("compatibility", "compatibility", {"region": 5}),
    ("compatibility", "compatibility", {"region": ["eu"]}),
    ("compatibility", "compatibility", {"x": {1}}),
    ("compatibility", "compatibility", {"x": math.inf}),
    ("max_attempts", "max_attempts", 0),
    ("max_attempts", "max_attempts", -1),
    ("max_attempts", "max_attempts", "5"),
    ("max_attempts", "max_attempts", 2**64),
    ("run_after", "run_after_utc", "2026-01-01 00:00:00"),
    ("run_after", "run_after_utc", datetime(2026, 1, 1)),  # naive
    ("run_after", "run_after_utc", 1767225600),
    ("idempotency_key", "idempotency_key", ""),
    ("idempotency_key", "idempotency_key", "  "),
    ("idempotency_key", "idempotency_key", 5),
]


@pytest.fixture
def db(backend_db: QueueBackend) -> QueueBackend:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_db


def _raised(call: Callable[[], object]) -> type[BaseException] | None:
    try:
        call()
    except (TypeError, ValueError) as exc:
        return type(exc)
    return None


@pytest.mark.parametrize(("argument", "field", "value"), SHARED_FIELDS)
def test_enqueue_and_task_raise_the_same_type(
    queue: TaskQueue, argument: str, field: str, value: Any
) -> None:
    base: dict[str, Any] = {"type": "render", "payload": {"n": 1}}
    from_enqueue = _raised(lambda: queue.enqueue(**{**base, argument: value}))
    from_batch = _raised(lambda: queue.enqueue_many([{**base, argument: value}]))
    from_task = _raised(lambda: Task(id=1, **{**base, field: value}))
    assert from_enqueue is not None, f"enqueue accepted {argument}={value!r}"
    assert from_enqueue is from_batch is from_task
    assert queue.counts()[TaskStatus.QUEUED] == 0  # nothing was written


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda q: q.claim("  "), ValueError),
        (lambda q: q.claim(7), TypeError),
        (lambda q: q.register_worker("", {}), ValueError),
        (lambda q: q.register_worker("w", ["gpu"]), TypeError),
        (lambda q: q.worker_heartbeat(None), TypeError),
        (lambda q: q.log(1, 5, "x"), TypeError),
        (lambda q: q.log(1, "LOUD", "x"), ValueError),
    ],
)
def test_worker_and_log_arguments_follow_the_model_rules(
    queue: TaskQueue, call: Callable[[TaskQueue], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(queue)


def test_worker_and_log_models_share_those_rules() -> None:
    for bad, error in [
        ({"worker_id": "  "}, ValueError),
        ({"worker_id": 7}, TypeError),
        ({"worker_id": "w", "capabilities": ["gpu"]}, TypeError),
        ({"worker_id": "w", "heartbeat_utc": datetime(2026, 1, 1)}, ValueError),
    ]:
        with pytest.raises(error):
            Worker(**bad)
    with pytest.raises(TypeError):
        TaskLog(None, 1, 5)
    with pytest.raises(ValueError):
        TaskLog(None, 1, "LOUD")


def test_mappings_are_accepted_and_stored_as_dicts(queue: TaskQueue) -> None:
    frozen = MappingProxyType({"region": "eu"})
    task_id = queue.enqueue("render", {}, compatibility=frozen)
    assert queue.get(task_id).compatibility == {"region": "eu"}
    task = Task(id=1, type="render", payload={}, compatibility=frozen)  # type: ignore[arg-type]
    assert type(task.compatibility) is dict and task.compatibility == {"region": "eu"}
    worker = Worker("w", MappingProxyType({"gpu": True}))  # type: ignore[arg-type]
    assert type(worker.capabilities) is dict


def test_log_levels_are_stored_upper_case_by_queue_and_model(queue: TaskQueue) -> None:
    task_id = queue.enqueue("render", {})
    queue.log(task_id, "warning", "careful")
    assert queue.logs(task_id)[0].level == "WARNING"
    assert TaskLog(None, task_id, "warning").level == "WARNING"


def test_aware_times_in_any_zone_are_accepted(queue: TaskQueue) -> None:
    later = NOW.astimezone(timezone(timedelta(hours=2)))
    task_id = queue.enqueue("render", {}, run_after=later)
    assert queue.get(task_id).run_after_utc == NOW
    assert Task(id=1, type="render", payload={}, run_after_utc=later).run_after_utc == NOW


@pytest.mark.parametrize("value", [INT64_MIN, INT64_MAX])
def test_the_64_bit_bounds_are_accepted(queue: TaskQueue, value: int) -> None:
    task_id = queue.enqueue("render", {}, priority=value)
    assert queue.get(task_id).priority == value
    assert Task(id=value, type="render", payload={}, priority=value).priority == value


@given(st.text(max_size=6))
def test_text_rule_is_the_strip_rule(text: str) -> None:
    """check_text's isspace() test refuses exactly the strings that strip() empties."""
    refused = _raised(lambda: check_text(text, "x"))
    assert (refused is ValueError) == (not text.strip())


def test_delays_leases_and_ages_beyond_100_years_are_refused(queue: TaskQueue) -> None:
    """Far longer ones overflow datetime or SQLite's date functions (which return NULL)."""
    from queue_core import Retry

    task_id = queue.enqueue("t", {})
    with pytest.raises(ValueError, match="100 years"):
        queue.claim("w", lease_seconds=1e15)
    task = queue.claim_one("w")
    assert task is not None
    with pytest.raises(ValueError, match="100 years"):
        queue.extend_lease(task_id, "w", 1e15)
    with pytest.raises(ValueError, match="100 years"):
        queue.fail(task_id, "w", "later", retry_in=1e12)
    with pytest.raises(ValueError, match="100 years"):
        Retry(after=1e12)
    with pytest.raises(ValueError, match="100 years"):
        queue.prune(completed_older_than=timedelta(days=999_999), failed_older_than=None)
    with pytest.raises(ValueError, match="100 years"):
        TaskQueue(queue.db, retry_backoff_max_seconds=1e12)
    assert queue.get(task_id).status is TaskStatus.PROCESSING  # nothing changed
