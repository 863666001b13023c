"""Scenario settings per profile: tiny (tests), quick (CI, < 5 min), default (< 15 min).

Each scenario's settings are its typed ``Params`` record (see ``bench/scenarios/``), so they
reach the worker processes as they are written here, without re-casting.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.scenarios import busy, checkpoint, claim, connect, init, insert, query, soak, worker

_CHECKPOINT_COMMON = checkpoint.Params(
    rows_per_commit=10,
    pad_bytes=200,
    rate_per_s=300,
    wal_sample_s=0.05,
    checkpoint_interval_s=0.25,
    truncate_above_bytes=16 * 1024 * 1024,
    checkpointer_busy_ms=100,
    explicit_busy_ms=500,
    duration_s=4.0,
)
_QUICK_QUERY = query.Params(
    backlogs=(10_000, 100_000, 1_000_000),
    claim_repetitions=200,
    count_repetitions=5,
    pad_bytes=32,
)
_QUICK_WORKER = worker.Params(
    executors=(1, 2, 4),
    handlers=("noop", "sleep_1ms"),
    drain_tasks_noop=20_000,
    drain_tasks_sleep=3000,
    pad_bytes=200,
    load_fraction=0.5,
    pickup_producers=1,  # two producers measured worse: they also wait on each other's lock
    pickup_s=5.0,
    idle_s=10.0,
    kill_tasks=2000,
    kills=5,
    kill_every_s=0.1,
)
_SOAK = soak.Params(
    duration_s=30.0,
    producers=2,
    workers=2,
    rate_per_s=100.0,
    pad_bytes=200,
    retention_s=5.0,
    prune_interval_s=2.0,
    backup_at_fraction=0.4,
    sample_interval_s=0.25,
)
_INSERT = insert.Params(
    processes=(1, 2, 4, 8), single_tasks=1000, batch_tasks=2000, batch_size=100, pad_bytes=200
)

PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "init": init.Params(repetitions=20),
        "connect": connect.Params(repetitions=100),
        "insert": insert.Params(
            processes=(1, 2), single_tasks=60, batch_tasks=200, batch_size=50, pad_bytes=64
        ),
        "claim": claim.Params(processes=(1, 2), backlog=100, pad_bytes=64),
        "busy": busy.Params(
            processes=(2,), busy_timeouts_ms=(0, 5000), duration_s=0.5, backlog=50, pad_bytes=64
        ),
        "checkpoint": dataclasses.replace(
            _CHECKPOINT_COMMON,
            duration_s=0.5,
            variants=("autocheckpoint", "background_reader"),
            explicit_busy_ms=100,
        ),
        "query": query.Params(
            backlogs=(500, 2000), claim_repetitions=20, count_repetitions=3, pad_bytes=32
        ),
        "worker": dataclasses.replace(
            _QUICK_WORKER,
            executors=(1, 2),
            drain_tasks_noop=200,
            drain_tasks_sleep=100,
            pad_bytes=64,
            load_fraction=0.1,
            pickup_producers=1,
            pickup_s=1.0,
            idle_s=1.0,
            kill_tasks=200,
            kills=2,
            kill_every_s=0.05,
        ),
        # Too short for the gate to mean anything: its verdicts are logged, not checked.
        "soak": dataclasses.replace(
            _SOAK,
            duration_s=3.0,
            producers=1,
            workers=1,
            rate_per_s=50.0,
            retention_s=0.5,
            prune_interval_s=0.5,
            sample_interval_s=0.1,
            windows=6,
            gate=False,
        ),
    },
    "quick": {
        "init": init.Params(repetitions=20),
        "connect": connect.Params(repetitions=100),
        "insert": _INSERT,
        "claim": claim.Params(processes=(1, 2, 4, 8), backlog=2000, pad_bytes=200),
        "busy": busy.Params(
            processes=(2, 8, 16),
            busy_timeouts_ms=(0, 50, 5000),
            duration_s=2.0,
            backlog=500,
            pad_bytes=200,
        ),
        "checkpoint": _CHECKPOINT_COMMON,
        "query": _QUICK_QUERY,
        "worker": _QUICK_WORKER,
        "soak": _SOAK,
    },
    "default": {
        "init": init.Params(repetitions=50),
        "connect": connect.Params(repetitions=300),
        "insert": dataclasses.replace(_INSERT, single_tasks=3000, batch_tasks=10_000),
        "claim": claim.Params(processes=(1, 2, 4, 8), backlog=6000, pad_bytes=200),
        "busy": busy.Params(
            processes=(2, 4, 8, 16),
            busy_timeouts_ms=(0, 50, 5000),
            duration_s=6.0,
            backlog=1000,
            pad_bytes=200,
        ),
        "checkpoint": dataclasses.replace(_CHECKPOINT_COMMON, duration_s=15.0),
        "query": dataclasses.replace(_QUICK_QUERY, claim_repetitions=1000, count_repetitions=10),
        "worker": dataclasses.replace(
            _QUICK_WORKER, drain_tasks_noop=40_000, drain_tasks_sleep=5000, pickup_s=10.0
        ),
        "soak": dataclasses.replace(
            _SOAK,
            duration_s=180.0,
            retention_s=20.0,
            prune_interval_s=5.0,
            sample_interval_s=0.5,
            windows=60,
        ),
    },
}
"""Profile name -> scenario name -> that scenario's ``Params``."""


POSTGRES_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "insert": {"single_tasks": 500},
        "claim": {"backlog": 1000},
        "worker": {"drain_tasks_noop": 4000, "drain_tasks_sleep": 1500, "kill_tasks": 1000},
    },
    "default": {
        "insert": {"single_tasks": 1000, "batch_tasks": 5000},
        "claim": {"backlog": 2000},
        "worker": {"drain_tasks_noop": 8000, "drain_tasks_sleep": 2000, "kill_tasks": 1000},
    },
}
"""Smaller task counts for ``--backend postgres``. The server commits every transaction with
an fsync (its durable defaults), where SQLite in WAL mode with ``synchronous=NORMAL`` does not:
counts sized for SQLite would keep the bare twin (two commits per task) at it for minutes.
Rates are compared, not counts; the process counts, durations and rates stay the same."""


def profile(name: str, backend: str = "sqlite") -> dict[str, Any]:
    """The named profile's params by scenario (records are frozen, so no copy is needed),
    with :data:`POSTGRES_SIZES` applied for ``backend="postgres"``.

    :raises ValueError: no such profile.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    chosen = dict(PROFILES[name])
    if backend == "postgres":
        for scenario, sizes in POSTGRES_SIZES.get(name, {}).items():
            chosen[scenario] = dataclasses.replace(chosen[scenario], **sizes)
    return chosen
