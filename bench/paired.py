"""What the standalone A/B measurements (``bench.param_style``, ``bench.tracer_overhead``)
share: the paired ratio of two variants. Their command line is
``bench.commands.paired`` (``python -m bench param-style`` / ``tracer-overhead``).

Both run their variants back to back in each round of one process, so a ratio taken within a
round cancels most of the machine's drift; the median of those ratios is the figure and their
spread shows whether it stands out of the noise. They time with ``time.process_time()``, the
CPU time of this process (SQLite runs in it, kernel time included), because on a machine
shared with other busy processes wall time mostly measures the scheduler.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """The median and range of ``numerators[i] / denominators[i]`` over the rounds."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators, strict=True))
    return {
        "median": round(statistics.median(ratios), 4),
        "min": round(ratios[0], 4),
        "max": round(ratios[-1], 4),
    }
