"""SQLite and PostgreSQL side by side, from two results files of runs on one machine.

``python -m bench backends SQLITE.json POSTGRES.json`` (either order) writes ``backends.md``
and ``backends.png`` (into the PostgreSQL run's folder unless ``--out`` says otherwise):

- a table of the figures both runs measured (insert, claim+complete drain per process count,
  busy, the worker engine's drain, pickup latency and idle CPU), each with the ratio of
  SQLite's value to PostgreSQL's, and which backend is better by how much;
- the plot: claim+complete drain against worker processes, and the engine's drain against
  executors, for both backends (the library's rate solid, the bare twin's dotted).

The comparison is only fair between runs of the same profile on the same machine at about the
same time; the table says which runs it read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from bench.results import ResultsError, Run, fmt_number
from bench.scenarios import busy, claim, insert, worker

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKDOWN_NAME: Final = "backends.md"
PLOT_NAME: Final = "backends.png"
SCALING_PROCESSES: Final = (1, 2, 4)
"""The process counts of the scaling claim: drain rises from 1 to 4 on PostgreSQL."""

Better = Literal[">", "<", ""]


@dataclass(frozen=True)
class Measure:
    """One figure both runs may have: ``better`` is ``>`` when higher is better, ``<`` when
    lower is, and empty for a condition of the measurement (no backend is better at it)."""

    id: str
    label: str
    unit: str
    better: Better
    read: Callable[[Run], float | None]


@dataclass(frozen=True)
class Row:
    """One figure of both runs; ``ratio`` is SQLite's value over PostgreSQL's; ``faster`` the
    backend whose value is better (None when either is missing or they are equal), and
    ``by`` how many times better it is."""

    id: str
    label: str
    unit: str
    sqlite: float | None
    postgres: float | None
    ratio: float | None
    faster: Literal["sqlite", "postgres"] | None
    by: float | None


@dataclass(frozen=True)
class SideBySide:
    """The comparison of a SQLite run and a PostgreSQL run."""

    sqlite_run: str
    postgres_run: str
    rows: tuple[Row, ...]
    postgres_scales: bool | None
    """PostgreSQL's claim+complete drain rises at every step from 1 to 4 processes."""
    sqlite_flat: bool | None
    """SQLite's stays within 25 % of its 1-process rate at 2 and 4 processes."""


def _insert(mode: str, processes: int) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        result = run.result("insert", insert.Result)
        if result is None:
            return None
        return next(
            (p.tasks_per_s for p in result.series if p.mode == mode and p.processes == processes),
            None,
        )

    return read


def claim_rate(run: Run, processes: int) -> float | None:
    """The claim+complete drain in tasks/s at ``processes`` workers (None: not measured)."""
    result = run.result("claim", claim.Result)
    if result is None:
        return None
    return next((p.tasks_per_s for p in result.series if p.processes == processes), None)


def _claim(processes: int) -> Callable[[Run], float | None]:
    return lambda run: claim_rate(run, processes)


def _engine(handler: str, executors: int) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        result = run.result("worker", worker.Result)
        if result is None:
            return None
        return next(
            (
                p.tasks_per_s
                for p in result.series
                if p.handler == handler and p.executors == executors
            ),
            None,
        )

    return read


def _worker(read_result: Callable[[worker.Result], float | None]) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        result = run.result("worker", worker.Result)
        return None if result is None else read_result(result)

    return read


def _busy(read_summary: Callable[[busy.Summary], float | None]) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        result = run.result("busy", busy.Result)
        return None if result is None else read_summary(result.summary)

    return read


def _busy_wait_p99(summary: busy.Summary) -> float | None:
    found = summary.at_max_processes.get(str(busy.GATED_TIMEOUT_MS))
    return None if found is None else found.lock_wait_p99_ms


def _busy_wait_max(summary: busy.Summary) -> float | None:
    found = summary.at_max_processes.get(str(busy.GATED_TIMEOUT_MS))
    return None if found is None else found.lock_wait_max_ms


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


def _pickup(percentile: str) -> Callable[[worker.Result], float | None]:
    def read(result: worker.Result) -> float | None:
        value: float | None = getattr(result.pickup.latency_ms, percentile)
        return value

    return read


def _idle_cpu(result: worker.Result) -> float | None:
    return result.idle.total_cpu_pct


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


