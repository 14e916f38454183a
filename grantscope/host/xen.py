"""The ``xen`` backend: this machine's hypervisor, through grantscope.xen and grantscope.sources.

Thin on purpose: every source it wraps is written and tested elsewhere (the XenStore client,
/proc parsers, the hypervisor dump capture, the probe engine's RealDevices).  Its behaviour is
proven on real Xen in the lab tier, never on the simulated host.
"""

from __future__ import annotations

import collections
import socket
import threading
from collections.abc import Sequence
from typing import Any

from grantscope.host.base import (
    EventCounter,
    EventsSnapshot,
    FindingsSnapshot,
    GrantsSnapshot,
    Host,
    HostInfo,
    HvGrant,
    HvPort,
    OwnGrant,
    OwnPort,
    ProcessGrants,
    UsageSnapshot,
    WatchHandle,
    domain_usage,
    hv_ports_from_dump,
)
from grantscope.model.toolout import ProcessInfo
from grantscope.xen import _host
from grantscope.xen.xs_types import Perms, XsNode

#: Seconds between the two counter samples of an analysis from the TUI (storms, spurious
#: events): short, as the user waits for it, long enough for a storm to show a rate.
ANALYZE_INTERVAL = 1.0
#: Seconds of the Events view's own polls an analysis judges IRQ rates over, when it has
#: them: one second of a storm that comes in bursts can fall below the threshold.
STORM_WINDOW = 10.0


class TrackingDevices:
    """The probe engine's RealDevices, remembering what was made so the Grants screen shows it."""

    name = "xen"

    def __init__(self) -> None:
        from grantscope.probing.devices import RealDevices

        self._real = RealDevices()
        self.made: list[tuple[str, Any]] = []  # ("map"|"offer"|"evtchn", object)
        self._lock = threading.Lock()

    def _keep(self, kind: str, obj: Any) -> Any:
        with self._lock:
            self.made.append((kind, obj))
        return obj

    def map_grants(self, domid: int, grefs: Sequence[int], *, writable: bool) -> Any:
        """A real gntdev mapping."""
        return self._keep("map", self._real.map_grants(domid, grefs, writable=writable))

    def offer(self, domid: int, pages: int, *, writable: bool) -> Any:
        """A real gntalloc offer."""
        return self._keep("offer", self._real.offer(domid, pages, writable=writable))

    def event_channel(self) -> Any:
        """A real evtchn handle."""
        return self._keep("evtchn", self._real.event_channel())

    def guest_type(self) -> str:
        """This domain's guest type (RealDevices')."""
        return self._real.guest_type()

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """A one-byte GRANT_COPY status."""
        return int(self._real.probe_grant_status(domid, gref))

    def xenstore(self) -> Any:
        """The engine's XenStore connection."""
        return self._real.xenstore()

    def live(self) -> list[tuple[str, Any]]:
        """Objects not closed yet (each device object closes idempotently; closed ones drop)."""
        with self._lock:
            self.made = [(k, o) for k, o in self.made if not getattr(o, "_closed", False)
                         and not getattr(o, "closed", False)]
            return list(self.made)


