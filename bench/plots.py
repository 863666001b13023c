"""The report's PNG plots, drawn from a :class:`bench.results.Run` alone (see bench/RESULTS.md).

matplotlib is imported inside the functions, so ``bench`` imports without it, and only through
``matplotlib.figure.Figure``: no pyplot, no global figure state, no GUI backend. A bare Figure
renders through Agg on ``savefig``. Every figure has a fixed size and dpi and is drawn from
sorted inputs, so the PNGs of two runs are comparable side by side.

Each plot raises ``SkipPlot`` with a reason when its scenario is missing or did not run
cleanly (``Run.result``); ``render_all`` collects those reasons for the summary instead of
failing the report. Limit lines come from the run's own metric verdicts: a run without the
metric draws no line.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bench.results import BUSY_RATE_PCT, CONNECT_MS, INIT_MS, TX_PER_S, Latency, Run, fmt_number
from bench.scenarios import busy, checkpoint, claim, connect, init, insert, query, soak, worker

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
R = TypeVar("R")


class SkipPlot(Exception):
    """The plot cannot be drawn from this run; the message says why."""


@dataclass(frozen=True)
class PlotSpec:
    """One PNG of the report."""

    filename: str
    title: str
    description: str
    draw: Callable[[Run], Figure]


@dataclass(frozen=True)
class PlotResult:
    """What ``render_all`` did with one PlotSpec."""

    spec: PlotSpec
    path: Path | None  # None when skipped
    skipped: str | None = None  # the reason
    size_px: tuple[int, int] | None = None


# --------------------------------------------------------------------------- data helpers


def needed(run: Run, name: str, kind: type[R]) -> R:
    """Scenario ``name``'s result if it ran OK, else ``SkipPlot`` saying why not."""
    found = run.result(name, kind)
    if found is None:
        raise SkipPlot(run.why_not(name))
    return found


def percentile(value: Latency, name: str) -> float | None:
    """One percentile (``p50``, ``p95``, ``p99`` or ``max``) of a latency record."""
    found: float | None = getattr(value, name)
    return found


def limit_of(run: Run, metric_id: str) -> float | None:
    """The limit the run's gate judged ``metric_id`` against (None: not in this run)."""
    metric = run.metric(metric_id)
    return None if metric is None else metric.limit


def bare_name(run: Run) -> str:
    """What the run's bare twin used: sqlite3, or psycopg on PostgreSQL."""
    return "bare psycopg" if run.backend == "postgres" else "bare sqlite3"


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
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: fmt_number(value)))
    if low > 0 and high / low < 100:

        def minor(value: float, _pos: int | None) -> str:
            mantissa = f"{value:.1e}"[:3]
            return fmt_number(value) if mantissa in ("2.0", "5.0") else ""

        axis.set_minor_formatter(FuncFormatter(minor))
    else:
        axis.set_minor_formatter(NullFormatter())


def plot_beside_bare(
    ax: Axes,
    xs: Sequence[float],
    measured: Sequence[float],
    bare: Sequence[float],
    *,
    color: str,
    label: str,
    bare_label: str,
) -> None:
    """A measured series (solid line, dots) and its bare baseline (dotted line, crosses, a
    little faded) in one colour, so each pair reads as one."""
    ax.plot(xs, measured, "o-", color=color, label=label)
    ax.plot(xs, bare, "x:", color=color, alpha=0.7, label=bare_label)


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


