"""Helpers shared by the scenarios."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.workers import Span
from queue_core import QueueDatabase


def create_database(path: Path) -> None:
    """Create the file, WAL and schema in this (the parent) process, before any child starts.

    Processes racing ``PRAGMA journal_mode=WAL`` on a new file get SQLITE_BUSY at once.
    """
    with QueueDatabase(path) as db:
        db.initialize_schema()


def span_seconds(outcomes: Sequence[Span]) -> float:
    """From the first process's start to the last one's end, in seconds."""
    start = min(outcome.start_ns for outcome in outcomes)
    end = max(outcome.end_ns for outcome in outcomes)
    return max(end - start, 1) / 1e9


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 4) if baseline > 0 else None
