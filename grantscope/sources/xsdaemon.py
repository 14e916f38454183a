"""Which XenStore daemon answers here: the C ``xenstored`` or the OCaml ``oxenstored``.

Read-only and cheap: the daemon is a process of this domain (dom0, or a driver domain that runs
it), so its name is in ``/proc/PID/comm``.  Nothing is sent to XenStore.  In a domU, or with
XenStore in a stub domain, no daemon process is visible and the flavour is unknown.
"""

from __future__ import annotations

import os

from grantscope._compat import slotted_dataclass

C_XENSTORED = "xenstored"
OXENSTORED = "oxenstored"
_FLAVOURS = (OXENSTORED, C_XENSTORED)

# What a user of grantscope sees differently under oxenstored, each checked in Xen 4.17's
# oxenstored source (tools/ocaml/xenstored) and in the lab (docs/LAB.md, "Configurations").
OXENSTORED_DIFFERENCES: tuple[str, ...] = (
    "'xenstore-control quota' answers only OK (no limits: they are the quota-* settings of "
    "/etc/xen/oxenstored.conf) and 'xenstore-control quota DOMID' gives the domain's node "
    "count alone ('domN quota: USED/LIMIT'): no watch, transaction or memory usage",
    "a domain over its node quota is refused with EQUOTA (C xenstored: ENOSPC)",
)


@slotted_dataclass(frozen=True)
class XsDaemon:
    """The daemon found: its flavour, pid and how it was found (or why it is unknown)."""

    flavour: str | None          # "xenstored" | "oxenstored" | None (not visible here)
    pid: int | None = None
    how: str = ""

    @property
    def differences(self) -> tuple[str, ...]:
        """What behaves differently for grantscope's user under this daemon."""
        return OXENSTORED_DIFFERENCES if self.flavour == OXENSTORED else ()


def _comm(proc: str, pid: str) -> str | None:
    try:
        with open(os.path.join(proc, pid, "comm"), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def detect(root: str = "/") -> XsDaemon:
    """Find the XenStore daemon among this domain's processes (``root``: a fake tree in tests)."""
    proc = os.path.join(root, "proc")
    try:
        pids = sorted((p for p in os.listdir(proc) if p.isdigit()), key=int)
    except OSError as exc:
        return XsDaemon(None, how=f"{proc} unreadable: {os.strerror(exc.errno or 0)}")
    for pid in pids:
        name = _comm(proc, pid)
        if name in _FLAVOURS:
            return XsDaemon(name, int(pid), f"process {pid} is {name} (/proc/{pid}/comm)")
    return XsDaemon(None, how="no xenstored or oxenstored process in this domain (XenStore "
                              "runs in dom0 or a stub domain)")
