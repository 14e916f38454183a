"""The simulated host's hypervisor view: its ``g`` and ``e`` dumps and what ``report`` would read.

The demo has no console ring, so this builds the parsed dumps (the same dataclasses
:func:`grantscope.model.dumps.parse_console` returns) straight from the simulated grant and
port tables, plus the system ports a real dom0 and its guests have (timers, IPIs, XenStore,
console and the PV devices' channels).  :func:`sim_observation` then hands them, with the
simulated XenStore and quota usage, to the same :func:`~grantscope.model.findings.analyze` that
``grantscope report`` runs: the demo's findings are computed, not written down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from grantscope.host.base import UsageSnapshot, domain_usage
from grantscope.host.sim_devices import GrantTable, PortTable
from grantscope.model.dumps import (
    ConsoleParse,
    EventDomain,
    EventDump,
    EventPort,
    GrantDump,
    GrantEntry,
)
from grantscope.model.dumps import (
    GrantTable as DumpTable,
)
from grantscope.model.findings import Observation
from grantscope.model.toolout import (
    DEFAULT_QUOTA_LIMITS,
    DeviceHolder,
    QuotaSnapshot,
    QuotaUsage,
)
from grantscope.sources.observation import build_observation
from grantscope.xen.xs_types import XsNode

__all__ = ["sim_console", "sim_observation"]

# Xen's ECS_* states as the 'e' dump prints them (s=...).
_UNBOUND, _INTERDOMAIN, _VIRQ, _IPI = 2, 3, 5, 6
# GTF_permit_access | GTF_reading | GTF_writing, as an in-use v1 entry shows them.
_FLAGS_RW, _FLAGS_RO = 0x19, 0x1D
_PIN_HOST_WRITE, _PIN_HOST_READ = 0x1, 0x100


def _grant_dump(table: GrantTable) -> GrantDump:
    """Only pinned (mapped) entries, as in Xen's dump; frame numbers are made up but stable."""
    with table.lock:
        entries = sorted(table.entries.values(), key=lambda e: (e.granter, e.ref))
        tables = []
        for domid in sorted(table.domains):
            rows = [
                GrantEntry(
                    granter=e.granter, ref=e.ref, mapper=mapper,
                    mfn=0x1A000 + e.granter * 0x100 + e.ref,
                    pin=_PIN_HOST_WRITE if e.writable else _PIN_HOST_READ,
                    shared_domid=e.grantee, gmfn=0x8000 + e.ref,
                    flags=_FLAGS_RW if e.writable else _FLAGS_RO,
                )
                for e in entries if e.granter == domid
                for mapper in sorted(e.mapped_by)
            ]
            tables.append(DumpTable(domid=domid, version=1, frames=1, max_frames=64,
                                    maptrack_frames=1 if domid == 0 else 0,
                                    max_maptrack_frames=1024, entries=tuple(rows),
                                    no_active_line=not rows))
    return GrantDump(begin_seen=True, end_seen=True, tables=tuple(tables), first_line=1,
                     last_line=1)


def _port(domid: int, port: int, state: int, vcpu: int = 0, *, remote: int | None = None,
          remote_port: int | None = None, virq: int | None = None) -> EventPort:
    return EventPort(domid=domid, port=port, pending=False, masked=False, abi_state="  -   ",
                     state=state, notify_vcpu=vcpu, xen_consumer=0, remote_domid=remote,
                     remote_port=remote_port, virq=virq)


