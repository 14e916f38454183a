"""The event-channel (``e``) dump's records, and the dump rendered back in Xen's own format.

The parser is :mod:`grantscope.model.dump_parser`; :mod:`grantscope.model.dumps` is the
entry point and describes the formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from grantscope._compat import slotted_dataclass

#: ``s=`` values (xen/include/xen/sched.h ECS_*).
EVTCHN_STATES: dict[int, str] = {
    0: "free",
    1: "reserved",
    2: "unbound",
    3: "interdomain",
    4: "pirq",
    5: "virq",
    6: "ipi",
}


@slotted_dataclass(frozen=True)
class EventPort:
    """One port line of an ``e`` dump, with the state-dependent fields interpreted.

    ``abi_state`` is the raw third field of ``[p/m/s]`` (2-level selector bit, or FIFO
    busy/link).  ``remote_domid``/``remote_port`` are set for unbound (domid only) and
    interdomain ports; ``pirq``/``irq`` for PIRQ ports; ``virq`` for VIRQ ports.
    """

    domid: int
    port: int
    pending: bool
    masked: bool
    abi_state: str
    state: int
    notify_vcpu: int
    xen_consumer: int
    remote_domid: int | None = None
    remote_port: int | None = None
    pirq: int | None = None
    irq: int | None = None
    virq: int | None = None
    label: str | None = None

    @property
    def state_name(self) -> str:
        """The ECS_* name of ``state`` ("interdomain", "virq", ...)."""
        return EVTCHN_STATES.get(self.state, f"state{self.state}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict including ``state_name``."""
        out = asdict(self)
        out["state_name"] = self.state_name
        return out


@slotted_dataclass(frozen=True)
class EventDomain:
    """One domain's section of an ``e`` dump."""

    domid: int
    polling_vcpus: str | None
    ports: tuple[EventPort, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "domid": self.domid,
            "polling_vcpus": self.polling_vcpus,
            "ports": [p.to_json() for p in self.ports],
        }


@slotted_dataclass(frozen=True)
class EventDump:
    """One ``e`` dump.  Xen prints no end marker for it: ``begin_seen`` is all we can check."""

    begin_seen: bool
    domains: tuple[EventDomain, ...]
    first_line: int
    last_line: int

    def ports(self) -> Iterator[EventPort]:
        """Every port of every domain."""
        for dom in self.domains:
            yield from dom.ports

    def find(self, domid: int, port: int) -> EventPort | None:
        """The line for ``(domid, port)``, or None."""
        for p in self.ports():
            if p.domid == domid and p.port == port:
                return p
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "begin_seen": self.begin_seen,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "domains": [d.to_json() for d in self.domains],
        }


def format_event_port(port: EventPort) -> str:
    """One port line exactly as ``domain_dump_evtchn_info`` prints it (no prefix)."""
    s = (
        f"    {port.port:4d} [{int(port.pending)}/{int(port.masked)}/{port.abi_state}]: "
        f"s={port.state} n={port.notify_vcpu} x={port.xen_consumer}"
    )
    if port.state == 2:
        s += f" d={port.remote_domid}"
    elif port.state == 3:
        s += f" d={port.remote_domid} p={port.remote_port}"
    elif port.state == 4:
        s += f" p={port.pirq} i={port.irq}"
    elif port.state == 5:
        s += f" v={port.virq}"
    if port.label is not None:
        s += f" Z={port.label}"
    return s


def format_event_dump(domains: Iterable[EventDomain]) -> list[str]:
    """A whole ``e`` dump (no prefix)."""
    lines = ["'e' pressed -> dumping event-channel info"]
    for d in domains:
        lines.append(f"Event channel information for domain {d.domid}:")
        lines.append(f"Polling vCPUs: {{{d.polling_vcpus or ''}}}")
        lines.append("    port [p/m/s]")
        lines.extend(format_event_port(p) for p in d.ports)
    return lines