FIGURES: tuple[Measure, ...] = (
    *(
        Measure(
            f"insert_{mode}_{n}p",
            f"insert, {label}, {_plural(n, 'process')}",
            "tasks/s",
            ">",
            _insert(mode, n),
        )
        for mode, label in (("single", "one task per call"), ("batch", "batches"))
        for n in (1, 4)
    ),
    *(
        Measure(
            f"claim_{n}p",
            f"claim+complete drain, {_plural(n, 'process')}",
            "tasks/s",
            ">",
            _claim(n),
        )
        for n in (1, 2, 4, 8)
    ),
    Measure(
        "busy_rate_max",
        f"busy errors, most processes, {busy.GATED_TIMEOUT_MS} ms timeout",
        "%",
        "<",
        _busy(lambda s: _percent(s.busy_rate_max_processes_5000)),
    ),
    Measure(
        "busy_wait_p99",
        f"lock wait p99, most processes, {busy.GATED_TIMEOUT_MS} ms timeout",
        "ms",
        "<",
        _busy(_busy_wait_p99),
    ),
    Measure(
        "busy_wait_max",
        f"longest lock wait, most processes, {busy.GATED_TIMEOUT_MS} ms timeout",
        "ms",
        "<",
        _busy(_busy_wait_max),
    ),
    *(
        Measure(
            f"engine_noop_{n}x",
            f"worker engine drain, no-op, {_plural(n, 'executor')}",
            "tasks/s",
            ">",
            _engine("noop", n),
        )
        for n in (1, 2, 4)
    ),
    Measure(
        "engine_sleep_4x",
        "worker engine drain, 1 ms handler, 4 executors",
        "tasks/s",
        ">",
        _engine("sleep_1ms", 4),
    ),
    Measure("pickup_p50", "engine pickup latency p50", "ms", "<", _worker(_pickup("p50"))),
    Measure("pickup_p99", "engine pickup latency p99", "ms", "<", _worker(_pickup("p99"))),
    Measure(
        "pickup_rate",
        "pickup: enqueue rate (half the drain capacity)",
        "tasks/s",
        "",
        _worker(lambda r: r.pickup.achieved_rate_per_s),
    ),
    Measure("idle_cpu", "idle engine CPU", "% of a core", "<", _worker(_idle_cpu)),
)


def compare_backends(first: Run, second: Run) -> SideBySide:
    """The side-by-side comparison of two runs, one per backend, in either order.

    :raises ResultsError: the two runs are not one SQLite and one PostgreSQL run.
    """
    runs = {first.backend: first, second.backend: second}
    if set(runs) != {"sqlite", "postgres"}:
        raise ResultsError(
            f"need one SQLite and one PostgreSQL results file, got {first.backend} "
            f"({first.run_id}) and {second.backend} ({second.run_id})"
        )
    lite, pg = runs["sqlite"], runs["postgres"]
    rows = tuple(_row(figure, figure.read(lite), figure.read(pg)) for figure in FIGURES)
    return SideBySide(
        sqlite_run=lite.run_id,
        postgres_run=pg.run_id,
        rows=rows,
        postgres_scales=_rises(pg),
        sqlite_flat=_flat(lite),
    )


def _row(figure: Measure, lite: float | None, pg: float | None) -> Row:
    ratio = round(lite / pg, 3) if lite is not None and pg else None
    faster: Literal["sqlite", "postgres"] | None = None
    by: float | None = None
    if figure.better and lite is not None and pg is not None and lite != pg:
        lite_better = lite > pg if figure.better == ">" else lite < pg
        faster = "sqlite" if lite_better else "postgres"
        high, low = max(lite, pg), min(lite, pg)
        by = round(high / low, 2) if low > 0 else None
    return Row(figure.id, figure.label, figure.unit, lite, pg, ratio, faster, by)


def _scaling_rates(run: Run) -> list[float] | None:
    rates = [claim_rate(run, n) for n in SCALING_PROCESSES]
    return None if any(rate is None for rate in rates) else cast("list[float]", rates)


def _rises(run: Run) -> bool | None:
    rates = _scaling_rates(run)
    if rates is None:
        return None
    return all(later > earlier for earlier, later in pairwise(rates))


def _flat(run: Run) -> bool | None:
    rates = _scaling_rates(run)
    if rates is None:
        return None
    return all(abs(rate / rates[0] - 1) <= 0.25 for rate in rates[1:]) if rates[0] else None


def _fmt(value: float | None, unit: str) -> str:
    return fmt_number(value, "" if unit == "tasks/s" else unit)


def _verdict(flag: bool | None) -> str:
    return "not measured" if flag is None else ("yes" if flag else "no")


def _by(row: Row) -> str:
    return row.label if row.by is None else f"{row.label} ({fmt_number(row.by)}x)"