def _event_dump(ports: PortTable, guests: Sequence[int], store: Mapping[str, bytes | None],
                ) -> EventDump:
    """The guests' and dom0's system ports around the ports probes made (port table)."""
    with ports.lock:
        made = {key: (st.kind, st.remote_domid, st.remote_port)
                for key, st in ports.ports.items()}
    used: dict[int, set[int]] = {d: {p for (dd, p) in made if dd == d} for d in (0, *guests)}

    def free(domid: int) -> int:
        n = 1
        while n in used[domid]:
            n += 1
        used[domid].add(n)
        return n

    def key(domid: int, rel: str, default: int) -> int:
        raw = store.get(f"/local/domain/{domid}/{rel}")
        try:
            return int(raw) if raw is not None else default
        except ValueError:
            return default

    out: dict[int, list[EventPort]] = {d: [] for d in (0, *guests)}
    # dom0's per-vCPU timers and IPIs
    for vcpu in (0, 1):
        out[0].append(_port(0, free(0), _VIRQ, vcpu, virq=0))
        out[0].append(_port(0, free(0), _IPI, vcpu))
    for g in guests:
        out[g].append(_port(g, key(g, "console/port", 2), _INTERDOMAIN, remote=0))
        used[g].add(out[g][-1].port)
        out[g].append(_port(g, free(g), _VIRQ, virq=0))
        for rel in ("device/vbd/51712/event-channel", "device/vif/0/event-channel"):
            p = key(g, rel, 0)
            if p:
                out[g].append(_port(g, p, _INTERDOMAIN, remote=0))
                used[g].add(p)
    # Link each guest interdomain port to a dom0 port (xenconsoled, blkback, netback).
    for g in guests:
        linked = []
        for gp in out[g]:
            if gp.state == _INTERDOMAIN:
                dp = free(0)
                out[0].append(_port(0, dp, _INTERDOMAIN, remote=g, remote_port=gp.port))
                linked.append(_port(g, gp.port, _INTERDOMAIN, remote=0, remote_port=dp))
            else:
                linked.append(gp)
        out[g] = linked
    # The ports the simulated devices hold (guest offers, probe binds).
    bound_to = {(rd, rp): (d, p) for (d, p), (kind, rd, rp) in made.items()
                if kind == "interdomain" and rd is not None and rp is not None}
    for (d, p), (kind, rd, rp) in made.items():
        if d not in out:
            continue
        if kind == "unbound" and (d, p) in bound_to:
            bd, bp = bound_to[(d, p)]  # a probe bound to it: both ends are interdomain now
            out[d].append(_port(d, p, _INTERDOMAIN, remote=bd, remote_port=bp))
        elif kind == "interdomain":
            out[d].append(_port(d, p, _INTERDOMAIN, remote=rd, remote_port=rp))
        elif kind == "virq":
            out[d].append(_port(d, p, _VIRQ, virq=0))
        else:
            out[d].append(_port(d, p, _UNBOUND, remote=rd))
    domains = tuple(EventDomain(domid=d, polling_vcpus="", ports=tuple(sorted(
        out[d], key=lambda e: e.port))) for d in sorted(out))
    return EventDump(begin_seen=True, domains=domains, first_line=1, last_line=1)


def sim_console(grants: GrantTable, ports: PortTable, guests: Sequence[int],
                store: Mapping[str, bytes | None]) -> ConsoleParse:
    """What capturing ``g`` and ``e`` on the simulated host would parse to."""
    return ConsoleParse(grant_dumps=(_grant_dump(grants),),
                        event_dumps=(_event_dump(ports, guests, store),), unparsed=(),
                        problems=(), other_lines=0, total_lines=0)


def _quota(nodes: Iterable[XsNode], domids: Sequence[int]) -> QuotaSnapshot:
    """Usage as C xenstored counts it: nodes and bytes per owning domain."""
    count = dict.fromkeys(domids, 0)
    size = dict.fromkeys(domids, 0)
    for n in nodes:
        owner = n.perms.owner if n.perms is not None else 0
        if owner in count:
            count[owner] += 1
            size[owner] += len(n.path) + len(n.value or b"") + 16
    usage = tuple(QuotaUsage(d, {"nodes": count[d], "watches": 2 if d else 9,
                                 "transactions": 0, "outstanding": 0, "memory": size[d]}, ())
                  for d in domids)
    return QuotaSnapshot(limits=dict(DEFAULT_QUOTA_LIMITS),
                         limits_source="simulated xenstored (4.17 defaults)", usage=usage,
                         unavailable=())


def sim_observation(nodes: Sequence[XsNode], console: ConsoleParse, guests: Sequence[int],
                    holders: Sequence[DeviceHolder]) -> Observation:
    """Everything ``report`` reads, as the simulated dom0 would see it (no counter samples)."""
    why = "not simulated: the demo has no second sample of the counters"
    return build_observation(
        xenstore={n.path: n.value for n in nodes},
        console=console,
        quota=_quota(nodes, (0, *guests)),
        holders=holders,
        local_domid=0,
        unavailable={"interrupts": why, "xenbus counters": why},
    )


def sim_usage(grants: GrantTable, nodes: Iterable[XsNode], guests: Sequence[int],
              taken_at: float) -> UsageSnapshot:
    """Table use per domain as the simulated dom0 would read it (its ``g`` dump and quota)."""
    return domain_usage(dump=_grant_dump(grants), quota=_quota(nodes, (0, *guests)),
                        taken_at=taken_at)
