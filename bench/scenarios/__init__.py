"""The stress scenarios, and how to add one.

A scenario is a module ``bench/scenarios/<name>.py`` that declares, as frozen dataclasses:

- ``Params``: its settings, typed (``tuple[int, ...]`` for a sweep); a profile in
  ``bench/profiles.py`` gives one instance per profile, and ``results.json`` stores it once,
  under ``scenarios.<name>.params``;
- its records: usually ``Point`` (one row of ``series``), ``Summary`` and ``Result`` (whose
  fields, e.g. ``summary`` and ``series``, are written beside ``status`` in the scenario's
  object); shared shapes (``Latency``, ``Histogram``, ``Accounting``) live in
  ``bench.results``;
- ``run(context: ScenarioContext[Params]) -> Result``: it starts processes with
  ``context.run_processes([Job(SomeArgs(...), role)])``, where ``SomeArgs`` is a frozen args
  record in ``bench/workers.py`` with a ``run(ready)`` method returning an outcome record (add
  the record to ``WorkerArgs`` there); it records correctness with ``context.check``.

Then register it in ``SPECS`` below (the order is the run order), add its params to each
profile, and regenerate ``bench/RESULTS.md`` (``python -m bench schema --write
bench/RESULTS.md``; a test fails until it matches). A field added to an existing record (a
filtered-claim figure in ``query``, a fairness figure in ``busy``) needs a default, so that
older files, such as the committed baseline, still load; removing or renaming a field is a new
major version of ``results.SCHEMA``. A gated metric is a ``MetricSpec`` in
``bench/gate.py`` reading the typed result; a figure to follow between runs is a ``KeyFigure``
in ``bench/compare.py``; a plot is a ``PlotSpec`` in ``bench/plots.py`` that reads
``run.result(name, module.Result)`` (None unless the scenario ran OK).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.scenarios import busy, checkpoint, claim, connect, init, insert, query, worker

if TYPE_CHECKING:
    from bench.context import ScenarioContext


@dataclass(frozen=True)
class ScenarioSpec:
    """What the runner and the results model need to know about one scenario."""

    name: str
    params: type[Any]
    result: type[Any]
    run: Callable[[ScenarioContext[Any]], Any]


SPECS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec("init", init.Params, init.Result, init.run),
        ScenarioSpec("connect", connect.Params, connect.Result, connect.run),
        ScenarioSpec("insert", insert.Params, insert.Result, insert.run),
        ScenarioSpec("claim", claim.Params, claim.Result, claim.run),
        ScenarioSpec("busy", busy.Params, busy.Result, busy.run),
        ScenarioSpec("checkpoint", checkpoint.Params, checkpoint.Result, checkpoint.run),
        ScenarioSpec("query", query.Params, query.Result, query.run),
        ScenarioSpec("worker", worker.Params, worker.Result, worker.run),
    )
}

NAMES: tuple[str, ...] = tuple(SPECS)
"""Every scenario, in the order a full run executes them."""


def load(name: str) -> ScenarioSpec:
    """The spec of scenario ``name``.

    :raises ValueError: no such scenario.
    """
    if name not in SPECS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(NAMES)}")
    return SPECS[name]