def draw_throughput(run: Run) -> Figure:
    """Insert and claim throughput against the number of processes."""
    inserted = run.result("insert", insert.Result)
    claimed = run.result("claim", claim.Result)
    if inserted is None and claimed is None:
        raise SkipPlot(f"{run.why_not('insert')}; {run.why_not('claim')}")
    fig = new_figure(12, 5.5)
    ax_insert, ax_claim = fig.subplots(1, 2)
    fig.suptitle("Throughput against the number of processes")

    if inserted is None:
        not_measured(ax_insert, run.why_not("insert"))
    else:
        for i, mode in enumerate(sorted({p.mode for p in inserted.series})):
            mine = sorted((p for p in inserted.series if p.mode == mode), key=_by_processes)
            plot_beside_bare(
                ax_insert,
                [p.processes for p in mine],
                [p.tasks_per_s for p in mine],
                [p.bare_tasks_per_s for p in mine],
                color=f"C{i}",
                label=f"{mode} (queue)",
                bare_label=f"{mode} ({bare_name(run)})",
            )
        ax_insert.set_yscale("log")
        ax_insert.set_ylabel("tasks/s (log scale)")
        ax_insert.set_title("Insert")
        process_axis(ax_insert, (p.processes for p in inserted.series))
        plain_log_ticks(ax_insert)
        legend_below(ax_insert)

    if claimed is None:
        not_measured(ax_claim, run.why_not("claim"))
    else:
        series = sorted(claimed.series, key=_by_processes)
        xs = [p.processes for p in series]
        ax_claim.plot(xs, [p.tx_per_s for p in series], "o-", color="C2", label="transactions")
        ax_claim.plot(xs, [p.tasks_per_s for p in series], "s-", color="C0", label="tasks")
        bare = [p.bare_tasks_per_s for p in series]
        if bare:
            ax_claim.plot(xs, bare, "x:", color="C0", alpha=0.7, label=f"tasks ({bare_name(run)})")
        limit = limit_of(run, TX_PER_S)
        if limit is not None:
            ax_claim.axhline(limit, **LIMIT_STYLE, label=f"limit: > {limit:g} tx/s")
        tops = [p.tx_per_s for p in series] + bare + ([] if limit is None else [limit])
        ax_claim.set_ylim(bottom=0, top=max(tops, default=1.0) * 1.2)
        ax_claim.set_ylabel("per second")
        ax_claim.set_title("Claim + complete (each task = claim tx + complete tx)")
        process_axis(ax_claim, xs)
        legend_below(ax_claim)
    return fig


def draw_latency(run: Run) -> Figure:
    """Latency percentiles: insert and claim calls per process count; init and connect samples."""
    from matplotlib.ticker import MaxNLocator

    names = ("insert", "claim", "init", "connect")
    inserted = run.result("insert", insert.Result)
    claimed = run.result("claim", claim.Result)
    created = run.result("init", init.Result)
    connected = run.result("connect", connect.Result)
    if inserted is None and claimed is None and created is None and connected is None:
        raise SkipPlot("; ".join(run.why_not(name) for name in names))
    fig = new_figure(12, 8.5)
    axes = fig.subplots(2, 2)
    fig.suptitle("Latency percentiles")

    sweeps: list[tuple[str, list[tuple[str, int, Latency]] | None, str]] = [
        (
            "insert",
            None
            if inserted is None
            else [(p.mode, p.processes, p.latency_ms) for p in inserted.series],
            "Insert call latency",
        ),
        (
            "claim",
            None if claimed is None else [("", p.processes, p.latency_ms) for p in claimed.series],
            "Claim + complete cycle latency",
        ),
    ]
    for ax, (name, points, title) in zip(axes[0], sweeps, strict=True):
        if points is None:
            not_measured(ax, run.why_not(name))
            continue
        for i, mode in enumerate(sorted({mode for mode, _, _ in points})):
            color = f"C{i}"
            mine = sorted((p for p in points if p[0] == mode), key=lambda p: p[1])
            xs = [processes for _, processes, _ in mine]
            for pct, style in PERCENTILE_STYLES.items():
                ys = [percentile(latency, pct) for _, _, latency in mine]
                found = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
                if found:
                    label = f"{mode} {pct}" if mode else pct
                    ax.plot(*xy(found), marker="o", linestyle=style, color=color, label=label)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(title)
        process_axis(ax, (processes for _, processes, _ in points))
        plain_log_ticks(ax)
        legend_below(ax, ncols=3)

    timings = (
        ("init", created, INIT_MS, "Database initialisation"),
        ("connect", connected, CONNECT_MS, "Connection overhead"),
    )
    for ax, (name, found_samples, metric_id, title) in zip(axes[1], timings, strict=True):
        if found_samples is None:
            not_measured(ax, run.why_not(name))
            continue
        samples = sorted(found_samples.samples.ms)
        limit = limit_of(run, metric_id)
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
        if limit is not None:
            ax.axhline(limit, **LIMIT_STYLE, label=f"limit: < {limit:g} ms")
        top = max([*samples, *([] if limit is None else [limit])], default=1.0)
        ax.set_ylim(0, top * 1.15)
        ax.set_ylabel("time (ms)")
        ax.set_title(title)
        # Samples are sorted fastest first: the left half is low, the middle left is empty.
        legend(ax, loc="center left")
    return fig


