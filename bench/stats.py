"""Percentiles, latency summaries, histograms and downsampling of raw samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.results import Histogram, Latency, Shares

NS_PER_MS = 1_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def latency_ms(samples_ns: Sequence[int]) -> Latency:
    """p50, p95, p99 and max in milliseconds of nanosecond samples (None when empty)."""
    values = [sample / NS_PER_MS for sample in samples_ns]
    return Latency(
        p50=_clean(percentile(values, 50)),
        p95=_clean(percentile(values, 95)),
        p99=_clean(percentile(values, 99)),
        max=_clean(max(values)) if values else None,
    )


@dataclass(frozen=True)
class SampleStats:
    """n, min, median, mean, p95 and max of millisecond samples (None when there are none)."""

    n: int
    min_ms: float | None
    median_ms: float | None
    mean_ms: float | None
    p95_ms: float | None
    max_ms: float | None


def describe_ms(samples_ms: Sequence[float]) -> SampleStats:
    """The :class:`SampleStats` of millisecond samples."""
    if not samples_ms:
        return SampleStats(0, None, None, None, None, None)
    return SampleStats(
        n=len(samples_ms),
        min_ms=round(min(samples_ms), 4),
        median_ms=round(percentile(samples_ms, 50), 4),
        mean_ms=round(sum(samples_ms) / len(samples_ms), 4),
        p95_ms=round(percentile(samples_ms, 95), 4),
        max_ms=round(max(samples_ms), 4),
    )


def histogram_ms(samples_ns: Sequence[int], *, bins_per_decade: int = 10) -> Histogram:
    """A log-spaced histogram of nanosecond samples, in milliseconds.

    ``edges_ms`` has one more entry than ``counts``; bin ``i`` holds ``edges[i] <= x <
    edges[i+1]``. Used instead of raw samples where there are too many of them.
    """
    values = [max(sample, 1) / NS_PER_MS for sample in samples_ns]
    if not values:
        return Histogram((), (), 0)
    low = math.floor(math.log10(min(values)) * bins_per_decade)
    high = math.floor(math.log10(max(values)) * bins_per_decade) + 1
    edges = [round(10 ** (step / bins_per_decade), 6) for step in range(low, high + 1)]
    counts = [0] * (len(edges) - 1)
    for value in values:
        index = math.floor(math.log10(value) * bins_per_decade) - low
        counts[min(max(index, 0), len(counts) - 1)] += 1
    return Histogram(tuple(edges), tuple(counts), len(values))


def downsample_indices(count: int, limit: int, keep: Sequence[int] = ()) -> list[int]:
    """Indices of at most about ``limit`` evenly spaced points out of ``count``.

    Every index in ``keep`` (stalls, say) is always included, so the result may exceed
    ``limit`` by ``len(keep)``. Sorted, no repeats.
    """
    if count <= limit:
        return list(range(count))
    stride = count / max(limit, 1)
    chosen = {min(int(step * stride), count - 1) for step in range(limit)}
    chosen.update(index for index in keep if 0 <= index < count)
    chosen.add(count - 1)
    return sorted(chosen)


def rate(count: int, seconds: float) -> float:
    """``count / seconds`` rounded, or 0.0 for a zero span."""
    return round(count / seconds, 2) if seconds > 0 else 0.0


def shares(operations: Sequence[int]) -> Shares:
    """How evenly work was spread over processes (see :class:`~bench.results.Shares`).

    Jain's fairness index is ``(sum x)^2 / (n * sum x^2)``: 1 when every process did the same,
    ``1/n`` when one did everything.
    """
    if not operations or not any(operations):
        return Shares(None, None, None)
    mean = sum(operations) / len(operations)
    squares = sum(x * x for x in operations)
    return Shares(
        min_over_mean=round(min(operations) / mean, 4),
        max_over_mean=round(max(operations) / mean, 4),
        jain=round(sum(operations) ** 2 / (len(operations) * squares), 4),
    )
