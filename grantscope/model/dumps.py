"""Parsers for the hypervisor's grant-table (`g`) and event-channel (`e`) console dumps.

Input is the text of ``xl dmesg`` (or a dump pasted from a bug report); output is frozen
dataclasses.  The formats are those of Xen 4.16–4.20 (xen/common/grant_table.c
``gnttab_usage_print``, xen/common/event_channel.c ``domain_dump_evtchn_info``; see
shared reference xen-facts.md §1.2–1.4):

* every console line may carry a ``(XEN) `` or ``(dN) `` prefix and one timestamp in any of
  the ``console_timestamps=`` styles; lines without a prefix (already stripped) are accepted;
* guest lines ``(dN)`` are never part of a dump: they are skipped where they interleave;
* ``g`` has begin and end markers; ``e`` has only a begin line, so its end is where the next
  dump starts or the text ends.

Nothing here guesses: a line inside a dump (or shaped like a dump line) that matches no known
format is returned in ``unparsed`` with the reason, and a dump whose begin or end marker is
missing says so in ``problems`` (the usual cause is a console ring too small: ``conring_size=``).
The ``format_*`` functions render records back in Xen's exact printk formats (tests and the
simulated host use them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "CONRING_HINT",
    "ConsoleLine",
    "ConsoleParse",
    "EventDomain",
    "EventDump",
    "EventPort",
    "GrantDump",
    "GrantEntry",
    "GrantTable",
    "UnparsedLine",
    "format_event_port",
    "format_grant_entry",
    "format_grant_table",
    "parse_console",
    "split_console_line",
]

CONRING_HINT = (
    "The hypervisor console ring is 16 KiB by default and a dump larger than the free part "
    "of it loses its oldest lines. Boot Xen with a bigger ring, e.g. conring_size=1m on the "
    "Xen command line, then capture again."
)

# The prefix Xen's console adds, then at most one timestamp in one of the four styles that
# console_timestamps= selects (date, datems, boot, raw).  The timestamp alternatives are
# deliberately narrow: a loose "\[[^\]]*\] " would also eat a grant line's "[0x008] ".
_PREFIX_RE = re.compile(r"^\s*\((XEN|d\d+)\)(?: |$)")
_TIMESTAMP_RE = re.compile(
    r"^\[(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{3})?"  # date / datems
    r"| *\d+\.\d{6}"  # boot: [%5u.%06u]
    r"|[0-9a-fA-F]{16})\] "  # raw: [%016x]
)

# --- grant-table dump (key 'g') ---------------------------------------------------------------
_G_BEGIN = re.compile(r"^gnttab_usage_print_all \[ key '(.)' pressed$")
_G_END = re.compile(r"^gnttab_usage_print_all \] done$")
_G_HEAD1 = re.compile(r"^ +-------- active -------- +-------- shared --------$")
_G_HEAD2 = re.compile(r"^\[ref\] localdom mfn +pin +localdom gmfn +flags$")
# Numbers are bounded at 20 digits (a uint64): a longer run is no Xen output, and int() of it
# would cost quadratic time or raise.  Such a line falls to the loose patterns: unparsed.
_G_TABLE = re.compile(r"^grant-table for remote d(\d{1,20}) \(v(\d{1,20})\)$")
_G_FRAMES = re.compile(
    r"^ +(\d{1,20}) frames \((\d{1,20}) max\), (\d{1,20}) maptrack frames \((\d{1,20}) max\)$"
)
_G_ENTRY = re.compile(
    r"^\[0x([0-9a-f]{1,16})\] +(-?\d{1,20}) 0x([0-9a-f]{1,16}) 0x([0-9a-f]{8}) +(-?\d{1,20}) "
    r"0x([0-9a-f]{1,16}) "
    r"0x([0-9a-f]{1,16})$"
)
_G_NONE = re.compile(r"^no active grant table entries$")
# Shapes that belong to a 'g' dump even when the strict patterns fail (e.g. the Xen 4.4
# "grant-table for remote domain:" format): these are reported, never silently dropped.
_G_LOOSE = re.compile(
    r"^(?:\[(?:0x)?[0-9a-fA-F]+\]|\[ *\d+\]|grant-table for remote|gnttab_usage_print"
    r"|.*maptrack frames|.*-------- active)"
)

# --- event-channel dump (key 'e') -------------------------------------------------------------
_E_BEGIN = re.compile(r"^'(.)' pressed -> dumping event-channel info$")
_E_DOMAIN = re.compile(r"^Event channel information for domain (\d{1,20}):$")
_E_POLLING = re.compile(r"^Polling vCPUs: \{([^}]*)\}$")
_E_HEAD = re.compile(r"^ +port \[p/m/s\]$")
_E_PORT = re.compile(
    r"^ +(\d{1,20}) \[([01])/([01])/([^\]]*)\]: s=(\d{1,20}) n=(\d{1,20}) x=(\d{1,20})"
    r"(?: d=(\d{1,20}))?(?: p=(-?\d{1,20}))?(?: i=(-?\d{1,20}))?(?: v=(\d{1,20}))?"
    r"(?: Z=(.*))?$"
)
_E_LOOSE = re.compile(
    r"^(?: +\d+ \[|Event channel information|Polling vCPUs|.*dumping event-channel| +port \[)"
)

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


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One console line split into its source and its message.

    ``source`` is "XEN", "dN" (a guest's console) or "" (no prefix: already stripped, or a
    line that is not from the console at all).  ``timestamp`` is the bracketed stamp or "".
    """

    lineno: int
    source: str
    timestamp: str
    text: str
    raw: str


