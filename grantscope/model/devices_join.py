"""Join XenStore's PV devices with the grant and event dumps and the kernel's counters.

For every PV device found in a XenStore snapshot (frontend ``/local/domain/FE/device/TYPE/ID``
and backend ``/local/domain/BE/backend/TYPE/FE/ID``) this finds:

* its grant refs (``ring-ref``, ``ring-refN``, ``tx-ring-ref``, ``rx-ring-ref``, also under
  ``queue-N/``) and, in the ``g`` dump, who maps each one and with which pin counts;
* its event channels (``event-channel``, ``event-channel-tx``/``-rx``, ...) and both ends in the
  ``e`` dump (ports, pending/masked);
* the local IRQ rows of ``/proc/interrupts`` that belong to it, and its sysfs xenbus counters.

Everything is a pure function of its inputs: the XenStore snapshot is a plain
``Mapping[path, bytes | None]`` (what :meth:`XenStore.walk` returns, as a dict), and each
other input may be None when it is unavailable, which leaves the matching fields None (not
empty: "unknown" and "none" are different answers).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.model.dumps import EventDump, EventPort, GrantDump
from grantscope.model.interrupts import InterruptRow, InterruptsParse, XenbusCounters

__all__ = [
    "XENBUS_STATES",
    "DeviceRow",
    "GrantLink",
    "IrqLink",
    "PortLink",
    "decimal_value",
    "find_devices",
    "join_devices",
    "show_bytes",
    "state_name",
]

#: enum xenbus_state (xen/include/public/io/xenbus.h).
XENBUS_STATES: dict[int, str] = {
    0: "Unknown",
    1: "Initialising",
    2: "InitWait",
    3: "Initialised",
    4: "Connected",
    5: "Closing",
    6: "Closed",
    7: "Reconfiguring",
    8: "Reconfigured",
}

_FRONT_RE = re.compile(r"^/local/domain/(\d+)/device/([^/]+)/([^/]+)$")
_BACK_RE = re.compile(r"^/local/domain/(\d+)/backend/([^/]+)/(\d+)/([^/]+)$")
_REF_KEY_RE = re.compile(r"^(?:[a-z]+-)?ring-ref\d*$")
_EVTCHN_KEY_RE = re.compile(r"^event-channel(?:-[a-z]+)?$")


def show_bytes(value: bytes) -> str:
    """A value as ``xenstore-ls`` would print it (escaped), for messages."""
    try:
        from grantscope.xen.xs_escape import escape_value
    except ImportError:  # pragma: no cover - the XenStore layer is always shipped with us
        return repr(value)[2:-1]
    return escape_value(value)


def decimal_value(value: bytes | None) -> int | None:
    """``value`` as XenStore numbers are written (decimal ASCII), else None."""
    if value is None:
        return None
    text = value.decode("ascii", "replace")
    return int(text) if text.isdigit() and len(text) < 12 else None


def _decimal_or_problem(value: bytes | None, path: str, what: str,
                        problems: list[str]) -> int | None:
    """``value`` as a decimal number; None, with a line added to ``problems``, if it is not
    one (a frontend wrote a grant ref or port the join cannot follow)."""
    number = decimal_value(value)
    if number is None:
        problems.append(f"{path} is not a decimal {what}: \"{show_bytes(value or b'')}\"")
    return number


def state_name(state: int | None) -> str:
    """The XenbusState name of ``state`` ("Connected"), "absent" for None."""
    if state is None:
        return "absent"
    return XENBUS_STATES.get(state, f"invalid({state})")


@slotted_dataclass(frozen=True)
class GrantLink:
    """One grant ref a device publishes, and who maps it according to the ``g`` dump.

    ``mappers`` is ``((domid, pin), ...)``; None when no ``g`` dump was available, ``()`` when
    the dump shows nobody mapping it.
    """

    key: str
    granter: int
    ref: int
    mappers: tuple[tuple[int, int], ...] | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "granter": self.granter,
            "ref": self.ref,
            "mappers": None
            if self.mappers is None
            else [{"domid": d, "pin": f"0x{p:08x}"} for d, p in self.mappers],
        }


@slotted_dataclass(frozen=True)
class PortLink:
    """One event channel of a device: the frontend's port and, via the ``e`` dump, both ends."""

    key: str
    frontend_domid: int
    frontend_port: int
    frontend: EventPort | None
    backend: EventPort | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "frontend_domid": self.frontend_domid,
            "frontend_port": self.frontend_port,
            "frontend": self.frontend.to_json() if self.frontend else None,
            "backend": self.backend.to_json() if self.backend else None,
        }


@slotted_dataclass(frozen=True)
class IrqLink:
    """A local ``/proc/interrupts`` row attributed to a device, and how it was matched."""

    irq: int
    action: str
    total: int
    match: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"irq": self.irq, "action": self.action, "total": self.total, "match": self.match}


