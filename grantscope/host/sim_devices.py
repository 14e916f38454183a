"""Simulated Xen devices for the demo host: grant pages and ports (the in-memory XenStore is
:mod:`grantscope.host.sim_xenstore`).

They follow the device classes of :mod:`grantscope.xen` (GrantMapping, GrantOffer, EventChannel,
XenStore) closely enough that the probe engine runs its probes on them, so every probe flow of
the TUI can be shown and tested without Xen.  Nothing here claims to prove real behaviour:
the real devices are proven on a real hypervisor.  The failure rules mirror what real Xen
4.17 did in the lab (reference/xenlab/NOTES.md): a map of a grant that does not name us fails
at mmap with EINVAL, and a one-byte GRANT_COPY reports the GNTST status instead.
"""

from __future__ import annotations

import errno as _errno
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grantscope.closing import Closing
from grantscope.host.sim_xenstore import SimXenStore
from grantscope.xen import abi
from grantscope.xen.errors import XenError

T = TypeVar("T")
PAGE = abi.PAGE_SIZE


def sim_error(
    message: str,
    *,
    errno: int,
    call: str,
    arguments: dict[str, object],
    explanation: str,
    gnttab_status: int | None = None,
) -> XenError:
    """The device layer's error for a simulated failure (same type the real devices raise)."""
    return XenError(message, explanation, errno=errno, call=call, arguments=arguments,
                    gnttab_status=gnttab_status)


# -- grants -------------------------------------------------------------------------------
@dataclass
class GrantEntry:
    """One simulated grant: ``granter`` lets ``grantee`` map ``page``."""

    granter: int
    ref: int
    grantee: int
    writable: bool
    page: bytearray
    mapped_by: set[int] = field(default_factory=set)


class GrantTable:
    """Every simulated domain's grant entries, keyed by ``(granter, ref)``."""

    def __init__(self, domains: Sequence[int]) -> None:
        self.lock = threading.RLock()
        self.domains = set(domains)
        self.entries: dict[tuple[int, int], GrantEntry] = {}
        self._next_ref: dict[int, int] = {}

    def grant(
        self, granter: int, grantee: int, *, writable: bool, ref: int | None = None
    ) -> GrantEntry:
        """Create a grant entry from ``granter`` to ``grantee`` over a zeroed page."""
        with self.lock:
            if ref is None:
                ref = self._next_ref.get(granter, 8)  # refs 0..7 are reserved
                while (granter, ref) in self.entries:
                    ref += 1
                self._next_ref[granter] = ref + 1
            entry = GrantEntry(granter, ref, grantee, writable, bytearray(PAGE))
            self.entries[(granter, ref)] = entry
            return entry

    def end(self, granter: int, ref: int) -> None:
        """End a grant (gntalloc dealloc)."""
        with self.lock:
            self.entries.pop((granter, ref), None)

    def status(self, mapper: int, granter: int, ref: int, *, writable: bool) -> int:
        """The GNTST code a map of ``(granter, ref)`` by ``mapper`` gets (Xen's rules, roughly)."""
        with self.lock:
            if granter == abi.DOMID_SELF or granter not in self.domains:
                return abi.GNTST_bad_domain
            entry = self.entries.get((granter, ref))
            if entry is None:
                # refs past the table are -3; an unused slot inside it reads as flags 0 -> -1
                return abi.GNTST_bad_gntref if ref >= 512 * 4 else abi.GNTST_general_error
            if entry.grantee != mapper or (writable and not entry.writable):
                return abi.GNTST_general_error
            return abi.GNTST_okay