def render_markdown(comparison: SideBySide) -> str:
    """backends.md: the table, the scaling verdicts and where SQLite is faster."""
    lines = [
        "## SQLite and PostgreSQL side by side",
        "",
        f"SQLite run `{comparison.sqlite_run}`, PostgreSQL run `{comparison.postgres_run}`. "
        "SQLite/PostgreSQL is SQLite's value over PostgreSQL's.",
        "",
        "| figure | unit | SQLite | PostgreSQL | SQLite/PostgreSQL | better |",
        "|---|---|---|---|---|---|",
    ]
    for row in comparison.rows:
        if row.sqlite is None and row.postgres is None:
            continue
        better: str = "-" if row.faster is None else row.faster
        if row.by is not None:
            better += f" ({fmt_number(row.by)}x)"
        lines.append(
            f"| {row.label} | {row.unit} | {_fmt(row.sqlite, row.unit)} | "
            f"{_fmt(row.postgres, row.unit)} | {fmt_number(row.ratio)} | {better} |"
        )
    span = "→".join(str(n) for n in SCALING_PROCESSES)
    lines += [
        "",
        f"- PostgreSQL's claim+complete drain rises at every step {span} processes: "
        f"**{_verdict(comparison.postgres_scales)}**",
        f"- SQLite's stays flat (within 25 % of 1 process): **{_verdict(comparison.sqlite_flat)}**",
    ]
    sqlite_wins = [row for row in comparison.rows if row.faster == "sqlite"]
    if sqlite_wins:
        lines.append("- SQLite is better at: " + "; ".join(_by(row) for row in sqlite_wins))
    pg_wins = [row for row in comparison.rows if row.faster == "postgres"]
    if pg_wins:
        lines.append("- PostgreSQL is better at: " + "; ".join(_by(row) for row in pg_wins))
    lines += ["", f"![claim and engine drain by backend]({PLOT_NAME})", ""]
    return "\n".join(lines)


def draw(lite: Run, pg: Run) -> Figure:
    """Claim+complete drain against processes and engine drain against executors, both
    backends on the same axes."""
    from bench.plots import legend_below, new_figure, not_measured, plot_beside_bare, process_axis

    fig = new_figure(12, 5.5)
    ax_claim, ax_engine = fig.subplots(1, 2)
    fig.suptitle("SQLite and PostgreSQL on one machine")
    styles = {"sqlite": ("C0", "SQLite"), "postgres": ("C3", "PostgreSQL")}
    bare_names = {"sqlite": "bare sqlite3", "postgres": "bare psycopg"}
    drawn: list[int] = []
    for backend, run in (("sqlite", lite), ("postgres", pg)):
        color, name = styles[backend]
        result = run.result("claim", claim.Result)
        if result is None:
            continue
        series = sorted(result.series, key=lambda p: p.processes)
        xs = [p.processes for p in series]
        drawn += xs
        plot_beside_bare(
            ax_claim,
            xs,
            [p.tasks_per_s for p in series],
            [p.bare_tasks_per_s for p in series],
            color=color,
            label=name,
            bare_label=f"{name} ({bare_names[backend]})",
        )
    if drawn:
        ax_claim.set_ylim(bottom=0)
        ax_claim.set_ylabel("tasks/s")
        ax_claim.set_title("Claim + complete drain (one task per call)")
        process_axis(ax_claim, drawn)
        legend_below(ax_claim)
    else:
        not_measured(ax_claim, "no claim scenario in either run")
    executors: list[int] = []
    for backend, run in (("sqlite", lite), ("postgres", pg)):
        color, name = styles[backend]
        found = run.result("worker", worker.Result)
        if found is None:
            continue
        for handler, marker in (("noop", "o-"), ("sleep_1ms", "s--")):
            points = sorted(
                (p for p in found.series if p.handler == handler), key=lambda p: p.executors
            )
            if points:
                executors += [p.executors for p in points]
                ax_engine.plot(
                    [p.executors for p in points],
                    [p.tasks_per_s for p in points],
                    marker,
                    color=color,
                    label=f"{name}, {handler}",
                )
    if executors:
        ax_engine.set_ylim(bottom=0)
        ax_engine.set_ylabel("tasks/s")
        ax_engine.set_title("Worker engine drain (one engine)")
        process_axis(ax_engine, executors)
        ax_engine.set_xlabel("executor processes")
        legend_below(ax_engine)
    else:
        not_measured(ax_engine, "no worker scenario in either run")
    return fig


def write(lite: Run, pg: Run, folder: Path) -> tuple[Path, Path | None]:
    """Write backends.md and (with matplotlib) backends.png into ``folder``; their paths."""
    comparison = compare_backends(lite, pg)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / MARKDOWN_NAME
    markdown.write_text(render_markdown(comparison), encoding="utf-8", newline="\n")
    try:
        import matplotlib
    except ImportError:
        return markdown, None
    from bench.plots import DPI, RC

    runs = {lite.backend: lite, pg.backend: pg}
    with matplotlib.rc_context(cast("Any", RC)):
        fig = draw(runs["sqlite"], runs["postgres"])
        plot = folder / PLOT_NAME
        fig.savefig(plot, format="png", dpi=DPI, metadata={"Software": "prismq-bench"})
    return markdown, plot


def rows_as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows as JSON objects (for ``--json``)."""
    from bench.results import to_jsonable

    return [to_jsonable(row) for row in rows]