def draw_busy_rate(run: Run) -> Figure:
    """SQLITE_BUSY rate against processes, one line per busy_timeout."""
    # The shipped configuration only; the comparison with the other setting has its own plot.
    result = needed(run, "busy", busy.Result)
    series = [p for p in result.series if p.fair_lock == result.summary.default_fair_lock]
    if not series:
        raise SkipPlot("scenario 'busy' has no series")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    limit = limit_of(run, BUSY_RATE_PCT)
    peak = 0.0
    timeouts = sorted({p.busy_timeout_ms for p in series})
    for i, timeout in enumerate(timeouts):
        mine = sorted((p for p in series if p.busy_timeout_ms == timeout), key=_by_processes)
        ys = [p.busy_rate * 100 for p in mine]
        peak = max([peak, *ys])
        ax.plot(
            [p.processes for p in mine],
            ys,
            marker="os^Dv<>"[i % 7],
            color=f"C{i}",
            label=f"busy_timeout {timeout} ms",
        )
    if limit is not None:
        ax.axhline(
            limit,
            **LIMIT_STYLE,
            label=f"limit: < {limit:g} % (at busy_timeout {busy.GATED_TIMEOUT_MS} ms)",
        )
    scale = limit if limit is not None and limit > 0 else 1.0
    if peak > 10 * scale:
        # symlog keeps 0..limit linear (so the limit line and zero stay visible) and compresses
        # the large rates of a zero timeout above it.
        ax.set_yscale("symlog", linthresh=scale)
        ax.set_ylim(-0.04 * scale, peak * 2)
        plain_log_ticks(ax)
        ax.set_ylabel("SQLITE_BUSY errors (% of operations, symlog)")
    else:
        top = max(peak, scale) * 1.3
        ax.set_ylim(-0.02 * top, top)
        ax.set_ylabel("SQLITE_BUSY errors (% of operations)")
    ax.set_title("SQLITE_BUSY error rate against the number of processes")
    process_axis(ax, (p.processes for p in series))
    legend_right(ax)
    return fig


def draw_busy_fairness(run: Run) -> Figure:
    """Longest lock wait and each process's share against processes, with and without the
    fair lock, at the gated busy timeout."""
    found = needed(run, "busy", busy.Result)
    series = [p for p in found.series if p.busy_timeout_ms == busy.GATED_TIMEOUT_MS]
    if {p.fair_lock for p in series} != {True, False}:
        raise SkipPlot("scenario 'busy' did not run with and without the fair lock")
    fig = new_figure(12, 5.5)
    ax_wait, ax_share = fig.subplots(1, 2)
    fig.suptitle(
        f"Fair lock: lock waits and shares of the work (busy_timeout {busy.GATED_TIMEOUT_MS} ms)"
    )
    for fair in (True, False):
        mine = sorted((p for p in series if p.fair_lock is fair), key=_by_processes)
        xs = [p.processes for p in mine]
        label = "fair lock" if fair else "busy handler only"
        color = "C0" if fair else "C1"
        waits = [p.lock_wait_ms.max or math.nan for p in mine]
        p99 = [p.lock_wait_ms.p99 or math.nan for p in mine]
        ax_wait.plot(xs, waits, marker="o", color=color, label=f"{label}: max")
        ax_wait.plot(xs, p99, marker=".", linestyle=":", color=color, label=f"{label}: p99")
        low = [p.share.min_over_mean or math.nan for p in mine]
        high = [p.share.max_over_mean or math.nan for p in mine]
        jain = mine[-1].share.jain if mine else None
        ax_share.fill_between(xs, low, high, color=color, alpha=0.18)
        last = f", Jain {jain:.2f} at {xs[-1]}" if jain is not None else ""
        ax_share.plot(xs, low, marker="v", color=color, label=f"{label}: min/mean{last}")
        ax_share.plot(xs, high, marker="^", color=color, label=f"{label}: max/mean")
    ax_wait.axhline(
        busy.FAIR_WAIT_GOAL_MS, **LIMIT_STYLE, label=f"goal: max <= {busy.FAIR_WAIT_GOAL_MS:g} ms"
    )
    ax_wait.set_yscale("log")
    plain_log_ticks(ax_wait)
    ax_wait.set_ylabel("lock wait (ms, log scale)")
    ax_wait.set_title("Lock wait")
    low_goal, high_goal = busy.FAIR_SHARE_GOAL
    for bound in (low_goal, high_goal):
        ax_share.axhline(bound, **LIMIT_STYLE)
    ax_share.plot([], [], **LIMIT_STYLE, label=f"goal: {low_goal:g}x to {high_goal:g}x the mean")
    ax_share.axhline(1.0, color="0.4", linewidth=0.8)
    ax_share.set_ylabel("operations of a process / mean")
    ax_share.set_title("Share of the operations")
    for ax in (ax_wait, ax_share):
        process_axis(ax, (p.processes for p in series))
        legend_below(ax, ncols=2)
    return fig


