"""Scenario sizes per profile: tiny (tests), quick (CI, < 5 min), default (< 15 min)."""

from __future__ import annotations

import copy
from typing import Any

_CHECKPOINT_COMMON: dict[str, Any] = {
    "rows_per_commit": 10,
    "pad_bytes": 200,
    "rate_per_s": 300,
    "wal_sample_s": 0.05,
    "checkpoint_interval_s": 0.25,
    "truncate_above_bytes": 16 * 1024 * 1024,
    "checkpointer_busy_ms": 100,
    "explicit_busy_ms": 500,
}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "init": {"repetitions": 20},
        "connect": {"repetitions": 100},
        "insert": {
            "processes": [1, 2],
            "single_tasks": 60,
            "batch_tasks": 200,
            "batch_size": 50,
            "pad_bytes": 64,
        },
        "claim": {"processes": [1, 2], "backlog": 100, "pad_bytes": 64},
        "busy": {
            "processes": [2],
            "busy_timeouts_ms": [0, 5000],
            "duration_s": 0.5,
            "backlog": 50,
            "pad_bytes": 64,
        },
        "checkpoint": {
            **_CHECKPOINT_COMMON,
            "duration_s": 0.5,
            "variants": ["autocheckpoint", "background_reader"],
            "explicit_busy_ms": 100,
        },
        "query": {
            "backlogs": [500, 2000],
            "claim_repetitions": 20,
            "count_repetitions": 3,
            "pad_bytes": 32,
        },
        "worker": {
            "executors": [1, 2],
            "handlers": ["noop", "sleep_1ms"],
            "drain_tasks": {"noop": 200, "sleep_1ms": 100},
            "pad_bytes": 64,
            "max_rate_per_s": 200,
            "pickup_s": 1.0,
            "idle_s": 1.0,
            "kill_tasks": 200,
            "kills": 2,
            "kill_every_s": 0.05,
        },
    },
    "quick": {
        "init": {"repetitions": 20},
        "connect": {"repetitions": 100},
        "insert": {
            "processes": [1, 2, 4, 8],
            "single_tasks": 1000,
            "batch_tasks": 2000,
            "batch_size": 100,
            "pad_bytes": 200,
        },
        "claim": {"processes": [1, 2, 4, 8], "backlog": 2000, "pad_bytes": 200},
        "busy": {
            "processes": [2, 8, 16],
            "busy_timeouts_ms": [0, 50, 5000],
            "duration_s": 2.0,
            "backlog": 500,
            "pad_bytes": 200,
        },
        "checkpoint": {**_CHECKPOINT_COMMON, "duration_s": 4.0},
        "query": {
            "backlogs": [10_000, 100_000, 1_000_000],
            "claim_repetitions": 200,
            "count_repetitions": 5,
            "pad_bytes": 32,
        },
        "worker": {
            "executors": [1, 2, 4],
            "handlers": ["noop", "sleep_1ms"],
            "drain_tasks": {"noop": 20000, "sleep_1ms": 3000},
            "pad_bytes": 200,
            "max_rate_per_s": 2000,
            "pickup_s": 5.0,
            "idle_s": 10.0,
            "kill_tasks": 2000,
            "kills": 5,
            "kill_every_s": 0.1,
        },
    },
    "default": {
        "init": {"repetitions": 50},
        "connect": {"repetitions": 300},
        "insert": {
            "processes": [1, 2, 4, 8],
            "single_tasks": 3000,
            "batch_tasks": 10_000,
            "batch_size": 100,
            "pad_bytes": 200,
        },
        "claim": {"processes": [1, 2, 4, 8], "backlog": 6000, "pad_bytes": 200},
        "busy": {
            "processes": [2, 4, 8, 16],
            "busy_timeouts_ms": [0, 50, 5000],
            "duration_s": 6.0,
            "backlog": 1000,
            "pad_bytes": 200,
        },
        "checkpoint": {**_CHECKPOINT_COMMON, "duration_s": 15.0},
        "query": {
            "backlogs": [10_000, 100_000, 1_000_000],
            "claim_repetitions": 1000,
            "count_repetitions": 10,
            "pad_bytes": 32,
        },
        "worker": {
            "executors": [1, 2, 4],
            "handlers": ["noop", "sleep_1ms"],
            "drain_tasks": {"noop": 20000, "sleep_1ms": 5000},
            "pad_bytes": 200,
            "max_rate_per_s": 2000,
            "pickup_s": 10.0,
            "idle_s": 10.0,
            "kill_tasks": 4000,
            "kills": 10,
            "kill_every_s": 0.1,
        },
    },
}


def profile(name: str) -> dict[str, dict[str, Any]]:
    """A deep copy of the named profile's parameters, by scenario."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return copy.deepcopy(PROFILES[name])
