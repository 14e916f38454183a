"""The standard collectors of ``grantscope bundle export``: read-only, each under a time limit.

Every collector returns ``{member name: payload}`` (see :mod:`grantscope.bundle.collect`).
What does not exist on this machine (no Xen, not dom0, no session) raises
:class:`~grantscope.bundle.collect.Unavailable`; the export works on any Linux machine and
the bundle is valid even when every Xen collector is unavailable; a collector that raises is
a recorded collector error, never a failed export.

Members written (schema version 1):

==================  =====================================================================
``host.json``       host facts: hostname, kernel, /sys/hypervisor, role, the Host's info()
``xenstore.json``   the whole XenStore with permissions, bytes-safe (see bundle.format)
``domains.json``    ``xl list`` raw and parsed
``xl-info.txt``     ``xl info`` raw
``grants.json``     the Host's GrantsSnapshot: own mappings/offers, processes, hypervisor table
``events.json``     the Host's EventsSnapshot: Xen interrupt rows and own ports
``interrupts.txt``  ``/proc/interrupts`` raw (``interrupts.json``: Xen rows parsed)
``sysfs.json``      ``/sys/hypervisor`` and the xenbus per-device counters
``hvdump.txt``      the hypervisor's ``g`` and ``e`` console dumps raw (``hvdump.json`` parsed)
``xl-dmesg.txt``    the hypervisor console ring as read before any debug key (never cleared)
``quota.json``      XenStore quota settings and per-domain usage
``lsevtchn.json``   every domain's ports as ``lsevtchn`` lists them
``processes.json``  processes holding the Xen devices (the diagnostics procfs source)
``findings.json``   the system-wide findings, when the diagnostics exist
``probe-log.json``  the running session's probe step records
``pages.json``      with --include-pages: index of ``pages/NNNN.bin`` (raw page bytes)
==================  =====================================================================
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from grantscope import __version__
from grantscope.bundle.collect import Collector, Payload, Unavailable
from grantscope.bundle.host_collectors import (
    ExportSources,
    collect_events,
    collect_grants,
    collect_pages,
    collect_probe_log,
    collect_xenstore,
    to_jsonable,
)
from grantscope.bundle.sim_collectors import simulated_collectors
from grantscope.model.findings import analyze
from grantscope.model.interrupts import parse_interrupts
from grantscope.model.toolout import parse_xl_list
from grantscope.sources import hvdump, lsevtchn, procfs, quota
from grantscope.sources.observation import Sample, build_observation
from grantscope.xen import _host

if TYPE_CHECKING:
    from grantscope.host.base import Host

SYS_HYPERVISOR = "/sys/hypervisor"
PROC_INTERRUPTS = "/proc/interrupts"


def _read_text(path: str, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _run(argv: list[str], timeout: float) -> str:
    """Run a read-only command; its stdout, or Unavailable saying why not."""
    if shutil.which(argv[0]) is None:
        raise Unavailable(f"{argv[0]} is not installed")
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{' '.join(argv)} did not answer within {timeout:g} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else f"exit status {done.returncode}"
        raise Unavailable(f"{' '.join(argv)} failed: {why}")
    return done.stdout.decode("utf-8", "replace")


# -- host facts ----------------------------------------------------------------------------------
def hypervisor_facts(root: str = SYS_HYPERVISOR) -> dict[str, str]:
    """The small text files under /sys/hypervisor (type, uuid, version, guest_type, flags...)."""
    facts: dict[str, str] = {}
    if not os.path.isdir(root):
        return facts
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            text = _read_text(full, 4096)
            if text is not None:
                facts[os.path.relpath(full, root)] = text.strip()
    return facts


def collect_host(host: Host | None, shared: dict[str, Any] | None = None) -> Payload:
    """host.json: always succeeds, with whatever facts this machine has."""
    hv = hypervisor_facts()
    caps = _read_text("/proc/xen/capabilities")
    version = ""
    if {"version/major", "version/minor"} <= hv.keys():
        version = f"{hv['version/major']}.{hv['version/minor']}{hv.get('version/extra', '')}"
    role = "dom0" if _host.is_dom0() else "domU" if _host.is_xen_host() else "none"
    uname = platform.uname()
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "kernel": f"{uname.system} {uname.release} {uname.version} {uname.machine}",
        "role": role,
        "xen_version": version or None,
        "guest_type": hv.get("guest_type"),
        "hypervisor": hv,
        "proc_xen_capabilities": None if caps is None else caps.strip(),
        "grantscope_version": __version__,
        "python": sys.version.split()[0],
    }
    local: int | None = 0 if role == "dom0" else None
    if host is not None:
        try:
            info = host.info()
            facts["info"] = to_jsonable(info)
            local = info.domid
        except Exception as err:  # the host facts must never fail the export
            facts["info_error"] = f"{type(err).__name__}: {err}"
    if shared is not None:
        shared["local_domid"] = local
    return {"host.json": facts}


# -- xl --------------------------------------------------------------------------------------
def collect_domains(timeout: float) -> Payload:
    """domains.json: ``xl list`` raw and parsed."""
    text = _run(["xl", "list"], timeout)
    return {"domains.json": {"raw": text, "domains": parse_xl_list(text)}}


def collect_xl_info(timeout: float) -> Payload:
    """xl-info.txt: ``xl info`` as printed."""
    return {"xl-info.txt": _run(["xl", "info"], timeout).encode()}


# -- /proc and /sys --------------------------------------------------------------------------
def collect_interrupts(shared: dict[str, Any] | None = None) -> Payload:
    """interrupts.txt raw, and interrupts.json with the Xen rows parsed (when the parser exists)."""
    text = _read_text(PROC_INTERRUPTS, 16 << 20)
    if text is None:
        raise Unavailable(f"{PROC_INTERRUPTS} is not readable here")
    out: dict[str, Any] = {"interrupts.txt": text.encode()}
    parsed = parse_interrupts(text)
    if shared is not None:
        shared["interrupts"] = (parsed, time.monotonic())
    out["interrupts.json"] = to_jsonable(parsed)
    return out


def collect_sysfs(shared: dict[str, Any] | None = None) -> Payload:
    """sysfs.json: /sys/hypervisor and every xenbus device's counters."""
    counters = procfs.read_xenbus_counters()
    if shared is not None:
        shared["counters"] = (counters, time.monotonic())
    hv = hypervisor_facts()
    if not hv and not counters:
        raise Unavailable("no /sys/hypervisor and no xenbus devices: not a Xen guest or dom0")
    return {"sysfs.json": {"hypervisor": hv, "xenbus": to_jsonable(counters)}}


