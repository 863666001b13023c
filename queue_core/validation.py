"""The rules for task, worker and log fields, shared by TaskQueue and the models.

Each kind of field has one function here, and both the queue's arguments (``enqueue``,
``claim``, ``log``...) and the dataclasses of :mod:`queue_core.models` call it, so the same bad
value raises the same exception wherever it is given. The kinds of mistake map to two
exception types, as in Python's own APIs:

- a value of the wrong type (an int where text belongs, a naive time's ``str``, a set in a
  payload, a region that is not text) raises ``TypeError``;
- a value of the right type that breaks the rule (empty or blank text, an integer beyond
  SQLite's 64 bits, ``max_attempts < 1``, a naive datetime, NaN in JSON, an unknown log level)
  raises ``ValueError``.

These run before anything touches the database. ``enqueue_many`` calls them for every task of
a batch, so they stay small and free of allocations on the accepting path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, cast

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

LOG_LEVELS: Final = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
"""The log levels a task log line may have (those of the ``logging`` module)."""

# json.dumps builds a new encoder per call when given options; enqueue is a hot path.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_text(value: Any, what: str) -> None:
    """Text with at least one non-whitespace character (type, worker id, key, region).

    :raises TypeError: ``value`` is not a ``str``.
    :raises ValueError: ``value`` is empty or only whitespace.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    # isspace() is the same test as "nothing left after strip()" without building a string.
    if not value or value.isspace():
        raise ValueError(f"{what} must not be empty")


def check_optional_text(value: Any, what: str) -> None:
    """Like :func:`check_text`, with ``None`` allowed (no idempotency key, no holder)."""
    if value is not None:
        check_text(value, what)


def check_str(value: Any, what: str) -> None:
    """Free text that may be empty (an error or log message).

    :raises TypeError: ``value`` is not a ``str``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")


def check_int(value: Any, what: str) -> None:
    """An integer SQLite can store (ids, priority); ``bool`` is refused.

    :raises TypeError: ``value`` is not an ``int``, or is a ``bool``.
    :raises ValueError: ``value`` does not fit SQLite's signed 64-bit integer.
    """
    # bool is an int subclass, but True is never a sensible priority or task id.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{what} {value} does not fit SQLite's 64-bit integer")


def check_count(value: Any, what: str, minimum: int) -> None:
    """An integer of at least ``minimum`` (``attempts >= 0``, ``max_attempts >= 1``).

    :raises TypeError: as for :func:`check_int`.
    :raises ValueError: ``value`` is below ``minimum`` or beyond 64 bits.
    """
    check_int(value, what)
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, not {value}")


def type_names(types: Any) -> list[str]:
    """A non-empty collection of task type names (a claim's ``types`` filter), as a list.

    :raises TypeError: a single string instead of a collection, or a name that is not text.
    :raises ValueError: no names, or an empty name.
    """
    if isinstance(types, (str, bytes)):
        raise TypeError("types must be a collection of type names, not a single string")
    names = list(types)
    for name in names:
        check_text(name, "each of types")
    if not names:
        raise ValueError("types must name at least one task type (or be None for any)")
    return names


def check_time(value: Any, what: str) -> None:
    """An aware ``datetime`` (any zone; the queue stores it as UTC text).

    :raises TypeError: ``value`` is not a ``datetime`` (stored text is not accepted here).
    :raises ValueError: ``value`` is naive: it has no defined UTC value.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value!r} is naive; pass an aware datetime (UTC)")


def check_optional_time(value: Any, what: str) -> None:
    """Like :func:`check_time`, with ``None`` allowed (a time that has not happened yet)."""
    if value is not None:
        check_time(value, what)


def check_mapping(value: Any, what: str) -> dict[str, Any]:
    """A JSON object (a worker's capabilities); returns it as a ``dict``.

    :raises TypeError: ``value`` is not a mapping, or holds what JSON cannot represent.
    :raises ValueError: ``value`` holds NaN/infinity or nests too deeply.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    result = value if type(value) is dict else dict(value)
    to_json(result, what)
    return result


def compatibility_json(value: Any, what: str) -> str:
    """Check a task's ``compatibility`` and return its JSON text.

    A JSON object; ``region``, when present and not null, must be text, because the generated
    ``region`` column and :meth:`TaskQueue.claim` compare it with a worker's region.

    :raises TypeError: not a mapping, not JSON, or a region that is not text.
    :raises ValueError: NaN/infinity inside.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    region = value.get("region")
    if region is not None and not isinstance(region, str):
        raise TypeError(f"{what}['region'] must be str, not {type(region).__name__}")
    return to_json(value if type(value) is dict else dict(value), what)


def check_compatibility(value: Any, what: str) -> dict[str, Any]:
    """The rule of :func:`compatibility_json`, returning the value as a ``dict``."""
    compatibility_json(value, what)
    return cast("dict[str, Any]", value if type(value) is dict else dict(value))


def check_log_level(value: Any, what: str) -> str:
    """A log level, in any case; returns it upper-cased (see :data:`LOG_LEVELS`).

    :raises TypeError: ``value`` is not a ``str``.
    :raises ValueError: ``value`` is not one of the levels.
    """
    check_str(value, what)
    level = cast("str", value).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{what} {value!r} is not one of {sorted(LOG_LEVELS)}")
    return level


MAX_SECONDS: Final = 100 * 366 * 24 * 3600.0
"""The longest delay, lease or age the queue accepts: 100 years. Far longer ones overflow
``datetime`` and SQLite's date functions (which then return NULL)."""


def seconds(value: Any, what: str) -> float:
    """A finite number of seconds, at most :data:`MAX_SECONDS` either way.

    :raises TypeError: not an ``int`` or ``float`` (or a ``bool``).
    :raises ValueError: NaN, infinite, or longer than 100 years.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, not {value}")
    if abs(value) > MAX_SECONDS:
        raise ValueError(f"{what} must be at most 100 years ({MAX_SECONDS:.0f} s), not {value}")
    return float(value)


def duration(value: Any, what: str, *, allow_zero: bool = False) -> timedelta:
    """A ``timedelta`` above zero (or zero with ``allow_zero``), at most 100 years.

    :raises TypeError: not a ``timedelta``.
    :raises ValueError: negative, zero when not allowed, or longer than 100 years.
    """
    if not isinstance(value, timedelta):
        raise TypeError(f"{what} must be a timedelta, not {type(value).__name__}")
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        raise ValueError(
            f"{what} must be {'not negative' if allow_zero else 'positive'}, not {value}"
        )
    if value > timedelta(seconds=MAX_SECONDS):
        raise ValueError(f"{what} must be at most 100 years, not {value}")
    return value


def positive_seconds(value: Any, what: str) -> float:
    """Like :func:`seconds`, and more than zero. :raises ValueError: zero or negative."""
    number = seconds(value, what)
    if number <= 0:
        raise ValueError(f"{what} must be positive, not {value}")
    return number


def non_negative_seconds(value: Any, what: str) -> float:
    """Like :func:`seconds`, and not below zero. :raises ValueError: negative."""
    number = seconds(value, what)
    if number < 0:
        raise ValueError(f"{what} must not be negative, not {value}")
    return number


def to_json(value: Any, what: str) -> str:
    """Serialise ``value`` to compact JSON text: the rule for payloads, details and objects.

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
