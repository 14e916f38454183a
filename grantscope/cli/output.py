"""Printing results and errors for the CLI: one JSON object with ``--json``, words otherwise.

Text that comes from a host or a bundle (hostnames, XenStore paths and values, process names,
collector errors) may hold terminal escape sequences, newlines that would forge a line of our
own, or bytes the terminal cannot encode.  :func:`clean` is the one place that makes such
text safe to print: every CLI formatter passes untrusted strings through it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grantscope.errors import GrantscopeError

_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def clean(text: object, *, backslash: bool = True) -> str:
    """``text`` with every control or invisible character shown as an escape, like xenstore-ls.

    ``\\t \\n \\r \\\\`` are backslash-escaped, other characters below 010 as ``\\%03o`` and
    the rest of C0, DEL and C1 as ``\\x%02x`` (xenstore-ls's ``sanitise_value`` rule);
    printable Unicode is kept, and any other character (format characters such as bidi
    overrides, lone surrogates, unassigned code points) is shown as ``\\uXXXX``/``\\UXXXXXXXX``.
    The result is always encodable as UTF-8 and is always one line.  ``backslash=False``
    leaves backslashes alone, for text that was cleaned already (cleaning it is then a no-op).
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable() and (not backslash or "\\" not in text):
        return text  # the common case, kept fast
    out: list[str] = []
    for char in text:
        named = _NAMED.get(char) if backslash or char != "\\" else char
        code = ord(char)
        if named is not None:
            out.append(named)
        elif char.isprintable():
            out.append(char)
        elif code < 0o10:
            out.append(f"\\{code:03o}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def print_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout (ASCII: escapes and surrogates are inert)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_lines(lines: str) -> None:
    """Print text a formatter built with :func:`clean`; any character that still cannot be
    shown (a formatter that forgot a field) is escaped here, line by line, as a safety net."""
    safe = (clean(line, backslash=False) for line in lines.split("\n"))
    sys.stdout.write("\n".join(safe) + "\n")
    sys.stdout.flush()


def report_error(err: GrantscopeError, *, as_json: bool) -> int:
    """Show ``err`` (``{"ok": false, "error": ...}`` with ``--json``); return its exit code."""
    if as_json:
        print_json({"ok": False, "error": err.to_json()})
    else:
        sys.stderr.write(f"grantscope: {clean(err.message)}\n")
        if err.explanation:
            for line in err.explanation.splitlines():
                sys.stderr.write(f"  {clean(line)}\n")
    return err.exit_code