@dataclass(frozen=True, slots=True)
class UnparsedLine:
    """A line the parser recognised as part of a dump but could not read, and why."""

    lineno: int
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class GrantEntry:
    """One active (pinned) grant: ``granter`` granted ``ref``; ``mapper`` has it mapped.

    Fields are the columns of the ``g`` dump: ``mapper`` is the active ``localdom``
    (``act->domid``), ``shared_domid`` the domid the granter wrote in its entry,
    ``pin`` the packed pin counters, ``gmfn`` the granter's frame, ``flags`` the GTF bits.
    """

    granter: int
    ref: int
    mapper: int
    mfn: int
    pin: int
    shared_domid: int
    gmfn: int
    flags: int

    @property
    def host_write_pins(self) -> int:
        """Writable host mappings (pin bits 0–7)."""
        return self.pin & 0xFF

    @property
    def host_read_pins(self) -> int:
        """Read-only host mappings (pin bits 8–15)."""
        return (self.pin >> 8) & 0xFF

    @property
    def device_write_pins(self) -> int:
        """Writable device mappings (pin bits 16–23)."""
        return (self.pin >> 16) & 0xFF

    @property
    def device_read_pins(self) -> int:
        """Read-only device mappings (pin bits 24–31)."""
        return (self.pin >> 24) & 0xFF

    @property
    def readonly(self) -> bool:
        """The granter made the entry read-only (GTF_readonly)."""
        return bool(self.flags & 0x4)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, with the pin counters unpacked."""
        out = asdict(self)
        out["pins"] = {
            "host_write": self.host_write_pins,
            "host_read": self.host_read_pins,
            "device_write": self.device_write_pins,
            "device_read": self.device_read_pins,
        }
        return out


@dataclass(frozen=True, slots=True)
class GrantTable:
    """One domain's section of a ``g`` dump: its grant-table size and its active entries.

    ``frames``/``max_frames`` are the granter-side table; ``maptrack_frames``/
    ``max_maptrack_frames`` the mapper-side capacity of the same domain.  They are None
    when the size line was missing (the section was cut).
    """

    domid: int
    version: int
    frames: int | None
    max_frames: int | None
    maptrack_frames: int | None
    max_maptrack_frames: int | None
    entries: tuple[GrantEntry, ...]
    no_active_line: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {k: v for k, v in asdict(self).items() if k != "entries"}
        out["entries"] = [e.to_json() for e in self.entries]
        return out


@dataclass(frozen=True, slots=True)
class GrantDump:
    """One ``g`` dump.  ``complete`` only when both markers were seen and nothing was cut."""

    begin_seen: bool
    end_seen: bool
    tables: tuple[GrantTable, ...]
    first_line: int
    last_line: int

    @property
    def complete(self) -> bool:
        """Both the begin and the end marker are present."""
        return self.begin_seen and self.end_seen

    def entries(self) -> Iterator[GrantEntry]:
        """Every active entry of every domain."""
        for table in self.tables:
            yield from table.entries

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "begin_seen": self.begin_seen,
            "end_seen": self.end_seen,
            "complete": self.complete,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "tables": [t.to_json() for t in self.tables],
        }


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class ConsoleParse:
    """Everything :func:`parse_console` found in a console text.

    ``problems`` are sentences about the dumps as a whole (a missing marker, a cut
    section); ``unparsed`` are single lines; ``other_lines`` counts lines that are not part
    of any dump (boot messages, guest output) and were ignored on purpose.
    """

    grant_dumps: tuple[GrantDump, ...]
    event_dumps: tuple[EventDump, ...]
    unparsed: tuple[UnparsedLine, ...]
    problems: tuple[str, ...]
    other_lines: int
    total_lines: int

    @property
    def grants(self) -> GrantDump | None:
        """The last ``g`` dump, preferring a complete one; None if there is none."""
        return _last_preferring(self.grant_dumps, lambda d: d.complete)

    @property
    def events(self) -> EventDump | None:
        """The last ``e`` dump, preferring one whose begin line was seen."""
        return _last_preferring(self.event_dumps, lambda d: d.begin_seen)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "grant_dumps": [d.to_json() for d in self.grant_dumps],
            "event_dumps": [d.to_json() for d in self.event_dumps],
            "unparsed": [asdict(u) for u in self.unparsed],
            "problems": list(self.problems),
            "other_lines": self.other_lines,
            "total_lines": self.total_lines,
        }


def _last_preferring(items: tuple[Any, ...], good: Any) -> Any:
    for item in reversed(items):
        if good(item):
            return item
    return items[-1] if items else None


def split_console_line(raw: str, lineno: int = 0) -> ConsoleLine:
    """Strip the ``(XEN)``/``(dN)`` prefix and a timestamp from one console line."""
    line = raw.rstrip("\r\n").rstrip()
    source = ""
    m = _PREFIX_RE.match(line)
    if m:
        source = m.group(1)
        line = line[m.end() :]
    timestamp = ""
    t = _TIMESTAMP_RE.match(line)
    if t:
        timestamp = t.group(0)[:-1]
        line = line[t.end() :]
    return ConsoleLine(lineno=lineno, source=source, timestamp=timestamp, text=line, raw=raw)


# --- the state machine -------------------------------------------------------------------------


@dataclass
class _GTableBuilder:
    domid: int
    version: int
    frames: tuple[int, int, int, int] | None = None
    entries: list[GrantEntry] = field(default_factory=list)
    no_active: bool = False

    def build(self) -> GrantTable:
        f = self.frames
        return GrantTable(
            domid=self.domid,
            version=self.version,
            frames=f[0] if f else None,
            max_frames=f[1] if f else None,
            maptrack_frames=f[2] if f else None,
            max_maptrack_frames=f[3] if f else None,
            entries=tuple(self.entries),
            no_active_line=self.no_active,
        )


@dataclass
class _GDumpBuilder:
    begin_seen: bool
    first_line: int
    last_line: int
    end_seen: bool = False
    tables: list[_GTableBuilder] = field(default_factory=list)

    def build(self) -> GrantDump:
        return GrantDump(
            begin_seen=self.begin_seen,
            end_seen=self.end_seen,
            tables=tuple(t.build() for t in self.tables),
            first_line=self.first_line,
            last_line=self.last_line,
        )


@dataclass
class _EDomBuilder:
    domid: int
    polling: str | None = None
    ports: list[EventPort] = field(default_factory=list)


@dataclass
class _EDumpBuilder:
    begin_seen: bool
    first_line: int
    last_line: int
    domains: list[_EDomBuilder] = field(default_factory=list)

    def build(self) -> EventDump:
        return EventDump(
            begin_seen=self.begin_seen,
            domains=tuple(
                EventDomain(domid=d.domid, polling_vcpus=d.polling, ports=tuple(d.ports))
                for d in self.domains
            ),
            first_line=self.first_line,
            last_line=self.last_line,
        )


def _port_from_match(domid: int, m: re.Match[str]) -> EventPort:
    """Interpret the optional ``d= p= i= v=`` groups according to ``s=``."""
    state = int(m.group(5))
    d, p, i, v, z = (m.group(k) for k in (8, 9, 10, 11, 12))
    kw: dict[str, Any] = {}
    if state == 2 and d is not None:
        kw["remote_domid"] = int(d)
    elif state == 3:
        kw["remote_domid"] = int(d) if d is not None else None
        kw["remote_port"] = int(p) if p is not None else None
    elif state == 4:
        kw["pirq"] = int(p) if p is not None else None
        kw["irq"] = int(i) if i is not None else None
    elif state == 5 and v is not None:
        kw["virq"] = int(v)
    return EventPort(
        domid=domid,
        port=int(m.group(1)),
        pending=m.group(2) == "1",
        masked=m.group(3) == "1",
        abi_state=m.group(4),
        state=state,
        notify_vcpu=int(m.group(6)),
        xen_consumer=int(m.group(7)),
        label=z,
        **kw,
    )


def _fields_fit_state(m: re.Match[str]) -> bool:
    """The optional fields present are exactly the ones Xen prints for this ``s=``."""
    state = int(m.group(5))
    present = tuple(m.group(k) is not None for k in (8, 9, 10, 11))  # d p i v
    expected = {
        2: (True, False, False, False),
        3: (True, True, False, False),
        4: (False, True, True, False),
        5: (False, False, False, True),
    }.get(state, (False, False, False, False))
    return present == expected


def parse_console(text: str) -> ConsoleParse:
    """Find and parse every ``g`` and ``e`` dump in a console text (``xl dmesg`` output).

    Never raises on any input: whatever cannot be read ends up in ``unparsed`` or
    ``problems``.  Several dumps (and several domains per dump) are returned in order.
    """
    grant_dumps: list[GrantDump] = []
    event_dumps: list[EventDump] = []
    unparsed: list[UnparsedLine] = []
    problems: list[str] = []
    other = 0
    total = 0
    g: _GDumpBuilder | None = None
    e: _EDumpBuilder | None = None
    # Which dump a continuation line belongs to: the one whose line came last.
    current: Literal["g", "e"] | None = None

    def close_g() -> None:
        nonlocal g
        if g is not None:
            grant_dumps.append(g.build())
            g = None

    def close_e() -> None:
        nonlocal e
        if e is not None:
            event_dumps.append(e.build())
            e = None

    def bad(cl: ConsoleLine, reason: str) -> None:
        unparsed.append(UnparsedLine(cl.lineno, cl.raw.rstrip("\r\n"), reason))

    pending_e: list[ConsoleLine] = []

    def flush_pending_e() -> None:
        for p in pending_e:
            bad(p, "unrecognised line inside an 'e' dump")
        pending_e.clear()

    for lineno, raw in enumerate(text.splitlines(), start=1):
        total += 1
        cl = split_console_line(raw, lineno)
        if cl.source.startswith("d"):
            other += 1  # a guest's console line: never part of a hypervisor dump
            continue
        t = cl.text
        if not t.strip():
            continue

        # ---- begin markers ----
        if pending_e and (_G_BEGIN.match(t) or _E_BEGIN.match(t) or _G_HEAD1.match(t)):
            other += len(pending_e)  # the 'e' dump ended before them: ordinary lines
            pending_e.clear()
        if _G_BEGIN.match(t):
            close_g()
            g = _GDumpBuilder(begin_seen=True, first_line=lineno, last_line=lineno)
            current = "g"
            continue
        if _E_BEGIN.match(t):
            close_e()
            e = _EDumpBuilder(begin_seen=True, first_line=lineno, last_line=lineno)
            current = "e"
            continue

        # ---- grant dump lines ----
        if _G_END.match(t):
            if g is None:
                g = _GDumpBuilder(begin_seen=False, first_line=lineno, last_line=lineno)
            g.end_seen = True
            g.last_line = lineno
            close_g()
            current = None
            continue
        if _G_HEAD1.match(t) or _G_HEAD2.match(t):
            if g is None:
                g = _GDumpBuilder(begin_seen=False, first_line=lineno, last_line=lineno)
            g.last_line = lineno
            current = "g"
            continue
        m = _G_TABLE.match(t)
        if m:
            if g is None:
                g = _GDumpBuilder(begin_seen=False, first_line=lineno, last_line=lineno)
            g.tables.append(_GTableBuilder(domid=int(m.group(1)), version=int(m.group(2))))
            g.last_line = lineno
            current = "g"
            continue
        m = _G_FRAMES.match(t)
        if m and g is not None and g.tables and g.tables[-1].frames is None:
            g.tables[-1].frames = (
                int(m.group(1)),
                int(m.group(2)),
                int(m.group(3)),
                int(m.group(4)),
            )
            g.last_line = lineno
            current = "g"
            continue
        m = _G_ENTRY.match(t)
        if m and g is not None and g.tables:
            tb = g.tables[-1]
            tb.entries.append(
                GrantEntry(
                    granter=tb.domid,
                    ref=int(m.group(1), 16),
                    mapper=int(m.group(2)),
                    mfn=int(m.group(3), 16),
                    pin=int(m.group(4), 16),
                    shared_domid=int(m.group(5)),
                    gmfn=int(m.group(6), 16),
                    flags=int(m.group(7), 16),
                )
            )
            g.last_line = lineno
            current = "g"
            continue
        if _G_NONE.match(t) and g is not None and g.tables:
            g.tables[-1].no_active = True
            g.last_line = lineno
            current = "g"
            continue

        # ---- event dump lines ----
        m = _E_DOMAIN.match(t)
        if m:
            if e is None:
                # A domain header with no 'e' begin line in front: the ring lost it.
                e = _EDumpBuilder(begin_seen=False, first_line=lineno, last_line=lineno)
            flush_pending_e()
            e.domains.append(_EDomBuilder(domid=int(m.group(1))))
            e.last_line = lineno
            current = "e"
            continue
        m = _E_POLLING.match(t)
        if m and e is not None and e.domains and e.domains[-1].polling is None:
            e.domains[-1].polling = m.group(1)
            e.last_line = lineno
            current = "e"
            continue
        if _E_HEAD.match(t) and e is not None and e.domains:
            e.last_line = lineno
            current = "e"
            continue
        m = _E_PORT.match(t)
        if m and e is not None and e.domains:
            if not _fields_fit_state(m):
                bad(cl, "event-channel port line whose fields do not fit its state s=")
                continue
            flush_pending_e()
            dom = e.domains[-1]
            dom.ports.append(_port_from_match(dom.domid, m))
            e.last_line = lineno
            current = "e"
            continue

        # ---- nothing matched ----
        if _G_ENTRY.match(t) or _G_FRAMES.match(t):
            bad(cl, "grant-table line with no 'grant-table for remote dN' line before it "
                "(the start of the dump was lost, or the text was pasted in part)")
        elif _E_PORT.match(t):
            bad(cl, "event-channel port line with no 'Event channel information for domain N' "
                "line before it (the start of the dump was lost)")
        elif _G_LOOSE.match(t):
            where = "inside a 'g' dump" if g is not None else "outside any 'g' dump section"
            bad(cl, f"looks like a grant-table dump line but not in Xen 4.16–4.20 format ({where})")
        elif _E_LOOSE.match(t):
            bad(cl, "looks like an event-channel dump line but does not match Xen 4.16–4.20 format")
        elif current == "g" and g is not None:
            # A hypervisor line interleaved inside a dump: keep it visible, do not guess.
            bad(cl, "unrecognised line inside a 'g' dump")
        elif current == "e" and e is not None:
            # 'e' has no end marker: this is either interleaved (more port lines follow)
            # or the dump is over.  Decide when the next 'e' line comes, or never.
            pending_e.append(cl)
        else:
            other += 1

    close_g()
    close_e()
    other += len(pending_e)

    for d in grant_dumps:
        where = f"lines {d.first_line}–{d.last_line}"
        if not d.begin_seen:
            problems.append(
                f"grant-table dump ({where}): the begin marker 'gnttab_usage_print_all [ key "
                f"'g' pressed' is missing, so its start was lost. {CONRING_HINT}"
            )
        if not d.end_seen:
            problems.append(
                f"grant-table dump ({where}): the end marker 'gnttab_usage_print_all ] done' "
                "is missing, so its end was cut off (or the text was pasted only in part). "
                + CONRING_HINT
            )
        for gt in d.tables:
            if gt.frames is None:
                problems.append(
                    f"grant-table dump ({where}): domain d{gt.domid} has no "
                    "'frames (max), maptrack frames (max)' line; its sizes are unknown"
                )
    for ed in event_dumps:
        if not ed.begin_seen:
            problems.append(
                f"event-channel dump (lines {ed.first_line}–{ed.last_line}): the line "
                "\"'e' pressed -> dumping event-channel info\" is missing, so domains before "
                f"the first one shown may have been lost. {CONRING_HINT}"
            )
    return ConsoleParse(
        grant_dumps=tuple(grant_dumps),
        event_dumps=tuple(event_dumps),
        unparsed=tuple(unparsed),
        problems=tuple(problems),
        other_lines=other,
        total_lines=total,
    )


# --- rendering in Xen's own formats -------------------------------------------------------------


def format_grant_entry(entry: GrantEntry) -> str:
    """One active-entry line exactly as ``gnttab_usage_print`` prints it (no prefix)."""
    return (
        f"[0x{entry.ref:03x}]  {entry.mapper:5d} 0x{entry.mfn:05x} 0x{entry.pin:08x}      "
        f"{entry.shared_domid:5d} 0x{entry.gmfn:06x} 0x{entry.flags:02x}"
    )


def format_grant_table(table: GrantTable) -> list[str]:
    """One domain's section of a ``g`` dump, header lines included (no prefix)."""
    lines = [
        "      -------- active --------       -------- shared --------",
        "[ref] localdom mfn      pin          localdom gmfn     flags",
        f"grant-table for remote d{table.domid} (v{table.version})",
        f"  {table.frames} frames ({table.max_frames} max), {table.maptrack_frames} maptrack "
        f"frames ({table.max_maptrack_frames} max)",
    ]
    lines.extend(format_grant_entry(e) for e in table.entries)
    if not table.entries:
        lines.append("no active grant table entries")
    return lines


def format_grant_dump(tables: Iterable[GrantTable]) -> list[str]:
    """A whole ``g`` dump with both markers (no prefix)."""
    lines = ["gnttab_usage_print_all [ key 'g' pressed"]
    for t in tables:
        lines.extend(format_grant_table(t))
    lines.append("gnttab_usage_print_all ] done")
    return lines


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
