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
* ``xenstore-leftover``: XenStore nodes a grantscope process created and never removed (it was
  killed before its cleanup ran; its journal, grantscope.xen.xs_journal, names them);
* ``device-state``: a PV device whose frontend or backend is not Connected.

The types live in :mod:`~grantscope.model.observation` (re-exported here) and the leak check
in :mod:`~grantscope.model.findings_leaks`.
"""

from __future__ import annotations

import re
from typing import Any

from grantscope.model.devices_join import (
    DeviceRow,
    join_devices,
    state_name,
)
from grantscope.model.findings_leaks import leaks
from grantscope.model.observation import Analysis, Finding, Observation, Severity, Thresholds

__all__ = [
    "Analysis",
    "Finding",
    "Observation",
    "Severity",
    "Thresholds",
    "analyze",
]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_HOME_RE = re.compile(r"^/local/domain/(\d+)$")
_BACKEND_FE_RE = re.compile(r"^/local/domain/(\d+)/backend/([^/]+)/(\d+)$")


def _pct(used: int, limit: int) -> str:
    return f"{used} of {limit} ({100 * used / limit:.0f} %)"


def _use_finding(code: str, domid: int, used: int, limit: int, what: str,
                 evidence: tuple[str, ...], action: str,
                 subject: dict[str, Any] | None = None) -> Finding:
    """``dN uses U of L (P %) of its WHAT``: a warning near the limit, an error at it."""
    return Finding(
        code=code,
        severity="error" if used >= limit else "warning",
        title=f"d{domid} uses {_pct(used, limit)} of its {what}",
        evidence=evidence,
        action=action,
        subject={"domid": domid} if subject is None else subject,
    )


def _grant_frames_finding(domid: int, frames: int, max_frames: int,
                          evidence: str) -> Finding:
    return _use_finding(
        "grant-frames", domid, frames, max_frames, "grant frames", (evidence,),
        "When the table is full the guest's frontends stall. Raise "
        "max_grant_frames in the guest's xl.cfg (bounded by Xen's "
        "gnttab_max_frames=), or find what holds so many grants.")


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
            out.append(_use_finding(
                "maptrack-frames", t.domid, mt, mx, "maptrack frames",
                (f"'g' dump: d{t.domid}: {mt} maptrack frames ({mx} max)",),
                "Maptrack limits how many foreign grants this domain (a backend) can "
                "map; when full, maps fail with GNTST_no_space (-13). Raise "
                "max_maptrack_frames for the domain (Xen: gnttab_max_maptrack_frames=) "
                "or look for mappings that are never released."))
    return out
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
    window = round(obs.irq_interval, 1)
    if a is not None and b2 is not None and obs.irq_interval > 0:
        prev = a.by_irq()
        for row in b2.rows:
            old = prev.get(row.irq)
            if old is None or old.action != row.action or row.chip == "xen-percpu":
                continue  # per-CPU timers and IPIs are busy by design
            rate = (row.total - old.total) / obs.irq_interval
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
                            f"{row.action}: {old.total} -> {row.total} in {window:g} s",
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
            out.append(_use_finding(
                "xenstore-quota", u.domid, used, limit, f"XenStore {name} quota",
                (f"xenstore-control quota {u.domid}: {name} {used}",
                 f"limit {limit} ({obs.quota.limits_source})"),
                "At the limit xenstored refuses the domain's requests (E2BIG, ENOSPC, "
                "EQUOTA) and its drivers fail in odd ways. Look for directories it "
                "never removes (stale backends, vchan dirs), or raise the quota with "
                f"'xenstore-control quota set {name} N'.",
                {"domid": u.domid, "quota": name, "used": used, "limit": limit}))
    return out


def _alive_domids(obs: Observation) -> set[int] | None:
    if obs.xenstore is None or obs.local_domid not in (None, 0):
        return None  # a domU does not see every domain's home: it cannot tell who is gone
    homes = {int(m.group(1)) for p in obs.xenstore for m in [_HOME_RE.match(p)] if m}
    if not homes:
        return None  # this view cannot see domain homes (a domU): cannot judge
    if obs.console is not None and obs.console.events is not None:
        homes |= {d.domid for d in obs.console.events.domains}
    return homes - (obs.gone_domids or frozenset())  # a home left behind is not a domain


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
        home = f"/local/domain/{fe}"
        left_home = home in obs.xenstore  # the domain is gone (gone_domids), its home is not
        out.append(
            Finding(
                code="stale-backend",
                severity="warning",
                title=f"d{be} still has {kind} backend directories for d{fe}, which no longer "
                "exists",
                evidence=(
                    f"{path} ({nodes} nodes)",
                    f"xenstored: d{fe} is not a live domain (IS_DOMAIN_INTRODUCED); its home "
                    f"{home} was left behind too" if left_home else f"{home} does not exist",
                ),
                action=(
                    f"The toolstack did not clean up after d{fe} (destroyed outside it, or it "
                    f"crashed). These nodes count against d{be}'s XenStore quota; remove them "
                    f"with 'xenstore-rm {path}'"
                    + (f" and 'xenstore-rm {home}'" if left_home else "")
                    + " once nothing uses them."
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


_LEFTOVER_SHOWN = 8  # nodes named in the evidence; the subject lists them all


def _leftovers(obs: Observation) -> list[Finding]:
    if obs.leftovers is None or obs.xenstore is None:
        return []
    out: list[Finding] = []
    for entry in obs.leftovers:
        ours = set(entry.nodes)
        # A node still there is left over, unless something it did not write lives under it
        # now (a directory it created that others have since written into is theirs too).
        still = [n for n in entry.nodes if n in obs.xenstore and not any(
            p.startswith(n + "/") and p not in ours for p in obs.xenstore)]
        if not still:
            continue  # removed since, by hand or by a later run
        more = len(still) - _LEFTOVER_SHOWN
        out.append(
            Finding(
                code="xenstore-leftover",
                severity="warning",
                title=f"grantscope process {entry.pid} ended without removing {len(still)} "
                "XenStore node(s) it created",
                evidence=(
                    f"journal {entry.journal} (process {entry.pid} no longer runs)",
                    *still[:_LEFTOVER_SHOWN],
                    *([f"... and {more} more"] if more > 0 else []),
                ),
                action=(
                    "It was killed before its cleanup ran (SIGKILL, the OOM killer, a lost "
                    "host), so nothing removes them. If no peer still reads them, remove each "
                    "with 'xenstore-rm PATH' (deepest first), then delete the journal file."
                ),
                subject={"pid": entry.pid, "journal": entry.journal, "nodes": still},
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
    if obs.interrupts_before is None or obs.interrupts_after is None or obs.irq_interval <= 0:
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
        *leaks(obs, devices),
        *_storms(obs, devices, th),
        *_quota(obs, th),
        *_stale_backends(obs),
        *_device_states(devices, alive),
        *_leftovers(obs),
    ]
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return Analysis(findings=tuple(findings), devices=devices, not_checked=tuple(not_checked))
