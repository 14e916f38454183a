"""Bundles that are structurally sound but carry text or numbers meant to hurt whoever opens them.

Each case is a valid bundle (correct manifest and checksums) whose *content* is hostile: terminal
escape sequences and forged lines in strings the CLI prints, Rich markup in names the TUI shows,
numbers that overflow or are infinite, Unicode digits where a count belongs.  ``opens`` says
whether the replay host accepts the bundle (its content is then shown, harmlessly) or refuses it
as malformed (exit status 1, a message, never a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundle_corpus.hostile import _file, gz, manifest_for, tar_bytes

# Retitles the window, clears the screen, and forges a line of bundle inspect's own output.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1H\ninteg\u202erity ok: 99 member(s)\r"
MARKUP = "[/]"
SURROGATE = "host-\ud800-x"  # a lone surrogate: JSON allows "\ud800", UTF-8 cannot encode it
HVDUMP_HEAD = "(XEN) 'e' pressed -> dumping event-channel info\n"


def _grants(name: str = "qemu", fds: Any = 1, taken_at: Any = 0.0) -> dict[str, Any]:
    return {
        "own": [],
        "processes": [
            {"pid": 7, "name": name, "device": "/dev/xen/gntdev", "fds": fds, "mapped_pages": 1}
        ],
        "hypervisor": None,
        "taken_at": taken_at,
    }


def _xenstore(path: str, value: bytes) -> dict[str, Any]:
    import base64

    return {
        "root": "/",
        "nodes": [
            {
                "path": path,
                "value_b64": base64.b64encode(value).decode(),
                "value": "x",
                "perms": {"owner": 0, "default": "n", "acl": []},
            }
        ],
    }


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class TextCase:
    """One bundle with hostile content: its members, manifest overrides, and whether it opens."""

    name: str
    members: Callable[[], dict[str, bytes]]
    opens: bool
    manifest: Callable[[], dict[str, Any]] = dict
    says: str = ""  # words of the refusal when it does not open


def _raw_number(member: dict[str, Any], field: str, literal: str) -> bytes:
    text = json.dumps(member)
    marker = f'"{field}": '
    start = text.index(marker) + len(marker)
    end = start
    while text[end] not in ",}":
        end += 1
    return (text[:start] + literal + text[end:]).encode()


CASES: tuple[TextCase, ...] = (
    TextCase(
        "escapes_in_host_and_collectors",
        lambda: {"host.json": b"{}", "grants.json": _json(_grants(name=ESCAPES))},
        True,
        lambda: {
            "host": {"hostname": ESCAPES, "role": ESCAPES, "xen_version": ESCAPES},
            "finished_at": ESCAPES,
            "collectors": [
                {"name": ESCAPES, "status": ESCAPES, "duration_s": 1e300, "error": ESCAPES}
            ],
            "redaction": {"enabled": True, "redacted": [{"member": ESCAPES, "path": ESCAPES}]},
        },
    ),
    TextCase(
        "escapes_in_xenstore_path",
        lambda: {"host.json": b"{}", "xenstore.json": _json(_xenstore("/" + ESCAPES, b"v"))},
        False,
        says="a XenStore node has a bad path",
    ),
    TextCase(
        "markup_in_process_name",
        lambda: {"host.json": b"{}", "grants.json": _json(_grants(name=MARKUP))},
        True,
        lambda: {"host": {"hostname": "[bold red]x[/]" + MARKUP}},
    ),
    TextCase(
        "lone_surrogate_hostname",
        lambda: {"host.json": b"{}"},
        True,
        lambda: {"host": {"hostname": SURROGATE}, "finished_at": SURROGATE},
    ),
    TextCase(
        "integer_of_400_digits",
        lambda: {"host.json": b"{}", "grants.json": _raw_number(_grants(), "fds", "9" * 400)},
        False,
        says="a number of 400 digits is out of range",
    ),
    TextCase(
        "float_of_400_digits",
        lambda: {"host.json": b"{}", "grants.json": _raw_number(_grants(), "taken_at", "9" * 400)},
        False,
        says="a number of 400 digits is out of range",
    ),
    TextCase(
        "infinity_as_1e999",
        lambda: {"host.json": b"{}", "grants.json": _raw_number(_grants(), "taken_at", "1e999")},
        False,
        says="1e999 is out of range",
    ),
    TextCase(
        "integer_over_64_bits",
        lambda: {"host.json": b"{}", "grants.json": _json(_grants(fds=2**70))},
        False,
        says="out of range",
    ),
    TextCase(
        "unicode_digit_in_interrupt_count",
        lambda: {
            "host.json": b"{}",
            "interrupts.txt": "     CPU0\n 54:   2\u00b2   xen-dyn    -event     xenbus\n".encode(),
        },
        True,
    ),
    TextCase(
        "huge_domid_in_hvdump",
        lambda: {
            "host.json": b"{}",
            "hvdump.txt": (
                HVDUMP_HEAD + "(XEN) Event channel information for domain " + "9" * 5000 + ":\n"
            ).encode(),
        },
        True,
    ),
)


def write_text_case(case: TextCase, directory: Path) -> Path:
    """Write ``case``'s bundle (with a correct manifest) into ``directory``; its path."""
    listed = case.members()
    members = [_file("manifest.json", manifest_for(listed, **case.manifest()))]
    members += [_file(n, d) for n, d in listed.items()]
    path = directory / f"{case.name}.tar.gz"
    path.write_bytes(gz(tar_bytes(members)))
    return path
