"""What is wrong on a Xen host: findings computed from one :class:`Observation`.

An :class:`Observation` bundles everything grantscope could read (each part may be None when
it was unavailable, with the reason in ``unavailable``).  :func:`analyze` is a pure function
from it to an :class:`Analysis`: the joined device table, the findings (each with a severity,
the evidence and what to do) and the list of checks that could not run and why.

Checks (thresholds in :class:`Thresholds`):

* ``grant-frames`` / ``maptrack-frames``: a domain uses ≥ 80 % of its grant-table or
  maptrack frames (``g`` dump; grant frames also from ``GNTTABOP_query_size`` sizes);
* ``grant-unowned``: a mapped grant that no XenStore key and no live PV device accounts for
  (a possible leak), naming the mapping domain and, when it is this domain, the processes;
  ``grant-orphaned`` when this domain granted it and no process here holds gntalloc any more;
* ``evtchn-spurious``: a device whose ``spurious_events`` or ``jiffies_eoi_delayed`` rose
  between two samples (a rogue peer); ``irq-storm``: a Xen IRQ firing faster than
  ``storm_rate`` per second;
* ``xenstore-quota``: a domain's XenStore usage ≥ 80 % of a quota;
* ``stale-backend``: backend directories of domains that no longer exist;
* ``device-state``: a PV device whose frontend or backend is not Connected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from grantscope.model.devices_join import (
    DeviceRow,
    decimal_value,
    join_devices,
    state_name,
)
from grantscope.model.dumps import ConsoleParse, GrantEntry
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import InterruptsParse, XenbusCounters
from grantscope.model.runs import ref_ranges
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot

__all__ = [
    "Analysis",
    "Finding",
    "Observation",
    "Severity",
    "Thresholds",
    "analyze",
]

Severity = Literal["error", "warning", "info"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
#: Grant refs 0..7 are reserved (0 console, 1 XenStore); they are always mapped by dom0.
_RESERVED_REFS = 8
_HOME_RE = re.compile(r"^/local/domain/(\d+)$")
_BACKEND_FE_RE = re.compile(r"^/local/domain/(\d+)/backend/([^/]+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a measurement becomes a finding."""

    headroom: float = 0.80  # fraction of a grant/maptrack/quota limit
    storm_rate: float = 500.0  # events per second on one Xen IRQ


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: ``code`` (stable, for scripts), ``severity``, a one-line ``title``, the
    ``evidence`` lines it rests on, and ``action``: what to do about it."""

    code: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    action: str
    subject: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "action": self.action,
            "subject": self.subject,
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything read from one host (or one pasted text); any part may be None.

    ``interrupts``/``counters`` come in two samples ``interval`` seconds apart so rates can
    be computed; ``local_domid`` is the domain they (and ``holders``) were read in.
    ``unavailable`` maps a source name to why it could not be read.  ``grant_sizes`` (from
    ``GNTTABOP_query_size``) stand in for the ``g`` dump's table sizes when there is no dump.
    """

    xenstore: Mapping[str, bytes | None] | None = None
    console: ConsoleParse | None = None
    interrupts_before: InterruptsParse | None = None
    interrupts_after: InterruptsParse | None = None
    counters_before: tuple[XenbusCounters, ...] | None = None
    counters_after: tuple[XenbusCounters, ...] | None = None
    interval: float = 0.0
    quota: QuotaSnapshot | None = None
    holders: tuple[DeviceHolder, ...] | None = None
    local_domid: int | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)
    grant_sizes: tuple[GrantFrames, ...] | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """The result of :func:`analyze`: findings (worst first), devices, and what was not checked."""

    findings: tuple[Finding, ...]
    devices: tuple[DeviceRow, ...]
    not_checked: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "findings": [f.to_json() for f in self.findings],
            "devices": [d.to_json() for d in self.devices],
            "not_checked": list(self.not_checked),
        }


def _pct(used: int, limit: int) -> str:
    return f"{used} of {limit} ({100 * used / limit:.0f} %)"


def _grant_frames_finding(domid: int, frames: int, max_frames: int,
                          evidence: str) -> Finding:
    return Finding(
        code="grant-frames",
        severity="error" if frames >= max_frames else "warning",
        title=f"d{domid} uses {_pct(frames, max_frames)} of its grant frames",
        evidence=(evidence,),
        action=(
            "When the table is full the guest's frontends stall. Raise "
            "max_grant_frames in the guest's xl.cfg (bounded by Xen's "
            "gnttab_max_frames=), or find what holds so many grants."
        ),
        subject={"domid": domid},
    )


