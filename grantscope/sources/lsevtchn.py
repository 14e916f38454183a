"""``lsevtchn DOMID``: a domain's open event-channel ports as the Xen tool lists them.

Debian installs the tool outside PATH (/usr/lib/xen-4.17/bin), so those directories are
searched too.  A missing tool or a refused hypercall is recorded, never raised.
"""

from __future__ import annotations

import glob
import shutil

from grantscope.model.toolout import LsevtchnPort, parse_lsevtchn
from grantscope.sources.hvdump import run_tool

__all__ = ["find_lsevtchn", "read_lsevtchn", "silent_peer_reason"]


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


def silent_peer_reason(local_port: int, remote_domid: int, remote_port: int, *,
                       own_domid: int = 0, tool: str | None = None,
                       timeout: float = 5.0) -> str | None:
    """Why our bound ``local_port`` hears nothing back from ``remote_domid``'s ``remote_port``,
    as ``lsevtchn OWN_DOMID`` shows our end; None when lsevtchn cannot say (a domU, no tool).

    When a peer closes its end of an interdomain channel, Xen puts ours back to "waiting for a
    connection" from that domain: notifications then go nowhere, without an error.
    """
    ports, _why = read_lsevtchn(own_domid, tool=tool, timeout=timeout)
    if not ports:
        return None
    mine = next((p for p in ports if p.port == local_port), None)
    if mine is None:
        return (f"port {local_port} is no longer open in d{own_domid} "
                f"(lsevtchn {own_domid})")
    if mine.kind == "unbound" and mine.remote_domid == remote_domid:
        return (f"the peer closed its end: d{remote_domid} port {remote_port} was unbound, and "
                f"d{own_domid} port {local_port} is back to waiting for a connection from "
                f"d{remote_domid} (lsevtchn {own_domid}); notifications now go nowhere")
    if (mine.kind == "interdomain" and mine.remote_domid == remote_domid
            and mine.remote_port == remote_port):
        return (f"the channel is still connected (d{own_domid} port {local_port} to "
                f"d{remote_domid} port {remote_port}, lsevtchn {own_domid}): the peer is there "
                "but does not notify back, or not within the time given")
    return None
