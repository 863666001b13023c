"""What the standalone A/B measurements (``bench.param_style``, ``bench.tracer_overhead``,
``bench.index_cost``) share: variants run in turn within each round, and the paired ratio of
two of them. The command lines are ``bench.commands.paired`` (``python -m bench param-style`` /
``tracer-overhead``) and ``python -m bench index-cost``.

They run their variants back to back in each round of one process, so a ratio taken within a
round cancels most of the machine's drift; the median of those ratios is the figure and their
spread shows whether it stands out of the noise. They time with ``time.process_time()``, the
CPU time of this process (SQLite runs in it, kernel time included), because on a machine
shared with other busy processes wall time mostly measures the scheduler.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Samples = dict[str, dict[str, list[float]]]
"""Per variant, per operation: one figure per round, in round order."""


def alternate(
    rounds: int,
    variants: Mapping[str, Callable[[], Mapping[str, float]]],
    *,
    after_round: Callable[[int], None] | None = None,
) -> Samples:
    """Run every variant once per round, the order rotated by one each round so no variant
    always runs first (with two variants: in turn forwards and backwards).

    Each variant returns its figure per operation; ``after_round(index)`` is called after
    each round (progress lines).
    """
    names = list(variants)
    samples: Samples = {name: {} for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            for op, value in variants[name]().items():
                samples[name].setdefault(op, []).append(value)
        if after_round is not None:
            after_round(index)
    return samples


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """The median and range of ``numerators[i] / denominators[i]`` over the rounds."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators, strict=True))
    return {
        "median": round(statistics.median(ratios), 4),
        "min": round(ratios[0], 4),
        "max": round(ratios[-1], 4),
    }


def ratio_cells(
    key: str, numerators: Sequence[float], denominators: Sequence[float]
) -> dict[str, Any]:
    """``{key: median, key + "_range": [min, max]}`` of :func:`paired_ratio`: the two cells a
    results row gives one ratio."""
    ratio = paired_ratio(numerators, denominators)
    return {key: ratio["median"], f"{key}_range": [ratio["min"], ratio["max"]]}