class SimGrantMapping(Closing):
    """A gntdev-like mapping of simulated grants (the methods of gntdev.GrantMapping)."""

    def __init__(self, table: GrantTable, self_domid: int, domid: int, grefs: Sequence[int],
                 *, writable: bool) -> None:
        self.domid = domid
        self.grefs = tuple(grefs)
        self.writable = writable
        self._table = table
        self._self = self_domid
        args: dict[str, object] = {"domid": domid, "grefs": list(self.grefs), "writable": writable}
        if not self.grefs:
            raise sim_error("map of zero grants", errno=_errno.EINVAL,
                            call="ioctl(IOCTL_GNTDEV_MAP_GRANT_REF)", arguments=args,
                            explanation="Pass at least one grant reference.")
        entries = []
        for ref in self.grefs:
            st = table.status(self_domid, domid, ref, writable=writable)
            if st != abi.GNTST_okay:
                raise sim_error(
                    f"mmap of the gntdev mapping of d{domid} gref {ref} failed: EINVAL",
                    errno=_errno.EINVAL, call="mmap(/dev/xen/gntdev)", arguments=args,
                    explanation="The hypervisor refused the map; gntdev reports every refusal as "
                    "EINVAL. A GRANT_COPY probe of the same grant tells the GNTST reason.",
                )
            entries.append(table.entries[(domid, ref)])
        for e in entries:
            e.mapped_by.add(self_domid)
        self._entries = entries
        self._closed = False
        # one page: the view is the granted page itself, so both sides see every write
        self.page = memoryview(entries[0].page) if len(entries) == 1 else memoryview(
            bytearray(b"".join(bytes(e.page) for e in entries)))

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of the mapping from ``offset`` (to the end when ``length`` is None)."""
        end = len(self.page) if length is None else offset + length
        if len(self._entries) == 1:
            return bytes(self._entries[0].page[offset:end])
        return b"".join(bytes(e.page) for e in self._entries)[offset:end]

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (the peer sees it)."""
        if not self.writable:
            raise sim_error("write to a read-only mapping", errno=_errno.EACCES,
                            call="write(mapping)", arguments={"offset": offset},
                            explanation="Map the grant writable (and the grant must allow it).")
        for i, b in enumerate(data):
            pos = offset + i
            self._entries[pos // PAGE].page[pos % PAGE] = b

    def set_unmap_notify(self, offset: int, *, clear_byte: bool = False,
                         port: int | None = None) -> None:
        """Accepted and recorded; the simulated peer does not act on it."""
        self.unmap_notify = (offset, clear_byte, port)

    def close(self) -> None:
        """Unmap (idempotent)."""
        if not self._closed:
            self._closed = True
            for e in self._entries:
                e.mapped_by.discard(self._self)



class SimGrantOffer(Closing):
    """A gntalloc-like offer of fresh pages to ``domid`` (same methods as GrantOffer)."""

    def __init__(self, table: GrantTable, self_domid: int, domid: int, pages: int = 1,
                 *, writable: bool = False) -> None:
        if pages < 1:
            raise sim_error("offer of zero pages", errno=_errno.EINVAL,
                            call="ioctl(IOCTL_GNTALLOC_ALLOC_GREF)",
                            arguments={"domid": domid, "pages": pages},
                            explanation="Offer at least one page.")
        self.domid = domid
        self.writable = writable
        self._table = table
        self._self = self_domid
        self._entries = [table.grant(self_domid, domid, writable=writable) for _ in range(pages)]
        self.grefs = tuple(e.ref for e in self._entries)
        self.page = memoryview(self._entries[0].page)
        self._closed = False

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of the first offered page from ``offset``."""
        end = PAGE if length is None else offset + length
        return bytes(self._entries[0].page[offset:end])

    def write(self, offset: int, data: bytes) -> None:
        """Write into the offered page (the owner always may)."""
        self._entries[0].page[offset:offset + len(data)] = data

    def set_unmap_notify(self, offset: int, *, clear_byte: bool = False,
                         port: int | None = None) -> None:
        """Accepted and recorded."""
        self.unmap_notify = (offset, clear_byte, port)

    def close(self) -> None:
        """End the grants (idempotent)."""
        if not self._closed:
            self._closed = True
            for e in self._entries:
                self._table.end(e.granter, e.ref)



# -- event channels -------------------------------------------------------------------------
@dataclass
class PortState:
    """One simulated port of some domain."""

    domid: int
    port: int
    kind: str  # "unbound" | "interdomain" | "virq"
    remote_domid: int | None
    remote_port: int | None = None
    channel: SimEventChannel | None = None  # our fd that owns it (None for a guest's port)
    fired: int = 0
    owner: str = ""


class PortTable:
    """Every simulated domain's ports; a guest port notified by us echoes back (a live peer)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ports: dict[tuple[int, int], PortState] = {}

    def allocate(self, domid: int, state_kw: dict[str, Any]) -> PortState:
        """A new port in ``domid`` (lowest free number from 1)."""
        with self.lock:
            port = 1
            while (domid, port) in self.ports:
                port += 1
            st = PortState(domid=domid, port=port, **state_kw)
            self.ports[(domid, port)] = st
            return st

    def deliver(self, domid: int, port: int) -> None:
        """Mark ``(domid, port)`` fired and wake its channel; a guest port answers back."""
        with self.lock:
            st = self.ports.get((domid, port))
            if st is None:
                return
            st.fired += 1
            if st.channel is not None:
                st.channel.pending(port)
            elif st.remote_domid is not None and st.remote_port is not None:
                # a simulated guest's handler: it answers every notify with one notify back
                peer = self.ports.get((st.remote_domid, st.remote_port))
                if peer is not None and peer.channel is not None:
                    peer.fired += 1
                    peer.channel.pending(peer.port)


class SimEventChannel(Closing):
    """An evtchn-fd-like object over the simulated port table (same methods as EventChannel)."""

    def __init__(self, ports: PortTable, self_domid: int, owner: str = "") -> None:
        self._ports = ports
        self._self = self_domid
        self._owner = owner
        self._mine: set[int] = set()
        self._pending: list[int] = []
        self._cv = threading.Condition()
        self._closed = False

    @property
    def ports(self) -> frozenset[int]:
        """Ports bound through this channel."""
        return frozenset(self._mine)

    def fileno(self) -> int:
        """Simulated channels have no fd."""
        return -1

    def _bind(self, kind: str, remote_domid: int | None, remote_port: int | None) -> int:
        st = self._ports.allocate(self._self, {
            "kind": kind, "remote_domid": remote_domid, "remote_port": remote_port,
            "channel": self, "owner": self._owner})
        self._mine.add(st.port)
        return st.port

    def bind_unbound(self, remote_domid: int) -> int:
        """Allocate a port that ``remote_domid`` may bind to."""
        return self._bind("unbound", remote_domid, None)

    def bind_interdomain(self, remote_domid: int, remote_port: int) -> int:
        """Connect to ``remote_port`` of ``remote_domid``, which must be unbound for us."""
        args: dict[str, object] = {"remote_domid": remote_domid, "remote_port": remote_port}
        with self._ports.lock:
            peer = self._ports.ports.get((remote_domid, remote_port))
            if peer is None or peer.kind != "unbound" or peer.remote_domid != self._self:
                raise sim_error(
                    f"bind interdomain to d{remote_domid} port {remote_port} failed: EINVAL",
                    errno=_errno.EINVAL, call="ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN)",
                    arguments=args,
                    explanation="The remote port must exist and be unbound for this domain "
                    "(its owner allocates it with bind_unbound naming our domid).")
            port = self._bind("interdomain", remote_domid, remote_port)
            peer.kind = "interdomain"
            peer.remote_port = port
            return port

    def bind_virq(self, virq: int) -> int:
        """Bind a virtual IRQ."""
        return self._bind("virq", None, virq)

    def notify(self, port: int) -> None:
        """Send an event on our ``port`` to its peer."""
        with self._ports.lock:
            st = self._ports.ports.get((self._self, port))
            if port not in self._mine or st is None:
                raise sim_error(f"notify of port {port} failed: ENOTCONN", errno=_errno.ENOTCONN,
                                call="ioctl(IOCTL_EVTCHN_NOTIFY)", arguments={"port": port},
                                explanation="Only ports bound through this fd can be notified.")
            if st.remote_domid is not None and st.remote_port is not None:
                self._ports.deliver(st.remote_domid, st.remote_port)

    def unbind(self, port: int) -> None:
        """Close ``port``; its peer returns to unbound."""
        with self._ports.lock:
            if port not in self._mine:
                raise sim_error(f"unbind of port {port} failed: ENOTCONN", errno=_errno.ENOTCONN,
                                call="ioctl(IOCTL_EVTCHN_UNBIND)", arguments={"port": port},
                                explanation="Only ports bound through this fd can be unbound.")
            st = self._ports.ports.pop((self._self, port))
            self._mine.discard(port)
            if st.remote_domid is not None and st.remote_port is not None and st.kind != "virq":
                peer = self._ports.ports.get((st.remote_domid, st.remote_port))
                if peer is not None and peer.kind == "interdomain":
                    peer.kind, peer.remote_port = "unbound", None

    def pending(self, port: int) -> None:
        """Called by the port table: ``port`` fired."""
        with self._cv:
            self._pending.append(port)
            self._cv.notify_all()

    def wait(self, timeout: float) -> list[int]:
        """Ports that fired, waiting up to ``timeout`` seconds; [] on timeout."""
        with self._cv:
            if not self._pending:
                self._cv.wait(timeout)
            out, self._pending = self._pending, []
            return out

    def drain(self) -> list[int]:
        """Whatever is pending, without waiting."""
        with self._cv:
            out, self._pending = self._pending, []
            return out

    def close(self) -> None:
        """Unbind every port (idempotent)."""
        if not self._closed:
            self._closed = True
            for port in sorted(self._mine):
                self.unbind(port)



class SimDevices:
    """The probe engine's ``Devices`` for the simulated host (name ``"sim"``)."""

    name = "sim"

    def __init__(self, grants: GrantTable, ports: PortTable, store: SimXenStore,
                 self_domid: int = 0) -> None:
        self.grants = grants
        self.ports_table = ports
        self.store = store
        self.self_domid = self_domid
        self.open_mappings: list[SimGrantMapping] = []
        self.open_offers: list[SimGrantOffer] = []
        self.channels: list[SimEventChannel] = []

    def map_grants(self, domid: int, grefs: Sequence[int], *, writable: bool) -> SimGrantMapping:
        """Map simulated grants of ``domid``."""
        m = SimGrantMapping(self.grants, self.self_domid, domid, grefs, writable=writable)
        self.open_mappings.append(m)
        return m

    def offer(self, domid: int, pages: int, *, writable: bool) -> SimGrantOffer:
        """Offer fresh pages to ``domid``."""
        o = SimGrantOffer(self.grants, self.self_domid, domid, pages, writable=writable)
        self.open_offers.append(o)
        return o

    def event_channel(self) -> SimEventChannel:
        """A new simulated evtchn fd."""
        ch = SimEventChannel(self.ports_table, self.self_domid, owner="grantscope")
        self.channels.append(ch)
        return ch

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """What a one-byte GRANT_COPY from ``(domid, gref)`` would report."""
        return self.grants.status(self.self_domid, domid, gref, writable=False)

    def xenstore(self) -> SimXenStore:
        """The simulated store (shared with the host; closing it does nothing)."""
        return self.store

    def guest_type(self) -> str:
        """The simulated host is a PV dom0 (never the machine it runs on)."""
        return "PV"

    def preload(self) -> None:
        """Nothing to import ahead of the first step (RealDevices loads the bindings)."""

    def close(self) -> None:
        """Nothing to release: the simulated tables belong to the host."""
