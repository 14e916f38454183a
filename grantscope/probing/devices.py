"""How probes reach the devices, so a simulated host can stand in for the real one.

A probe never imports :mod:`grantscope.xen` itself: it asks a :class:`Devices` for a
grant mapping, a grant offer, an event channel, a GRANT_COPY status or the XenStore
connection.  :class:`RealDevices` answers with the real bindings on this host; the
simulated host (``--demo``) implements the same protocol for the UI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from grantscope.errors import NoXenError


@runtime_checkable
class GrantPages(Protocol):
    """A granted page range seen from user space: a gntdev mapping or a gntalloc offer."""

    domid: int
    grefs: tuple[int, ...]
    writable: bool
    page: memoryview

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of the page range."""
        ...

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``."""
        ...

    def close(self) -> None:
        """Release the mapping or the grant (idempotent)."""
        ...


class EventChannelLike(Protocol):
    """One ``/dev/xen/evtchn`` handle that may hold several ports."""

    ports: frozenset[int]

    def fileno(self) -> int:
        """The file descriptor, for select/poll."""
        ...

    def bind_unbound(self, remote_domid: int) -> int:
        """Allocate a port that ``remote_domid`` may bind to; return it."""
        ...

    def bind_interdomain(self, remote_domid: int, remote_port: int) -> int:
        """Bind to a remote domain's unbound port; return the local port."""
        ...

    def notify(self, port: int) -> None:
        """Send an event through ``port``."""
        ...

    def unbind(self, port: int) -> None:
        """Unbind one port."""
        ...

    def wait(self, timeout: float) -> list[int]:
        """Ports that fired within ``timeout`` seconds (already unmasked); [] on timeout."""
        ...

    def drain(self) -> list[int]:
        """Consume, without blocking, whatever is pending."""
        ...

    def close(self) -> None:
        """Unbind every port and close the handle."""
        ...


class XenStoreLike(Protocol):
    """The part of :class:`grantscope.xen.xenstore.XenStore` that probes use."""

    def read(self, path: str) -> bytes:
        """The raw value at ``path``."""
        ...

    def read_or_none(self, path: str) -> bytes | None:
        """The raw value at ``path``, or None if the node does not exist."""
        ...

    def write(self, path: str, value: bytes) -> None:
        """Create or overwrite ``path``."""
        ...

    def rm(self, path: str) -> None:
        """Remove ``path`` and everything below it."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        ...


class Devices(Protocol):
    """Everything a probe may touch.  ``name`` is ``"xen"`` or ``"sim"``."""

    name: str

    def map_grants(self, domid: int, grefs: Sequence[int], *, writable: bool) -> Any:
        """Map ``grefs`` of ``domid`` (a :class:`GrantPages`)."""
        ...

    def offer(self, domid: int, pages: int, *, writable: bool) -> Any:
        """Grant ``pages`` fresh pages to ``domid`` (a :class:`GrantPages`)."""
        ...

    def event_channel(self) -> Any:
        """A new event-channel handle (an :class:`EventChannelLike`)."""
        ...

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """The GNTST code of a one-byte GRANT_COPY from ``(domid, gref)``."""
        ...

    def xenstore(self) -> Any:
        """The XenStore connection (an :class:`XenStoreLike`), opened on first use."""
        ...

    def guest_type(self) -> str:
        """This domain's guest type, as ``/sys/hypervisor/guest_type`` says: ``"PV"``,
        ``"PVH"``, ``"HVM"``, or ``""`` when it does not say."""
        ...


# What each device is for, to name the missing module when one is absent.
DEVICE_MODULES: dict[str, tuple[str, str]] = {
    "gntdev": ("/dev/xen/gntdev", "xen-gntdev"),
    "gntalloc": ("/dev/xen/gntalloc", "xen-gntalloc"),
    "evtchn": ("/dev/xen/evtchn", "xen-evtchn"),
}


def require_devices(needs: Sequence[str], root: str = "/", *,
                    command: str = "probe run") -> None:
    """Raise :class:`NoXenError` (exit 2) unless this is a Xen host with the device nodes
    ``needs`` names (``"gntdev"``, ``"gntalloc"``, ``"evtchn"``).

    It layers on :func:`grantscope.xen.errors.require_xen` (the one "not on Xen" refusal)
    and adds the per-probe device nodes, naming the module to load for a missing one.
    """
    from grantscope.xen.errors import require_xen

    require_xen(root, command=command)
    missing = [
        (path, module)
        for key, (path, module) in DEVICE_MODULES.items()
        if key in needs and not os.path.exists(os.path.join(root, path.lstrip("/")))
    ]
    if missing:
        paths = ", ".join(path for path, _ in missing)
        modules = " ".join(module for _, module in missing)
        raise NoXenError(
            f"Xen device missing: {paths}",
            f"Load the driver(s) with 'modprobe {modules}' (as root) and check that "
            "devtmpfs or udev created the node under /dev/xen.",
        )


class RealDevices:
    """The real devices of this host, through :mod:`grantscope.xen`.

    The XenStore connection is opened on first use and shared by every step;
    :meth:`close` closes it.  Device imports are lazy so that ``probe list``
    and the unit tests never load the bindings.
    """

    name = "xen"

    def __init__(self) -> None:
        self._store: Any = None

    def preload(self) -> None:
        """Import the device bindings now (seconds under TCG) rather than inside a step."""
        from grantscope.xen import evtchn, gntalloc, gntdev, xenstore  # noqa: F401

    def map_grants(self, domid: int, grefs: Sequence[int], *, writable: bool) -> Any:
        """A :class:`grantscope.xen.gntdev.GrantMapping` of ``grefs``."""
        from grantscope.xen.gntdev import GrantMapping

        return GrantMapping(domid, grefs, writable=writable)

    def offer(self, domid: int, pages: int, *, writable: bool) -> Any:
        """A :class:`grantscope.xen.gntalloc.GrantOffer` of ``pages`` pages."""
        from grantscope.xen.gntalloc import GrantOffer

        return GrantOffer(domid, pages, writable=writable)

    def event_channel(self) -> Any:
        """A new :class:`grantscope.xen.evtchn.EventChannel`."""
        from grantscope.xen.evtchn import EventChannel

        return EventChannel()

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """The GNTST code of a one-byte GRANT_COPY (nothing is mapped)."""
        from grantscope.xen.gntdev import probe_grant_status

        return int(probe_grant_status(domid, gref))

    def xenstore(self) -> Any:
        """The shared :class:`grantscope.xen.xenstore.XenStore` connection."""
        if self._store is None:
            from grantscope.xen.xenstore import XenStore

            self._store = XenStore.open()
        return self._store

    def guest_type(self) -> str:
        """This domain's guest type from ``/sys/hypervisor/guest_type`` (``""`` if absent)."""
        from grantscope.xen._host import read_text

        return (read_text("/sys/hypervisor/guest_type") or "").strip().upper()

    def close(self) -> None:
        """Close the XenStore connection if one was opened."""
        store, self._store = self._store, None
        if store is not None:
            store.close()