def _headroom(obs: Observation, th: Thresholds) -> list[Finding]:
    out: list[Finding] = []
    dump = obs.console.grants if obs.console else None
    if dump is None:
        for size in obs.grant_sizes or ():
            if size.max_frames and size.frames >= th.headroom * size.max_frames:
                out.append(_grant_frames_finding(
                    size.domid, size.frames, size.max_frames,
                    f"GNTTABOP_query_size: d{size.domid}: nr_frames={size.frames}, "
                    f"max_nr_frames={size.max_frames}"))
        return out
    for t in dump.tables:
        if t.frames is not None and t.max_frames and t.frames >= th.headroom * t.max_frames:
            out.append(_grant_frames_finding(
                t.domid, t.frames, t.max_frames,
                f"'g' dump: grant-table for remote d{t.domid}: {t.frames} frames "
                f"({t.max_frames} max)"))
        mt, mx = t.maptrack_frames, t.max_maptrack_frames
        if mt is not None and mx and mt >= th.headroom * mx:
            out.append(
                Finding(
                    code="maptrack-frames",
                    severity="error" if mt >= mx else "warning",
                    title=f"d{t.domid} uses {_pct(mt, mx)} of its maptrack frames",
                    evidence=(
                        f"'g' dump: d{t.domid}: {mt} maptrack frames ({mx} max)",
                    ),
                    action=(
                        "Maptrack limits how many foreign grants this domain (a backend) can "
                        "map; when full, maps fail with GNTST_no_space (-13). Raise "
                        "max_maptrack_frames for the domain (Xen: gnttab_max_maptrack_frames=) "
                        "or look for mappings that are never released."
                    ),
                    subject={"domid": t.domid},
                )
            )
    return out


def _xenstore_ref_keys(store: Mapping[str, bytes | None]) -> dict[tuple[int, int], list[str]]:
    """``(domid, ref) -> [paths]`` for every key under a domain's home that names a grant."""
    out: dict[tuple[int, int], list[str]] = {}
    for path, value in store.items():
        if not path.startswith("/local/domain/"):
            continue
        leaf = path.rsplit("/", 1)[-1]
        if "ref" not in leaf:
            continue
        num = decimal_value(value)
        m = re.match(r"^/local/domain/(\d+)/", path)
        if num is not None and m:
            out.setdefault((int(m.group(1)), num), []).append(path)
    return out


def _leaks(obs: Observation, devices: tuple[DeviceRow, ...]) -> list[Finding]:
    dump = obs.console.grants if obs.console else None
    if dump is None or obs.xenstore is None:
        return []
    ring_refs = {(g.granter, g.ref) for d in devices for g in d.grants}
    # A live device lets its backend map the frontend's data grants (blkback persistent
    # grants, netback slots), which appear in no XenStore key.
    device_pairs = {
        (d.frontend_domid, d.backend_domid)
        for d in devices
        if d.frontend_state is not None and d.backend_state is not None
    }
    ref_keys = _xenstore_ref_keys(obs.xenstore)
    gntalloc_held = (
        None
        if obs.holders is None
        else any(h.device.endswith("gntalloc") for h in obs.holders)
    )
    # Grants no key names are reported per (granter, mapper, orphaned) group: one program
    # mapping 200 pages is one problem, not 200 (seen in the lab: a guest holding 200 dom0
    # pages made 200 findings).  A grant XenStore still names keeps a finding of its own,
    # since its keys are the evidence.
    singles: list[tuple[GrantEntry, list[str], bool]] = []
    groups: dict[tuple[int, int, bool], list[GrantEntry]] = {}
    for e in dump.entries():
        if e.ref < _RESERVED_REFS or (e.granter, e.ref) in ring_refs:
            continue
        if (e.granter, e.mapper) in device_pairs:
            continue
        keys = ref_keys.get((e.granter, e.ref), [])
        local_grant = obs.local_domid is not None and e.granter == obs.local_domid
        orphaned = local_grant and gntalloc_held is False
        if keys and not orphaned:
            continue
        if keys:
            singles.append((e, keys, orphaned))
        else:
            groups.setdefault((e.granter, e.mapper, orphaned), []).append(e)
    out = [_leak_finding(obs, [e], keys, orphaned) for e, keys, orphaned in singles]
    out += [_leak_finding(obs, entries, [], orphaned)
            for (_g, _m, orphaned), entries in groups.items()]
    return out


