"""An in-memory :class:`~grantscope.probing.devices.Devices` that logs every call.

For the probe engine's unit tests (no Xen needed): grants, ports and XenStore
behave enough like the real ones for a loopback mailbox to work end to end, and
``fail`` makes a chosen call raise, so tests can check records and cleanup.
Every call, releases included, is appended to :attr:`FakeDevices.calls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAGE = 4096


class FakePages:
    """A fake mapping or offer over a shared bytearray."""

    def __init__(self, devices: FakeDevices, kind: str, domid: int, grefs: Sequence[int],
                 buffer: bytearray, *, writable: bool):
        self._devices = devices
        self.kind = kind
        self.domid = domid
        self.grefs = tuple(grefs)
        self.writable = writable
        self._buffer = buffer
        self.page = memoryview(buffer)
        self.closed = False

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of the shared buffer."""
        end = len(self._buffer) if length is None else offset + length
        return bytes(self._buffer[offset:end])

    def write(self, offset: int, data: bytes) -> None:
        """Write into the shared buffer."""
        self._devices._check("write")
        self._buffer[offset:offset + len(data)] = data

    def close(self) -> None:
        """Log the release (idempotent)."""
        if not self.closed:
            self._devices._log(f"close {self.kind}", self.domid, self.grefs)
            self._devices._check(f"close {self.kind}")
            self.closed = True


class FakeEventChannel:
    """A fake evtchn handle; ports connect across handles of the same :class:`FakeDevices`."""

    def __init__(self, devices: FakeDevices):
        self._devices = devices
        self._ports: set[int] = set()
        self.pending: list[int] = []
        self.closed = False

    @property
    def ports(self) -> frozenset[int]:
        """Ports bound through this handle."""
        return frozenset(self._ports)

    def fileno(self) -> int:
        """Not a real fd."""
        return -1

    def _new_port(self) -> int:
        self._devices._next_port += 1
        port = self._devices._next_port
        self._ports.add(port)
        self._devices._owner[port] = self
        return port

    def bind_unbound(self, remote_domid: int) -> int:
        """Allocate a port for ``remote_domid``."""
        self._devices._log("bind_unbound", remote_domid)
        self._devices._check("bind_unbound")
        port = self._new_port()
        self._devices._unbound[port] = remote_domid
        return port

    def bind_interdomain(self, remote_domid: int, remote_port: int) -> int:
        """Connect to an unbound port (only ports of this fake domain exist)."""
        self._devices._log("bind_interdomain", remote_domid, remote_port)
        self._devices._check("bind_interdomain")
        devices = self._devices
        if remote_domid == devices.echo_domid:
            port = self._new_port()  # a foreign peer: notify() echoes back
        elif remote_domid == devices.self_domid and remote_port in devices._unbound:
            del devices._unbound[remote_port]
            port = self._new_port()
            devices._peer[port] = remote_port
            devices._peer[remote_port] = port
        else:
            raise OSError(22, "Invalid argument")
        # Like Xen: the binder's new port is pending right after the bind.
        self.pending.append(port)
        return port

    def notify(self, port: int) -> None:
        """Make the peer port pending on its handle."""
        self._devices._log("notify", port)
        self._devices._check("notify")
        peer = self._devices._peer.get(port)
        if peer is not None:
            self._devices._owner[peer].pending.append(peer)
        elif self._devices.echo_domid is not None:
            # A remote peer that answers every event (like the lab's domU peer).
            self.pending.append(port)

    def unbind(self, port: int) -> None:
        """Unbind one port."""
        self._devices._log("unbind", port)
        self._ports.discard(port)

    def wait(self, timeout: float) -> list[int]:
        """Pending ports (never blocks: nothing else can make one pending meanwhile)."""
        self._devices._check("wait")
        out, self.pending = self.pending, []
        return out

    def drain(self) -> list[int]:
        """Same as :meth:`wait`."""
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        """Unbind every port."""
        if not self.closed:
            self._devices._log("close evtchn", sorted(self._ports))
            self._check_close()
            self.closed = True
            self._ports.clear()

    def _check_close(self) -> None:
        self._devices._check("close evtchn")


