"""Shared inputs for the metrics tests: a small dom0 view built by hand."""

from __future__ import annotations

from grantscope.metrics.reading import SOURCES, Reading, SourceStatus, reading_from
from grantscope.model.findings import Observation
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import XenbusCounters, parse_interrupts
from grantscope.model.toolout import DEFAULT_QUOTA_LIMITS, DeviceHolder, QuotaSnapshot, QuotaUsage

BE = "/local/domain/0/backend"

#: dom0 and guest d1 with a Connected vif and a vbd stuck at Initialised (3) / InitWait (2).
STORE: dict[str, bytes | None] = {
    "/local/domain/0": None,
    "/local/domain/0/name": b"Domain-0",
    f"{BE}/vif/1/0": None,
    f"{BE}/vbd/1/51712": None,
    f"{BE}/vif/1/0/frontend": b"/local/domain/1/device/vif/0",
    f"{BE}/vif/1/0/frontend-id": b"1",
    f"{BE}/vif/1/0/state": b"4",
    f"{BE}/vbd/1/51712/frontend": b"/local/domain/1/device/vbd/51712",
    f"{BE}/vbd/1/51712/frontend-id": b"1",
    f"{BE}/vbd/1/51712/state": b"2",
    "/local/domain/1": None,
    "/local/domain/1/name": b"web",
    "/local/domain/1/device/vif/0": None,
    "/local/domain/1/device/vbd/51712": None,
    "/local/domain/1/device/vif/0/backend": f"{BE}/vif/1/0".encode(),
    "/local/domain/1/device/vif/0/backend-id": b"0",
    "/local/domain/1/device/vif/0/state": b"4",
    "/local/domain/1/device/vbd/51712/backend": f"{BE}/vbd/1/51712".encode(),
    "/local/domain/1/device/vbd/51712/backend-id": b"0",
    "/local/domain/1/device/vbd/51712/state": b"3",
}
DOMAINS = {0: "Domain-0", 1: "web"}
INTERRUPTS = """\
           CPU0       CPU1
 24:      1000       2000  xen-percpu    -virq      timer0
 30:       700         20  xen-dyn    -event     vif1.0-q0-tx
 31:         5          0  xen-dyn    -event     evtchn:xenstored
"""
COUNTERS = (
    XenbusCounters("vif-1-0", "backend/vif/1/0", 2, 5000, 17, 3, 10000),
    XenbusCounters("vbd-1-51712", "backend/vbd/1/51712", 1, 40, 0, 0, 10000),
)
HOLDERS = (
    DeviceHolder(101, "qemu", "/dev/xen/gntdev", 2, 3),
    DeviceHolder(102, "qemu", "/dev/xen/gntdev", 1, 1),
    DeviceHolder(103, "xenstored", "/dev/xen/evtchn", 1, None),
)


def observation(**over: object) -> Observation:
    """The hand-built dom0 view; keyword arguments replace its parts."""
    quota = QuotaSnapshot(dict(DEFAULT_QUOTA_LIMITS), "xenstored",
                          (QuotaUsage(0, {"nodes": 120, "watches": 9}, ()),
                           QuotaUsage(1, {"nodes": 850, "watches": 4}, ())), ())
    parts: dict[str, object] = {
        "xenstore": STORE,
        "counters_after": COUNTERS,
        "interrupts_after": parse_interrupts(INTERRUPTS),
        "quota": quota,
        "holders": HOLDERS,
        "local_domid": 0,
        "grant_sizes": (GrantFrames(0, 4, 64), GrantFrames(1, 28, 32)),
    }
    parts.update(over)
    return Observation(**parts)  # type: ignore[arg-type]


def reading(*, down: dict[str, str] | None = None, simulated: bool = False,
            **over: object) -> Reading:
    """A :class:`Reading` of :func:`observation`; ``down`` marks sources down with reasons."""
    down = down or {}
    sources = tuple(SourceStatus(s, s not in down, 0.01, down.get(s, "")) for s in SOURCES)
    return reading_from(observation(**over), DOMAINS, sources, simulated=simulated)
