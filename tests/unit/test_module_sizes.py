"""Modules stay small (issue 19): none of the package's over 500 lines, their median at most 120.

A module that outgrows its one job shows here first; the median caught a drift once (121 lines
after the compiled map), which is why it is checked, not just the largest module.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import grantscope

PACKAGE = Path(grantscope.__file__).resolve().parent
LARGEST = 500
MEDIAN = 120


def _sizes() -> dict[str, int]:
    return {str(p.relative_to(PACKAGE)): len(p.read_text("utf-8").splitlines())
            for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def test_no_module_is_over_500_lines() -> None:
    sizes = _sizes()
    assert len(sizes) > 100, sorted(sizes)  # the package was found, not an empty directory
    assert {name: n for name, n in sizes.items() if n > LARGEST} == {}


def test_the_median_module_is_at_most_120_lines() -> None:
    sizes = sorted(_sizes().values())
    assert statistics.median(sizes) <= MEDIAN, sizes[len(sizes) // 2 - 3:len(sizes) // 2 + 3]
