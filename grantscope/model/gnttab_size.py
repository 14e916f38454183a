"""A domain's grant-table size as ``GNTTABOP_query_size`` reports it (``xen-diag``'s output).

``xen-diag gnttab_query_size DOMID`` prints one line,
``domid=61: nr_frames=24, max_nr_frames=32``: the frames the domain's grant table uses now
and the most it may grow to.  Unlike the ``g`` debug key it writes nothing to the console
ring, so it is the cheap source of grant-table headroom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GrantFrames", "parse_query_size"]

_LINE_RE = re.compile(r"^domid=(\d+):\s*nr_frames=(\d+),\s*max_nr_frames=(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class GrantFrames:
    """One domain's grant table: ``frames`` in use of at most ``max_frames``."""

    domid: int
    frames: int
    max_frames: int


def parse_query_size(text: str) -> GrantFrames | None:
    """The first ``domid=N: nr_frames=F, max_nr_frames=M`` line of ``text``, or None."""
    for line in text.splitlines():
        m = _LINE_RE.match(line.strip())
        if m:
            return GrantFrames(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None
