"""A domain's grant-table size as ``GNTTABOP_query_size`` reports it.

The frames the domain's grant table uses now and the most it may grow to (what ``xen-diag
gnttab_query_size DOMID`` prints as ``domid=61: nr_frames=24, max_nr_frames=32``).  Unlike
the ``g`` debug key it writes nothing to the console ring, so it is the cheap source of
grant-table headroom (grantscope.sources.gnttab_size asks it through privcmd).
"""

from __future__ import annotations

from grantscope._compat import slotted_dataclass

__all__ = ["GrantFrames"]


@slotted_dataclass(frozen=True)
class GrantFrames:
    """One domain's grant table: ``frames`` in use of at most ``max_frames``."""

    domid: int
    frames: int
    max_frames: int
