"""The line patterns of the hypervisor's ``g`` and ``e`` console dumps (Xen 4.16–4.20).

Strict patterns read a line; the ``*_LOOSE`` ones recognise a line that belongs to a dump
but is not in a known format, so that it is reported instead of dropped.  Used by
:mod:`grantscope.model.dump_parser`.
"""

from __future__ import annotations

import re

# --- grant-table dump (key 'g') ---------------------------------------------------------------
G_BEGIN = re.compile(r"^gnttab_usage_print_all \[ key '(.)' pressed$")
G_END = re.compile(r"^gnttab_usage_print_all \] done$")
G_HEAD1 = re.compile(r"^ +-------- active -------- +-------- shared --------$")
G_HEAD2 = re.compile(r"^\[ref\] localdom mfn +pin +localdom gmfn +flags$")
# Numbers are bounded at 20 digits (a uint64): a longer run is no Xen output, and int() of it
# would cost quadratic time or raise.  Such a line falls to the loose patterns: unparsed.
G_TABLE = re.compile(r"^grant-table for remote d(\d{1,20}) \(v(\d{1,20})\)$")
G_FRAMES = re.compile(
    r"^ +(\d{1,20}) frames \((\d{1,20}) max\), (\d{1,20}) maptrack frames \((\d{1,20}) max\)$"
)
G_ENTRY = re.compile(
    r"^\[0x([0-9a-f]{1,16})\] +(-?\d{1,20}) 0x([0-9a-f]{1,16}) 0x([0-9a-f]{8}) +(-?\d{1,20}) "
    r"0x([0-9a-f]{1,16}) "
    r"0x([0-9a-f]{1,16})$"
)
G_NONE = re.compile(r"^no active grant table entries$")
# Shapes that belong to a 'g' dump even when the strict patterns fail (e.g. the Xen 4.4
# "grant-table for remote domain:" format): these are reported, never silently dropped.
G_LOOSE = re.compile(
    r"^(?:\[(?:0x)?[0-9a-fA-F]+\]|\[ *\d+\]|grant-table for remote|gnttab_usage_print"
    r"|.*maptrack frames|.*-------- active)"
)

# --- event-channel dump (key 'e') -------------------------------------------------------------
E_BEGIN = re.compile(r"^'(.)' pressed -> dumping event-channel info$")
E_DOMAIN = re.compile(r"^Event channel information for domain (\d{1,20}):$")
E_POLLING = re.compile(r"^Polling vCPUs: \{([^}]*)\}$")
E_HEAD = re.compile(r"^ +port \[p/m/s\]$")
E_PORT = re.compile(
    r"^ +(\d{1,20}) \[([01])/([01])/([^\]]*)\]: s=(\d{1,20}) n=(\d{1,20}) x=(\d{1,20})"
    r"(?: d=(\d{1,20}))?(?: p=(-?\d{1,20}))?(?: i=(-?\d{1,20}))?(?: v=(\d{1,20}))?"
    r"(?: Z=(.*))?$"
)
E_LOOSE = re.compile(
    r"^(?: +\d+ \[|Event channel information|Polling vCPUs|.*dumping event-channel| +port \[)"
)
