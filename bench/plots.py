"""The report's PNG plots, drawn from ``results.json`` alone (see bench/RESULTS.md).

matplotlib is imported inside the functions, so ``bench`` imports without it, and only through
``matplotlib.figure.Figure``: no pyplot, no global figure state, no GUI backend. A bare Figure
renders through Agg on ``savefig``. Every figure has a fixed size and dpi and is drawn from
sorted inputs, so the PNGs of two runs are comparable side by side.

Each plot raises ``SkipPlot`` with a reason when its scenario is missing or did not run
cleanly; ``render_all`` collects those reasons for the summary instead of failing the report.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
MIB = 1024 * 1024

# Font sizes chosen to stay legible at DPI 100 without zooming.
RC = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
LIMIT_STYLE: dict[str, Any] = {"color": "#c0392b", "linestyle": "--", "linewidth": 1.6}
PERCENTILE_STYLES = {"p50": "-", "p95": "--", "p99": ":"}


class SkipPlot(Exception):
    """The plot cannot be drawn from this run; the message says why."""


@dataclass(frozen=True)
class PlotSpec:
    """One PNG of the report."""

    filename: str
    title: str
    description: str
    draw: Callable[[Mapping[str, Any]], Figure]


@dataclass(frozen=True)
class PlotResult:
    """What ``render_all`` did with one PlotSpec."""

    spec: PlotSpec
    path: Path | None  # None when skipped
    skipped: str | None = None  # the reason
    size_px: tuple[int, int] | None = None


# --------------------------------------------------------------------------- data helpers


def scenario(results: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The scenario ``name`` if it ran cleanly, else ``SkipPlot`` saying why not."""
    found = (results.get("scenarios") or {}).get(name)
    if not isinstance(found, Mapping):
        raise SkipPlot(f"scenario '{name}' did not run")
    status = found.get("status")
    if status != "ok":
        error = f": {found.get('error')}" if found.get("error") else ""
        raise SkipPlot(f"scenario '{name}' has status '{status}'{error}")
    return found


