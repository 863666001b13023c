"""Task, Worker and TaskLog: validated dataclasses for the rows of the three tables.

Each model checks its fields on construction with the rules of :mod:`queue_core.validation`,
the same ones :class:`~queue_core.task_queue.TaskQueue` applies to its arguments. Models
round-trip through ``to_dict``/``from_dict`` (JSON-ready: timestamps as the stored UTC text) and
are built from a database row with ``from_row``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Final, cast

from queue_core.timestamps import from_db_text, to_db_text
from queue_core.validation import (
    LOG_LEVELS,
    check_compatibility,
    check_count,
    check_int,
    check_log_level,
    check_mapping,
    check_optional_text,
    check_optional_time,
    check_str,
    check_text,
    to_json,
)

__all__ = ["LOG_LEVELS", "Task", "TaskLog", "TaskStatus", "Worker", "to_json"]


class TaskStatus(str, Enum):
    """Where a task is in its life. These four values are the only ones the queue writes."""

    QUEUED = "queued"  #: waiting until ``run_after_utc`` for a worker to claim it
    PROCESSING = "processing"  #: leased to ``locked_by`` until ``lease_until_utc``
    COMPLETED = "completed"  #: finished successfully; final
    FAILED = "failed"  #: out of attempts, or failed for good; final

    @property
    def is_final(self) -> bool:
        """True for statuses a task never leaves."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


def _time_to_dict(value: datetime | None) -> str | None:
    return None if value is None else to_db_text(value)


