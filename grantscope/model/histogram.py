"""A latency histogram as text: one line per bin, a bar of block characters and the count.

Bins are spaced geometrically from the fastest to the slowest sample (latencies have a long
tail: equal-width bins would put nearly every sample in the first), or evenly when the spread
is small. Pure: used by ``grantscope pingpong`` and usable by any front end.
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