@slotted_dataclass(frozen=True)
class DeviceRow:
    """One PV device, joined.  Paths or states are None for a side that is absent."""

    kind: str
    devid: str
    frontend_domid: int
    backend_domid: int | None
    frontend_path: str | None
    backend_path: str | None
    frontend_state: int | None
    backend_state: int | None
    grants: tuple[GrantLink, ...]
    ports: tuple[PortLink, ...]
    irqs: tuple[IrqLink, ...] | None
    counters: tuple[XenbusCounters, ...]
    problems: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    @property
    def primary_console(self) -> bool:
        """The guest's first console (``~/console``), served by xenconsoled, not xenbus."""
        return self.kind == "console" and self.frontend_path == (
            f"/local/domain/{self.frontend_domid}/console"
        )

    @property
    def name(self) -> str:
        """A short name: ``vif d1/0 (backend d0)``."""
        be = f"d{self.backend_domid}" if self.backend_domid is not None else "?"
        return f"{self.kind} d{self.frontend_domid}/{self.devid} (backend {be})"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with state names."""
        return {
            "name": self.name,
            "kind": self.kind,
            "devid": self.devid,
            "frontend_domid": self.frontend_domid,
            "backend_domid": self.backend_domid,
            "frontend_path": self.frontend_path,
            "backend_path": self.backend_path,
            "frontend_state": self.frontend_state,
            "frontend_state_name": state_name(self.frontend_state),
            "backend_state": self.backend_state,
            "backend_state_name": state_name(self.backend_state),
            "grants": [g.to_json() for g in self.grants],
            "ports": [p.to_json() for p in self.ports],
            "irqs": None if self.irqs is None else [i.to_json() for i in self.irqs],
            "counters": [c.to_json() for c in self.counters],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


@dataclass
class _Dev:
    kind: str
    fe: int
    devid: str
    be: int | None = None
    fe_path: str | None = None
    be_path: str | None = None


def find_devices(store: Mapping[str, bytes | None]) -> list[tuple[str, int, str, int | None,
                                                                 str | None, str | None]]:
    """Every PV device as ``(kind, fe_domid, devid, be_domid, fe_path, be_path)``, sorted.

    A device is known from either side; the other side's path comes from the ``backend`` /
    ``frontend`` key when present, else it is None.
    """
    devs: dict[tuple[str, int, str], _Dev] = {}
    for path in store:
        m = _FRONT_RE.match(path)
        if m:
            fe, kind, devid = int(m.group(1)), m.group(2), m.group(3)
            d = devs.setdefault((kind, fe, devid), _Dev(kind, fe, devid))
            d.fe_path = path
            continue
        m = _BACK_RE.match(path)
        if m:
            be, kind, fe, devid = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            d = devs.setdefault((kind, fe, devid), _Dev(kind, fe, devid))
            d.be_path, d.be = path, be
    # A frontend "device" must be a directory: device/suspend/event-channel is a plain key.
    parents = {p.rsplit("/", 1)[0] for p in store}
    for key in [k for k, d in devs.items() if d.be_path is None and d.fe_path not in parents]:
        del devs[key]
    for d in devs.values():
        if d.fe_path is not None and d.be_path is None:
            raw = store.get(d.fe_path + "/backend")
            if raw:
                d.be_path = raw.decode("utf-8", "replace")
            be_id = decimal_value(store.get(d.fe_path + "/backend-id"))
            if be_id is not None:
                d.be = be_id
            elif d.be_path is not None:
                m = re.match(r"^/local/domain/(\d+)/", d.be_path)
                d.be = int(m.group(1)) if m else None
        if d.be_path is not None and d.fe_path is None:
            raw = store.get(d.be_path + "/frontend")
            if raw:
                d.fe_path = raw.decode("utf-8", "replace")
    return [
        (d.kind, d.fe, d.devid, d.be, d.fe_path, d.be_path)
        for _, d in sorted(devs.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))
    ]


def _subkeys(store: Mapping[str, bytes | None], paths: list[str],
             base: str) -> Iterable[tuple[str, bytes | None]]:
    """The nodes below ``base`` as ``(relative path, value)``, in path order; ``paths`` is
    ``sorted(store)``, so each device costs a binary search, not a pass over the snapshot
    (a host's snapshot has tens of thousands of nodes and hundreds of devices)."""
    prefix = base + "/"
    for path in paths[bisect.bisect_left(paths, prefix):]:
        if not path.startswith(prefix):
            break
        yield path[len(prefix) :], store[path]


def _irq_links(
    kind: str, fe: int, devid: str, local_kinds: Mapping[str, int], rows: Iterable[InterruptRow]
) -> tuple[IrqLink, ...]:
    """Rows that belong to a device whose backend (or frontend) is this domain.

    netback names its irqs ``vif<FE>.<ID>[-qN][-tx|-rx]`` (exact match).  Other drivers use
    one fixed name for all their devices (blkback: ``blkif-backend``), so a row is attributed
    only when this is the sole local device of that kind, and says so.
    """
    out: list[IrqLink] = []
    if kind == "vif":
        pat = re.compile(rf"^vif{fe}\.{re.escape(devid)}(?:-q\d+)?(?:-tx|-rx)?$")
        for r in rows:
            if pat.match(r.action):
                out.append(IrqLink(r.irq, r.action, r.total, "name (netback vifFE.ID)"))
        return tuple(out)
    names = {"vbd": ("blkif-backend",), "console": ("xenconsoled",)}.get(kind, ())
    if names and local_kinds.get(kind, 0) == 1:
        for r in rows:
            if r.action in names:
                out.append(IrqLink(r.irq, r.action, r.total, f"only local {kind} device"))
    return tuple(out)


def join_devices(
    store: Mapping[str, bytes | None],
    grants: GrantDump | None,
    events: EventDump | None,
    interrupts: InterruptsParse | None = None,
    counters: Iterable[XenbusCounters] = (),
    *,
    local_domid: int | None = None,
) -> tuple[DeviceRow, ...]:
    """One :class:`DeviceRow` per PV device in ``store``, joined with the other sources.

    ``local_domid`` is the domain these ``interrupts``/``counters`` were read in: IRQ rows are
    attributed only to devices with an end in that domain (else ``irqs`` is None).
    """
    devices = find_devices(store)
    sorted_paths = sorted(store)
    counters = tuple(counters)
    local_kinds: dict[str, int] = {}
    for kind, fe, _devid, be, _fp, _bp in devices:
        if local_domid is not None and local_domid in (fe, be):
            local_kinds[kind] = local_kinds.get(kind, 0) + 1
    rows: list[DeviceRow] = []
    for kind, fe, devid, be, fe_path, be_path in devices:
        problems: list[str] = []
        notes: list[str] = []
        glinks: list[GrantLink] = []
        plinks: list[PortLink] = []
        primary = kind == "console" and fe_path == f"/local/domain/{fe}/console"
        if primary:
            # ~/console/ring-ref is a frame number, not a grant ref: xenconsoled maps the
            # page through the reserved grant 0 (GNTTAB_RESERVED_CONSOLE), and the port is
            # under "port".  Its backend state is not driven by xenbus (libxl leaves it 1).
            notes.append(
                "primary console: ring-ref is a frame number; the page is reserved grant 0 "
                "and the state is not a xenbus handshake (xenconsoled)"
            )
            glinks.append(GrantLink("(reserved grant 0)", fe, 0, _mappers(grants, fe, 0)))
            port = decimal_value(store.get(f"{fe_path}/port"))
            if port is not None:
                plinks.append(_port_link("port", fe, port, events))
        elif fe_path is not None:
            for rel, value in _subkeys(store, sorted_paths, fe_path):
                leaf = rel.rsplit("/", 1)[-1]
                if _REF_KEY_RE.match(leaf):
                    ref = _decimal_or_problem(value, f"{fe_path}/{rel}", "grant ref", problems)
                    if ref is not None:
                        glinks.append(GrantLink(rel, fe, ref, _mappers(grants, fe, ref)))
                elif _EVTCHN_KEY_RE.match(leaf):
                    port = _decimal_or_problem(value, f"{fe_path}/{rel}", "port", problems)
                    if port is not None:
                        plinks.append(_port_link(rel, fe, port, events))
        irqs: tuple[IrqLink, ...] | None = None
        if interrupts is not None and local_domid is not None and local_domid in (fe, be):
            irqs = _irq_links(kind, fe, devid, local_kinds, interrupts.rows)
        # sysfs nodenames are relative to the reading domain's home (backend/vif/1/0).
        dev_counters = tuple(c for c in counters
                             if c.xenstore_path(local_domid) in (fe_path, be_path))
        rows.append(
            DeviceRow(
                kind=kind,
                devid=devid,
                frontend_domid=fe,
                backend_domid=be,
                frontend_path=fe_path,
                backend_path=be_path,
                frontend_state=decimal_value(store.get(f"{fe_path}/state"))
                if fe_path
                else None,
                backend_state=decimal_value(store.get(f"{be_path}/state")) if be_path else None,
                grants=tuple(glinks),
                ports=tuple(plinks),
                irqs=irqs,
                counters=dev_counters,
                problems=tuple(problems),
                notes=tuple(notes),
            )
        )
    return tuple(rows)


def _mappers(
    grants: GrantDump | None, granter: int, ref: int
) -> tuple[tuple[int, int], ...] | None:
    """``((mapper, pin), ...)`` for ``granter``'s ``ref``; None without a ``g`` dump."""
    if grants is None:
        return None
    return tuple(
        (e.mapper, e.pin) for e in grants.entries() if e.granter == granter and e.ref == ref
    )


def _port_link(key: str, fe: int, port: int, events: EventDump | None) -> PortLink:
    """The frontend's port and, through its ``d=``/``p=``, the other end in the ``e`` dump."""
    fe_port = events.find(fe, port) if events is not None else None
    be_port = None
    if (
        events is not None
        and fe_port is not None
        and fe_port.remote_domid is not None
        and fe_port.remote_port is not None
    ):
        be_port = events.find(fe_port.remote_domid, fe_port.remote_port)
    return PortLink(key, fe, port, fe_port, be_port)
