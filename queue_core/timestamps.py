"""The one timestamp format the queue stores: UTC text ``YYYY-MM-DD HH:MM:SS.fff``.

SQLite's ``datetime('now')`` writes ``YYYY-MM-DD HH:MM:SS``; this module writes the same shape
with milliseconds appended. Both are UTC, use a space separator and carry no zone suffix, so
comparing the text gives the same order as comparing the times (a value without ``.fff`` is a
prefix of, and therefore sorts before, the same second with milliseconds). An ISO string with a
``T`` or ``+00:00`` would break that: ``' '`` sorts before ``'T'``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]
"""A function returning the current time as an aware datetime. The seam tests use for time."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default :data:`Clock`)."""
    return datetime.now(timezone.utc)


def to_db_text(moment: datetime) -> str:
    """Format ``moment`` as ``YYYY-MM-DD HH:MM:SS.fff`` in UTC.

    :raises ValueError: if ``moment`` is naive; a naive time has no defined UTC value.
    """
    if moment.tzinfo is not timezone.utc:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"timestamp {moment!r} is naive; pass an aware datetime")
        moment = moment.astimezone(timezone.utc)
    # isoformat is C and twice as fast as strftime; every enqueue and claim calls this. The
    # first 23 characters are 'YYYY-MM-DD HH:MM:SS.fff', dropping the '+00:00' suffix.
    return moment.isoformat(" ", "milliseconds")[:23]


def from_db_text(text: str) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS[.fff]`` (UTC) into an aware datetime.

    :raises ValueError: if ``text`` has another shape.
    """
    # Claims parse several of these per task, so this stays on fromisoformat's C fast path.
    # The shape check keeps out the 'T' separator and zone suffixes it would also accept.
    if len(text) not in (19, 23, 26) or text[10] != " " or (len(text) > 19 and text[19] != "."):
        raise ValueError(f"timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS[.fff]'")
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS[.fff]'") from None


def optional_from_db_text(text: str | None) -> datetime | None:
    """Like :func:`from_db_text`, passing ``None`` (a NULL column) through."""
    return None if text is None else from_db_text(text)
