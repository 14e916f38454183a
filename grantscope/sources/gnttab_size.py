"""Grant frames in use and their maximum per domain, through ``GNTTABOP_query_size``.

One hypercall per domain through privcmd (:mod:`grantscope.xen.privcmd`), in this process: no
console output, no state changed (the ``g`` debug key, which also shows the sizes, writes to
the console ring and stalls the CPU on a big host), and no process per domain (``xen-diag
gnttab_query_size`` answers the same, one process each).  Only dom0 may ask about other
domains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from grantscope.errors import GrantscopeError
from grantscope.model.gnttab_size import GrantFrames

__all__ = ["GrantFrames", "read_grant_frames"]


def _open_privcmd() -> Any:
    from grantscope.xen.privcmd import Privcmd

    return Privcmd()


def read_grant_frames(
    domids: Iterable[int], *, open_privcmd: Callable[[], Any] | None = None,
) -> tuple[tuple[GrantFrames, ...], tuple[str, ...]]:
    """Each domain's grant-table size, and why any domain's could not be read; never raises."""
    wanted = list(domids)
    if not wanted:
        return (), ()
    sizes: list[GrantFrames] = []
    problems: list[str] = []
    try:
        privcmd = (open_privcmd or _open_privcmd)()
    except GrantscopeError as err:
        return (), (f"grant frames: {err.message}",)
    with privcmd:
        for domid in wanted:
            try:
                frames, max_frames = privcmd.query_size(domid)
            except GrantscopeError as err:
                problems.append(f"grant frames of d{domid}: {err.message} (the domain may "
                                "have gone)")
                continue
            sizes.append(GrantFrames(domid, frames, max_frames))
    return tuple(sizes), tuple(problems)
