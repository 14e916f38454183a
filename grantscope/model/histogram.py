"""A latency histogram as text: one line per bin, a bar of block characters and the count.

Bins are spaced geometrically from the fastest to the slowest sample (latencies have a long
tail: equal-width bins would put nearly every sample in the first), or evenly when the spread
is small; and the percentiles of the same samples. Pure: used by ``grantscope pingpong`` and
the pingpong probe, usable by any front end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bin_edges(samples: Sequence[float], bins: int) -> list[float]:
    """``bins + 1`` ascending edges covering every sample."""
    lo, hi = min(samples), max(samples)
    if hi <= lo:  # every sample the same: one bin holds them all
        return [lo, hi]
    if lo > 0 and hi / lo > 4:
        ratio = (hi / lo) ** (1 / bins)
        edges = [lo * ratio**i for i in range(bins + 1)]
    else:
        step = (hi - lo) / bins
        edges = [lo + step * i for i in range(bins + 1)]
    edges[-1] = hi  # no rounding may leave the slowest sample out
    return edges


def _bar(fraction: float, width: int) -> str:
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def histogram(samples: Sequence[float], *, bins: int = 10, width: int = 40,
              unit: str = "µs") -> list[str]:
    """The lines of a histogram of ``samples`` (empty when there are none)."""
    if not samples:
        return []
    bins = max(1, min(bins, len(samples)))
    edges = bin_edges(samples, bins)
    bins = len(edges) - 1
    counts = [0] * bins
    for value in samples:
        # the last bin is closed: the slowest sample belongs to it
        index = next((i for i in range(bins) if value < edges[i + 1]), bins - 1)
        counts[index] += 1
    top = max(counts)
    digits = max(1, 1 - math.floor(math.log10(max(edges[-1], 1e-9)))) if edges[-1] < 10 else 0
    label_w = max(len(f"{e:,.{digits}f}") for e in edges)
    count_w = len(str(top))
    return [
        f"{edges[i]:>{label_w},.{digits}f} – {edges[i + 1]:>{label_w},.{digits}f} {unit} "
        f"│{_bar(counts[i] / top, width)}│ {counts[i]:>{count_w}}"
        for i in range(bins)
    ]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (``pct`` in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(samples_us: Sequence[float]) -> dict[str, float | int]:
    """count, min, p50, p99, max of latency samples in microseconds (the one statistics of
    round trips: ``grantscope pingpong`` prints it, the pingpong probe records it)."""
    ordered = sorted(samples_us)
    return {
        "count": len(ordered),
        "min_us": round(ordered[0], 1),
        "p50_us": round(percentile(ordered, 50), 1),
        "p99_us": round(percentile(ordered, 99), 1),
        "max_us": round(ordered[-1], 1),
    }
