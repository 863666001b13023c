"""The specification's five success metrics as PASS / FAIL / NOT_MEASURED, and the table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import (
    BUSY_RATE_PCT,
    CONNECT_MS,
    COVERAGE_PCT,
    FAIL,
    INIT_MS,
    NOT_MEASURED,
    PASS,
    TX_PER_S,
    Correctness,
    MetricVerdict,
    Op,
    ScenarioRun,
    Verdict,
    fmt_number,
)
from bench.scenarios import busy, claim, connect, init

COVERAGE_SOURCE = "coverage"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its limit, and how to read its value from its scenario's typed result."""

    id: str
    label: str
    unit: str
    op: Op
    limit: float
    source: str  # the scenario, or "coverage"
    statistic: str
    value: Callable[[Any], float | None] = lambda result: None


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        INIT_MS,
        "Database initialisation",
        "ms",
        "<",
        100.0,
        "init",
        "median of {n}",
        lambda r: _as(r, init.Result).summary.median_ms,
    ),
    MetricSpec(
        CONNECT_MS,
        "Connection overhead",
        "ms",
        "<",
        10.0,
        "connect",
        "median of {n}",
        lambda r: _as(r, connect.Result).summary.median_ms,
    ),
    MetricSpec(
        TX_PER_S,
        "Transaction throughput",
        "/s",
        ">",
        100.0,
        "claim",
        "lowest tx/s of the claim sweep",
        lambda r: _as(r, claim.Result).summary.min_tx_per_s,
    ),
    MetricSpec(
        BUSY_RATE_PCT,
        "SQLITE_BUSY error rate",
        "%",
        "<",
        1.0,
        "busy",
        f"highest busy rate at busy_timeout {busy.GATED_TIMEOUT_MS} ms",
        lambda r: _percent(_as(r, busy.Result).summary.max_busy_rate_5000),
    ),
    MetricSpec(
        COVERAGE_PCT,
        "Test coverage",
        "%",
        ">",
        80.0,
        COVERAGE_SOURCE,
        "totals.percent_covered of reports/coverage.json",
    ),
)


def _as(result: object, kind: type[Any]) -> Any:
    if not isinstance(result, kind):
        raise TypeError(f"expected {kind.__qualname__}, got {type(result).__qualname__}")
    return result


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


def read_coverage(path: Path | None) -> float | None:
    """``totals.percent_covered`` of a coverage.py JSON report, or None if absent/unreadable."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return float(data["totals"]["percent_covered"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _statistic(spec: MetricSpec, result: object) -> str:
    summary = getattr(result, "summary", None)
    return spec.statistic.format(n=getattr(summary, "n", "?"))


def evaluate(
    scenarios: Mapping[str, ScenarioRun], coverage_pct: float | None
) -> tuple[MetricVerdict, ...]:
    """The ``metrics`` of results.json.

    A metric whose scenario did not run (or gave no value), or coverage without data, is
    NOT_MEASURED; one whose scenario failed with an error is FAIL with a null value.
    """
    verdicts: list[MetricVerdict] = []
    for spec in METRICS:
        value: float | None
        errored = False
        if spec.source == COVERAGE_SOURCE:
            value, statistic = coverage_pct, spec.statistic
        else:
            entry = scenarios.get(spec.source)
            errored = entry is not None and entry.status == "error"
            if entry is None or not entry.ok:
                value, statistic = None, "scenario not run"
            else:
                value, statistic = spec.value(entry.result), _statistic(spec, entry.result)
        if value is not None and math.isnan(value):
            value = None
        status: Verdict
        if errored:
            status, statistic = FAIL, f"scenario {spec.source} failed"
        elif value is None:
            status = NOT_MEASURED
        else:
            ok = value < spec.limit if spec.op == "<" else value > spec.limit
            status = PASS if ok else FAIL
        verdicts.append(
            MetricVerdict(
                id=spec.id,
                label=spec.label,
                value=None if value is None else round(float(value), 4),
                unit=spec.unit,
                limit=spec.limit,
                op=spec.op,
                statistic=statistic,
                status=status,
                source=spec.source,
            )
        )
    return tuple(verdicts)


def passed(metrics: Sequence[MetricVerdict], correctness_ok: bool) -> bool:
    """Every metric PASS or NOT_MEASURED, and no task lost or duplicated."""
    return correctness_ok and all(m.status != FAIL for m in metrics)


def table(metrics: Sequence[MetricVerdict], correctness: Correctness | None = None) -> str:
    """The metric table a person reads at the end of a run."""
    rows = [("metric", "label", "value", "limit", "status")]
    for m in metrics:
        value = "-" if m.value is None else fmt_number(m.value, m.unit)
        rows.append((m.id, m.label, value, f"{m.op} {fmt_number(m.limit, m.unit)}", m.status))
    if correctness is not None:
        failed = [c for c in correctness.checks if not c.ok]
        total = len(correctness.checks)
        rows.append(
            (
                "correctness",
                "exactly once, no task lost",
                f"{total - len(failed)}/{total} checks ok",
                "all",
                PASS if correctness.ok else FAIL,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