def _leak_finding(obs: Observation, entries: list[GrantEntry], keys: list[str],
                  orphaned: bool) -> Finding:
    """One grant-unowned/grant-orphaned finding for ``entries`` (same granter and mapper)."""
    e = entries[0]
    refs = [x.ref for x in entries]
    many = len(entries) > 1
    if many:
        what = f"{len(entries)} grants of d{e.granter} (refs {ref_ranges(refs)})"
        evidence = [
            f"'g' dump: d{e.granter} refs {ref_ranges(refs)} ({len(entries)} grants) mapped "
            f"by d{e.mapper}; the first, ref {e.ref} (0x{e.ref:x}): pin 0x{e.pin:08x}, "
            f"flags 0x{e.flags:02x}",
            f"no XenStore key under /local/domain/{e.granter} names any of them",
        ]
    else:
        what = f"grant d{e.granter}:{e.ref}"
        evidence = [
            f"'g' dump: d{e.granter} ref {e.ref} (0x{e.ref:x}) mapped by d{e.mapper}, "
            f"pin 0x{e.pin:08x}, flags 0x{e.flags:02x}",
        ]
        if keys:
            evidence.append("XenStore still names it at " + ", ".join(keys) + " (stale?)")
        else:
            evidence.append(f"no XenStore key under /local/domain/{e.granter} names ref {e.ref}")
    if not keys:
        evidence.append(f"no PV device has frontend d{e.granter} and backend d{e.mapper}")
    evidence.append(_mapper_processes(obs, e))
    if orphaned:
        evidence.append(
            f"this is d{e.granter}, and no process here holds /dev/xen/gntalloc open: the "
            "offering process is gone, the kernel keeps the grant until the peer unmaps"
        )
    them, pages = ("them", "pages") if many else ("it", "page")
    subject: dict[str, Any] = {"granter": e.granter}
    if not many:
        subject["ref"] = e.ref
    subject.update(mapper=e.mapper, refs=refs)
    return Finding(
        code="grant-orphaned" if orphaned else "grant-unowned",
        severity="error" if orphaned else "warning",
        title=(
            f"{what} {'are' if many else 'is'} still mapped by d{e.mapper}"
            + (f" after {'their' if many else 'its'} offering process ended" if orphaned
               else " with no XenStore owner (possible leak)")
        ),
        evidence=tuple(evidence),
        action=(
            f"Find the program in d{e.mapper} that mapped {them} and make it unmap (or stop "
            f"it); the {pages} of d{e.granter} cannot be freed before that. If the peer is "
            "a vchan or PV device, check that its cleanup on disconnect runs."
        ),
        subject=subject,
    )


def _mapper_processes(obs: Observation, e: GrantEntry) -> str:
    if obs.local_domid is None or e.mapper != obs.local_domid:
        return (
            f"mapping process: inside d{e.mapper}; its processes are not visible from "
            + (f"d{obs.local_domid}" if obs.local_domid is not None else "a pasted dump")
        )
    if obs.holders is None:
        return "mapping process: unknown (processes holding /dev/xen/gntdev were not read)"
    maps = [h for h in obs.holders if h.device.endswith("gntdev")]
    # A process with pages mapped from gntdev is the likely mapper; list only those if any.
    busy = [h for h in maps if h.mapped_pages]
    maps = busy or maps
    if not maps:
        return (
            f"mapping process: none in d{e.mapper} holds /dev/xen/gntdev (a kernel driver "
            "maps it)"
        )
    return "mapping process (holds /dev/xen/gntdev): " + ", ".join(
        f"pid {h.pid} ({h.comm}, {h.mapped_pages if h.mapped_pages is not None else '?'} "
        "pages mapped)"
        for h in maps
    )


