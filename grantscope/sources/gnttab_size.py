"""Grant frames in use and their maximum per domain, through ``xen-diag gnttab_query_size``.

``xen-diag`` issues ``GNTTABOP_query_size`` through privcmd: one hypercall per domain, no
console output and no state changed (the ``g`` debug key, which also shows the sizes, writes
to the console ring and stalls the CPU on a big host).  Running the tool rather than issuing
the hypercall here keeps grantscope free of a privcmd hypercall binding it would use for this
alone; the cost is one short process per domain.  Only dom0 may ask about other domains.
"""

from __future__ import annotations

from collections.abc import Iterable

from grantscope.model.gnttab_size import GrantFrames, parse_query_size
from grantscope.sources.hvdump import per_domain_outputs

__all__ = ["GrantFrames", "read_grant_frames"]


def read_grant_frames(
    domids: Iterable[int], *, tool: str = "xen-diag", timeout: float = 5.0
) -> tuple[tuple[GrantFrames, ...], tuple[str, ...]]:
    """Each domain's grant-table size, and why any domain's could not be read; never raises."""
    sizes: list[GrantFrames] = []
    problems: list[str] = []
    for domid, out in per_domain_outputs(
            domids, lambda d: [tool, "gnttab_query_size", str(d)], "grant frames", problems,
            timeout=timeout):
        got = parse_query_size(out)
        if got is None or got.domid != domid:
            problems.append(f"grant frames of d{domid}: xen-diag printed no size "
                            "(the hypercall failed or the domain has gone)")
            continue
        sizes.append(got)
    return tuple(sizes), tuple(problems)