def draw_checkpoint(run: Run) -> Figure:
    """Commit latency over time with the WAL size overlaid and the checkpoints marked."""
    variants = sorted(needed(run, "checkpoint", checkpoint.Result).variants, key=lambda v: v.name)
    if not variants:
        raise SkipPlot("scenario 'checkpoint' has no variants")
    fig = new_figure(12, 1.0 + 3.4 * len(variants))
    axes = fig.subplots(len(variants), 1, squeeze=False)[:, 0]
    fig.suptitle("Commit latency over time, WAL size and checkpoints")
    for ax, variant in zip(axes, variants, strict=True):
        points = sorted(zip(variant.timeline.t_s, variant.timeline.latency_ms, strict=False))
        threshold = variant.stall_threshold_ms
        if points:
            ax.plot(*xy(points), ".", markersize=2.5, color="C0", label="commit latency")
            stalls = [(t, y) for t, y in points if y > threshold]
            if stalls:
                ax.plot(
                    *xy(stalls),
                    "o",
                    markersize=5,
                    color="#c0392b",
                    label=f"stalls ({len(stalls)})",
                )
        ax.axhline(threshold, **LIMIT_STYLE, label=f"stall threshold {threshold:.3g} ms")
        ax.set_yscale("log")
        plain_log_ticks(ax)
        ax.set_ylabel("commit latency (ms, log)")
        ax.set_xlabel("time since scenario start (s)")
        ax.set_title(f"{variant.name}: {variant.description}".rstrip(": "), loc="left")

        checkpoints = sorted((c.t_s, c.mode) for c in variant.checkpoints)
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

        wal_points = sorted(zip(variant.wal.t_s, variant.wal.bytes, strict=False))
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


def draw_claim_backlog(run: Run) -> Figure:
    """Claim (and count) latency against the size of the backlog."""
    found = needed(run, "query", query.Result)
    series = sorted(found.series, key=lambda p: p.backlog)
    if not series:
        raise SkipPlot("scenario 'query' has no series")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    xs = [p.backlog for p in series]
    for pct, style in PERCENTILE_STYLES.items():
        ys = [percentile(p.claim_ms, pct) for p in series]
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
        if points:
            ax.plot(*xy(points), marker="o", linestyle=style, color="C0", label=f"claim {pct}")
    count_p50 = [p.count_ms.p50 for p in series]
    counts = [(float(x), y) for x, y in zip(xs, count_p50, strict=True) if y is not None and y > 0]
    if counts:
        ax.plot(*xy(counts), marker="s", color="C1", alpha=0.8, label="count(*) p50")
    no_index = [p.backlog for p in series if not p.claim_uses_index]
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
    growth = found.summary.claim_p50_growth
    suffix = f" (claim p50 grows x{growth:.3g})" if growth is not None else ""
    ax.set_title("Claim latency against the size of the backlog" + suffix)
    legend(ax, loc="best")
    return fig