class XenHost(Host):
    """The machine grantscope runs on, on Xen (dom0 or a domU)."""

    def __init__(self, *, readonly: bool = False, hypervisor_dumps: bool = False) -> None:
        """``hypervisor_dumps`` captures ``xl debug-keys g`` on every grants poll (dom0 only)."""
        from grantscope.xen.errors import require_xen

        require_xen()
        self.readonly = readonly
        self.hypervisor_dumps = hypervisor_dumps
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._devices: TrackingDevices | None = None
        self._hv: tuple[HvGrant, ...] | None = None
        self._grant_dump: Any = None  # the last 'g' dump: the only source of maptrack sizes
        self._hv_ports: tuple[HvPort, ...] | None = None
        self._findings: FindingsSnapshot | None = None
        # (monotonic time, interrupts) of recent events() polls, oldest first
        self._irq_polls: collections.deque[tuple[float, Any]] = collections.deque(maxlen=64)
        self._irq_lock = threading.Lock()

    # -- XenStore ------------------------------------------------------------------------
    def store(self) -> Any:
        """The XenStore connection, opened on first use (raises XenStoreError when absent)."""
        with self._store_lock:
            if self._store is None:
                from grantscope.xen.xenstore import XenStore

                self._store = XenStore.open()
            return self._store

    def info(self) -> HostInfo:
        """From /proc/xen/capabilities, /sys/hypervisor and XenStore's ``domid``."""
        from grantscope.sources.procfs import read_hypervisor

        hv = read_hypervisor()
        dom0 = _host.is_dom0()
        version = ".".join(hv[k] for k in ("version/major", "version/minor") if k in hv)
        version += hv.get("version/extra", "")
        domid = 0
        if not dom0:
            try:
                raw = self.store().read_or_none("domid")
                domid = int(raw) if raw else -1
            except Exception:  # no store yet: the header says "?" rather than failing
                domid = -1
        # When the kernel says neither, XenStore's own answer (dom0's domid node is 0) decides.
        is_dom0 = bool(dom0) or (dom0 is None and domid == 0)
        return HostInfo(domid=domid, is_dom0=is_dom0, guest_type=hv.get("guest_type", "unknown"),
                        xen_version=version or "unknown", backend="xen",
                        label=socket.gethostname(), readonly=self.readonly)

    def list(self, path: str) -> Sequence[str]:
        """DIRECTORY of ``path``."""
        return list(self.store().list(path))

    def read(self, path: str) -> bytes | None:
        """READ of ``path`` or None."""
        value: bytes | None = self.store().read_or_none(path)
        return value

    def domain_alive(self, domid: int) -> bool | None:
        """xenstored's IS_DOMAIN_INTRODUCED: False once Xen destroyed the domain (it may be
        dying, held by our mapping); None when it may not be asked (a domU)."""
        from grantscope.errors import GrantscopeError

        try:
            return bool(self.store().is_introduced(domid))
        except GrantscopeError:
            return None

    def perms(self, path: str) -> Perms | None:
        """GET_PERMS of ``path`` or None when it is missing or unreadable."""
        from grantscope.errors import GrantscopeError

        try:
            perms: Perms = self.store().get_perms(path)
        except GrantscopeError:
            return None
        return perms

    def watch(self, path: str) -> WatchHandle:
        """A XenStore watch."""
        handle: WatchHandle = self.store().watch(path)
        return handle

    def xenstore_snapshot(self, root: str = "/") -> tuple[XsNode, ...]:
        """A pipelined walk with permissions."""
        return tuple(self.store().walk(root, perms=True))

    # -- grants and events ----------------------------------------------------------------
    def grants(self) -> GrantsSnapshot:
        """Own maps/offers, device holders (procfs), and the ``g`` dump when enabled."""
        from grantscope.sources.procfs import xen_device_holders

        own: list[OwnGrant] = []
        if self._devices is not None:
            for kind, obj in self._devices.live():
                if kind == "map":
                    own.append(OwnGrant("map", obj.domid, tuple(obj.grefs), obj.writable, "probe"))
                elif kind == "offer":
                    own.append(OwnGrant("offer", obj.domid, tuple(obj.grefs), obj.writable,
                                        "probe"))
        procs = tuple(
            ProcessGrants(h.pid, h.comm, h.device, h.fds, h.mapped_pages)
            for h in xen_device_holders(("/dev/xen/gntdev", "/dev/xen/gntalloc"))
        )
        if self.hypervisor_dumps:
            self.capture_hypervisor_grants()
        return GrantsSnapshot(tuple(own), procs, self._hv, self.clock())

    def process_info(self, pid: int) -> ProcessInfo | None:
        """psutil's view of a device holder (:func:`grantscope.sources.procfs.describe_process`)."""
        from grantscope.sources.procfs import describe_process

        return describe_process(pid)

    def _capture(self, key: str, part: str) -> tuple[Any, str]:
        """Capture the ``key`` dump through the diagnostics' safe capture (dom0 only): the
        parse when it holds ``part`` (``grants``/``events``), else None; and what to say."""
        from grantscope.errors import GrantscopeError
        from grantscope.sources.hvdump import capture_dumps

        try:
            cap = capture_dumps(key)
        except GrantscopeError as err:  # --readonly: the refusal, in one line
            return None, err.message
        if cap.parse is None or getattr(cap.parse, part) is None:
            return None, (cap.unavailable or "; ".join(cap.problems)
                          or f"no '{key}' dump in the console")
        return cap.parse, "; ".join(cap.problems)

    def capture_hypervisor_grants(self) -> str:
        """``xl debug-keys g`` through the diagnostics' safe capture (dom0 only)."""
        parse, said = self._capture("g", "grants")
        if parse is not None:
            self._keep_grants(parse)
        return said

    def _keep_grants(self, parse: Any) -> None:
        dump = parse.grants if parse is not None else None
        if dump is not None:
            self._grant_dump = dump
            self._hv = tuple(
                HvGrant(granter=e.granter, ref=e.ref, mapper=e.mapper, flags=f"{e.flags:#x}",
                        frame=e.mfn)
                for t in dump.tables for e in t.entries
            )

    def usage(self) -> UsageSnapshot:
        """Grant frames per domain (``GNTTABOP_query_size``), maptrack frames (the last ``g``
        dump, if one was captured) and XenStore nodes against the quota (CONTROL quota)."""
        from grantscope.errors import GrantscopeError
        from grantscope.sources.gnttab_size import read_grant_frames
        from grantscope.sources.quota import read_quota

        try:
            domids = sorted(int(d) for d in self.list("/local/domain") if d.isdigit())
        except GrantscopeError:  # a domU may not list the domains: its own only
            domids = [self.info().domid]
        sizes, problems = read_grant_frames(domids)
        if self._grant_dump is None:
            problems += ("maptrack: no 'g' dump captured yet (h on the Grants tab)",)
        return domain_usage(dump=self._grant_dump, sizes=sizes, quota=read_quota(domids),
                            unavailable=problems, taken_at=self.clock())

    def capture_hypervisor_events(self) -> str:
        """``xl debug-keys e`` through the diagnostics' safe capture (dom0 only)."""
        parse, said = self._capture("e", "events")
        if parse is not None:
            self._hv_ports = hv_ports_from_dump(parse.events)
        return said

    def findings(self) -> FindingsSnapshot | None:
        """The last analysis run by :meth:`analyze` (None before the user asked for one)."""
        return self._findings

    def analyze(self) -> FindingsSnapshot:
        """What ``grantscope report`` does: read every source, capture g/e, analyze.

        The dumps it captured also refresh the Grants and Events hypervisor tables.
        """
        from grantscope.model.findings import analyze
        from grantscope.sources.observation import collect_observation
        from grantscope.xen.readonly import is_readonly

        # 'a' asks for a capture; a --readonly session sends no debug key and analyses the
        # dumps the console ring already holds (the findings say which checks that leaves).
        capture = not is_readonly()
        obs, _extra, _capture = collect_observation(interval=ANALYZE_INTERVAL, dumps=True,
                                                    capture=capture, earlier=self._irq_since())
        result = analyze(obs)
        self._keep_grants(obs.console)
        if obs.console is not None and obs.console.events is not None:
            self._hv_ports = hv_ports_from_dump(obs.console.events)
        source = ("live analysis (as 'grantscope report --capture')" if capture else
                  "live analysis of the console ring as it is (--readonly: no debug key sent)")
        self._findings = FindingsSnapshot(result.findings, result.not_checked, source,
                                          self.clock())
        return self._findings

    def _irq_since(self) -> Any:
        """The oldest interrupts poll of the last STORM_WINDOW seconds, as a Sample (or None)."""
        from grantscope.sources.observation import Sample

        now = self.clock()  # time.monotonic, the collection's Sample clock too
        with self._irq_lock:
            recent = [(at, got) for at, got in self._irq_polls if now - at <= STORM_WINDOW]
        return Sample(recent[0][1], None, recent[0][0]) if recent else None

    def events(self) -> EventsSnapshot:
        """Xen rows of /proc/interrupts, our own evtchn ports, the last ``e`` dump's table."""
        from grantscope.sources.procfs import read_interrupts

        parsed = read_interrupts()
        rows: tuple[EventCounter, ...] = ()
        if not isinstance(parsed, str):
            with self._irq_lock:
                self._irq_polls.append((self.clock(), parsed))
            rows = tuple(EventCounter(r.irq, r.counts, f"{r.chip}-{r.handler}".strip("-"),
                                      r.action) for r in parsed.rows)
        ports: list[OwnPort] = []
        if self._devices is not None:
            for kind, obj in self._devices.live():
                if kind == "evtchn":
                    ports.extend(OwnPort(p, "bound", None, None, 0, "probe")
                                 for p in sorted(obj.ports))
        return EventsSnapshot(rows, tuple(ports), self.clock(), self._hv_ports)

    def devices(self) -> TrackingDevices | None:
        """The real devices (tracked), or None with ``--readonly``."""
        if self.readonly:
            return None
        if self._devices is None:
            self._devices = TrackingDevices()
        return self._devices

    def close(self) -> None:
        """Close the XenStore connection."""
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
