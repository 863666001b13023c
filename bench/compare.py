"""``python -m bench compare OLD.json NEW.json``: what changed between two runs.

Prints, for each success metric and each key scenario figure, the old and new value and the
relative change, and flags a REGRESSION when the value got worse by more than the threshold
(15 % by default). "Worse" follows the metric's ``op``: for a ``<`` limit a higher value is
worse, for a ``>`` limit a lower one.

The exit code is the gate of the NEW run, not of the comparison: non-zero when NEW's
correctness failed or any of its metrics is ``FAIL``. Regressions only print, because timings on
shared CI runners drift by 10-20 % between runs (see docs B3), unless ``--fail-on-regression``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Direction = Literal["<", ">"]

DEFAULT_THRESHOLD = 0.15

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_REGRESSION = 3
EXIT_USAGE = 2


@dataclass(frozen=True)
class KeyFigure:
    """A scenario summary value worth following between runs."""

    scenario: str
    key: str
    label: str
    unit: str
    op: Direction  # the direction in which the value is good: ">" = higher is better
    scale: float = 1.0  # multiply the stored value by this to show it in ``unit``
    abs_tol: float = 0.0  # changes smaller than this (in ``unit``) are noise, never regressions


KEY_FIGURES: tuple[KeyFigure, ...] = (
    KeyFigure("insert", "single_tasks_per_s_1p", "Insert, single, 1 process", "tasks/s", ">"),
    KeyFigure("insert", "batch_tasks_per_s_1p", "Insert, batch, 1 process", "tasks/s", ">"),
    KeyFigure("claim", "min_tx_per_s", "Claim, lowest transaction rate", "tx/s", ">"),
    KeyFigure("claim", "max_tasks_per_s", "Claim, best task rate", "tasks/s", ">"),
    # Library / bare sqlite3 in the same run: unlike the absolute rates above, these hold across
    # machines and a noisy neighbour, so they are the figures to trust between a CI runner and
    # the baseline.
    KeyFigure(
        "insert", "ratio_single_1p", "Insert, single, 1 process, vs bare", "x", ">", abs_tol=0.05
    ),
    KeyFigure(
        "insert", "ratio_batch_1p", "Insert, batch, 1 process, vs bare", "x", ">", abs_tol=0.05
    ),
    KeyFigure("claim", "ratio_1p", "Claim+complete, 1 worker, vs bare", "x", ">", abs_tol=0.05),
    KeyFigure("claim", "ratio_4p", "Claim+complete, 4 workers, vs bare", "x", ">", abs_tol=0.05),
    KeyFigure(
        "worker",
        "drain_ratio_4",
        "Engine drain, no-op, 4 executors, vs bare",
        "x",
        ">",
        abs_tol=0.1,
    ),
    KeyFigure("worker", "pickup_p99_ms", "Engine pickup p99 at half load", "ms", "<", abs_tol=2),
    KeyFigure("worker", "idle_cpu_pct", "Idle engine CPU", "% of a core", "<", abs_tol=0.3),
    KeyFigure(
        "busy",
        "max_busy_rate_5000",
        "Busy rate at busy_timeout 5000 ms (max)",
        "%",
        "<",
        scale=100.0,
        abs_tol=0.1,
    ),
    KeyFigure("checkpoint", "worst_stall_ms", "Worst commit stall", "ms", "<", abs_tol=5.0),
    KeyFigure("query", "claim_p50_growth", "Claim p50 growth over backlog", "x", "<", abs_tol=0.1),
)

# Absolute noise floors for metrics, by id: a busy rate moving from 0 % to 0.01 % is not a
# regression worth a red flag even though it is an infinite relative change.
METRIC_ABS_TOL: Mapping[str, float] = {"busy_rate_pct": 0.1, "coverage_pct": 0.5}


@dataclass(frozen=True)
class Row:
    """One compared value."""

    kind: Literal["metric", "figure"]
    id: str
    label: str
    unit: str
    op: Direction
    old: float | None
    new: float | None
    change: float | None  # relative change (new - old) / |old|; None when not computable
    regression: bool
    limit: float | None = None
    old_status: str | None = None
    new_status: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` prints, and the verdict."""

    old_run: str
    new_run: str
    threshold: float
    rows: tuple[Row, ...]
    old_correct: bool | None
    new_correct: bool | None
    failed_checks: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.regression)

    @property
    def failed_metrics(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.kind == "metric" and r.new_status == "FAIL")

    @property
    def gate_ok(self) -> bool:
        return self.new_correct is not False and not self.failed_metrics


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def relative_change(old: float | None, new: float | None) -> float | None:
    """``(new - old) / |old|``; ``inf`` with the sign of the move when old is 0; None if unknown."""
    if old is None or new is None:
        return None
    if old == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - old) / abs(old)