def try_scenario(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    try:
        return scenario(results, name)
    except SkipPlot:
        return None


def rows(found: Mapping[str, Any], key: str = "series") -> list[Mapping[str, Any]]:
    value = found.get(key) or []
    return [row for row in value if isinstance(row, Mapping)]


def percentile(value: object, name: str) -> float | None:
    """``value[name]`` of a latency object; a bare number counts as every percentile."""
    if isinstance(value, Mapping):
        value = value.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def metric_limit(results: Mapping[str, Any], metric_id: str, default: float) -> float:
    for metric in results.get("metrics") or []:
        if isinstance(metric, Mapping) and metric.get("id") == metric_id:
            limit = metric.get("limit")
            if isinstance(limit, int | float) and not isinstance(limit, bool):
                return float(limit)
    return default


# --------------------------------------------------------------------------- drawing helpers


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def not_measured(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def process_axis(ax: Axes, values: Iterable[int]) -> None:
    ticks = sorted(set(values))
    ax.set_xlabel("processes")
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xlim(min(ticks) - 0.3, max(ticks) + 0.3)


def plain_log_ticks(ax: Axes, which: str = "y") -> None:
    """Label a log (or symlog) axis 0.1, 1, 10 instead of 10^-1, 10^0, 10^1.

    Call it after the data and limits are set: when the view spans less than two decades the
    2x and 5x minor ticks are labelled too, otherwise they stay unlabelled.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    low, high = ax.get_ylim() if which == "y" else ax.get_xlim()
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: tick_text(value)))
    if low > 0 and high / low < 100:

        def minor(value: float, _pos: int | None) -> str:
            mantissa = f"{value:.1e}"[:3]
            return tick_text(value) if mantissa in ("2.0", "5.0") else ""

        axis.set_minor_formatter(FuncFormatter(minor))
    else:
        axis.set_minor_formatter(NullFormatter())


def tick_text(value: float) -> str:
    """1000000 -> "1,000,000", 0.25 -> "0.25": no exponents on the axes."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def legend_below(ax: Axes, ncols: int = 2) -> None:
    """The legend under the axes, where it cannot hide data."""
    legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols, borderaxespad=0)


def legend_right(ax: Axes) -> None:
    """The legend right of the axes, where it cannot hide data."""
    legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def legend(ax: Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(framealpha=0.9, **kwargs)


# --------------------------------------------------------------------------- the plots


def draw_throughput(results: Mapping[str, Any]) -> Figure:
    """Insert and claim throughput against the number of processes."""
    insert, claim = try_scenario(results, "insert"), try_scenario(results, "claim")
    if insert is None and claim is None:
        raise SkipPlot(
            f"{_why(results, 'insert')}; {_why(results, 'claim')}",
        )
    fig = new_figure(12, 5.5)
    ax_insert, ax_claim = fig.subplots(1, 2)
    fig.suptitle("Throughput against the number of processes")

    if insert is None:
        not_measured(ax_insert, _why(results, "insert"))
    else:
        series = rows(insert)
        for i, mode in enumerate(sorted({str(r.get("mode")) for r in series})):
            color = f"C{i}"
            mine = sorted((r for r in series if r.get("mode") == mode), key=_by_processes)
            xs = [int(r["processes"]) for r in mine]
            ax_insert.plot(
                xs, [r["tasks_per_s"] for r in mine], "o-", color=color, label=f"{mode} (queue)"
            )
            bare_points = [
                (float(x), float(b))
                for x, b in zip(xs, (r.get("bare_tasks_per_s") for r in mine), strict=True)
                if isinstance(b, int | float)
            ]
            if bare_points:
                ax_insert.plot(
                    *xy(bare_points),
                    "x:",
                    color=color,
                    alpha=0.7,
                    label=f"{mode} (bare sqlite3)",
                )
        ax_insert.set_yscale("log")
        ax_insert.set_ylabel("tasks/s (log scale)")
        ax_insert.set_title("Insert")
        process_axis(ax_insert, (int(r["processes"]) for r in series))
        plain_log_ticks(ax_insert)
        legend_below(ax_insert)

    if claim is None:
        not_measured(ax_claim, _why(results, "claim"))
    else:
        series = sorted(rows(claim), key=_by_processes)
        xs = [int(r["processes"]) for r in series]
        ax_claim.plot(xs, [r["tx_per_s"] for r in series], "o-", color="C2", label="transactions")
        ax_claim.plot(xs, [r["tasks_per_s"] for r in series], "s-", color="C0", label="tasks")
        bare = [r.get("bare_tasks_per_s") for r in series]
        if all(isinstance(b, int | float) for b in bare) and bare:
            ax_claim.plot(xs, bare, "x:", color="C0", alpha=0.7, label="tasks (bare sqlite3)")
        limit = metric_limit(results, "tx_per_s", 100.0)
        ax_claim.axhline(limit, **LIMIT_STYLE, label=f"limit: > {limit:g} tx/s")
        ax_claim.set_ylim(
            bottom=0,
            top=max(
                [limit, *[float(v) for v in _numbers([r.get("tx_per_s") for r in series] + bare)]]
            )
            * 1.2,
        )
        ax_claim.set_ylabel("per second")
        ax_claim.set_title("Claim + complete (each task = claim tx + complete tx)")
        process_axis(ax_claim, xs)
        legend_below(ax_claim)
    return fig


def draw_latency(results: Mapping[str, Any]) -> Figure:
    """Latency percentiles: insert and claim calls per process count; init and connect samples."""
    from matplotlib.ticker import MaxNLocator

    names = ("insert", "claim", "init", "connect")
    found = {name: try_scenario(results, name) for name in names}
    if all(value is None for value in found.values()):
        raise SkipPlot("; ".join(_why(results, name) for name in names))
    fig = new_figure(12, 8.5)
    axes = fig.subplots(2, 2)
    fig.suptitle("Latency percentiles")

    for ax, name, title in (
        (axes[0][0], "insert", "Insert call latency"),
        (axes[0][1], "claim", "Claim + complete cycle latency"),
    ):
        sc = found[name]
        if sc is None:
            not_measured(ax, _why(results, name))
            continue
        series = rows(sc)
        modes = sorted({str(r.get("mode", "")) for r in series})
        for i, mode in enumerate(modes):
            color = f"C{i}"
            mine = sorted((r for r in series if str(r.get("mode", "")) == mode), key=_by_processes)
            xs = [int(r["processes"]) for r in mine]
            for pct, style in PERCENTILE_STYLES.items():
                ys = [percentile(r.get("latency_ms"), pct) for r in mine]
                points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
                if points:
                    label = f"{mode} {pct}" if mode else pct
                    ax.plot(*xy(points), marker="o", linestyle=style, color=color, label=label)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(title)
        process_axis(ax, (int(r["processes"]) for r in series))
        plain_log_ticks(ax)
        legend_below(ax, ncols=3)

    for ax, name, metric_id, default, title in (
        (axes[1][0], "init", "init_ms", 100.0, "Database initialisation"),
        (axes[1][1], "connect", "connect_ms", 10.0, "Connection overhead"),
    ):
        sc = found[name]
        if sc is None:
            not_measured(ax, _why(results, name))
            continue
        samples = sorted(float(v) for v in _numbers((sc.get("samples") or {}).get("ms") or []))
        limit = metric_limit(results, metric_id, default)
        if samples:
            ax.plot(range(1, len(samples) + 1), samples, "o-", color="C0", label="samples (sorted)")
            median = (
                samples[len(samples) // 2]
                if len(samples) % 2
                else (samples[len(samples) // 2 - 1] + samples[len(samples) // 2]) / 2
            )
            ax.axhline(median, color="C0", linewidth=1, alpha=0.6, label=f"median {median:.3g} ms")
            ax.set_xlabel("sample rank (sorted, fastest first)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            summary = sc.get("summary") or {}
            keys = ["min_ms", "median_ms", "p95_ms", "max_ms"]
            values = [percentile(summary.get(k), "") for k in keys]
            ax.bar(range(4), [v or 0 for v in values], color="C0")
            ax.set_xticks(range(4), ["min", "median", "p95", "max"])
        ax.axhline(limit, **LIMIT_STYLE, label=f"limit: < {limit:g} ms")
        top = max([limit, *samples]) if samples else limit
        ax.set_ylim(0, top * 1.15)
        ax.set_ylabel("time (ms)")
        ax.set_title(title)
        # Samples are sorted fastest first: the left half is low, the middle left is empty.
        legend(ax, loc="center left")
    return fig


def draw_busy_rate(results: Mapping[str, Any]) -> Figure:
    """SQLITE_BUSY rate against processes, one line per busy_timeout."""
    sc = scenario(results, "busy")
    # The shipped configuration only; the run without the fair lock has its own plot.
    series = [r for r in rows(sc) if r.get("fair_lock", True) is True]
    if not series:
        raise SkipPlot("scenario 'busy' has no series")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    limit = metric_limit(results, "busy_rate_pct", 1.0)
    peak = 0.0
    timeouts = sorted({int(r["busy_timeout_ms"]) for r in series})
    for i, timeout in enumerate(timeouts):
        mine = sorted(
            (r for r in series if int(r["busy_timeout_ms"]) == timeout), key=_by_processes
        )
        ys = [float(r.get("busy_rate") or 0.0) * 100 for r in mine]
        peak = max([peak, *ys])
        ax.plot(
            [int(r["processes"]) for r in mine],
            ys,
            marker="os^Dv<>"[i % 7],
            color=f"C{i}",
            label=f"busy_timeout {timeout} ms",
        )
    ax.axhline(limit, **LIMIT_STYLE, label=f"limit: < {limit:g} % (at busy_timeout 5000 ms)")
    if peak > 10 * limit:
        # symlog keeps 0..limit linear (so the limit line and zero stay visible) and compresses
        # the large rates of a zero timeout above it.
        ax.set_yscale("symlog", linthresh=limit)
        ax.set_ylim(-0.04 * limit, peak * 2)
        plain_log_ticks(ax)
        ax.set_ylabel("SQLITE_BUSY errors (% of operations, symlog)")
    else:
        top = max(peak, limit) * 1.3
        ax.set_ylim(-0.02 * top, top)
        ax.set_ylabel("SQLITE_BUSY errors (% of operations)")
    ax.set_title("SQLITE_BUSY error rate against the number of processes")
    process_axis(ax, (int(r["processes"]) for r in series))
    legend_right(ax)
    return fig


def draw_busy_fairness(results: Mapping[str, Any]) -> Figure:
    """Longest lock wait and each process's share against processes, with and without the
    fair lock, at busy_timeout 5000 ms."""
    sc = scenario(results, "busy")
    series = [
        r
        for r in rows(sc)
        if int(r.get("busy_timeout_ms") or 0) == 5000 and isinstance(r.get("share"), Mapping)
    ]
    if not {r.get("fair_lock") for r in series} >= {True, False}:
        raise SkipPlot("scenario 'busy' did not run with and without the fair lock")
    fig = new_figure(12, 5.5)
    ax_wait, ax_share = fig.subplots(1, 2)
    fig.suptitle("Fair lock: lock waits and shares of the work (busy_timeout 5000 ms)")
    goals = ((sc.get("summary") or {}).get("fair_lock") or {}).get("goals") or {}
    for i, fair in enumerate((True, False)):
        mine = sorted((r for r in series if r.get("fair_lock") is fair), key=_by_processes)
        xs = [int(r["processes"]) for r in mine]
        label = "fair lock" if fair else "busy handler only"
        color = "C0" if fair else "C1"
        waits = [percentile(r.get("lock_wait_ms"), "max") or math.nan for r in mine]
        p99 = [percentile(r.get("lock_wait_ms"), "p99") or math.nan for r in mine]
        ax_wait.plot(xs, waits, marker="o", color=color, label=f"{label}: max")
        ax_wait.plot(xs, p99, marker=".", linestyle=":", color=color, label=f"{label}: p99")
        low = [float(r["share"].get("min_over_mean") or math.nan) for r in mine]
        high = [float(r["share"].get("max_over_mean") or math.nan) for r in mine]
        jain = [r["share"].get("jain") for r in mine]
        ax_share.fill_between(xs, low, high, color=color, alpha=0.18)
        last = f", Jain {jain[-1]:.2f} at {xs[-1]}" if jain and jain[-1] is not None else ""
        ax_share.plot(xs, low, marker="v", color=color, label=f"{label}: min/mean{last}")
        ax_share.plot(
            xs, high, marker="^", color=color, label=f"{label}: max/mean", alpha=0.8 - 0.1 * i
        )
    goal_ms = float(goals.get("lock_wait_max_ms") or 100.0)
    ax_wait.axhline(goal_ms, **LIMIT_STYLE, label=f"goal: max <= {goal_ms:g} ms")
    ax_wait.set_yscale("log")
    plain_log_ticks(ax_wait)
    ax_wait.set_ylabel("lock wait (ms, log scale)")
    ax_wait.set_title("Lock wait")
    low_goal, high_goal = goals.get("share_range") or (0.5, 2.0)
    for bound in (low_goal, high_goal):
        ax_share.axhline(float(bound), **LIMIT_STYLE)
    ax_share.plot([], [], **LIMIT_STYLE, label=f"goal: {low_goal:g}x to {high_goal:g}x the mean")
    ax_share.axhline(1.0, color="0.4", linewidth=0.8)
    ax_share.set_ylabel("operations of a process / mean")
    ax_share.set_title("Share of the operations")
    for ax in (ax_wait, ax_share):
        process_axis(ax, (int(r["processes"]) for r in series))
        legend_below(ax, ncols=2)
    return fig


def draw_checkpoint(results: Mapping[str, Any]) -> Figure:
    """Commit latency over time with the WAL size overlaid and the checkpoints marked."""
    sc = scenario(results, "checkpoint")
    variants = sorted(rows(sc, "variants"), key=lambda v: str(v.get("name")))
    if not variants:
        raise SkipPlot("scenario 'checkpoint' has no variants")
    fig = new_figure(12, 1.0 + 3.4 * len(variants))
    axes = fig.subplots(len(variants), 1, squeeze=False)[:, 0]
    fig.suptitle("Commit latency over time, WAL size and checkpoints")
    for ax, variant in zip(axes, variants, strict=True):
        timeline = variant.get("timeline") or {}
        t_s = list(_numbers(timeline.get("t_s") or []))
        latency = list(_numbers(timeline.get("latency_ms") or []))
        points = sorted(zip(t_s, latency, strict=False))
        threshold = percentile(variant.get("stall_threshold_ms"), "")
        if points:
            ax.plot(*xy(points), ".", markersize=2.5, color="C0", label="commit latency")
            if threshold is not None:
                stalls = [(t, y) for t, y in points if y > threshold]
                if stalls:
                    ax.plot(
                        *xy(stalls),
                        "o",
                        markersize=5,
                        color="#c0392b",
                        label=f"stalls ({len(stalls)})",
                    )
        if threshold is not None:
            ax.axhline(threshold, **LIMIT_STYLE, label=f"stall threshold {threshold:.3g} ms")
        ax.set_yscale("log")
        plain_log_ticks(ax)
        ax.set_ylabel("commit latency (ms, log)")
        ax.set_xlabel("time since scenario start (s)")
        ax.set_title(
            f"{variant.get('name')}: {variant.get('description') or ''}".rstrip(": "), loc="left"
        )

        checkpoints = sorted(
            (float(c["t_s"]), str(c.get("mode", "")))
            for c in rows(variant, "checkpoints")
            if isinstance(c.get("t_s"), int | float)
        )
        if checkpoints:
            ax.vlines(
                [t for t, _ in checkpoints],
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors="0.35",
                linewidth=0.8,
                alpha=0.6,
                label=f"checkpoints ({len(checkpoints)})",
            )

        wal = variant.get("wal") or {}
        wal_points = sorted(
            zip(_numbers(wal.get("t_s") or []), _numbers(wal.get("bytes") or []), strict=False)
        )
        ax_wal = ax.twinx()
        ax_wal.grid(False)
        if wal_points:
            ax_wal.fill_between(
                [t for t, _ in wal_points],
                [b / MIB for _, b in wal_points],
                step="post",
                color="C1",
                alpha=0.18,
                label="WAL size",
            )
            ax_wal.plot(
                [t for t, _ in wal_points],
                [b / MIB for _, b in wal_points],
                drawstyle="steps-post",
                color="C1",
                linewidth=1,
            )
            ax_wal.set_ylim(0, max(b for _, b in wal_points) / MIB * 1.6 or 1)
        ax_wal.set_ylabel("WAL size (MiB)", color="C1")
        ax_wal.tick_params(axis="y", colors="C1")
        # WAL behind the latency points; one legend for both axes, outside the data.
        ax.set_zorder(ax_wal.get_zorder() + 1)
        ax.patch.set_visible(False)
        handles, labels = ax.get_legend_handles_labels()
        wal_handles, wal_labels = ax_wal.get_legend_handles_labels()
        if handles or wal_handles:
            ax.legend(
                handles + wal_handles,
                labels + wal_labels,
                loc="upper left",
                bbox_to_anchor=(1.07, 1.0),
                framealpha=0.9,
                borderaxespad=0,
            )
    return fig


def draw_claim_backlog(results: Mapping[str, Any]) -> Figure:
    """Claim (and count) latency against the size of the backlog."""
    sc = scenario(results, "query")
    series = sorted(rows(sc), key=lambda r: float(r.get("backlog") or 0))
    if not series:
        raise SkipPlot("scenario 'query' has no series")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    xs = [int(r["backlog"]) for r in series]
    for pct, style in PERCENTILE_STYLES.items():
        ys = [percentile(r.get("claim_ms"), pct) for r in series]
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
        if points:
            ax.plot(*xy(points), marker="o", linestyle=style, color="C0", label=f"claim {pct}")
        if not isinstance(series[0].get("claim_ms"), Mapping):
            break
    count_p50 = [percentile(r.get("count_ms"), "p50") for r in series]
    counts = [(float(x), y) for x, y in zip(xs, count_p50, strict=True) if y is not None and y > 0]
    if counts:
        ax.plot(*xy(counts), marker="s", color="C1", alpha=0.8, label="count(*) p50")
    no_index = [x for x, r in zip(xs, series, strict=True) if r.get("claim_uses_index") is False]
    for x in no_index:
        ax.axvline(x, **LIMIT_STYLE)
    if no_index:
        ax.plot([], [], **LIMIT_STYLE, label="claim plan does NOT use the index")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax, "x")
    plain_log_ticks(ax)
    ax.set_xlabel("backlog (pending tasks, log scale)")
    ax.set_ylabel("latency (ms, log scale)")
    growth = (sc.get("summary") or {}).get("claim_p50_growth")
    suffix = f" (claim p50 grows x{growth:.3g})" if isinstance(growth, int | float) else ""
    ax.set_title("Claim latency against the size of the backlog" + suffix)
    legend(ax, loc="best")
    return fig


def draw_claim_cases(results: Mapping[str, Any]) -> Figure:
    """Filtered claims and claim strategies (p50) against the backlog, with the 2x goal."""
    sc = scenario(results, "query")
    series = sorted(rows(sc), key=lambda r: float(r.get("backlog") or 0))
    series = [r for r in series if isinstance(r.get("claims_ms"), Mapping)]
    if not series:
        raise SkipPlot("scenario 'query' has no per-case claim latencies")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    xs = [int(r["backlog"]) for r in series]
    names = sorted({str(name) for r in series for name in r["claims_ms"]})
    names.sort(key=lambda name: name != "default")  # default first, then by name
    for i, name in enumerate(names):
        ys = [percentile(r["claims_ms"].get(name), "p50") for r in series]
        points = [(float(x), y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
        if points:
            strategy = name in ("fifo", "lifo", "weighted_random")
            ax.plot(
                *xy(points),
                marker="o" if not strategy else "s",
                linestyle="-" if not strategy else "-.",
                color=f"C{i + (i >= 3)}",  # C3 is the red of the goal line
                linewidth=2.2 if name == "default" else 1.3,
                label=name,
            )
    goal = float((sc.get("summary") or {}).get("claim_ratio_goal") or 2.0)
    base = [percentile(r["claims_ms"].get("default"), "p50") for r in series]
    limit = [(float(x), goal * y) for x, y in zip(xs, base, strict=True) if y]
    if limit:
        ax.plot(*xy(limit), **LIMIT_STYLE, label=f"{goal:g}x default (goal)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax, "x")
    plain_log_ticks(ax)
    ax.set_xlabel("backlog (queued tasks, log scale)")
    ax.set_ylabel("claim p50 (ms, log scale)")
    ax.set_title("Filtered claims and claim strategies against the size of the backlog")
    legend_right(ax)
    return fig


def draw_resources(results: Mapping[str, Any]) -> Figure:
    """CPU and RSS over time, per process role, with the scenarios laid end to end."""
    spans: list[tuple[str, float, float]] = []
    cpu: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    rss: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    offset = 0.0
    for name, sc in (results.get("scenarios") or {}).items():
        if not isinstance(sc, Mapping) or sc.get("status") != "ok":
            continue
        samples = rows(sc.get("resources") or {}, "processes")
        if not samples:
            continue
        end = max(float(s.get("t_s") or 0) for s in samples)
        length = max(end, float(sc.get("duration_s") or 0))
        for sample in samples:
            t = round(offset + float(sample.get("t_s") or 0), 3)
            role = str(sample.get("role") or "?")
            cpu[role][t] += float(sample.get("cpu_percent") or 0)
            rss[role][t] += float(sample.get("rss_bytes") or 0) / MIB
        spans.append((name, offset, offset + length))
        offset += length
    if not spans:
        raise SkipPlot("no scenario recorded resource samples")
    # Break every line between scenarios instead of joining the last sample of one to the
    # first sample of the next across the gap.
    for role in cpu:
        for _, _, stop in spans[:-1]:
            cpu[role][stop + 1e-6] = rss[role][stop + 1e-6] = math.nan
    fig = new_figure(12, 7.5)
    ax_cpu, ax_rss = fig.subplots(2, 1, sharex=True)
    fig.suptitle("CPU and memory over the run (summed per process role)")
    for i, role in enumerate(sorted(cpu)):
        times = sorted(cpu[role])
        ax_cpu.plot(times, [cpu[role][t] for t in times], color=f"C{i}", linewidth=1, label=role)
        ax_rss.plot(times, [rss[role][t] for t in times], color=f"C{i}", linewidth=1, label=role)
    cores = (results.get("environment") or {}).get("cores_logical")
    if isinstance(cores, int) and cores > 0:
        ax_cpu.axhline(
            100 * cores, color="0.3", linestyle="--", linewidth=1, label=f"all {cores} cores busy"
        )
    ax_cpu.set_ylabel("CPU (% of one core)")
    ax_cpu.set_ylim(bottom=0)
    ax_rss.set_ylabel("RSS (MiB)")
    ax_rss.set_ylim(bottom=0)
    ax_rss.set_xlabel("time since the first scenario started (s, scenarios end to end)")
    for ax in (ax_cpu, ax_rss):
        for k, (_, start, stop) in enumerate(spans):
            if k % 2:
                ax.axvspan(start, stop, color="0.5", alpha=0.08, linewidth=0)
    for name, start, stop in _label_groups(spans, min_width=0.07 * offset):
        narrow = (stop - start) < 0.07 * offset  # too narrow for a horizontal label
        ax_cpu.text(
            (start + stop) / 2,
            1.01,
            name,
            transform=ax_cpu.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
            rotation=90 if narrow else 0,
        )
    ax_cpu.set_xlim(0, offset)
    legend_right(ax_cpu)
    legend_right(ax_rss)
    return fig


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec(
        "throughput.png",
        "Throughput",
        "insert and claim throughput against the number of processes",
        draw_throughput,
    ),
    PlotSpec(
        "latency.png",
        "Latency percentiles",
        "p50/p95/p99 of insert and claim by processes; init and connect samples vs limits",
        draw_latency,
    ),
    PlotSpec(
        "busy_rate.png",
        "SQLITE_BUSY rate",
        "busy rate against the number of processes, one line per busy_timeout",
        draw_busy_rate,
    ),
    PlotSpec(
        "busy_fairness.png",
        "Fair lock: waits and shares",
        "longest lock wait and each process's share of the work against processes, with and "
        "without the fair lock",
        draw_busy_fairness,
    ),
    PlotSpec(
        "checkpoint.png",
        "Commit latency and checkpoints",
        "commit latency over time with the WAL size overlaid and the checkpoints marked",
        draw_checkpoint,
    ),
    PlotSpec(
        "claim_backlog.png",
        "Claim latency vs backlog",
        "claim latency against the size of the backlog",
        draw_claim_backlog,
    ),
    PlotSpec(
        "claim_filters.png",
        "Filtered claims and strategies vs backlog",
        "claim p50 for a rare type, a region mismatch, both, and each strategy, against the "
        "backlog, with the 2x-of-default goal",
        draw_claim_cases,
    ),
    PlotSpec(
        "resources.png", "CPU and RSS", "CPU and RSS over time, per process role", draw_resources
    ),
)


def render_all(results: Mapping[str, Any], directory: Path) -> list[PlotResult]:
    """Draw every plot into ``directory``; a plot that cannot be drawn is skipped, not fatal.

    A plot that was skipped has its stale PNG from an earlier build removed.
    """
    done: list[PlotResult] = []
    for spec in PLOTS:
        path = directory / spec.filename
        try:
            import matplotlib

            with matplotlib.rc_context(cast("Any", RC)):
                fig = spec.draw(results)
                fig.savefig(path, format="png", dpi=DPI, metadata={"Software": "prismq-bench"})
        except SkipPlot as skip:
            path.unlink(missing_ok=True)
            done.append(PlotResult(spec, None, skipped=str(skip)))
            continue
        width, height = fig.get_size_inches()
        done.append(PlotResult(spec, path, size_px=(round(width * DPI), round(height * DPI))))
    return done


# --------------------------------------------------------------------------- internals


def _why(results: Mapping[str, Any], name: str) -> str:
    try:
        scenario(results, name)
    except SkipPlot as skip:
        return str(skip)
    return f"scenario '{name}' ran"


def _label_groups(
    spans: Sequence[tuple[str, float, float]], min_width: float
) -> list[tuple[str, float, float]]:
    """Merge runs of consecutive narrow spans into one label ("init, connect")."""
    groups: list[tuple[str, float, float]] = []
    for name, start, stop in spans:
        if groups and stop - start < min_width:
            last_name, last_start, last_stop = groups[-1]
            if last_stop - last_start < min_width:
                groups[-1] = (f"{last_name}, {name}", last_start, stop)
                continue
        groups.append((name, start, stop))
    return groups


def _by_processes(row: Mapping[str, Any]) -> int:
    return int(row.get("processes") or 0)


def xy(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Split (x, y) pairs into the two lists ``Axes.plot`` takes."""
    return [x for x, _ in points], [y for _, y in points]


def _numbers(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
