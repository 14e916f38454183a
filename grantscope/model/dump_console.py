"""Console lines and what a parse of a console text found (:class:`ConsoleParse`).

A console line is split into its ``(XEN)``/``(dN)`` prefix, one timestamp and the message;
see :mod:`grantscope.model.dumps` for the formats.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.model.dump_events import EventDump
from grantscope.model.dump_grants import GrantDump

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


@slotted_dataclass(frozen=True)
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


@slotted_dataclass(frozen=True)
class UnparsedLine:
    """A line the parser recognised as part of a dump but could not read, and why."""

    lineno: int
    text: str
    reason: str


@slotted_dataclass(frozen=True)
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
