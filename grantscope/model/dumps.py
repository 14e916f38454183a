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

This module is the entry point; the work is split by subject: console lines and the result
(:mod:`~grantscope.model.dump_console`), the ``g`` records (:mod:`~grantscope.model.dump_grants`),
the ``e`` records (:mod:`~grantscope.model.dump_events`) and the parser's state machine
(:mod:`~grantscope.model.dump_parser`).
"""

from __future__ import annotations

from grantscope.model.dump_console import (
    CONRING_HINT,
    ConsoleLine,
    ConsoleParse,
    UnparsedLine,
    split_console_line,
)
from grantscope.model.dump_events import (
    EVTCHN_STATES,
    EventDomain,
    EventDump,
    EventPort,
    format_event_dump,
    format_event_port,
)
from grantscope.model.dump_grants import (
    GrantDump,
    GrantEntry,
    GrantTable,
    format_grant_dump,
    format_grant_entry,
    format_grant_table,
)
from grantscope.model.dump_parser import ConsoleParser

__all__ = [
    "CONRING_HINT",
    "EVTCHN_STATES",
    "ConsoleLine",
    "ConsoleParse",
    "ConsoleParser",
    "EventDomain",
    "EventDump",
    "EventPort",
    "GrantDump",
    "GrantEntry",
    "GrantTable",
    "UnparsedLine",
    "format_event_dump",
    "format_event_port",
    "format_grant_dump",
    "format_grant_entry",
    "format_grant_table",
    "parse_console",
    "split_console_line",
]


def parse_console(text: str) -> ConsoleParse:
    """Find and parse every ``g`` and ``e`` dump in a console text (``xl dmesg`` output).

    Never raises on any input: whatever cannot be read ends up in ``unparsed`` or
    ``problems``.  Several dumps (and several domains per dump) are returned in order.
    """
    return ConsoleParser().parse(text)
