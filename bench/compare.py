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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.results import (
    BUSY_RATE_PCT,
    COVERAGE_PCT,
    FAIL,
    MetricVerdict,
    Op,
    Run,
    fmt_number,
)
from bench.scenarios import busy, checkpoint, claim, insert, query, worker

Direction = Op

DEFAULT_THRESHOLD = 0.15

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_REGRESSION = 3
EXIT_USAGE = 2


@dataclass(frozen=True)
class Reading:
    """A key figure's value in a run (in its display unit), and the variant it comes from."""

    value: float | None
    variant: str = ""


NOT_RUN = Reading(None)


@dataclass(frozen=True)
class KeyFigure:
    """A value worth following between runs, read from a run's typed results."""

    id: str
    label: str
    unit: str
    op: Direction  # the direction in which the value is good: ">" = higher is better
    read: Callable[[Run], Reading]
    abs_tol: float = 0.0  # changes smaller than this (in ``unit``) are noise, never regressions


def _summary(
    name: str, kind: type[Any], key: Callable[[Any], float | None], variant: str
) -> Callable[[Run], Reading]:
    """A reader of ``key(summary)`` of scenario ``name``'s ``kind`` result."""

    def read(run: Run) -> Reading:
        found = run.result(name, kind)
        return NOT_RUN if found is None else Reading(key(found.summary), variant)

    return read


def _insert(
    key: Callable[[insert.Summary], float | None], variant: str
) -> Callable[[Run], Reading]:
    return _summary("insert", insert.Result, key, variant)


def _claim(key: Callable[[claim.Summary], float | None], variant: str) -> Callable[[Run], Reading]:
    return _summary("claim", claim.Result, key, variant)


def _worker(
    key: Callable[[worker.Summary], float | None], variant: str
) -> Callable[[Run], Reading]:
    return _summary("worker", worker.Result, key, variant)


def _busy_rate(run: Run) -> Reading:
    """The gated busy rate (the summary's, as the gate reads it), naming where it peaked."""
    found = run.result("busy", busy.Result)
    if found is None or found.summary.max_busy_rate_5000 is None:
        return NOT_RUN
    gated = [p for p in found.series if p.busy_timeout_ms == busy.GATED_TIMEOUT_MS]
    variant = f"busy_timeout {busy.GATED_TIMEOUT_MS} ms, the default"
    if gated:
        worst = max(gated, key=lambda p: p.busy_rate)
        variant += f"; {worst.processes} processes"
    return Reading(found.summary.max_busy_rate_5000 * 100.0, variant)


def _claim_sweep(
    key: Callable[[claim.Summary], float | None],
    value: Callable[[claim.Point], float],
    pick: Callable[..., claim.Point],
) -> Callable[[Run], Reading]:
    """A claim summary figure that is the sweep's lowest or highest ``value`` (``pick`` is
    min or max), naming the worker count it comes from."""

    def read(run: Run) -> Reading:
        found = run.result("claim", claim.Result)
        if found is None:
            return NOT_RUN
        if not found.series:
            return Reading(key(found.summary))
        n = pick(found.series, key=value).processes
        return Reading(key(found.summary), f"{n} worker{'s' if n > 1 else ''}")

    return read


def _default_stall(run: Run) -> Reading:
    found = run.result("checkpoint", checkpoint.Result)
    variant = None if found is None else found.summary.by_variant.get(checkpoint.DEFAULT_VARIANT)
    if variant is None:
        return NOT_RUN
    return Reading(variant.worst_stall_ms, f"{checkpoint.DEFAULT_VARIANT}, the default")


def _worst_stall(run: Run) -> Reading:
    found = run.result("checkpoint", checkpoint.Result)
    if found is None or not found.summary.by_variant:
        return NOT_RUN if found is None else Reading(found.summary.worst_stall_ms)
    name, worst = max(found.summary.by_variant.items(), key=lambda item: item[1].worst_stall_ms)
    return Reading(worst.worst_stall_ms, name)


def _claim_growth(run: Run) -> Reading:
    found = run.result("query", query.Result)
    if found is None:
        return NOT_RUN
    backlogs = [p.backlog for p in found.series]
    span = f"backlog {min(backlogs):,} to {max(backlogs):,}" if backlogs else ""
    return Reading(found.summary.claim_p50_growth, span)