def _storms(obs: Observation, devices: tuple[DeviceRow, ...], th: Thresholds) -> list[Finding]:
    out: list[Finding] = []
    if obs.counters_before is not None and obs.counters_after is not None:
        before = {c.device: c for c in obs.counters_before}
        for c in obs.counters_after:
            b = before.get(c.device)
            if b is None:
                continue
            rises = []
            for name in ("spurious_events", "jiffies_eoi_delayed"):
                old, new = getattr(b, name), getattr(c, name)
                if old is not None and new is not None and new > old:
                    rises.append(f"{name} rose {old} -> {new} in {obs.interval:g} s")
            if rises:
                dev = next((d.name for d in devices if c in d.counters), None)
                node = c.xenstore_path(obs.local_domid) or c.nodename or "?"
                out.append(
                    Finding(
                        code="evtchn-spurious",
                        severity="warning",
                        title=f"xenbus device {c.device} gets events with nothing to do",
                        evidence=(
                            *rises,
                            f"XenStore node: {node}" + (f" ({dev})" if dev else ""),
                        ),
                        action=(
                            "The other end notifies without work for this side: a rogue or "
                            "buggy peer, or an event storm. Check the peer domain's driver; "
                            "Linux delays the EOI (lateeoi) to protect itself."
                        ),
                        subject={"device": c.device, "nodename": c.nodename,
                                 "path": node if node != "?" else None},
                    )
                )
    a, b2 = obs.interrupts_before, obs.interrupts_after
    if a is not None and b2 is not None and obs.interval > 0:
        prev = a.by_irq()
        for row in b2.rows:
            old = prev.get(row.irq)
            if old is None or old.action != row.action or row.chip == "xen-percpu":
                continue  # per-CPU timers and IPIs are busy by design
            rate = (row.total - old.total) / obs.interval
            if rate >= th.storm_rate:
                dev = next(
                    (d.name for d in devices if d.irqs and any(i.irq == row.irq for i in d.irqs)),
                    None,
                )
                out.append(
                    Finding(
                        code="irq-storm",
                        severity="warning",
                        title=f"irq {row.irq} ({row.action}) fires {rate:.0f} times a second",
                        evidence=(
                            f"/proc/interrupts: irq {row.irq} {row.chip}-{row.handler} "
                            f"{row.action}: {old.total} -> {row.total} in {obs.interval:g} s",
                            f"threshold: {th.storm_rate:g}/s"
                            + (f"; device: {dev}" if dev else ""),
                        ),
                        action=(
                            "A peer notifies in a loop. Find the remote end of this channel "
                            "(the 'e' dump's d=/p= for the port) and the program behind it"
                            + (f"; locally the port belongs to process '{row.evtchn_comm}'"
                               if row.evtchn_comm else "")
                            + "."
                        ),
                        subject={"irq": row.irq, "action": row.action, "rate": round(rate, 1)},
                    )
                )
    return out


def _quota(obs: Observation, th: Thresholds) -> list[Finding]:
    out: list[Finding] = []
    if obs.quota is None:
        return out
    for u in obs.quota.usage:
        for name, used in sorted(u.usage.items()):
            limit = obs.quota.limits.get(name)
            if not limit or limit <= 0 or used < th.headroom * limit:
                continue
            out.append(
                Finding(
                    code="xenstore-quota",
                    severity="error" if used >= limit else "warning",
                    title=f"d{u.domid} uses {_pct(used, limit)} of its XenStore {name} quota",
                    evidence=(
                        f"xenstore-control quota {u.domid}: {name} {used}",
                        f"limit {limit} ({obs.quota.limits_source})",
                    ),
                    action=(
                        "At the limit xenstored refuses the domain's requests (E2BIG, ENOSPC, "
                        "EQUOTA) and its drivers fail in odd ways. Look for directories it "
                        "never removes (stale backends, vchan dirs), or raise the quota with "
                        f"'xenstore-control quota set {name} N'."
                    ),
                    subject={"domid": u.domid, "quota": name, "used": used, "limit": limit},
                )
            )
    return out


def _alive_domids(obs: Observation) -> set[int] | None:
    if obs.xenstore is None or obs.local_domid not in (None, 0):
        return None  # a domU does not see every domain's home: it cannot tell who is gone
    homes = {int(m.group(1)) for p in obs.xenstore for m in [_HOME_RE.match(p)] if m}
    if not homes:
        return None  # this view cannot see domain homes (a domU): cannot judge
    if obs.console is not None and obs.console.events is not None:
        homes |= {d.domid for d in obs.console.events.domains}
    return homes


def _stale_backends(obs: Observation) -> list[Finding]:
    alive = _alive_domids(obs)
    if alive is None or obs.xenstore is None:
        return []
    out: list[Finding] = []
    for path in sorted(obs.xenstore):
        m = _BACKEND_FE_RE.match(path)
        if not m or int(m.group(3)) in alive:
            continue
        be, kind, fe = int(m.group(1)), m.group(2), int(m.group(3))
        nodes = sum(1 for p in obs.xenstore if p == path or p.startswith(path + "/"))
        out.append(
            Finding(
                code="stale-backend",
                severity="warning",
                title=f"d{be} still has {kind} backend directories for d{fe}, which no longer "
                "exists",
                evidence=(
                    f"{path} ({nodes} nodes)",
                    f"/local/domain/{fe} does not exist",
                ),
                action=(
                    f"The toolstack did not clean up after d{fe}. These nodes count against "
                    f"d{be}'s XenStore quota; remove them with 'xenstore-rm {path}' once "
                    "nothing uses them."
                ),
                subject={"backend": be, "kind": kind, "frontend": fe, "path": path},
            )
        )
    return out


