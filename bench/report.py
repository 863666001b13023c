"""The report of one run: PNG plots, ``summary.md`` and ``index.html`` next to ``results.json``.

Everything is rebuilt from ``results.json`` alone (``python -m bench report RESULTS.json``), so
a report can be regenerated from a CI artifact. When ``GITHUB_STEP_SUMMARY`` is set, summary.md
is appended to it from Python as UTF-8, which works the same under pwsh on Windows runners.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import results as model
from bench.compare import KEY_FIGURES
from bench.results import Run, fmt_number
from bench.scenarios import checkpoint

if TYPE_CHECKING:
    from bench.plots import PlotResult

SUMMARY_NAME = "summary.md"
INDEX_NAME = "index.html"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

ENVIRONMENT_KEYS = (
    ("os", "OS"),
    ("os_version", "OS version"),
    ("machine", "Machine"),
    ("cpu", "CPU"),
    ("cores_logical", "Logical cores"),
    ("cores_physical", "Physical cores"),
    ("ram_bytes", "RAM"),
    ("python", "Python"),
    ("python_implementation", "Implementation"),
    ("sqlite_version", "SQLite"),
    ("filesystem", "Filesystem"),
    ("defender_realtime", "Defender real-time scanning"),
    ("ci", "CI"),
    ("git_commit", "Git commit"),
    ("git_dirty", "Uncommitted changes"),
)


@dataclass(frozen=True)
class Table:
    """A header and rows of plain text; rendered as Markdown and as HTML."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


# --------------------------------------------------------------------------- content


def metrics_table(run: Run) -> Table:
    """The success-metric table: status, value and limit of each metric."""
    out = tuple(
        (
            m.label,
            m.status,
            fmt_number(m.value, m.unit),
            f"{m.op} {fmt_number(m.limit, m.unit)}",
            m.statistic,
        )
        for m in run.metrics
    )
    return Table(("Metric", "Status", "Value", "Limit", "Statistic"), out)


def key_figures_table(run: Run) -> Table:
    """Each key figure with the variant it comes from; the library's defaults lead."""
    out = []
    for figure in KEY_FIGURES:
        better = "higher is better" if figure.op == ">" else "lower is better"
        reading = figure.read(run)
        out.append((figure.label, reading.variant, fmt_number(reading.value, figure.unit), better))
    found = run.result("checkpoint", checkpoint.Result)
    if found is not None:
        by_variant = found.summary.by_variant
        if by_variant:
            name, largest = max(by_variant.items(), key=lambda item: item[1].max_wal_bytes)
            out.append(("Largest WAL", name, fmt_bytes(largest.max_wal_bytes), ""))
        default = by_variant.get(checkpoint.DEFAULT_VARIANT)
        if default is not None:
            out.append(
                (
                    "Commit stalls",
                    f"{checkpoint.DEFAULT_VARIANT}, the default",
                    fmt_number(default.stalls),
                    "",
                )
            )
        out.append(("Commit stalls", "all variants", fmt_number(found.summary.total_stalls), ""))
    return Table(("Figure", "From", "Value", ""), tuple(out))


def scenarios_table(run: Run) -> Table:
    out = tuple(
        (name, sc.status, fmt_number(sc.duration_s, "s"), sc.error or "")
        for name, sc in run.scenarios.items()
    )
    return Table(("Scenario", "Status", "Duration", "Error"), out)


def correctness_table(run: Run) -> Table:
    out = tuple(
        (f"{c.scenario}.{c.name}", "ok" if c.ok else "FAILED", c.detail)
        for c in run.correctness.checks
    )
    return Table(("Check", "Result", "Detail"), out)


def environment_table(run: Run) -> Table:
    env = run.environment
    out = [("Backend", backend_text(run))]
    for key, label in ENVIRONMENT_KEYS:
        value = getattr(env, key)
        text = fmt_bytes(value) if key == "ram_bytes" else fmt_number(value)
        if key == "git_commit" and isinstance(value, str):
            text = value[:12]
        out.append((label, text))
    return Table(("", ""), tuple(out))


def backend_text(run: Run) -> str:
    """``sqlite``, or the PostgreSQL server: where it ran, its version and commit settings."""
    server = run.postgres
    if run.backend != "postgres" or server is None:
        return run.backend
    settings = ", ".join(f"{name} {value}" for name, value in sorted(server.settings.items()))
    return f"postgres {server.version or '?'} ({server.source} server {server.url}; {settings})"


def fmt_bytes(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.3g} {unit}" if unit != "B" else f"{size:.0f} B"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _correct_text(run: Run) -> str:
    return "ok (no task lost or duplicated)" if run.correctness.ok else "FAILED"


def verdict(run: Run) -> str:
    return "PASS" if run.passed else "FAIL"


