"""Printing results and errors for the CLI: one JSON object with ``--json``, words otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any

from grantscope.errors import GrantscopeError


def print_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def report_error(err: GrantscopeError, *, as_json: bool) -> int:
    """Show ``err`` (``{"ok": false, "error": ...}`` with ``--json``); return its exit code."""
    if as_json:
        print_json({"ok": False, "error": err.to_json()})
    else:
        sys.stderr.write(f"grantscope: {err.message}\n")
        if err.explanation:
            for line in err.explanation.splitlines():
                sys.stderr.write(f"  {line}\n")
    return err.exit_code