# -- the hypervisor console --------------------------------------------------------------------
def collect_hvdump(timeout: float, shared: dict[str, Any] | None = None, *,
                   capture: bool = False, unavailable: dict[str, str] | None = None) -> Payload:
    """hvdump.txt (the g and e dumps as printed), hvdump.json (parsed), xl-dmesg.txt.

    With ``capture`` (``bundle export --capture``) ``g`` and ``e`` are sent and each new dump
    is cut out of the ring; otherwise the dumps the console ring already holds are used and a
    missing one is recorded in ``unavailable`` (the findings then say which checks it leaves).
    The ring is only read, never emptied; xl-dmesg.txt is the ring as it was before any key.
    """
    got = hvdump.capture_dumps("ge", timeout=timeout) if capture else \
        hvdump.read_ring(timeout=timeout)
    if got.unavailable:
        raise Unavailable(got.unavailable)
    summary = to_jsonable(got)
    summary["parse"] = None if got.parse is None else to_jsonable(got.parse)
    if shared is not None:
        shared["console"] = got.parse
    if not capture and unavailable is not None and got.parse is not None:
        for key, what, dump in (("g", "grant dump", got.parse.grants),
                                ("e", "event dump", got.parse.events)):
            if dump is None:
                unavailable[what] = (f"the console ring holds no '{key}' dump and none was "
                                     "captured (--capture sends 'g' and 'e')")
    return {
        "hvdump.txt": got.text.encode(),
        "hvdump.json": summary,
        "xl-dmesg.txt": got.earlier_console.encode(),
    }


def _domids(host: Host | None, timeout: float) -> list[int]:
    """Domain ids known to XenStore (through the Host) or to ``xl list``; [0] as a last resort."""
    if host is not None:
        try:
            ids = sorted(int(x) for x in host.list("/local/domain") if x.isdigit())
            if ids:
                return ids
        except Exception:  # fall back to xl
            pass
    try:
        rows = parse_xl_list(_run(["xl", "list"], timeout))
        if rows:
            return [row["domid"] for row in rows]
    except Unavailable:
        pass
    return [0]


def collect_quota(
    host: Host | None, timeout: float, shared: dict[str, Any] | None = None
) -> Payload:
    """quota.json: XenStore quota limits and per-domain usage (xenstore-control)."""
    snapshot = quota.read_quota(_domids(host, timeout), timeout=timeout)
    if not snapshot.usage and snapshot.limits_source != "xenstored":
        raise Unavailable("; ".join(snapshot.unavailable) or "xenstore-control gave nothing")
    if shared is not None and snapshot.usage:
        shared["quota"] = snapshot
    return {"quota.json": to_jsonable(snapshot)}


def collect_lsevtchn(host: Host | None, timeout: float) -> Payload:
    """lsevtchn.json: every domain's event-channel ports as ``lsevtchn`` lists them."""
    domains: dict[str, Any] = {}
    reasons = []
    for domid in _domids(host, timeout):
        ports, why = lsevtchn.read_lsevtchn(domid, timeout=timeout)
        domains[str(domid)] = {"ports": to_jsonable(ports), "why": why}
        if why:
            reasons.append(why)
    if not any(d["ports"] for d in domains.values()) and reasons:
        raise Unavailable(reasons[0])
    return {"lsevtchn.json": {"domains": domains}}


