"""Task, Worker and TaskLog: validated dataclasses for the rows of the three tables.

Each model checks its fields on construction (types, status values, JSON-serialisable data),
round-trips through ``to_dict``/``from_dict`` (JSON-ready: timestamps as the stored UTC text) and
is built from a database row with ``from_row``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Final, cast

from queue_core.timestamps import from_db_text, to_db_text


class TaskStatus(str, Enum):
    """Where a task is in its life. These five values are the only ones the queue writes.

    Only ``queued`` tasks are ever claimed. ``failed`` and ``cancelled`` tasks go back to
    ``queued`` only when an operator retries them (:meth:`TaskQueue.retry`).
    """

    QUEUED = "queued"  #: waiting until ``run_after_utc`` for a worker to claim it
    PROCESSING = "processing"  #: leased to ``locked_by`` until ``lease_until_utc``
    COMPLETED = "completed"  #: finished successfully; final
    FAILED = "failed"  #: out of attempts, or failed for good; final unless retried
    CANCELLED = "cancelled"  #: withdrawn by an operator (schema version 4); final unless retried

    @property
    def is_final(self) -> bool:
        """True for statuses no worker moves a task out of."""
        return self in _FINAL_STATUSES

    @property
    def is_live(self) -> bool:
        """True for statuses of tasks still to be done (queued or being processed)."""
        return not self.is_final


_FINAL_STATUSES: Final = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


# json.dumps builds a new encoder per call when given options; enqueue is a hot path.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

LOG_LEVELS: Final = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
"""The levels :class:`TaskLog` accepts (those of the ``logging`` module)."""


def to_json(value: Any, what: str) -> str:
    """Serialise ``value`` to compact JSON text.

    NaN and infinity are refused because they are not JSON and SQLite's JSON functions reject
    them.

    :raises TypeError: ``value`` holds something JSON cannot represent (a set, bytes, an object).
    :raises ValueError: ``value`` holds NaN/infinity, a circular reference, or nests too deeply.
    """
    try:
        if _FAST_ENCODE is not None:
            return "".join(_FAST_ENCODE(value, 0))
        return _ENCODER.encode(value)
    except TypeError as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _fast_encoder() -> Callable[[Any, int], Sequence[str]] | None:
    """One reusable C encoder, or None where the C accelerator is missing or differs.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which is half the cost of
    encoding a small payload; enqueue_many encodes thousands per batch. The private factory is
    checked against the public encoder before it is trusted. Without circular-reference markers
    a cycle ends in RecursionError, which :func:`to_json` reports as ValueError.
    """
    factory = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if factory is None or basestring is None:  # pragma: no cover - CPython has both
        return None
    sample = {"a": [1, 2.5, "é\n", None, True], "b": {"c": -3}}
    try:
        encode = factory(None, _refuse, basestring, None, ":", ",", False, False, False)
        if "".join(encode(sample, 0)) != _ENCODER.encode(sample):  # pragma: no cover
            return None
        "".join(encode(float("nan"), 0))
    except ValueError:  # allow_nan=False took effect: the signature is the one we expect
        return cast("Callable[[Any, int], Sequence[str]]", encode)
    except Exception:  # pragma: no cover - a future signature change
        return None
    return None  # pragma: no cover - NaN was accepted: wrong argument order


_FAST_ENCODE: Final = _fast_encoder()


def _check_json(value: Any, what: str) -> None:
    to_json(value, what)


def _check_type(value: Any, expected: type | tuple[type, ...], what: str) -> None:
    # bool is an int subclass, but True is never a sensible priority or attempt count.
    if isinstance(value, bool) and expected in (int, (int,)):
        raise TypeError(f"{what} must be int, not bool")
    if not isinstance(value, expected):
        names = (
            expected.__name__
            if isinstance(expected, type)
            else " or ".join(t.__name__ for t in expected)
        )
        raise TypeError(f"{what} must be {names}, not {type(value).__name__}")


def _check_text(value: Any, what: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    _check_type(value, str, what)
    if not value.strip():
        raise ValueError(f"{what} must not be empty")


def _check_time(value: Any, what: str, *, optional: bool = True) -> None:
    if optional and value is None:
        return
    _check_type(value, datetime, what)
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")


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

    :raises TypeError: a field has the wrong type, or payload/compatibility are not JSON.
    :raises ValueError: an empty type, an unknown status, negative attempts, or a region that
        is not text.
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
        _check_type(self.id, int, "Task.id")
        _check_text(self.type, "Task.type")
        _check_json(self.payload, "Task.payload")
        _check_type(self.priority, int, "Task.priority")
        _check_type(self.compatibility, dict, "Task.compatibility")
        _check_json(self.compatibility, "Task.compatibility")
        region = self.compatibility.get("region")
        if region is not None and not isinstance(region, str):
            raise ValueError(f"Task.compatibility['region'] must be text, not {region!r}")
        try:
            object.__setattr__(self, "status", TaskStatus(self.status))
        except ValueError:
            known = ", ".join(s.value for s in TaskStatus)
            raise ValueError(f"Task.status {self.status!r} is not one of {known}") from None
        for name in ("attempts", "max_attempts"):
            value = getattr(self, name)
            _check_type(value, int, f"Task.{name}")
            if value < 0:
                raise ValueError(f"Task.{name} must not be negative")
        for name in _TASK_TIMES:
            _check_time(getattr(self, name), f"Task.{name}")
        _check_text(self.locked_by, "Task.locked_by", optional=True)
        if self.error_message is not None:
            _check_type(self.error_message, str, "Task.error_message")
        _check_text(self.idempotency_key, "Task.idempotency_key", optional=True)

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
        """Build a Task from a ``task_queue`` row selected with :data:`TASK_COLUMNS`.

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

TASK_COLUMNS: Final = (
    "id, type, priority, payload, compatibility, status, attempts, max_attempts, "
    "run_after_utc, lease_until_utc, reserved_at_utc, processing_started_utc, finished_at_utc, "
    "locked_by, error_message, idempotency_key, created_at_utc, updated_at_utc"
)
"""The stored (not generated) columns of ``task_queue``: what :meth:`Task.from_row` reads."""


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
        _check_text(self.worker_id, "Worker.worker_id")
        _check_type(self.capabilities, dict, "Worker.capabilities")
        _check_json(self.capabilities, "Worker.capabilities")
        _check_time(self.heartbeat_utc, "Worker.heartbeat_utc")

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
    :raises ValueError: an unknown level (see :data:`LOG_LEVELS`).
    """

    log_id: int | None
    task_id: int
    level: str
    message: str | None = None
    details: Any = None
    at_utc: datetime | None = None

    def __post_init__(self) -> None:
        if self.log_id is not None:
            _check_type(self.log_id, int, "TaskLog.log_id")
        _check_type(self.task_id, int, "TaskLog.task_id")
        _check_type(self.level, str, "TaskLog.level")
        if self.level not in LOG_LEVELS:
            raise ValueError(f"TaskLog.level {self.level!r} is not one of {sorted(LOG_LEVELS)}")
        if self.message is not None:
            _check_type(self.message, str, "TaskLog.message")
        _check_json(self.details, "TaskLog.details")
        _check_time(self.at_utc, "TaskLog.at_utc")

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
