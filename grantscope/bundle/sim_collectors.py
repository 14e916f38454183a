"""The collectors of ``grantscope --demo bundle export``: the simulated host, nothing else.

A bundle of the demo host holds only what the simulated host has (its XenStore, grants,
events, Xen interrupt rows, device holders, quota and the findings ``report`` computes on
it) and never reads this machine's ``/proc``, ``/sys`` or ``xl``, so nothing real is mixed
in.  ``host.json`` says ``"simulated": true``; the export copies that into the manifest,
and ``bundle inspect`` and ``bundle open`` show the bundle as SIMULATED.  What the demo host
does not simulate (``xl list``/``xl info``, the raw console text, sysfs counters,
``lsevtchn``) is not collected, so the manifest lists only what the bundle really holds.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

from grantscope import __version__
from grantscope.bundle import host_collectors as common
from grantscope.bundle.collect import Collector, Payload, Unavailable
from grantscope.bundle.host_collectors import ExportSources, to_jsonable
from grantscope.model.findings import analyze
from grantscope.model.interrupts import parse_interrupts

if TYPE_CHECKING:
    from grantscope.host.base import Host

__all__ = ["simulated_collectors"]

#: The host name a simulated bundle records (never this machine's).
SIM_HOSTNAME = "grantscope-demo"


def _sim(host: Host | None) -> Any:
    if host is None:
        raise Unavailable("no simulated host")
    return host


def collect_sim_host(host: Host | None) -> Payload:
    """host.json of the demo host, marked simulated."""
    info = _sim(host).info()
    return {"host.json": {
        "hostname": SIM_HOSTNAME,
        "kernel": "simulated",
        "role": "dom0" if info.is_dom0 else "domU",
        "xen_version": info.xen_version,
        "guest_type": info.guest_type,
        "hypervisor": {"type": "xen (simulated)"},
        "proc_xen_capabilities": None,
        "grantscope_version": __version__,
        "python": platform.python_version(),
        "info": to_jsonable(info),
        "simulated": True,
    }}


def interrupts_text(host: Host) -> str:
    """The demo host's Xen rows in ``/proc/interrupts`` layout."""
    rows = host.events().interrupts
    cpus = max((len(r.counts) for r in rows), default=1)
    lines = [" " * 11 + "".join(f"CPU{n:<8}" for n in range(cpus))]
    for r in rows:
        counts = "".join(f"{c:>10} " for c in r.counts) + "".join(
            f"{0:>10} " for _ in range(cpus - len(r.counts)))
        lines.append(f"{r.irq:>4}: {counts} {r.chip:<22} {r.name}")
    return "\n".join(lines) + "\n"


def collect_sim_interrupts(host: Host | None) -> Payload:
    """interrupts.txt and interrupts.json from the simulated counters."""
    text = interrupts_text(_sim(host))
    return {"interrupts.txt": text.encode(),
            "interrupts.json": to_jsonable(parse_interrupts(text))}


def collect_sim_processes(host: Host | None) -> Payload:
    """processes.json: the simulated device holders."""
    holders = [{"pid": p.pid, "name": p.name, "device": p.device, "fds": p.fds,
                "mapped_pages": p.mapped_pages} for p in _sim(host).grants().processes]
    return {"processes.json": {"holders": holders}}


def collect_sim_quota(host: Host | None) -> Payload:
    """quota.json: the simulated xenstored's usage per domain."""
    quota = _sim(host).observation().quota
    if quota is None:
        raise Unavailable("the demo host has no quota reading")
    return {"quota.json": to_jsonable(quota)}


def collect_sim_findings(host: Host | None) -> Payload:
    """findings.json: the analysis ``grantscope --demo report`` prints."""
    return {"findings.json": to_jsonable(analyze(_sim(host).observation()))}


def simulated_collectors(sources: ExportSources) -> list[Collector]:
    """The collectors of a simulated export, in the order they run."""
    host = sources.host
    collectors = [
        Collector("host", lambda: collect_sim_host(host), 15.0, "host facts (simulated)"),
        Collector("xenstore", lambda: common.collect_xenstore(host, 120.0), 180.0, "XenStore"),
        Collector("grants", lambda: common.collect_grants(host), 60.0, "grants snapshot"),
        Collector("events", lambda: common.collect_events(host), 30.0, "events snapshot"),
        Collector("interrupts", lambda: collect_sim_interrupts(host), 10.0, "Xen IRQ rows"),
        Collector("quota", lambda: collect_sim_quota(host), 10.0, "quota"),
        Collector("processes", lambda: collect_sim_processes(host), 10.0, "device holders"),
        Collector("findings", lambda: collect_sim_findings(host), 60.0, "findings"),
        Collector("probe_log", lambda: common.collect_probe_log(sources.probe_log), 5.0,
                  "probe log"),
    ]
    if sources.include_pages:
        collectors.append(Collector("pages", lambda: common.collect_pages(host), 60.0,
                                    "page bytes"))
    return collectors