def draw_claim_cases(run: Run) -> Figure:
    """Filtered claims and claim strategies (p50) against the backlog, with the 2x goal."""
    found = needed(run, "query", query.Result)
    series = sorted((p for p in found.series if p.claims_ms), key=lambda p: p.backlog)
    if not series:
        raise SkipPlot("scenario 'query' has no per-case claim latencies")
    fig = new_figure(10, 6)
    ax = fig.subplots()
    xs = [p.backlog for p in series]
    names = sorted({name for p in series for name in p.claims_ms})
    names.sort(key=lambda name: name != query.BASELINE_CASE)  # default first, then by name
    for i, name in enumerate(names):
        ys = [p.claims_ms[name].p50 if name in p.claims_ms else None for p in series]
        points = [(float(x), y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
        if points:
            strategy = name in query.STRATEGY_CASES
            ax.plot(
                *xy(points),
                marker="s" if strategy else "o",
                linestyle="-." if strategy else "-",
                color=f"C{i + (i >= 3)}",  # C3 is the red of the goal line
                linewidth=2.2 if name == query.BASELINE_CASE else 1.3,
                label=name,
            )
    goal = found.summary.claim_ratio_goal
    base = [p.claims_ms[query.BASELINE_CASE].p50 for p in series]
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


def draw_resources(run: Run) -> Figure:
    """CPU and RSS over time, per process role, with the scenarios laid end to end."""
    spans: list[tuple[str, float, float]] = []
    cpu: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    rss: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    offset = 0.0
    for name, sc in run.scenarios.items():
        samples = sc.resources.processes
        if not sc.ok or not samples:
            continue
        end = max(s.t_s for s in samples)
        length = max(end, sc.duration_s)
        for sample in samples:
            t = round(offset + sample.t_s, 3)
            cpu[sample.role][t] += sample.cpu_percent
            rss[sample.role][t] += sample.rss_bytes / MIB
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
    cores = run.environment.cores_logical
    if cores is not None and cores > 0:
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


def draw_worker_throughput(run: Run) -> Figure:
    """The worker engine's drain rate against executors, beside the bare one-at-a-time loop."""
    found = needed(run, "worker", worker.Result)
    if not found.series:
        raise SkipPlot("scenario 'worker' has no series")
    fig = new_figure(8, 5.5)
    ax = fig.subplots()
    fig.suptitle("Worker engine drain against executors")
    handlers = sorted({p.handler for p in found.series})
    for i, handler in enumerate(handlers):
        mine = sorted((p for p in found.series if p.handler == handler), key=lambda p: p.executors)
        plot_beside_bare(
            ax,
            [p.executors for p in mine],
            [p.tasks_per_s for p in mine],
            [p.bare_tasks_per_s for p in mine],
            color=f"C{i}",
            label=f"{handler} (engine)",
            bare_label=f"{handler} (bare loop, one process per executor)",
        )
    ax.set_yscale("log")
    ax.set_ylabel("tasks/s (log scale)")
    ax.set_xlabel("executors (engine) or processes (bare)")
    ax.set_xticks(sorted({p.executors for p in found.series}))
    plain_log_ticks(ax)
    legend_below(ax)
    return fig


def draw_worker_pickup(run: Run) -> Figure:
    """The distribution of pickup latency (enqueue to handler start) at a steady rate."""
    pickup = needed(run, "worker", worker.Result).pickup
    hist = pickup.latency_hist
    if not hist.counts:
        raise SkipPlot("scenario 'worker' has no pickup samples")
    edges = list(hist.edges_ms)
    fig = new_figure(8, 5.5)
    ax = fig.subplots()
    load = "" if pickup.achieved_load is None else f" = {pickup.achieved_load:.2f} of the drain"
    fig.suptitle(
        f"Pickup latency at {pickup.achieved_rate_per_s:,.0f} tasks/s{load} "
        f"({pickup.executors} executors, n={hist.n})"
    )
    widths = [hi - lo for lo, hi in pairwise(edges)]
    ax.bar(edges[:-1], list(hist.counts), width=widths, align="edge", color="C0", alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("ms from just before enqueue to handler start (log scale)")
    ax.set_ylabel("tasks")
    for name, style in PERCENTILE_STYLES.items():
        value = percentile(pickup.latency_ms, name)
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"{name} {value:.2f} ms")
    ax.axvline(20.0, **LIMIT_STYLE, label="target: p99 <= 20 ms")
    plain_log_ticks(ax, "x")
    legend(ax)
    return fig


def draw_soak(run: Run) -> Figure:
    """File and WAL size, claim p50/p99 and queue depth against time, with prunes and the
    backup marked and the thirds the gate compares shaded."""
    result = needed(run, "soak", soak.Result)
    summary = result.summary
    fig = new_figure(12, 10)
    ax_size, ax_claim, ax_depth = fig.subplots(3, 1, sharex=True)
    gate = "bounded" if summary.bounded else "NOT bounded"
    steady = "steady" if summary.steady else "NOT steady"
    fig.suptitle(
        f"Soak: producers, workers, a pruner and a backup together ({gate}; claim p99 "
        f"last/first third {fmt_number(summary.p99_ratio)}x, {steady})"
    )
    times = list(result.timeline.t_s)
    ax_size.plot(times, [b / MIB for b in result.timeline.file_bytes], color="C0", label="file")
    ax_size.plot(times, [b / MIB for b in result.timeline.wal_bytes], color="C1", label="WAL")
    ax_size.set_ylabel("size (MiB)")
    ax_size.set_title("database file and WAL", loc="left")

    windows = [w for w in result.claims if w.p50_ms is not None and w.p99_ms is not None]
    for name, values in (
        ("p50", [w.p50_ms for w in windows]),
        ("p99", [w.p99_ms for w in windows]),
    ):
        ax_claim.plot(
            [w.t_s for w in windows],
            values,
            PERCENTILE_STYLES[name],
            marker="o",
            markersize=3,
            color="C2",
            label=f"claim {name}",
        )
    if windows:
        ax_claim.set_yscale("log")
        plain_log_ticks(ax_claim)
    ax_claim.set_ylabel("claim latency (ms, log)")
    ax_claim.set_title("claim latency per window", loc="left")

    ax_depth.plot(times, list(result.timeline.depth), color="C4", label="queued + processing")
    ax_depth.set_ylabel("tasks")
    ax_depth.set_xlabel("time since scenario start (s)")
    ax_depth.set_title("queue depth", loc="left")

    params = run.scenarios["soak"].params
    third = (params.duration_s if isinstance(params, soak.Params) else max(times, default=0)) / 3
    for ax in (ax_size, ax_claim, ax_depth):
        for index in (0, 2):
            ax.axvspan(index * third, (index + 1) * third, color="0.5", alpha=0.07, linewidth=0)
        prunes = [p.t_s for p in result.prunes if p.deleted]
        if prunes:
            ax.vlines(
                prunes,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors="0.4",
                linewidth=0.6,
                alpha=0.5,
                label="prune" if ax is ax_size else None,
            )
        if result.backup is not None:
            ax.axvspan(
                result.backup.t_s,
                result.backup.t_s + result.backup.seconds,
                color="#c0392b",
                alpha=0.25,
                label="backup" if ax is ax_size else None,
            )
        legend_right(ax)
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
        "worker_throughput.png",
        "Worker engine drain",
        "worker engine tasks/s against executors, beside the bare one-at-a-time loop",
        draw_worker_throughput,
    ),
    PlotSpec(
        "worker_pickup.png",
        "Worker engine pickup latency",
        "distribution of enqueue-to-handler-start latency at half the drain capacity",
        draw_worker_pickup,
    ),
    PlotSpec(
        "soak.png",
        "Soak",
        "file and WAL size, claim p50/p99 and queue depth over time under producers, workers, "
        "a pruner and a backup",
        draw_soak,
    ),
    PlotSpec(
        "resources.png", "CPU and RSS", "CPU and RSS over time, per process role", draw_resources
    ),
)


def render_all(results: Run, directory: Path) -> list[PlotResult]:
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


def _by_processes(point: insert.Point | claim.Point | busy.Point) -> int:
    return point.processes


def xy(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Split (x, y) pairs into the two lists ``Axes.plot`` takes."""
    return [x for x, _ in points], [y for _, y in points]
