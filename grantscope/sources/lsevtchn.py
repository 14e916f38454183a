"""``lsevtchn DOMID``: a domain's open event-channel ports as the Xen tool lists them.

Debian installs the tool outside PATH (/usr/lib/xen-4.17/bin), so those directories are
searched too.  A missing tool or a refused hypercall is recorded, never raised.
"""

from __future__ import annotations

import glob
import shutil

from grantscope.model.toolout import LsevtchnPort, parse_lsevtchn
from grantscope.sources.hvdump import run_tool

__all__ = ["find_lsevtchn", "read_lsevtchn"]


def find_lsevtchn() -> str | None:
    """Path of the ``lsevtchn`` program, or None."""
    found = shutil.which("lsevtchn")
    if found:
        return found
    for cand in sorted(glob.glob("/usr/lib/xen-*/bin/lsevtchn"), reverse=True):
        return cand
    return None


def read_lsevtchn(
    domid: int, *, tool: str | None = None, timeout: float = 10.0
) -> tuple[tuple[LsevtchnPort, ...], str]:
    """The ports of ``domid`` and "" — or () and the reason they are unavailable."""
    path = tool or find_lsevtchn()
    if path is None:
        return (), "lsevtchn not found (it ships with the Xen tools, e.g. /usr/lib/xen-4.17/bin)"
    res = run_tool([path, str(domid)], timeout=timeout)
    if not res.ok:
        return (), res.why
    ports, bad = parse_lsevtchn(res.stdout, domid)
    return ports, (f"{len(bad)} line(s) of lsevtchn output not understood" if bad else "")