KEY_FIGURES: tuple[KeyFigure, ...] = (
    KeyFigure(
        "insert.single_tasks_per_s_1p",
        "Insert, single",
        "tasks/s",
        ">",
        _insert(lambda s: s.single_tasks_per_s_1p, "enqueue, 1 process"),
    ),
    KeyFigure(
        "insert.batch_tasks_per_s_1p",
        "Insert, batch",
        "tasks/s",
        ">",
        _insert(lambda s: s.batch_tasks_per_s_1p, "enqueue_many, 1 process"),
    ),
    KeyFigure(
        "claim.min_tx_per_s",
        "Claim, lowest transaction rate",
        "tx/s",
        ">",
        _claim_sweep(lambda s: s.min_tx_per_s, lambda p: p.tx_per_s, min),
    ),
    KeyFigure(
        "claim.max_tasks_per_s",
        "Claim, best task rate",
        "tasks/s",
        ">",
        _claim_sweep(lambda s: s.max_tasks_per_s, lambda p: p.tasks_per_s, max),
    ),
    # Library / bare sqlite3 in the same run: unlike the absolute rates above, these hold across
    # machines and a noisy neighbour, so they are the figures to trust between a CI runner and
    # the baseline.
    KeyFigure(
        "insert.ratio_single_1p",
        "Insert, single, vs bare",
        "x",
        ">",
        _insert(lambda s: s.ratio_single_1p, "enqueue, 1 process"),
        abs_tol=0.05,
    ),
    KeyFigure(
        "insert.ratio_batch_1p",
        "Insert, batch, vs bare",
        "x",
        ">",
        _insert(lambda s: s.ratio_batch_1p, "enqueue_many, 1 process"),
        abs_tol=0.05,
    ),
    KeyFigure(
        "claim.ratio_1p",
        "Claim+complete, vs bare",
        "x",
        ">",
        _claim(lambda s: s.ratio_1p, "1 worker"),
        abs_tol=0.05,
    ),
    KeyFigure(
        "claim.ratio_4p",
        "Claim+complete, vs bare",
        "x",
        ">",
        _claim(lambda s: s.ratio_4p, "4 workers"),
        abs_tol=0.05,
    ),
    KeyFigure(
        "worker.drain_ratio_4",
        "Worker engine drain, vs bare loop",
        "x",
        ">",
        _worker(lambda s: s.drain_ratio_4, "no-op handler, 4 executors"),
        abs_tol=0.1,
    ),
    KeyFigure(
        "worker.pickup_p99_ms",
        "Worker engine pickup p99",
        "ms",
        "<",
        _worker(lambda s: s.pickup_p99_ms, "steady enqueue rate"),
        abs_tol=2.0,
    ),
    KeyFigure(
        "worker.idle_cpu_pct",
        "Idle worker engine CPU",
        "% of a core",
        "<",
        _worker(lambda s: s.idle_cpu_pct, "engine and executors"),
        abs_tol=0.3,
    ),
    KeyFigure("busy.max_busy_rate_5000", "Busy rate (max)", "%", "<", _busy_rate, abs_tol=0.1),
    KeyFigure(
        "checkpoint.default.worst_stall_ms",
        "Worst commit stall",
        "ms",
        "<",
        _default_stall,
        abs_tol=5.0,
    ),
    KeyFigure(
        "checkpoint.worst_stall_ms",
        "Worst commit stall, any policy",
        "ms",
        "<",
        _worst_stall,
        abs_tol=5.0,
    ),
    KeyFigure(
        "query.claim_p50_growth",
        "Claim p50 growth over backlog",
        "x",
        "<",
        _claim_growth,
        abs_tol=0.1,
    ),
)

# Absolute noise floors for metrics, by id: a busy rate moving from 0 % to 0.01 % is not a
# regression worth a red flag even though it is an infinite relative change.
METRIC_ABS_TOL: Mapping[str, float] = {BUSY_RATE_PCT: 0.1, COVERAGE_PCT: 0.5}


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
    variant: str = ""  # where a key figure comes from (NEW's, or OLD's when NEW has none)


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
        return tuple(r for r in self.rows if r.kind == "metric" and r.new_status == FAIL)

    @property
    def gate_ok(self) -> bool:
        return self.new_correct is not False and not self.failed_metrics


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


def compare_results(old: Run, new: Run, *, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """Compare two runs (see bench/RESULTS.md); pure, no I/O."""
    rows: list[Row] = []
    old_metrics = {m.id: m for m in old.metrics}
    new_metrics = {m.id: m for m in new.metrics}
    ids = list(new_metrics) + [i for i in old_metrics if i not in new_metrics]
    for metric_id in ids:
        o, n = old_metrics.get(metric_id), new_metrics.get(metric_id)
        ref: MetricVerdict = n or o  # type: ignore[assignment]  # one of them exists
        old_value = None if o is None else _finite(o.value)
        new_value = None if n is None else _finite(n.value)
        rows.append(
            Row(
                kind="metric",
                id=metric_id,
                label=ref.label,
                unit=ref.unit,
                op=ref.op,
                old=old_value,
                new=new_value,
                change=relative_change(old_value, new_value),
                regression=is_regression(
                    old_value, new_value, ref.op, threshold, METRIC_ABS_TOL.get(metric_id, 0.0)
                ),
                limit=ref.limit,
                old_status=None if o is None else o.status,
                new_status=None if n is None else n.status,
            )
        )
    for figure in KEY_FIGURES:
        old_reading, new_reading = figure.read(old), figure.read(new)
        old_value, new_value = _finite(old_reading.value), _finite(new_reading.value)
        rows.append(
            Row(
                kind="figure",
                id=figure.id,
                label=figure.label,
                unit=figure.unit,
                op=figure.op,
                old=old_value,
                new=new_value,
                change=relative_change(old_value, new_value),
                regression=is_regression(
                    old_value, new_value, figure.op, threshold, figure.abs_tol
                ),
                variant=new_reading.variant or old_reading.variant,
            )
        )

    failed_checks = tuple(
        f"{c.scenario}.{c.name}: {c.detail}".rstrip(": ")
        for c in new.correctness.checks
        if not c.ok
    )
    notes: list[str] = []
    if old.environment.os != new.environment.os:
        notes.append(
            f"different OS ({old.environment.os} -> {new.environment.os}): "
            "throughput and latency are not directly comparable"
        )
    if old.profile != new.profile:
        notes.append(f"different profile ({old.profile} -> {new.profile})")
    return Comparison(
        old_run=old.run_id,
        new_run=new.run_id,
        threshold=threshold,
        rows=tuple(rows),
        old_correct=old.correctness.ok,
        new_correct=new.correctness.ok,
        failed_checks=failed_checks,
        notes=tuple(notes),
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


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
            values = [fmt_number(row.old, row.unit), fmt_number(row.new, row.unit)]
            gate = (_fmt_limit(row), row.new_status or "n/a") if kind == "metric" else ()
            flag = "REGRESSION" if row.regression else ""
            label = f"{row.label} [{row.variant}]" if row.variant else row.label
            table.append((label, *values, _fmt_change(row.change), *gate, flag))
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
