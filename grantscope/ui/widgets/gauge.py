"""A small gauge for a table cell: a bar and the numbers (``▕███░░░░░▏ 52/64``).

With no room for a bar (``width`` 0: an 80-column terminal) the cell is text only,
``52/64 81%``, so the numbers are never cut for the picture's sake.
"""

from __future__ import annotations

from rich.text import Text

from grantscope.model.findings import Thresholds
from grantscope.model.histogram import _bar

#: From this fraction on a gauge is drawn in the warning colour (half of the headroom).
NOTICE = Thresholds().headroom / 2


def bar(fraction: float, width: int) -> str:
    """``width`` cells filled to ``fraction`` in eighths, the rest ``░`` (never empty above 0).

    The histogram's bar (one drawing of a bar for both pictures), on a visible track.
    """
    fraction = max(0.0, min(1.0, fraction))
    if 0 < fraction < 1 / (8 * width):
        fraction = 1 / (8 * width)  # a table in use never looks unused
    return _bar(fraction, width).rstrip().ljust(width, "░")


def level(fraction: float) -> str:
    """``ok``, ``notice`` or ``full``: ``full`` from the findings' headroom (80 %) on."""
    if fraction >= Thresholds().headroom:
        return "full"
    return "notice" if fraction >= NOTICE else "ok"


def gauge(used_limit: tuple[int, int] | None, width: int = 8,
          colours: dict[str, str] | None = None) -> Text:
    """The cell for ``(used, limit)``: ``?`` when unknown, the numbers and the percentage
    in text-only form (``width`` 0), else a bar then the numbers."""
    if used_limit is None:
        return Text("?", style="dim")
    used, limit = used_limit
    fraction = used / limit if limit > 0 else 0.0
    style = (colours or {}).get(level(fraction), "")
    numbers = f"{used}/{limit}"
    if width <= 0:
        return Text(f"{numbers} {fraction:.0%}", style=style)
    text = Text("▕")
    text.append(bar(fraction, width), style=style)
    text.append(f"▏ {numbers}")
    return text