def is_regression(
    old: float | None, new: float | None, op: Direction, threshold: float, abs_tol: float = 0.0
) -> bool:
    """Whether ``new`` is worse than ``old`` by more than ``threshold`` (relative) and ``abs_tol``.

    ``op`` is the metric's limit operator: ``"<"`` means lower is better (higher is worse),
    ``">"`` means higher is better (lower is worse).
    """
    change = relative_change(old, new)
    if change is None or old is None or new is None:
        return False
    worse_by = change if op == "<" else -change
    return worse_by > threshold and abs(new - old) > abs_tol


def _scenario_summary(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    scenario = (results.get("scenarios") or {}).get(name)
    if not isinstance(scenario, Mapping) or scenario.get("status") != "ok":
        return None
    summary = scenario.get("summary")
    return summary if isinstance(summary, Mapping) else None


def figure_value(results: Mapping[str, Any], figure: KeyFigure) -> float | None:
    """The figure's value in its display unit, or None when its scenario did not run cleanly."""
    summary = _scenario_summary(results, figure.scenario)
    if summary is None:
        return None
    value = _number(summary.get(figure.key))
    return None if value is None else value * figure.scale


def _metrics_by_id(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    metrics = results.get("metrics") or []
    return {m["id"]: m for m in metrics if isinstance(m, Mapping) and "id" in m}


def _correct(results: Mapping[str, Any]) -> bool | None:
    correctness = results.get("correctness")
    if not isinstance(correctness, Mapping) or not isinstance(correctness.get("ok"), bool):
        return None
    return bool(correctness["ok"])


def compare_results(
    old: Mapping[str, Any], new: Mapping[str, Any], *, threshold: float = DEFAULT_THRESHOLD
) -> Comparison:
    """Compare two ``results.json`` documents (see bench/RESULTS.md); pure, no I/O."""
    rows: list[Row] = []
    old_metrics, new_metrics = _metrics_by_id(old), _metrics_by_id(new)
    ids = list(new_metrics) + [i for i in old_metrics if i not in new_metrics]
    for metric_id in ids:
        o, n = old_metrics.get(metric_id, {}), new_metrics.get(metric_id, {})
        ref = n or o
        op: Direction = "<" if ref.get("op") == "<" else ">"
        old_value, new_value = _number(o.get("value")), _number(n.get("value"))
        rows.append(
            Row(
                kind="metric",
                id=metric_id,
                label=str(ref.get("label", metric_id)),
                unit=str(ref.get("unit", "")),
                op=op,
                old=old_value,
                new=new_value,
                change=relative_change(old_value, new_value),
                regression=is_regression(
                    old_value, new_value, op, threshold, METRIC_ABS_TOL.get(metric_id, 0.0)
                ),
                limit=_number(ref.get("limit")),
                old_status=o.get("status") if o else None,
                new_status=n.get("status") if n else None,
            )
        )
    for figure in KEY_FIGURES:
        old_value, new_value = figure_value(old, figure), figure_value(new, figure)
        rows.append(
            Row(
                kind="figure",
                id=f"{figure.scenario}.{figure.key}",
                label=figure.label,
                unit=figure.unit,
                op=figure.op,
                old=old_value,
                new=new_value,
                change=relative_change(old_value, new_value),
                regression=is_regression(
                    old_value, new_value, figure.op, threshold, figure.abs_tol
                ),
            )
        )

    checks = (new.get("correctness") or {}).get("checks") or []
    failed_checks = tuple(
        f"{c.get('scenario', '?')}.{c.get('name', '?')}: {c.get('detail', '')}".rstrip(": ")
        for c in checks
        if isinstance(c, Mapping) and c.get("ok") is False
    )
    notes: list[str] = []
    old_env, new_env = old.get("environment") or {}, new.get("environment") or {}
    if old_env.get("os") != new_env.get("os"):
        notes.append(
            f"different OS ({old_env.get('os')} -> {new_env.get('os')}): "
            "throughput and latency are not directly comparable"
        )
    if old.get("profile") != new.get("profile"):
        notes.append(f"different profile ({old.get('profile')} -> {new.get('profile')})")
    return Comparison(
        old_run=str(old.get("run_id", "?")),
        new_run=str(new.get("run_id", "?")),
        threshold=threshold,
        rows=tuple(rows),
        old_correct=_correct(old),
        new_correct=_correct(new),
        failed_checks=failed_checks,
        notes=tuple(notes),
    )


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def _fmt_change(change: float | None) -> str:
    if change is None:
        return "n/a"
    if math.isinf(change):
        return "+inf" if change > 0 else "-inf"
    return f"{change * 100:+.1f}%"


def _fmt_limit(row: Row) -> str:
    return "" if row.limit is None else f"{row.op} {row.limit:g}"


def format_comparison(comparison: Comparison) -> str:
    """The plain-text table ``compare`` prints."""
    c = comparison
    lines = [
        f"Comparing {c.old_run} (OLD) -> {c.new_run} (NEW); "
        f"regression threshold {c.threshold * 100:g}%",
    ]
    lines += [f"note: {note}" for note in c.notes]
    for kind, title in (("metric", "Success metrics"), ("figure", "Key figures")):
        header = ("", "old", "new", "change", *(("limit", "status") if kind == "metric" else ()))
        header = (*header, "")
        table = [header]
        for row in c.rows:
            if row.kind != kind:
                continue
            values = [_fmt_value(row.old, row.unit), _fmt_value(row.new, row.unit)]
            gate = (_fmt_limit(row), row.new_status or "n/a") if kind == "metric" else ()
            flag = "REGRESSION" if row.regression else ""
            table.append((row.label, *values, _fmt_change(row.change), *gate, flag))
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines += ["", title]
        for r in table:
            cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 4)]
            cells += [r[i].ljust(widths[i]) for i in range(4, len(header))]
            lines.append("  " + "  ".join(cells).rstrip())

    def _ok(value: bool | None) -> str:
        return "n/a" if value is None else ("ok" if value else "FAILED")

    lines += ["", f"Correctness: OLD {_ok(c.old_correct)}, NEW {_ok(c.new_correct)}"]
    lines += [f"  failed check: {check}" for check in c.failed_checks]
    verdict = []
    if c.new_correct is False:
        verdict.append("correctness failed")
    if c.failed_metrics:
        verdict.append("metric FAIL: " + ", ".join(r.id for r in c.failed_metrics))
    if c.regressions:
        verdict.append(f"{len(c.regressions)} regression(s) beyond {c.threshold * 100:g}%")
    lines.append("Result: " + ("; ".join(verdict) if verdict else "no failures, no regressions"))
    return "\n".join(lines)


def load_results(path: Path) -> dict[str, Any]:
    """Read one ``results.json``; raises ``ValueError`` for anything but a JSON object."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a results.json object")
    return data


def _threshold(text: str) -> float:
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"threshold out of range: {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench compare OLD.json NEW.json``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench compare",
        description="Compare two results.json files: change per metric, flag regressions.",
    )
    parser.add_argument("old", type=Path, help="the reference results.json (e.g. the baseline)")
    parser.add_argument("new", type=Path, help="the results.json to judge")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=DEFAULT_THRESHOLD,
        help="relative worsening flagged as a regression: 0.15 or 15%% (default 0.15)",
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit {EXIT_REGRESSION} when any regression is flagged (default: only print)",
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        old, new = load_results(args.old), load_results(args.new)
    except (OSError, ValueError) as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    comparison = compare_results(old, new, threshold=args.threshold)
    print(format_comparison(comparison))
    if not comparison.gate_ok:
        return EXIT_GATE_FAILED
    if args.fail_on_regression and comparison.regressions:
        return EXIT_REGRESSION
    return EXIT_OK
