"""The console parser: one pass over ``xl dmesg`` text finds every ``g`` and ``e`` dump.

A small state machine (:class:`ConsoleParser`): at most one open ``g`` and one open ``e``
dump, the dump the last dump line belonged to, and the lines held back after an ``e`` dump
(it has no end marker, so the next line decides whether they were inside it).  One method
per kind of line; :mod:`grantscope.model.dumps` describes the formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from grantscope.model.dump_console import (
    CONRING_HINT,
    ConsoleLine,
    ConsoleParse,
    UnparsedLine,
    split_console_line,
)
from grantscope.model.dump_events import EventDomain, EventDump, EventPort
from grantscope.model.dump_grants import GrantDump, GrantEntry, GrantTable
from grantscope.model.dump_patterns import (
    E_BEGIN,
    E_DOMAIN,
    E_HEAD,
    E_LOOSE,
    E_POLLING,
    E_PORT,
    G_BEGIN,
    G_END,
    G_ENTRY,
    G_FRAMES,
    G_HEAD1,
    G_HEAD2,
    G_LOOSE,
    G_NONE,
    G_TABLE,
)

# --- what an open dump collects ------------------------------------------------------------------


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


def _grant_entry(granter: int, m: re.Match[str]) -> GrantEntry:
    return GrantEntry(
        granter=granter,
        ref=int(m.group(1), 16),
        mapper=int(m.group(2)),
        mfn=int(m.group(3), 16),
        pin=int(m.group(4), 16),
        shared_domid=int(m.group(5)),
        gmfn=int(m.group(6), 16),
        flags=int(m.group(7), 16),
    )


class ConsoleParser:
    """Parses one console text: :meth:`parse` feeds every line to :meth:`feed`.

    Never raises on any input: whatever cannot be read ends up in ``unparsed`` or in the
    problems of the result.  Several dumps (and several domains per dump) are kept in order.
    """

    def __init__(self) -> None:
        self.grant_dumps: list[GrantDump] = []
        self.event_dumps: list[EventDump] = []
        self.unparsed: list[UnparsedLine] = []
        self.other = 0  # lines that are part of no dump, ignored on purpose
        self.total = 0
        self.g: _GDumpBuilder | None = None
        self.e: _EDumpBuilder | None = None
        # Which dump a continuation line belongs to: the one whose line came last.
        self.current: Literal["g", "e"] | None = None
        # Lines after an 'e' dump's last port: inside it or after it, the next line decides.
        self.pending_e: list[ConsoleLine] = []

    def parse(self, text: str) -> ConsoleParse:
        """Every dump in ``text``, what could not be read, and the problems found."""
        for lineno, raw in enumerate(text.splitlines(), start=1):
            self.total += 1
            self.feed(split_console_line(raw, lineno))
        self._close("g")
        self._close("e")
        self.other += len(self.pending_e)
        self.pending_e.clear()
        return ConsoleParse(
            grant_dumps=tuple(self.grant_dumps),
            event_dumps=tuple(self.event_dumps),
            unparsed=tuple(self.unparsed),
            problems=tuple(dump_problems(self.grant_dumps, self.event_dumps)),
            other_lines=self.other,
            total_lines=self.total,
        )

    def feed(self, cl: ConsoleLine) -> None:
        """One console line."""
        if cl.source.startswith("d"):
            self.other += 1  # a guest's console line: never part of a hypervisor dump
            return
        t = cl.text
        if not t.strip():
            return
        if self._begin(t, cl.lineno) or self._grant_line(t, cl.lineno):
            return
        if not self._event_line(cl, t):
            self._unmatched(cl, t)

    # ---- the dumps open now ----
    def _seen(self, which: Literal["g", "e"], lineno: int) -> None:
        """Line ``lineno`` belongs to the open ``which`` dump: it extends to there, and a
        continuation line that follows belongs to it."""
        dump = self.g if which == "g" else self.e
        assert dump is not None
        dump.last_line = lineno
        self.current = which

    def _close(self, which: Literal["g", "e"]) -> None:
        """The open ``which`` dump, if any, is complete: keep it with the parsed dumps."""
        if which == "g" and self.g is not None:
            self.grant_dumps.append(self.g.build())
            self.g = None
        elif which == "e" and self.e is not None:
            self.event_dumps.append(self.e.build())
            self.e = None

    # ---- begin markers ----
    def _begin(self, t: str, lineno: int) -> bool:
        if self.pending_e and (G_BEGIN.match(t) or E_BEGIN.match(t) or G_HEAD1.match(t)):
            self.other += len(self.pending_e)  # the 'e' dump ended before them: ordinary lines
            self.pending_e.clear()
        if G_BEGIN.match(t):
            self._close("g")
            self.g = _GDumpBuilder(begin_seen=True, first_line=lineno, last_line=lineno)
            self.current = "g"
            return True
        if E_BEGIN.match(t):
            self._close("e")
            self.e = _EDumpBuilder(begin_seen=True, first_line=lineno, last_line=lineno)
            self.current = "e"
            return True
        return False

    # ---- grant dump lines ----
    def _grant_line(self, t: str, lineno: int) -> bool:
        if G_END.match(t):
            g = self._open_g(lineno)
            g.end_seen = True
            g.last_line = lineno
            self._close("g")
            self.current = None
            return True
        if G_HEAD1.match(t) or G_HEAD2.match(t):
            self._open_g(lineno)
            self._seen("g", lineno)
            return True
        m = G_TABLE.match(t)
        if m:
            table = _GTableBuilder(domid=int(m.group(1)), version=int(m.group(2)))
            self._open_g(lineno).tables.append(table)
            self._seen("g", lineno)
            return True
        if self.g is None or not self.g.tables:
            return False  # a table's line with no table open: reported as unmatched
        table = self.g.tables[-1]
        m = G_FRAMES.match(t)
        if m and table.frames is None:
            table.frames = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
        elif m := G_ENTRY.match(t):
            table.entries.append(_grant_entry(table.domid, m))
        elif G_NONE.match(t):
            table.no_active = True
        else:
            return False
        self._seen("g", lineno)
        return True

    def _open_g(self, lineno: int) -> _GDumpBuilder:
        if self.g is None:  # a 'g' line with no begin marker in front: the ring lost it
            self.g = _GDumpBuilder(begin_seen=False, first_line=lineno, last_line=lineno)
        return self.g

    # ---- event dump lines ----
    def _event_line(self, cl: ConsoleLine, t: str) -> bool:
        m = E_DOMAIN.match(t)
        if m:
            if self.e is None:
                # A domain header with no 'e' begin line in front: the ring lost it.
                self.e = _EDumpBuilder(begin_seen=False, first_line=cl.lineno,
                                       last_line=cl.lineno)
            self._flush_pending_e()
            self.e.domains.append(_EDomBuilder(domid=int(m.group(1))))
            self._seen("e", cl.lineno)
            return True
        if self.e is None or not self.e.domains:
            return False
        dom = self.e.domains[-1]
        m = E_POLLING.match(t)
        if m and dom.polling is None:
            dom.polling = m.group(1)
        elif E_HEAD.match(t):
            pass
        elif m := E_PORT.match(t):
            if not _fields_fit_state(m):
                self._bad(cl, "event-channel port line whose fields do not fit its state s=")
                return True
            self._flush_pending_e()
            dom.ports.append(_port_from_match(dom.domid, m))
        else:
            return False
        self._seen("e", cl.lineno)
        return True

    def _flush_pending_e(self) -> None:
        for held in self.pending_e:
            self._bad(held, "unrecognised line inside an 'e' dump")
        self.pending_e.clear()

    # ---- nothing matched ----
    def _unmatched(self, cl: ConsoleLine, t: str) -> None:
        if G_ENTRY.match(t) or G_FRAMES.match(t):
            self._bad(cl, "grant-table line with no 'grant-table for remote dN' line before it "
                      "(the start of the dump was lost, or the text was pasted in part)")
        elif E_PORT.match(t):
            self._bad(cl, "event-channel port line with no 'Event channel information for "
                      "domain N' line before it (the start of the dump was lost)")
        elif G_LOOSE.match(t):
            where = "inside a 'g' dump" if self.g is not None else "outside any 'g' dump section"
            self._bad(cl, "looks like a grant-table dump line but not in Xen 4.16–4.20 format "
                      f"({where})")
        elif E_LOOSE.match(t):
            self._bad(cl, "looks like an event-channel dump line but does not match Xen "
                      "4.16–4.20 format")
        elif self.current == "g" and self.g is not None:
            # A hypervisor line interleaved inside a dump: keep it visible, do not guess.
            self._bad(cl, "unrecognised line inside a 'g' dump")
        elif self.current == "e" and self.e is not None:
            # 'e' has no end marker: this is either interleaved (more port lines follow)
            # or the dump is over.  Decide when the next 'e' line comes, or never.
            self.pending_e.append(cl)
        else:
            self.other += 1

    def _bad(self, cl: ConsoleLine, reason: str) -> None:
        self.unparsed.append(UnparsedLine(cl.lineno, cl.raw.rstrip("\r\n"), reason))


def dump_problems(grant_dumps: list[GrantDump], event_dumps: list[EventDump]) -> list[str]:
    """Sentences about the dumps as a whole: a missing marker, a table without sizes."""
    problems: list[str] = []
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
    return problems
