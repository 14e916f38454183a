"""One scrape of the simulated host (``--demo``): the same reading code paths, labelled.

XenStore is read from the simulated store with the same partial reader as the real host;
grant frames come from the simulated grant table's sizes, quota, holders and the
``/proc/interrupts`` rows from what the simulated host shows elsewhere.  It has no xenbus
sysfs counters: that source is reported down ("not simulated").  Every series carries
``simulated="1"``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from grantscope.host.sim import GUESTS, SimHost
from grantscope.host.sim_hv import sim_console, sim_observation
from grantscope.metrics.collect import read_domains_xenstore
from grantscope.metrics.maptrack import MaptrackReader
from grantscope.metrics.reading import SOURCES, Reading, SourceStatus, reading_from
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import InterruptRow, InterruptsParse
from grantscope.model.toolout import DeviceHolder

__all__ = ["demo_capture", "demo_reading"]


def demo_capture(host: SimHost) -> Callable[[], Any]:
    """A ``g`` capture of the simulated host for :class:`MaptrackReader` (no debug key)."""
    def capture() -> Any:
        nodes = host.xenstore_snapshot("/")
        parse = sim_console(host.grant_table, host.port_table, tuple(GUESTS),
                            {n.path: n.value for n in nodes})
        return SimpleNamespace(parse=parse, unavailable="")
    return capture


def demo_reading(host: SimHost, maptrack: MaptrackReader | None = None) -> Reading:
    """A :class:`Reading` of ``host``, marked simulated (``maptrack``: see
    :func:`demo_capture`)."""
    took: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        took[name], mark = now - mark, now

    domains, snapshot = read_domains_xenstore(host.store)
    lap("xenstore")
    nodes = host.xenstore_snapshot("/")
    console = sim_console(host.grant_table, host.port_table, tuple(GUESTS),
                          {n.path: n.value for n in nodes})
    tables = console.grants.tables if console.grants is not None else ()
    sizes = tuple(GrantFrames(t.domid, t.frames, t.max_frames) for t in tables
                  if t.frames is not None and t.max_frames is not None)
    lap("grant_frames")
    holders = [DeviceHolder(p.pid, p.name, p.device, p.fds, p.mapped_pages)
               for p in host.grants().processes]
    lap("device_holders")
    rows = tuple(InterruptRow(c.irq, c.counts, c.chip, "", None, c.name)
                 for c in host.events().interrupts)
    cpus = max((len(r.counts) for r in rows), default=1)
    lap("interrupts")
    base = sim_observation(nodes, console, tuple(GUESTS), holders)  # its quota: from the tree
    lap("xenstore_quota")
    why = "not simulated: the demo host has no xenbus sysfs counters"
    obs = dataclasses.replace(
        base,
        xenstore=snapshot,
        console=None,
        grant_sizes=sizes,
        interrupts_after=InterruptsParse(cpus, rows, ()),
        unavailable={"xenbus_counters": why},
    )
    sources = tuple(
        SourceStatus(name, name != "xenbus_counters", took.get(name, 0.0),
                     why if name == "xenbus_counters" else "")
        for name in SOURCES
    )
    mt = None
    if maptrack is not None:
        start = time.monotonic()
        mt = maptrack.read()
        sources += (SourceStatus("maptrack", True, time.monotonic() - start),)
    return reading_from(obs, domains, sources, simulated=True, maptrack=mt)
