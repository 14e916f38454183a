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
from grantscope.safetext import clean


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
