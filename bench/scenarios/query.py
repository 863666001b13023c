"""query: claim and count latency at growing backlogs; every claim must seek its index.

The backlog is tasks of type ``bench`` for region ``eu``. Besides the plain claim of an ``eu``
worker (``default``) it times the claims that used to scan the backlog: a task type nothing has
(``rare_type``), a region nothing has (``region_mismatch``), both at once, and every claim
strategy. The cases take turns claim by claim, so load from elsewhere hits them alike and their
ratios to ``default`` are fair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from bench.baseline_sql import bulk_load
from bench.results import Latency
from bench.scenarios._common import create_database
from bench.stats import NS_PER_MS, latency_ms
from queue_core import QueueDatabase, TaskQueue, claiming, sql
from queue_core.timestamps import to_db_text, utc_now

if TYPE_CHECKING:
    from bench.context import ScenarioContext

REGION: Final = "eu"
CLAIM_INDEX = "ix_task_queued_region"
TYPED_CLAIM_INDEX = "ix_task_queued_type_region"
BASELINE_CASE: Final = "default"
FILTER_CASES: Final[dict[str, dict[str, Any]]] = {
    "rare_type": {"types": ["rare"], "region": REGION},
    "region_mismatch": {"region": "asia"},
    "rare_type_region_mismatch": {"types": ["rare"], "region": "asia"},
}
STRATEGY_CASES: Final[dict[str, dict[str, Any]]] = {
    strategy: {"region": REGION, "strategy": strategy}
    for strategy in ("fifo", "lifo", "weighted_random")
}
CASES: Final[dict[str, dict[str, Any]]] = {
    BASELINE_CASE: {"region": REGION},
    **FILTER_CASES,
    **STRATEGY_CASES,
}
"""Every timed claim: the name of the case and the keyword arguments of ``TaskQueue.claim``."""
RATIO_GOAL: Final = 2.0
"""A filtered claim or another strategy may cost at most this many default claims."""


@dataclass(frozen=True)
class Params:
    backlogs: tuple[int, ...]
    claim_repetitions: int
    count_repetitions: int
    pad_bytes: int


@dataclass(frozen=True)
class Point:
    """One backlog size. ``count_ms`` is ``TaskQueue.counts()``; ``count_queued_ms`` is
    ``SELECT count(*) ... WHERE status='queued'``; ``claim_samples_ms`` are the raw claims of
    ``default``. ``claims_ms`` has every case of :data:`CASES`, ``claim_ratio`` each case's p50
    over the ``default`` p50; ``claim_plan``/``claim_typed_plan`` are the plans of the claim's
    read without and with a type filter."""

    backlog: int
    load_s: float
    claim_ms: Latency
    count_ms: Latency
    count_queued_ms: Latency
    claim_samples_ms: tuple[float, ...]
    claim_plan: tuple[str, ...]
    count_plan: tuple[str, ...]
    claim_uses_index: bool
    claims_ms: dict[str, Latency] = field(default_factory=dict)
    claim_ratio: dict[str, float | None] = field(default_factory=dict)
    claim_typed_plan: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """``claim_p50_growth``: claim p50 at the largest backlog over p50 at the smallest; the
    ``*_by_backlog`` maps are keyed by the backlog as text. ``filtered_claim_max_ratio`` and
    ``strategy_claim_max_ratio`` are the worst ``claim_ratio`` over the backlogs, for the
    filtered cases and for the other strategies; the goal is ``claim_ratio_goal`` (2.0)."""

    claim_p50_growth: float | None
    claim_p50_ms_by_backlog: dict[str, float | None]
    count_p50_ms_by_backlog: dict[str, float | None]
    claim_uses_index: bool
    claim_p50_growth_by_case: dict[str, float | None] = field(default_factory=dict)
    filtered_claim_max_ratio: float | None = None
    strategy_claim_max_ratio: float | None = None
    claim_ratio_goal: float = RATIO_GOAL
    filtered_and_strategies_within_goal: bool | None = None


@dataclass(frozen=True)
class Result:
    summary: Summary
    series: tuple[Point, ...]


def plans(db: QueueDatabase) -> dict[str, list[str]]:
    """The ``EXPLAIN QUERY PLAN`` details of the claim's read (one arm without, one with a type
    filter) and of the status count."""
    now = to_db_text(utc_now())
    out: dict[str, list[str]] = {}
    arms = (("claim", {"region": REGION}), ("claim_typed", {"type": "x", "region": REGION}))
    for label, arm in arms:
        query = claiming.statement("claim_due_in_order", "type" in arm)
        params = {**arm, "now": now, "limit": 1}
        out[label] = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    count = sql.queries()["count_by_status"]
    out["count"] = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {count}")]
    return out


def _time_cases(queue: TaskQueue, repetitions: int) -> dict[str, list[int]]:
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {name: [] for name in CASES}
    for _ in range(repetitions):
        for name, kwargs in CASES.items():
            t0 = clock()
            tasks = queue.claim("q", **kwargs)
            samples[name].append(clock() - t0)
            for task in tasks:
                queue.complete(task.id, "q")
    return samples


def run(context: ScenarioContext[Params]) -> Result:
    params = context.params
    path = context.new_db_path("query")
    create_database(path)
    loaded = 0
    series: list[Point] = []
    for backlog in sorted(params.backlogs):
        t0 = time.perf_counter()
        bulk_load(path, loaded, backlog - loaded, pad_bytes=params.pad_bytes, region=REGION)
        load_s = time.perf_counter() - t0
        loaded = backlog
        clock = time.perf_counter_ns
        count_ns: list[int] = []
        queued_ns: list[int] = []
        with QueueDatabase(path) as db:
            queue = TaskQueue(db)
            plan = plans(db)
            _time_cases(queue, 1)  # warm the caches
            cases_ns = _time_cases(queue, params.claim_repetitions)
            for _ in range(params.count_repetitions):
                t_count = clock()
                queue.counts()
                count_ns.append(clock() - t_count)
                t_queued = clock()
                db.execute("SELECT count(*) FROM task_queue WHERE status = 'queued'").fetchall()
                queued_ns.append(clock() - t_queued)
        uses_index = any(CLAIM_INDEX in line for line in plan["claim"]) and any(
            TYPED_CLAIM_INDEX in line for line in plan["claim_typed"]
        )
        context.check(
            f"claim_uses_index_{backlog}",
            uses_index,
            f"claim plans at {backlog}: {' | '.join(plan['claim'] + plan['claim_typed'])}",
        )
        claims = {name: latency_ms(ns) for name, ns in cases_ns.items()}
        base = claims[BASELINE_CASE].p50
        point = Point(
            backlog=backlog,
            load_s=round(load_s, 3),
            claim_ms=claims[BASELINE_CASE],
            count_ms=latency_ms(count_ns),
            count_queued_ms=latency_ms(queued_ns),
            claim_samples_ms=tuple(round(ns / NS_PER_MS, 4) for ns in cases_ns[BASELINE_CASE]),
            claim_plan=tuple(plan["claim"]),
            count_plan=tuple(plan["count"]),
            claim_uses_index=uses_index,
            claims_ms=claims,
            claim_ratio={
                name: round(c.p50 / base, 3) if base and c.p50 else None
                for name, c in claims.items()
            },
            claim_typed_plan=tuple(plan["claim_typed"]),
        )
        series.append(point)
        ratios = ", ".join(f"{name} {ratio}x" for name, ratio in point.claim_ratio.items())
        context.log(
            f"backlog {backlog:>8}: loaded in {load_s:.1f} s, claim p50 {base} ms "
            f"p99 {point.claim_ms.p99} ms ({ratios}), counts() p50 "
            f"{point.count_ms.p50} ms, index used {uses_index}"
        )
    return Result(_summary(series), tuple(series))


def _summary(series: list[Point]) -> Summary:
    def worst(names: Any) -> float | None:
        ratios = [r for p in series for n in names if (r := p.claim_ratio.get(n)) is not None]
        return max(ratios) if ratios else None

    def growth(name: str) -> float | None:
        first, last = series[0].claims_ms[name].p50, series[-1].claims_ms[name].p50
        return round(last / first, 3) if first and last else None

    filtered, strategies = worst(FILTER_CASES), worst(STRATEGY_CASES)
    return Summary(
        claim_p50_growth=growth(BASELINE_CASE),
        claim_p50_ms_by_backlog={str(p.backlog): p.claim_ms.p50 for p in series},
        count_p50_ms_by_backlog={str(p.backlog): p.count_ms.p50 for p in series},
        claim_uses_index=all(p.claim_uses_index for p in series),
        claim_p50_growth_by_case={name: growth(name) for name in CASES},
        filtered_claim_max_ratio=filtered,
        strategy_claim_max_ratio=strategies,
        filtered_and_strategies_within_goal=(
            None
            if filtered is None or strategies is None
            else max(filtered, strategies) <= RATIO_GOAL
        ),
    )