def _time_from_dict(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return from_db_text(value)
    raise TypeError(f"a timestamp must be a datetime or 'YYYY-MM-DD HH:MM:SS' text, not {value!r}")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Task:
    """One row of ``task_queue``. ``payload`` and ``compatibility`` are the decoded JSON values.

    :raises TypeError: a field has the wrong type, payload/compatibility are not JSON, or the
        region is not text.
    :raises ValueError: an empty type, an unknown status, negative attempts, ``max_attempts``
        below 1, a naive time, or NaN in the JSON.
    """

    id: int
    type: str
    payload: Any
    priority: int = 100
    compatibility: dict[str, Any] = field(default_factory=dict)
    status: TaskStatus = TaskStatus.QUEUED
    attempts: int = 0
    max_attempts: int = 5
    run_after_utc: datetime | None = None
    lease_until_utc: datetime | None = None
    reserved_at_utc: datetime | None = None
    processing_started_utc: datetime | None = None
    finished_at_utc: datetime | None = None
    locked_by: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    created_at_utc: datetime | None = None
    updated_at_utc: datetime | None = None

    def __post_init__(self) -> None:
        check_int(self.id, "Task.id")
        check_text(self.type, "Task.type")
        to_json(self.payload, "Task.payload")
        check_int(self.priority, "Task.priority")
        object.__setattr__(
            self, "compatibility", check_compatibility(self.compatibility, "Task.compatibility")
        )
        try:
            object.__setattr__(self, "status", TaskStatus(self.status))
        except ValueError:
            known = ", ".join(s.value for s in TaskStatus)
            raise ValueError(f"Task.status {self.status!r} is not one of {known}") from None
        check_count(self.attempts, "Task.attempts", 0)
        check_count(self.max_attempts, "Task.max_attempts", 1)
        for name in _TASK_TIMES:
            check_optional_time(getattr(self, name), f"Task.{name}")
        check_optional_text(self.locked_by, "Task.locked_by")
        if self.error_message is not None:
            check_str(self.error_message, "Task.error_message")
        check_optional_text(self.idempotency_key, "Task.idempotency_key")

    @property
    def region(self) -> str | None:
        """The ``region`` generated column: ``compatibility['region']``."""
        region = self.compatibility.get("region")
        return region if isinstance(region, str) else None

    @property
    def format(self) -> Any:
        """The ``format`` generated column: ``payload['format']`` when the payload is an object."""
        return self.payload.get("format") if isinstance(self.payload, dict) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: timestamps as stored UTC text, status as its value."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        for name in _TASK_TIMES:
            data[name] = _time_to_dict(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """Build a Task from :meth:`to_dict` output (timestamps as text or datetimes).

        :raises KeyError: ``id``, ``type`` or ``payload`` is missing.
        :raises TypeError, ValueError: as for the constructor; unknown keys are refused too.
        """
        unknown = set(data) - _TASK_FIELDS
        if unknown:
            raise ValueError(f"unknown Task fields: {sorted(unknown)}")
        values = dict(data)
        for name in _TASK_TIMES:
            if name in values:
                values[name] = _time_from_dict(values[name])
        return cls(**values)

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> Task:
        """Build a Task from a ``task_queue`` row with the columns of ``{task_columns}``.

        ``{task_columns}`` in ``queries.sql`` lists the stored columns, one per field of this
        class; a test holds the two together.

        Rows come from the schema, so values are decoded and converted but not validated
        again; a claim builds one Task per row and the checks would double its cost.

        :raises ValueError: the row holds malformed JSON, an unknown status or a timestamp of
            another shape.
        """
        task = cls.__new__(cls)
        task.__dict__.update(
            id=row["id"],
            type=row["type"],
            payload=json.loads(row["payload"]),
            priority=row["priority"],
            compatibility=_decode_object(row["compatibility"]),
            status=TaskStatus(row["status"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            run_after_utc=_stored_time(row["run_after_utc"]),
            lease_until_utc=_stored_time(row["lease_until_utc"]),
            reserved_at_utc=_stored_time(row["reserved_at_utc"]),
            processing_started_utc=_stored_time(row["processing_started_utc"]),
            finished_at_utc=_stored_time(row["finished_at_utc"]),
            locked_by=row["locked_by"],
            error_message=row["error_message"],
            idempotency_key=row["idempotency_key"],
            created_at_utc=_stored_time(row["created_at_utc"]),
            updated_at_utc=_stored_time(row["updated_at_utc"]),
        )
        return task


@lru_cache(maxsize=4096)
def _parse_stored_time(text: str) -> datetime:
    return from_db_text(text)


def _stored_time(text: str | None) -> datetime | None:
    # The same text recurs constantly: one claim writes 'now' into three columns, and a batch
    # of tasks shares its created and run_after times. datetimes are immutable, so sharing is
    # safe, and a cache hit costs a fraction of a parse.
    return None if text is None else _parse_stored_time(text)


def _decode_object(text: str) -> dict[str, Any]:
    # Most tasks have no compatibility constraints; skip the JSON parser for them (a new dict
    # each time, since callers may mutate it).
    return {} if text == "{}" else cast("dict[str, Any]", json.loads(text))


_TASK_TIMES: Final = (
    "run_after_utc",
    "lease_until_utc",
    "reserved_at_utc",
    "processing_started_utc",
    "finished_at_utc",
    "created_at_utc",
    "updated_at_utc",
)
_TASK_FIELDS: Final = frozenset(f.name for f in fields(Task))


@dataclass(frozen=True)
class Worker:
    """One row of ``workers``: a worker's advertised capabilities and its last heartbeat.

    :raises TypeError: a field has the wrong type or capabilities are not a JSON object.
    :raises ValueError: an empty worker id or a naive heartbeat time.
    """

    worker_id: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    heartbeat_utc: datetime | None = None

    def __post_init__(self) -> None:
        check_text(self.worker_id, "Worker.worker_id")
        object.__setattr__(
            self, "capabilities", check_mapping(self.capabilities, "Worker.capabilities")
        )
        check_optional_time(self.heartbeat_utc, "Worker.heartbeat_utc")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the heartbeat as stored UTC text."""
        return {
            "worker_id": self.worker_id,
            "capabilities": self.capabilities,
            "heartbeat_utc": _time_to_dict(self.heartbeat_utc),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Worker:
        """Build a Worker from :meth:`to_dict` output.

        :raises KeyError: ``worker_id`` is missing. :raises ValueError: unknown keys.
        """
        unknown = set(data) - {"worker_id", "capabilities", "heartbeat_utc"}
        if unknown:
            raise ValueError(f"unknown Worker fields: {sorted(unknown)}")
        return cls(
            worker_id=data["worker_id"],
            capabilities=data.get("capabilities", {}),
            heartbeat_utc=_time_from_dict(data.get("heartbeat_utc")),
        )

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> Worker:
        """Build a Worker from a ``workers`` row."""
        return cls(
            worker_id=row["worker_id"],
            capabilities=json.loads(row["capabilities"]),
            heartbeat_utc=_time_from_dict(row["heartbeat_utc"]),
        )


@dataclass(frozen=True)
class TaskLog:
    """One row of ``task_logs``; ``details`` is the decoded JSON value (or None).

    :raises TypeError: a field has the wrong type or details are not JSON-serialisable.
    :raises ValueError: an unknown level (see :data:`LOG_LEVELS`; any case is accepted and
        stored upper-cased, as :meth:`TaskQueue.log` stores it).
    """

    log_id: int | None
    task_id: int
    level: str
    message: str | None = None
    details: Any = None
    at_utc: datetime | None = None

    def __post_init__(self) -> None:
        if self.log_id is not None:
            check_int(self.log_id, "TaskLog.log_id")
        check_int(self.task_id, "TaskLog.task_id")
        object.__setattr__(self, "level", check_log_level(self.level, "TaskLog.level"))
        if self.message is not None:
            check_str(self.message, "TaskLog.message")
        to_json(self.details, "TaskLog.details")
        check_optional_time(self.at_utc, "TaskLog.at_utc")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``at_utc`` as stored UTC text."""
        return {
            "log_id": self.log_id,
            "task_id": self.task_id,
            "level": self.level,
            "message": self.message,
            "details": self.details,
            "at_utc": _time_to_dict(self.at_utc),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskLog:
        """Build a TaskLog from :meth:`to_dict` output. :raises ValueError: unknown keys."""
        unknown = set(data) - {"log_id", "task_id", "level", "message", "details", "at_utc"}
        if unknown:
            raise ValueError(f"unknown TaskLog fields: {sorted(unknown)}")
        values = dict(data)
        values.setdefault("log_id", None)
        values["at_utc"] = _time_from_dict(values.get("at_utc"))
        return cls(**values)

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> TaskLog:
        """Build a TaskLog from a ``task_logs`` row."""
        return cls(
            log_id=row["log_id"],
            task_id=row["task_id"],
            level=row["level"],
            message=row["message"],
            details=_loads(row["details"]),
            at_utc=_time_from_dict(row["at_utc"]),
        )