def collect_processes(shared: dict[str, Any] | None = None) -> Payload:
    """processes.json: processes holding /dev/xen/gntdev, gntalloc or evtchn."""
    holders = procfs.xen_device_holders()
    if shared is not None:
        shared["holders"] = holders
    return {"processes.json": {"holders": to_jsonable(holders)}}


def collect_findings(shared: dict[str, Any], unavailable: dict[str, str]) -> Payload:
    """findings.json: the system-wide findings over what the earlier collectors gathered.

    Interrupts and xenbus counters are sampled a second time here, so the rate checks (storms,
    spurious events) have two samples spanning the export.
    """
    irq_a, t_irq = shared.get("interrupts", (None, 0.0))
    cnt_a, t_cnt = shared.get("counters", (None, 0.0))
    irq_b = procfs.read_interrupts() if irq_a is not None else None
    if isinstance(irq_b, str):
        irq_b = None
    cnt_b = procfs.read_xenbus_counters() if cnt_a is not None else None
    now = time.monotonic()
    missing = dict(unavailable)
    for part, name in (
        ("xenstore", "xenstore"),
        ("console", "grant dump"),
        ("interrupts", "interrupts"),
        ("counters", "xenbus counters"),
        ("quota", "quota"),
    ):
        if shared.get(part) is None:
            missing.setdefault(name, unavailable.get(part, "not collected in this export"))
    start = t_irq or t_cnt or now
    obs = build_observation(
        xenstore=shared.get("xenstore"),
        console=shared.get("console"),
        first=Sample(irq_a, cnt_a, start),
        second=Sample(irq_b, cnt_b, now),
        quota=shared.get("quota"),
        holders=shared.get("holders"),
        local_domid=shared.get("local_domid"),
        unavailable=missing,
    )
    return {"findings.json": to_jsonable(analyze(obs))}


def _noting(name: str, fn: Callable[[], Payload], notes: dict[str, str]) -> Callable[[], Payload]:
    def run() -> Payload:
        try:
            return fn()
        except Exception as err:
            notes[name] = str(err) or type(err).__name__
            raise

    return run


def is_simulated(host: Host | None) -> bool:
    """True for the simulated (``--demo``) host, whose export is its own collectors'."""
    try:
        return host is not None and host.info().backend == "sim"
    except Exception:  # a host that cannot say what it is: treat it as real
        return False


def standard_collectors(sources: ExportSources) -> list[Collector]:
    """The collectors of ``bundle export``, in the order they run (the simulated host's own,
    :func:`grantscope.bundle.sim_collectors.simulated_collectors`, under ``--demo``)."""
    if is_simulated(sources.host):
        return simulated_collectors(sources)
    host, cmd_t, note = sources.host, sources.command_timeout_s, sources.host_note
    shared = sources.shared
    collectors = [
        Collector("host", lambda: collect_host(host, shared), 15.0, "host facts"),
        Collector("xenstore", lambda: collect_xenstore(host, 120.0, shared), 180.0, "XenStore"),
        Collector("domains", lambda: collect_domains(cmd_t), cmd_t + 5, "xl list"),
        Collector("xl_info", lambda: collect_xl_info(cmd_t), cmd_t + 5, "xl info"),
        Collector("hvdump", lambda: collect_hvdump(cmd_t, shared, capture=sources.capture,
                                                   unavailable=sources.unavailable),
                  5 * cmd_t, "g and e dumps"),
        Collector("grants", lambda: collect_grants(host, note), 60.0, "grants snapshot"),
        Collector("events", lambda: collect_events(host, note), 30.0, "events snapshot"),
        Collector("interrupts", lambda: collect_interrupts(shared), 10.0, "/proc/interrupts"),
        Collector("sysfs", lambda: collect_sysfs(shared), 15.0, "hypervisor, xenbus counters"),
        Collector("quota", lambda: collect_quota(host, cmd_t, shared), 4 * cmd_t, "quota"),
        Collector("lsevtchn", lambda: collect_lsevtchn(host, cmd_t), 4 * cmd_t, "ports per domain"),
        Collector("processes", lambda: collect_processes(shared), 30.0, "device holders"),
        Collector(
            "findings",
            lambda: collect_findings(shared, sources.unavailable),
            60.0,
            "system-wide findings",
        ),
        Collector("probe_log", lambda: collect_probe_log(sources.probe_log), 5.0, "probe log"),
    ]
    # Remember why a part is missing, so the findings say which checks could not run and why.
    collectors = [
        dataclasses.replace(c, fn=_noting(c.name, c.fn, sources.unavailable)) for c in collectors
    ]
    if sources.include_pages:
        collectors.append(Collector("pages", lambda: collect_pages(host, note), 60.0, "page bytes"))
    return collectors