class FakeStore:
    """A dict-backed XenStore (raw bytes values, ``rm`` removes the subtree)."""

    def __init__(self, devices: FakeDevices, nodes: dict[str, bytes]):
        self._devices = devices
        self.nodes = nodes

    def read(self, path: str) -> bytes:
        """The value, or OSError ENOENT."""
        value = self.read_or_none(path)
        if value is None:
            raise OSError(2, f"no such node {path}")
        return value

    def read_or_none(self, path: str) -> bytes | None:
        """The value, or None."""
        self._devices._log("xs read", path)
        self._devices._check("xs read")
        return self.nodes.get(path)

    def write(self, path: str, value: bytes) -> None:
        """Store ``value``; missing parents are created empty, as xenstored does."""
        self._devices._log("xs write", path, value)
        self._devices._check("xs write")
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in self.nodes and not self.exists(parent):
            self.nodes[parent] = b""
            parent = parent.rsplit("/", 1)[0]
        self.nodes[path] = value

    def list(self, path: str) -> list[str]:
        """The child names of ``path``."""
        prefix = path.rstrip("/") + "/"
        return sorted({k[len(prefix):].split("/")[0] for k in self.nodes
                       if k.startswith(prefix)})

    def rm(self, path: str) -> None:
        """Remove ``path`` and its children."""
        self._devices._log("xs rm", path)
        self._devices._check("xs rm")
        for key in [k for k in self.nodes if k == path or k.startswith(path + "/")]:
            del self.nodes[key]

    def exists(self, path: str) -> bool:
        """Whether ``path`` or a child exists."""
        return any(k == path or k.startswith(path + "/") for k in self.nodes)


class FakeDevices:
    """Fake grants, ports and XenStore for one domain ``self_domid``.

    ``gntst`` maps ``(domid, gref)`` of foreign grants to the GNTST status a
    GRANT_COPY reports; a map of such a grant fails with EINVAL unless its status
    is 0.  Own offers map back (the same bytes).  ``fail[call] = exc`` makes
    that call raise ``exc`` (calls: map_grants, offer, event_channel, bind_unbound,
    bind_interdomain, notify, wait, write, probe_grant_status, xs read, xs write,
    xs rm, close mapping, close offer, close evtchn).
    """

    name = "fake"

    def __init__(self, *, self_domid: int = 0, store: dict[str, bytes] | None = None,
                 gntst: dict[tuple[int, int], int] | None = None, echo_domid: int | None = None,
                 guest_type: str = "PV"):
        self.self_domid = self_domid
        self._guest_type = guest_type
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, BaseException] = {}
        self.gntst = dict(gntst or {})
        self.echo_domid = echo_domid
        self.offers: dict[int, bytearray] = {}
        self.handles: list[Any] = []
        self._next_gref = 100
        self._next_port = 10
        self._owner: dict[int, FakeEventChannel] = {}
        self._unbound: dict[int, int] = {}
        self._peer: dict[int, int] = {}
        self.store = FakeStore(self, store if store is not None else {})

    def _log(self, *call: Any) -> None:
        self.calls.append(call)

    def _check(self, call: str) -> None:
        exc = self.fail.get(call)
        if exc is not None:
            raise exc

    def call_names(self) -> list[str]:
        """The names of the calls made, in order."""
        return [str(c[0]) for c in self.calls]

    def open_handles(self) -> list[Any]:
        """Mappings, offers and event channels not closed yet."""
        return [h for h in self.handles if not h.closed]

    def map_grants(self, domid: int, grefs: Sequence[int], *, writable: bool) -> FakePages:
        """Map own offers (shared bytes) or foreign grants whose status is 0."""
        self._log("map_grants", domid, tuple(grefs), writable)
        self._check("map_grants")
        gref = grefs[0]
        if domid == self.self_domid and gref in self.offers:
            buffer = self.offers[gref]
        elif self.gntst.get((domid, gref), -3) == 0:
            buffer = bytearray(PAGE * len(grefs))
        else:
            raise OSError(22, "Invalid argument")
        pages = FakePages(self, "mapping", domid, grefs, buffer, writable=writable)
        self.handles.append(pages)
        return pages

    def offer(self, domid: int, pages: int, *, writable: bool) -> FakePages:
        """Grant fresh zeroed pages."""
        self._log("offer", domid, pages, writable)
        self._check("offer")
        self._next_gref += 1
        buffer = bytearray(PAGE * pages)
        self.offers[self._next_gref] = buffer
        offer = FakePages(self, "offer", domid, [self._next_gref], buffer, writable=writable)
        self.handles.append(offer)
        return offer

    def event_channel(self) -> FakeEventChannel:
        """A new handle."""
        self._log("event_channel")
        self._check("event_channel")
        channel = FakeEventChannel(self)
        self.handles.append(channel)
        return channel

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """The configured status (own offers: 0; unknown: -3)."""
        self._log("probe_grant_status", domid, gref)
        self._check("probe_grant_status")
        if domid == self.self_domid and gref in self.offers:
            return 0
        return self.gntst.get((domid, gref), -3)

    def xenstore(self) -> FakeStore:
        """The fake store."""
        return self.store

    def guest_type(self) -> str:
        """The guest type given at construction ("PV" by default)."""
        self._log("guest_type")
        return self._guest_type

    def preload(self) -> None:
        """Like :meth:`RealDevices.preload`: nothing to import."""

    def close(self) -> None:
        """Like :meth:`RealDevices.close`: log it."""
        self._log("devices close")