# --------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in table.header) + " |"]
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def render_markdown(results: Run, plots: Sequence[PlotResult]) -> str:
    """summary.md: verdict, metric table, key figures, scenarios, environment, plots."""
    status = verdict(results)
    icon = {"PASS": "✅", "FAIL": "❌"}.get(status, "❔")
    lines = [
        f"## PrismQ bench {icon} {status} — `{results.run_id}`",
        "",
        f"Backend **{results.backend}**, profile **{results.profile}**, "
        f"started {results.started_utc} "
        f"UTC, {fmt_number(results.duration_s, 's')}.",
        "",
        "### Success metrics",
        "",
        *markdown_table(metrics_table(results)),
        "",
    ]
    correct = _correct_text(results)
    lines.append(f"**Correctness:** {correct}")
    failed = [row for row in correctness_table(results).rows if row[1] != "ok"]
    lines += (
        ["", *markdown_table(Table(("Check", "Result", "Detail"), tuple(failed)))] if failed else []
    )
    lines += ["", "### Key figures", "", *markdown_table(key_figures_table(results)), ""]
    lines += ["### Scenarios", "", *markdown_table(scenarios_table(results)), ""]
    lines += ["### Plots", ""]
    for plot in plots:
        if plot.path is None:
            lines.append(f"- {plot.spec.title}: *skipped* ({plot.skipped})")
        else:
            lines.append(f"- [{plot.spec.filename}]({plot.spec.filename}): {plot.spec.description}")
    lines += ["", "### Environment", ""]
    lines += [f"- **{label}:** {value}" for label, value in environment_table(results).rows]
    lines += ["", f"Command: `{' '.join(results.command)}`", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1250px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f3f3f3; }
td.PASS, span.PASS { color: #1e7b34; font-weight: bold; }
td.FAIL, span.FAIL { color: #b02a2a; font-weight: bold; }
td.NOT_MEASURED { color: #777; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; margin-top: 0.3rem; }
.skipped { color: #777; }
"""


def html_table(table: Table, status_column: int | None = None) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            css = f' class="{e(cell)}"' if i == status_column else ""
            cells.append(f"<td{css}>{e(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(results: Run, plots: Sequence[PlotResult]) -> str:
    """index.html: the same as summary.md, plots embedded as base64 so the file stands alone."""
    e = html.escape
    status = verdict(results)
    run_id = results.run_id
    correct = _correct_text(results)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>PrismQ bench {e(status)} {e(run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>PrismQ bench <span class="{e(status)}">{e(status)}</span> — {e(run_id)}</h1>',
        f"<p>Profile <b>{e(results.profile)}</b>, started "
        f"{e(results.started_utc)} UTC, "
        f"{e(fmt_number(results.duration_s, 's'))}.</p>",
        "<h2>Success metrics</h2>",
        html_table(metrics_table(results), status_column=1),
        f"<p><b>Correctness:</b> {e(correct)}</p>",
        # Dozens of checks: fold them away unless one failed.
        "<details open>"
        if any(r[1] != "ok" for r in correctness_table(results).rows)
        else "<details>",
        f"<summary>{len(correctness_table(results).rows)} checks</summary>",
        html_table(correctness_table(results)),
        "</details>",
        "<h2>Key figures</h2>",
        html_table(key_figures_table(results)),
        "<h2>Scenarios</h2>",
        html_table(scenarios_table(results)),
        "<h2>Plots</h2>",
    ]
    for plot in plots:
        if plot.path is None:
            parts.append(
                f'<p class="skipped">{e(plot.spec.title)}: skipped ({e(plot.skipped or "")})</p>'
            )
            continue
        data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
        size = f' width="{plot.size_px[0]}" height="{plot.size_px[1]}"' if plot.size_px else ""
        parts.append(
            f'<figure id="{e(plot.spec.filename)}"><img src="data:image/png;base64,{data}"{size} '
            f'alt="{e(plot.spec.title)}"><figcaption><a href="{e(plot.spec.filename)}">'
            f"{e(plot.spec.filename)}</a>: {e(plot.spec.description)}</figcaption></figure>"
        )
    parts += ["<h2>Environment</h2>", html_table(environment_table(results))]
    command = " ".join(results.command)
    parts += [f"<p>Command: <code>{e(command)}</code></p>", "</body></html>", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- entry points


def append_step_summary(markdown: str) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` (UTF-8) when it is set."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


def build_report(results_path: Path, *, step_summary: bool = True) -> Path:
    """Write the PNGs, summary.md and index.html next to ``results_path``; return that folder.

    :param step_summary: append summary.md to ``$GITHUB_STEP_SUMMARY`` when that is set.
    :raises bench.results.ResultsError: ``results_path`` cannot be read as a results.json.
    :raises OSError: the report cannot be written.
    """
    from bench.plots import render_all

    results = model.load(results_path)
    folder = results_path.parent
    plots = render_all(results, folder)
    markdown = render_markdown(results, plots)
    (folder / SUMMARY_NAME).write_text(markdown, encoding="utf-8", newline="\n")
    (folder / INDEX_NAME).write_text(render_html(results, plots), encoding="utf-8", newline="\n")
    if step_summary:
        append_step_summary(markdown)
    return folder
