"""Runs of consecutive integers: how grant refs are shown compactly (``8-207``)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["consecutive_runs", "ref_ranges"]


def consecutive_runs(values: Sequence[int],
                     kinds: Sequence[Hashable] | None = None) -> list[tuple[int, int]]:
    """Index spans ``(first, last)`` of the runs in ``values`` where each value is the one
    before plus one and, when ``kinds`` is given, has the same kind as the one before."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(values):
        j = i
        while (j + 1 < len(values) and values[j + 1] == values[j] + 1
               and (kinds is None or kinds[j + 1] == kinds[i])):
            j += 1
        spans.append((i, j))
        i = j + 1
    return spans


def ref_ranges(refs: Sequence[int]) -> str:
    """``[8, 9, 10, 12]`` -> ``"8-10, 12"`` (sorted, duplicates dropped)."""
    ordered = sorted(set(refs))
    return ", ".join(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}"
                     for i, j in consecutive_runs(ordered))