_STATE_HINTS = {
    1: "the driver has not started: is the frontend or backend driver loaded?",
    2: "the backend waits for the frontend to publish its rings (InitWait)",
    3: "the frontend published its rings and waits for the backend to connect",
    5: "one side is closing; if it stays, the other side never acknowledged",
    6: "closed: the device was detached or its driver gave up (see hotplug-status, dmesg)",
}


def _device_states(devices: tuple[DeviceRow, ...], alive: set[int] | None) -> list[Finding]:
    out: list[Finding] = []
    for d in devices:
        if alive is not None and d.frontend_domid not in alive:
            continue  # reported as a stale backend
        if d.primary_console:
            continue  # xenconsoled does not run the xenbus handshake: state 1 is normal
        states = (d.frontend_state, d.backend_state)
        if all(s == 4 for s in states if s is not None) and any(s is not None for s in states):
            continue
        bad = next(s for s in states if s != 4)
        evidence = [
            f"frontend {d.frontend_path or '(absent)'}/state = {state_name(d.frontend_state)}",
            f"backend {d.backend_path or '(absent)'}/state = {state_name(d.backend_state)}",
        ]
        out.append(
            Finding(
                code="device-state",
                severity="warning",
                title=f"{d.name} is not Connected ({state_name(d.frontend_state)} / "
                f"{state_name(d.backend_state)})",
                evidence=tuple(evidence),
                action=_STATE_HINTS.get(
                    bad if bad is not None else -1,
                    "one side of the device is missing from XenStore: check the toolstack",
                ),
                subject={"device": d.name, "frontend_path": d.frontend_path,
                         "backend_path": d.backend_path},
            )
        )
    return out


def analyze(obs: Observation, thresholds: Thresholds | None = None) -> Analysis:
    """All findings for ``obs``; checks whose inputs are missing are listed in ``not_checked``."""
    th = thresholds or Thresholds()
    grants = obs.console.grants if obs.console else None
    events = obs.console.events if obs.console else None
    devices: tuple[DeviceRow, ...] = ()
    if obs.xenstore is not None:
        devices = join_devices(
            obs.xenstore,
            grants,
            events,
            obs.interrupts_after or obs.interrupts_before,
            obs.counters_after or obs.counters_before or (),
            local_domid=obs.local_domid,
        )
    not_checked: list[str] = []

    def missing(check: str, *sources: str) -> None:
        why = "; ".join(
            f"{s}: {obs.unavailable[s]}" if s in obs.unavailable else f"{s}: not provided"
            for s in sources
        )
        not_checked.append(f"{check} ({why})")

    if grants is None and obs.grant_sizes is None:
        missing("grant-table and maptrack headroom", "grant dump")
    elif grants is None:
        missing("maptrack headroom", "grant dump")
    if grants is None or obs.xenstore is None:
        missing(
            "grants mapped with no owner",
            *(["grant dump"] if grants is None else []),
            *(["xenstore"] if obs.xenstore is None else []),
        )
    if obs.counters_before is None or obs.counters_after is None:
        missing("spurious events on xenbus devices", "xenbus counters")
    if obs.interrupts_before is None or obs.interrupts_after is None or obs.interval <= 0:
        missing("event storms", "interrupts")
    if obs.quota is None:
        missing("XenStore quota", "quota")
    alive = _alive_domids(obs)
    if alive is None and obs.xenstore is not None:
        not_checked.append(
            f"stale backend directories (this is d{obs.local_domid}: only dom0 sees every "
            "domain's home)"
        )
    elif alive is None:
        missing("stale backend directories", "xenstore")
    if obs.xenstore is None:
        missing("device states and the device join", "xenstore")

    findings = [
        *_headroom(obs, th),
        *_leaks(obs, devices),
        *_storms(obs, devices, th),
        *_quota(obs, th),
        *_stale_backends(obs),
        *_device_states(devices, alive),
    ]
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return Analysis(findings=tuple(findings), devices=devices, not_checked=tuple(not_checked))
