"""Parsers for the text of two Xen tools: ``xenstore-control quota`` and ``lsevtchn``.

Formats (xen-facts.md §1.1; tools/xenstore/xenstored_control.c and tools/misc/xen-lsevtchn.c
in Xen 4.17):

* ``xenstore-control quota``: ``Quota settings:`` then ``"%-17s: %8d %s"`` rows (name, limit,
  description).
* ``xenstore-control quota DOMID``: ``Domain %u:`` then ``"%-16s: %8d"`` rows of live usage.
* ``lsevtchn DOMID``: ``"%4d: VCPU %u: "`` then the state in words per open port.

oxenstored (XenServer, XCP-ng) answers differently; such text is returned as unparsed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, field
from typing import Any

from grantscope._compat import slotted_dataclass

__all__ = [
    "DEFAULT_QUOTA_LIMITS",
    "DeviceHolder",
    "LsevtchnPort",
    "ProcessInfo",
    "QuotaSnapshot",
    "QuotaUsage",
    "parse_lsevtchn",
    "parse_quota_settings",
    "parse_quota_usage",
]

#: C xenstored 4.17 defaults (xenstored_core.c), used when the settings could not be read.
DEFAULT_QUOTA_LIMITS: dict[str, int] = {
    "nodes": 1000,
    "watches": 128,
    "transactions": 10,
    "outstanding": 20,
    "memory": 2 * 1024 * 1024 + 512 * 1024,
}

_SETTING_RE = re.compile(r"^(\S[^:]*?)\s*:\s*(-?\d+)(?:\s+(.*))?$")
_DOMAIN_RE = re.compile(r"^Domain (\d+):$")
# Xen 4.18+ follows each usage with its high-water mark: "nodes : 17 (max 17)".
_PEAK_RE = re.compile(r"^\(max\s+(-?\d+)\)$")


@slotted_dataclass(frozen=True)
class QuotaUsage:
    """One domain's live XenStore usage (``xenstore-control quota DOMID``)."""

    domid: int
    usage: dict[str, int]
    unparsed: tuple[str, ...]
    #: The highest value xenstored recorded for each counter (Xen 4.18 and later print it
    #: as ``nodes : 17 (max 17)``; empty for older releases and oxenstored).
    peak: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def parse_quota_settings(text: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """Limits by name from ``xenstore-control quota``, and the lines that were not rows."""
    limits: dict[str, int] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == "Quota settings:":
            continue
        m = _SETTING_RE.match(line.strip())
        if m:
            limits[m.group(1).strip()] = int(m.group(2))
        else:
            bad.append(line)
    return limits, tuple(bad)


def parse_quota_usage(text: str, domid: int) -> QuotaUsage:
    """Usage by name from ``xenstore-control quota DOMID``; never raises."""
    usage: dict[str, int] = {}
    peak: dict[str, int] = {}
    bad: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        d = _DOMAIN_RE.match(s)
        if d:
            if int(d.group(1)) != domid:
                bad.append(line)
            continue
        m = _SETTING_RE.match(s)
        peak_m = _PEAK_RE.match(m.group(3)) if m and m.group(3) is not None else None
        if m and (m.group(3) is None or peak_m):
            usage[m.group(1).strip()] = int(m.group(2))
            if peak_m:
                peak[m.group(1).strip()] = int(peak_m.group(1))
        else:
            bad.append(line)
    return QuotaUsage(domid=domid, usage=usage, unparsed=tuple(bad), peak=peak)


@slotted_dataclass(frozen=True)
class LsevtchnPort:
    """One line of ``lsevtchn DOMID``: the port, its vCPU and state in the tool's words."""

    domid: int
    port: int
    vcpu: int
    kind: str  # "unbound" | "interdomain" | "pirq" | "virq" | "ipi" | "unknown"
    remote_domid: int | None = None
    remote_port: int | None = None
    number: int | None = None  # the PIRQ or VIRQ number

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


_LS_RE = re.compile(r"^\s*(\d+): VCPU (\d+): (.*)$")
_LS_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Interdomain \(Waiting connection\) - Remote Domain (\d+)$"), "unbound"),
    (re.compile(r"^Interdomain \(Connected\) - Remote Domain (\d+), Port (\d+)$"), "interdomain"),
    (re.compile(r"^Physical IRQ (\d+)$"), "pirq"),
    (re.compile(r"^Virtual IRQ (\d+)$"), "virq"),
    (re.compile(r"^IPI$"), "ipi"),
    (re.compile(r"^Unknown$"), "unknown"),
]


def parse_lsevtchn(text: str, domid: int) -> tuple[tuple[LsevtchnPort, ...], tuple[str, ...]]:
    """Ports from ``lsevtchn DOMID`` text, and the lines that could not be read."""
    ports: list[LsevtchnPort] = []
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LS_RE.match(line)
        if not m:
            bad.append(line)
            continue
        port, vcpu, rest = int(m.group(1)), int(m.group(2)), m.group(3).strip()
        for pattern, kind in _LS_KINDS:
            k = pattern.match(rest)
            if not k:
                continue
            kw: dict[str, int] = {}
            if kind in ("unbound", "interdomain"):
                kw["remote_domid"] = int(k.group(1))
            if kind == "interdomain":
                kw["remote_port"] = int(k.group(2))
            if kind in ("pirq", "virq"):
                kw["number"] = int(k.group(1))
            ports.append(LsevtchnPort(domid=domid, port=port, vcpu=vcpu, kind=kind, **kw))
            break
        else:
            bad.append(line)
    return tuple(ports), tuple(bad)


@slotted_dataclass(frozen=True)
class QuotaSnapshot:
    """Limits (from xenstored, or its 4.17 defaults when ``limits_source`` says so) and usage."""

    limits: dict[str, int]
    limits_source: str
    usage: tuple[QuotaUsage, ...]
    unavailable: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "limits": self.limits,
            "limits_source": self.limits_source,
            "usage": [u.to_json() for u in self.usage],
            "unavailable": list(self.unavailable),
        }


@slotted_dataclass(frozen=True)
class DeviceHolder:
    """A process with a /dev/xen device open: pid, name, the device, and pages mmapped from it."""

    pid: int
    comm: str
    device: str
    fds: int
    mapped_pages: int | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@slotted_dataclass(frozen=True)
class ProcessInfo:
    """What a process is, for a user deciding whether it may hold a grant or a port.

    ``started`` is seconds since the epoch; ``cpu_s`` user plus system CPU seconds; ``rss``
    resident memory in bytes. Fields the process would not show (another user's, without
    privilege) are None or empty.
    """

    pid: int
    name: str
    cmdline: tuple[str, ...]
    user: str | None
    started: float | None
    cpu_s: float | None
    rss: int | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


# -- xl list ----------------------------------------------------------------------------------
_XL_ROW = re.compile(
    r"^(?P<name>.+?)\s+(?P<id>\d+)\s+(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+"
    r"(?P<state>[-rbpscd]{6})\s+(?P<time>[\d.]+)\s*$"
)


def parse_xl_list(text: str) -> list[dict[str, Any]]:
    """The rows of ``xl list`` (name, id, mem MiB, vcpus, state letters, cpu time s)."""
    rows = []
    for line in text.splitlines()[1:]:
        m = _XL_ROW.match(line)
        if m:
            rows.append(
                {
                    "name": m["name"],
                    "domid": int(m["id"]),
                    "mem_mib": int(m["mem"]),
                    "vcpus": int(m["vcpus"]),
                    "state": m["state"],
                    "cpu_time_s": float(m["time"]),
                }
            )
    return rows
