"""The specification's five success metrics as PASS / FAIL / NOT_MEASURED, and the table."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "NOT_MEASURED"

# id, label, unit, op, limit, source scenario
METRICS: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("init_ms", "Database initialisation", "ms", "<", 100.0, "init"),
    ("connect_ms", "Connection overhead", "ms", "<", 10.0, "connect"),
    ("tx_per_s", "Transaction throughput", "/s", ">", 100.0, "claim"),
    ("busy_rate_pct", "SQLITE_BUSY error rate", "%", "<", 1.0, "busy"),
    ("coverage_pct", "Test coverage", "%", ">", 80.0, "coverage"),
)


def read_coverage(path: Path | None) -> float | None:
    """``totals.percent_covered`` of a coverage.py JSON report, or None if absent/unreadable."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return float(data["totals"]["percent_covered"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _value(metric_id: str, scenario: Mapping[str, Any]) -> tuple[float | None, str]:
    summary = scenario.get("summary") or {}
    if metric_id == "init_ms":
        n = summary.get("n")
        return summary.get("median_ms"), f"median of {n}"
    if metric_id == "connect_ms":
        n = summary.get("n")
        return summary.get("median_ms"), f"median of {n}"
    if metric_id == "tx_per_s":
        return summary.get("min_tx_per_s"), "lowest tx/s of the claim sweep"
    rate = summary.get("max_busy_rate_5000")
    statistic = "highest busy rate at busy_timeout 5000 ms"
    return (None if rate is None else float(rate) * 100.0), statistic


def evaluate(
    scenarios: Mapping[str, Mapping[str, Any]], coverage_pct: float | None
) -> list[dict[str, Any]]:
    """The ``metrics`` list of results.json.

    A metric whose scenario did not run (or gave no value), or coverage without data, is
    NOT_MEASURED; one whose scenario failed with an error is FAIL with a null value.
    """
    metrics: list[dict[str, Any]] = []
    for metric_id, label, unit, op, limit, source in METRICS:
        value: float | None
        if source == "coverage":
            value, statistic = coverage_pct, "totals.percent_covered of reports/coverage.json"
            errored = False
        else:
            scenario = scenarios.get(source)
            errored = scenario is not None and scenario.get("status") == "error"
            value, statistic = (None, "") if scenario is None else _value(metric_id, scenario)
            if not statistic:
                statistic = "scenario not run"
        if value is not None and (not isinstance(value, (int, float)) or math.isnan(value)):
            value = None
        if errored:
            status = FAIL
            statistic = f"scenario {source} failed"
        elif value is None:
            status = NOT_MEASURED
        else:
            ok = value < limit if op == "<" else value > limit
            status = PASS if ok else FAIL
        metrics.append(
            {
                "id": metric_id,
                "label": label,
                "value": None if value is None else round(float(value), 4),
                "unit": unit,
                "limit": limit,
                "op": op,
                "statistic": statistic,
                "status": status,
                "source": source,
            }
        )
    return metrics


def passed(metrics: list[dict[str, Any]], correctness_ok: bool) -> bool:
    """Every metric PASS or NOT_MEASURED, and no task lost or duplicated."""
    return correctness_ok and all(m["status"] != FAIL for m in metrics)


def table(metrics: list[dict[str, Any]], correctness: Mapping[str, Any] | None = None) -> str:
    """The metric table a person reads at the end of a run."""
    rows = [("metric", "label", "value", "limit", "status")]
    for m in metrics:
        value = "-" if m["value"] is None else f"{m['value']:.4g} {m['unit']}"
        limit = f"{m['op']} {m['limit']:g} {m['unit']}"
        rows.append((m["id"], m["label"], value, limit, m["status"]))
    if correctness is not None:
        failed = [c for c in correctness.get("checks", []) if not c["ok"]]
        total = len(correctness.get("checks", []))
        rows.append(
            (
                "correctness",
                "exactly once, no task lost",
                f"{total - len(failed)}/{total} checks ok",
                "all",
                PASS if correctness.get("ok") else FAIL,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
