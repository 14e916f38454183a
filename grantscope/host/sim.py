"""The simulated host behind ``grantscope --demo``: dom0 with two guests, always labelled SIMULATED.

What it simulates: a XenStore with the usual PV device directories (a vbd and a vif per
guest, frontends and backends), a block ring page shared by dom1 whose indices move,
interrupt counters that tick at varying rates, a few processes holding gntdev, and a
hypervisor grant table.  Everything moving is a pure function of the host clock, so a frozen
clock (``SimHost(frozen_at=...)``) gives byte-identical screens for snapshot tests.
Probes run on :class:`~grantscope.host.sim_devices.SimDevices` over the same grant and port
tables, so a probe's offer shows up on the Grants screen and its page in the Page view.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from grantscope.host.base import (
    EventCounter,
    EventsSnapshot,
    FindingsSnapshot,
    GrantsSnapshot,
    Host,
    HostInfo,
    HvGrant,
    OwnGrant,
    OwnPort,
    PageRef,
    ProcessGrants,
    UsageSnapshot,
    WatchHandle,
    hv_ports_from_dump,
)
from grantscope.host.sim_devices import GrantTable, PortTable, SimDevices
from grantscope.host.sim_store import AdvancingWatch, SimStoreView
from grantscope.host.sim_xenstore import SimXenStore
from grantscope.model.ring import RingHeader, encode_ring_header
from grantscope.xen.xs_types import Perms, XsNode

if TYPE_CHECKING:
    from grantscope.model.findings import Observation
    from grantscope.model.toolout import ProcessInfo

GUESTS = {1: ("web-frontend", "pv"), 2: ("storage-01", "pvh")}
RING_GREF = {1: 8, 2: 8}
RING_SLOTS = 32
#: A guest destroyed earlier whose vbd backend directory the toolstack left behind.
GONE_DOMID = 3
#: A page of dom1 that dom2 still maps though nothing in XenStore names it (a leak).
LEAKED_REF = 31


def _hv() -> ModuleType:
    """The simulated hypervisor's dumps and quota, imported when first asked for.

    They pull in the dump parsers and the findings engine, which the first screen does not
    need: importing them at start cost the TUI's first paint about 30 ms (issue 19).
    """
    from grantscope.host import sim_hv

    return sim_hv


def _counter(rate: float, period: float, t: float, phase: float = 0.0) -> int:
    """Events by time ``t`` at a rate swinging between 0.2x and 1.8x ``rate`` (never negative).

    The integral of ``rate * (1 + 0.8 sin(2 pi t / period + phase))``, so the count only grows.
    """
    w = 2 * math.pi / period
    value = rate * (t - 0.8 / w * (math.cos(w * t + phase) - math.cos(phase)))
    return max(0, int(value))


class SimHost(Host):
    """A simulated dom0 with two guests (see the module docstring)."""

    def __init__(
        self,
        *,
        readonly: bool = False,
        frozen_at: float | None = None,
        big_dir: int = 0,
    ) -> None:
        """``frozen_at`` freezes the clock; ``big_dir`` adds a directory with that many children."""
        self.readonly = readonly
        self._frozen = frozen_at
        self._start = time.monotonic()
        self._lock = threading.RLock()
        self.store = SimXenStore()
        self.grant_table = GrantTable([0, *GUESTS])
        self.port_table = PortTable()
        self._devices = SimDevices(self.grant_table, self.port_table, self.store)
        self._last_beat = -1
        self._build_store(big_dir)
        self._build_grants_and_ports()
        self._advance()  # the first heartbeat, before anyone watches

    # -- clock --------------------------------------------------------------------------
    def clock(self) -> float:
        """Seconds since the demo started (or the frozen instant)."""
        if self._frozen is not None:
            return self._frozen
        return 100.0 + time.monotonic() - self._start

    def freeze(self, at: float | None) -> None:
        """Freeze the clock at ``at`` (None resumes real time)."""
        self._frozen = at

    # -- building the demo world ------------------------------------------------------------
    def _build_store(self, big_dir: int) -> None:
        w = self.store.write
        dom0 = Perms(0, "n", ())
        w("/tool/xenstored", b"", dom0)
        w("/local", b"", Perms(0, "r", ()))
        w("/local/domain/0/name", b"Domain-0", dom0)
        w("/local/domain/0/domid", b"0", dom0)
        w("/local/domain/0/control/feature-poweroff", b"1", dom0)
        w("/vm", b"", dom0)
        for domid, (name, gtype) in GUESTS.items():
            home = f"/local/domain/{domid}"
            own = Perms(domid, "n", ((0, "r"),))
            uuid = f"5f0b3c2e-7a41-4d8e-9c1a-00000000000{domid}"
            w(f"/vm/{uuid}/name", name.encode(), dom0)
            w(f"/vm/{uuid}/uuid", uuid.encode(), dom0)
            w(f"{home}/name", name.encode(), Perms(0, "n", ((domid, "r"),)))
            w(f"{home}/domid", str(domid).encode(), Perms(0, "n", ((domid, "r"),)))
            w(f"{home}/vm", f"/vm/{uuid}".encode(), Perms(0, "n", ((domid, "r"),)))
            w(f"{home}/memory/target", str(131072 * domid).encode(), Perms(0, "n", ((domid, "r"),)))
            w(f"{home}/control/shutdown", b"", Perms(0, "n", ((domid, "b"),)))
            w(f"{home}/data/heartbeat", b"0", own)
            w(f"{home}/data/note", b"demo guest\tsimulated\n\x01", own)
            w(f"{home}/console/ring-ref", b"2", own)
            w(f"{home}/console/port", b"2", own)
            w(f"{home}/image/guest-type", gtype.encode(), Perms(0, "n", ((domid, "r"),)))
            # a block device: frontend in the guest, backend in dom0
            vbd = 51712
            fe = f"{home}/device/vbd/{vbd}"
            be = f"/local/domain/0/backend/vbd/{domid}/{vbd}"
            fe_perms = Perms(domid, "n", ((0, "r"),))
            be_perms = Perms(0, "n", ((domid, "r"),))
            for key, value in (("backend", be), ("backend-id", "0"), ("state", "4"),
                               ("virtual-device", str(vbd)), ("device-type", "disk"),
                               ("ring-ref", str(RING_GREF[domid])), ("event-channel", "5"),
                               ("protocol", "x86_64-abi")):
                w(f"{fe}/{key}", value.encode(), fe_perms)
            for key, value in (("frontend", fe), ("frontend-id", str(domid)), ("state", "4"),
                               ("params", f"/srv/xen/{name}.img"), ("mode", "w"),
                               ("sectors", "4194304"), ("sector-size", "512"),
                               ("feature-flush-cache", "1")):
                w(f"{be}/{key}", value.encode(), be_perms)
            # a network device
            vif = f"{home}/device/vif/0"
            vbe = f"/local/domain/0/backend/vif/{domid}/0"
            # dom2's network never came up: its frontend waits for a backend stuck in InitWait
            fe_state, be_state = ("3", "2") if domid == 2 else ("4", "4")
            for key, value in (("backend", vbe), ("backend-id", "0"), ("state", fe_state),
                               ("tx-ring-ref", str(9 + 0)), ("rx-ring-ref", "10"),
                               ("event-channel", "6"), ("mac", f"00:16:3e:5a:0{domid}:1c"),
                               ("request-rx-copy", "1")):
                w(f"{vif}/{key}", value.encode(), fe_perms)
            for key, value in (("frontend", vif), ("frontend-id", str(domid)),
                               ("state", be_state), ("handle", "0"),
                               ("script", "/etc/xen/scripts/vif-bridge"), ("bridge", "xenbr0")):
                w(f"{vbe}/{key}", value.encode(), be_perms)
        gone = f"/local/domain/0/backend/vbd/{GONE_DOMID}/51712"
        for key, value in (("frontend", f"/local/domain/{GONE_DOMID}/device/vbd/51712"),
                           ("frontend-id", str(GONE_DOMID)), ("state", "6"),
                           ("params", "/srv/xen/build-07.img"), ("mode", "w")):
            w(f"{gone}/{key}", value.encode(), Perms(0, "n", ((GONE_DOMID, "r"),)))
        if big_dir:
            base = "/local/domain/2/data/sessions"
            perms = Perms(2, "n", ((0, "r"),))
            for i in range(big_dir):
                w(f"{base}/s{i:05d}", str(i * 7 % 1000).encode(), perms)

    def _build_grants_and_ports(self) -> None:
        gt = self.grant_table
        for domid in GUESTS:
            gt.grant(domid, 0, writable=True, ref=2)   # console ring, to dom0
            gt.grant(domid, 0, writable=True, ref=RING_GREF[domid])  # vbd ring
            gt.grant(domid, 0, writable=True, ref=9)   # vif tx
            gt.grant(domid, 0, writable=True, ref=10)  # vif rx
            for ref in (2, RING_GREF[domid], 9, 10):
                gt.entries[(domid, ref)].mapped_by.add(0)
            # a data page offered to dom0 but not mapped: a probe can map it
            entry = gt.grant(domid, 0, writable=True, ref=20)
            entry.page[:32] = f"hello from d{domid} (simulated)".encode().ljust(32, b"\0")
            # the guest's unbound port for dom0 that probes can bind interdomain to
            self.port_table.allocate(domid, {"kind": "unbound", "remote_domid": 0,
                                             "remote_port": None, "owner": GUESTS[domid][0]})
        # a page dom1 shared with dom2, still mapped by dom2 though no key names it any more
        gt.grant(1, 2, writable=True, ref=LEAKED_REF).mapped_by.add(2)
        # a grant of dom1 to dom2 (dom0 cannot map it: GNTST -1, for explain-map)
        gt.grant(1, 2, writable=False, ref=30)
        self.store.write("/local/domain/1/data/gref", b"20", Perms(1, "n", ((0, "r"),)))
        self.store.write("/local/domain/1/data/port", b"1", Perms(1, "n", ((0, "r"),)))
        self.store.write("/local/domain/1/data/peer-gref", b"30", Perms(1, "n", ((0, "r"),)))

    # -- time-driven changes ----------------------------------------------------------------
    def _advance(self) -> None:
        """Apply the changes the clock implies (the guests' heartbeats), firing watches."""
        beat = int(self.clock() // 2)
        with self._lock:
            if beat == self._last_beat:
                return
            self._last_beat = beat
        for domid in GUESTS:
            self.store.write(f"/local/domain/{domid}/data/heartbeat", str(beat * domid).encode())

    def _ring_page(self, domid: int) -> None:
        """Write the moving ring header and a few request slots into dom``domid``'s ring page."""
        t = self.clock()
        entry = self.grant_table.entries.get((domid, RING_GREF[domid]))
        if entry is None:
            return
        produced = _counter(40.0 * domid, 7.0, t)
        answered = max(0, produced - 3 - int(3 * (1 + math.sin(t * 1.3))))
        header = RingHeader(req_prod=produced, req_event=answered + 1,
                            rsp_prod=answered, rsp_event=answered + 1)
        page = entry.page
        page[0:16] = encode_ring_header(header)
        # blkif requests are 112 bytes from offset 64; fill the slots the indices name
        for idx in range(max(0, produced - 4), produced):
            slot = idx % RING_SLOTS
            off = 64 + slot * 112
            if off + 24 > len(page):
                continue
            op = 0 if idx % 3 else 1  # BLKIF_OP_READ / WRITE
            page[off:off + 24] = struct.pack("<BBHIQQ", op, 1, 51712 & 0xFFFF, 0,
                                             idx, (idx * 8) % 4194304)

    # -- Host interface ----------------------------------------------------------------------
    def info(self) -> HostInfo:
        """dom0 of a simulated Xen 4.17 host."""
        return HostInfo(domid=0, is_dom0=True, guest_type="pv", xen_version="4.17.7 (simulated)",
                        backend="sim", label="SIMULATED", readonly=self.readonly)

    def list(self, path: str) -> Sequence[str]:
        """Child names of ``path``."""
        self._advance()
        return self.store.list(path)

    def read(self, path: str) -> bytes | None:
        """Value of ``path`` or None."""
        self._advance()
        return self.store.read_or_none(path)

    def perms(self, path: str) -> Perms | None:
        """Permissions of ``path`` or None."""
        return self.store.get_perms(path) if self.store.exists(path) else None

    def watch(self, path: str) -> WatchHandle:
        """A watch that also advances the clock-driven changes while it waits."""
        return AdvancingWatch(self.store.watch(path), self._advance)

    def xenstore_snapshot(self, root: str = "/") -> tuple[XsNode, ...]:
        """The whole simulated tree with permissions."""
        self._advance()
        return tuple(self.store.walk(root, perms=True))

    def grants(self) -> GrantsSnapshot:
        """Our maps and offers, gntdev holders, and the hypervisor table from the grant tables."""
        own: list[OwnGrant] = []
        for m in self._devices.open_mappings:
            if not m._closed:
                own.append(OwnGrant("map", m.domid, m.grefs, m.writable, "probe",
                                    page_key=f"grant:{m.domid}:{m.grefs[0]}"))
        for o in self._devices.open_offers:
            if not o._closed:
                own.append(OwnGrant("offer", o.domid, o.grefs, o.writable, "probe",
                                    page_key=f"grant:0:{o.grefs[0]}"))
        for domid in GUESTS:
            own.append(OwnGrant("map", domid, (RING_GREF[domid],), True, "blkback (simulated)",
                                page_key=f"grant:{domid}:{RING_GREF[domid]}"))
        procs = list(self._system_processes())
        if any(not m._closed for m in self._devices.open_mappings):
            procs.append(ProcessGrants(4242, "grantscope", "/dev/xen/gntdev",
                                       1, sum(len(m.grefs) for m in self._devices.open_mappings
                                              if not m._closed)))
        if any(not o._closed for o in self._devices.open_offers):
            procs.append(ProcessGrants(4242, "grantscope", "/dev/xen/gntalloc", 1,
                                       sum(len(o.grefs) for o in self._devices.open_offers
                                           if not o._closed)))
        with self.grant_table.lock:
            rows = [
                HvGrant(granter=e.granter, ref=e.ref,
                        mapper=min(e.mapped_by) if e.mapped_by else None,
                        flags=("rw" if e.writable else "ro") + (" mapped" if e.mapped_by else ""),
                        frame=0x1a000 + e.granter * 0x100 + e.ref)
                for e in sorted(self.grant_table.entries.values(),
                                key=lambda e: (e.granter, e.ref))
            ]
        return GrantsSnapshot(tuple(own), tuple(procs), tuple(rows), self.clock())

    def domain_alive(self, domid: int) -> bool | None:
        """dom0 and the two simulated guests exist; nothing else does."""
        return domid == 0 or domid in GUESTS

    def process_info(self, pid: int) -> ProcessInfo | None:
        """Made-up details for the simulated holders (labelled simulated, like them)."""
        known = {
            1412: ("qemu-system-i386", ("/usr/bin/qemu-system-i386", "-xen-domid", "1",
                                        "-name", "web-frontend (simulated)")),
            977: ("xenconsoled", ("/usr/sbin/xenconsoled", "--pid-file=/run/xenconsoled.pid")),
            4242: ("grantscope", ("grantscope", "--demo")),
        }
        if pid not in known:
            return None
        name, cmdline = known[pid]
        from grantscope.model.toolout import ProcessInfo  # deferred, see _hv

        # a fixed start time (2026-01-01 + pid seconds): screens stay the same run to run
        return ProcessInfo(pid, name, cmdline, "root", 1767225600.0 + pid,
                           12.5 if pid != 4242 else 0.8, (48 << 20) + pid * 4096)

    @staticmethod
    def _system_processes() -> tuple[ProcessGrants, ...]:
        return (ProcessGrants(1412, "qemu-system-i386", "/dev/xen/gntdev", 1, 4),
                ProcessGrants(977, "xenconsoled", "/dev/xen/gntdev", 1, 2))

    def capture_hypervisor_grants(self) -> str:
        """Nothing to capture: the simulated grant table is always current (and shown)."""
        return ""

    def capture_hypervisor_events(self) -> str:
        """Nothing to capture: the simulated port table is always current."""
        return ""

    def observation(self) -> Observation:
        """What ``grantscope report`` reads, as the simulated dom0 sees it now."""
        from grantscope.model.toolout import DeviceHolder  # deferred, see _hv

        self._advance()
        nodes = tuple(self.store.walk("/", perms=True))
        hv = _hv()
        console = hv.sim_console(self.grant_table, self.port_table, tuple(GUESTS),
                              {n.path: n.value for n in nodes})
        holders = [DeviceHolder(p.pid, p.name, p.device, p.fds, p.mapped_pages)
                   for p in self.grants().processes]
        return hv.sim_observation(nodes, console, tuple(GUESTS), holders)

    def findings(self) -> FindingsSnapshot:
        """The simulated host has no side effects to avoid: it analyzes whenever asked."""
        return self.analyze()

    def analyze(self) -> FindingsSnapshot:
        """``report``'s analysis over the simulated XenStore, dumps, quota and processes."""
        from grantscope.model.findings import analyze  # deferred, see _hv

        result = analyze(self.observation())
        return FindingsSnapshot(result.findings, result.not_checked,
                                "simulated host (the analysis 'grantscope report' runs)",
                                self.clock())

    def usage(self) -> UsageSnapshot:
        """Grant and maptrack frames from the simulated ``g`` dump, nodes against the quota."""
        nodes = tuple(self.store.walk("/", perms=True))
        return _hv().sim_usage(self.grant_table, nodes, tuple(GUESTS), self.clock())

    def events(self) -> EventsSnapshot:
        """Interrupt rows whose counts follow the clock, our ports, the simulated ``e`` table."""
        t = self.clock()
        rows = [
            EventCounter(24, (_counter(250, 30, t), _counter(250, 30, t, 1.0)), "xen-percpu-virq",
                         "timer0"),
            EventCounter(25, (_counter(20, 11, t), _counter(18, 13, t)), "xen-percpu-ipi",
                         "resched0"),
            EventCounter(27, (_counter(2, 17, t), 0), "xen-dyn-event", "xenbus"),
            EventCounter(30, (_counter(35, 9, t), _counter(5, 9, t)), "xen-dyn-event",
                         "blkif-backend"),
            EventCounter(31, (_counter(80, 5, t, 2.0), _counter(12, 5, t)), "xen-dyn-event",
                         "vif1.0-q0-tx"),
            EventCounter(32, (_counter(95, 6, t, 0.5), _counter(14, 6, t)), "xen-dyn-event",
                         "vif1.0-q0-rx"),
            EventCounter(33, (_counter(3, 23, t), 0), "xen-dyn-lateeoi-event", "evtchn:xenstored"),
            EventCounter(34, (_counter(1, 29, t), 0), "xen-dyn-lateeoi-event",
                         "evtchn:xenconsoled"),
        ]
        with self.port_table.lock:
            ports = tuple(
                OwnPort(p.port, p.kind, p.remote_domid, p.remote_port, p.fired, p.owner)
                for (domid, _), p in sorted(self.port_table.ports.items())
                if domid == 0
            )
        nodes = {n.path: n.value for n in self.store.walk("/local/domain")}
        dump = _hv().sim_console(self.grant_table, self.port_table, tuple(GUESTS), nodes).events
        hv = hv_ports_from_dump(dump) if dump is not None else None
        return EventsSnapshot(tuple(rows), ports, t, hv)

    def pages(self) -> tuple[PageRef, ...]:
        """The guests' block rings (mapped by the simulated blkback) and probe pages."""
        refs = [PageRef(f"grant:{d}:{RING_GREF[d]}", f"d{d} vbd ring (gref {RING_GREF[d]})", d,
                        RING_GREF[d], ring=True) for d in GUESTS]
        for g in self.grants().own:
            if g.owner == "probe" and g.page_key:
                refs.append(PageRef(g.page_key, f"{g.kind} d{g.domid} gref {g.grefs[0]}",
                                    g.domid, g.grefs[0]))
        return tuple(refs)

    def read_page(self, key: str) -> bytes:
        """Bytes of a simulated granted page, ``grant:<granter>:<gref>``."""
        try:
            _, granter, ref = key.split(":")
            entry = self.grant_table.entries[(int(granter), int(ref))]
        except (ValueError, KeyError):
            return super().read_page(key)
        if int(granter) in GUESTS and int(ref) == RING_GREF[int(granter)]:
            self._ring_page(int(granter))
        return bytes(entry.page)

    def probe_hints(self) -> dict[str, dict[str, str]]:
        """Values that work on the demo host (and one that fails on purpose: explain-map)."""
        return {
            "map-grant": {"domid": "1", "gref": "xs:/local/domain/1/data/gref"},
            "offer-page": {"domid": "1"},
            "notify": {"domid": "1", "port": "xs:/local/domain/1/data/port"},
            "explain-map": {"domid": "1", "gref": "xs:/local/domain/1/data/peer-gref"},
        }

    def devices(self) -> SimDevices | None:
        """The simulated devices, or None with ``--readonly``."""
        return None if self.readonly else self._devices

    def probe_devices(self) -> SimDevices:
        """The simulated devices for ``grantscope --demo probe run``, even under ``--readonly``
        (the probe engine refuses a mutating probe itself; a read-only one may still run)."""
        return self._devices

    def live_store(self) -> SimStoreView:
        """The simulated XenStore as the ``xs`` commands use a real one (a context manager);
        reading or watching it lets the clock-driven changes (the heartbeats) happen."""
        return SimStoreView(self.store, self._advance)
