"""``grantscope dump analyze FILE`` and ``grantscope dump capture``.

``analyze`` reads a saved ``xl dmesg`` text (or a dump pasted from a bug report; ``-`` for
stdin) and prints the grant tables, event channels and the findings that need nothing else
(grant/maptrack headroom), plus every line it could not parse and every missing marker.
It needs no Xen.  Exit status: 0 analysed, 1 no dump found in the text, 2 unreadable file.

``capture`` (dom0) sends ``g`` and/or ``e`` to Xen the safe way
(:mod:`grantscope.sources.hvdump`: the console ring is read, never emptied) and writes the
dumps' text to stdout or to a new FILE (mode 0600; an existing file or symlink is refused).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grantscope.cli.output import clean, print_json, print_lines
from grantscope.cli.report import analysis_json, render_text
from grantscope.errors import NoXenError, UsageError
from grantscope.model.dumps import parse_console
from grantscope.model.findings import analyze
from grantscope.safefile import check_new_file, write_new_file
from grantscope.sources.observation import build_observation

__all__ = ["register", "run_analyze", "run_capture"]

_MAX_BYTES = 256 * 1024 * 1024  # a console log is KiBs to MiBs; refuse to slurp a disk image


def register(subparsers: Any) -> None:
    """Add ``dump analyze`` and ``dump capture`` to the top-level parser."""
    parser = subparsers.add_parser(
        "dump",
        help="read hypervisor g/e dumps (analyze a saved one, or capture one)",
        description="Hypervisor grant-table ('g') and event-channel ('e') dumps.",
    )
    sub = parser.add_subparsers(dest="dump_command", metavar="SUBCOMMAND")
    a = sub.add_parser(
        "analyze",
        help="analyze a saved 'xl dmesg' text (no Xen needed)",
        description="Parse the g/e dumps in FILE (an 'xl dmesg' output or a pasted dump; '-' "
        "reads stdin), print the tables, the findings they support, and every line that "
        "could not be parsed.",
    )
    a.add_argument("file", metavar="FILE", help="console text file, or - for stdin")
    a.add_argument("--json", action="store_true", help="print one JSON document")
    a.set_defaults(run=run_analyze)
    c = sub.add_parser(
        "capture",
        help="capture g/e dumps from Xen (dom0, root)",
        description="Read the console ring ('xl dmesg', never cleared), send each key, read "
        "the ring again and cut the new dump out by its markers. Only 'g' and 'e' are sent; "
        "refused with --readonly.",
    )
    c.add_argument("--keys", default="ge", help="debug keys to send: g, e or ge (default ge)")
    c.add_argument("-o", "--output", metavar="FILE",
                   help="write the text to this new file (mode 0600), not stdout")
    c.add_argument("--json", action="store_true", help="print a JSON summary, not the text")
    c.set_defaults(run=run_capture)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.buffer.read(_MAX_BYTES + 1).decode("utf-8", "replace")
    path = Path(name)
    try:
        if path.is_dir():
            raise UsageError(f"{name} is a directory", "Give the file holding the console text.")
        with path.open("rb") as fh:
            data = fh.read(_MAX_BYTES + 1)
    except FileNotFoundError as err:
        raise UsageError(f"{name}: no such file", "Check the path of the saved dump.") from err
    except OSError as err:
        raise UsageError(f"cannot read {name}: {err.strerror}", "Check the path and its "
                         "permissions.") from err
    if len(data) > _MAX_BYTES:
        raise UsageError(f"{name} is larger than 256 MiB", "Is this really a console log?")
    return data.decode("utf-8", "replace")


def run_analyze(args: argparse.Namespace) -> int:
    """Parse, analyze and print one saved console text."""
    text = _read(args.file)
    console = parse_console(text)
    obs = build_observation(
        console=console,
        unavailable={
            "xenstore": "a saved dump holds no XenStore tree",
            "interrupts": "a saved dump holds no /proc/interrupts samples",
            "xenbus counters": "a saved dump holds no sysfs counters",
            "quota": "a saved dump holds no XenStore quota",
        },
    )
    analysis = analyze(obs)
    found = bool(console.grant_dumps or console.event_dumps)
    if args.json:
        print_json(
            {
                "ok": found,
                "file": args.file,
                "lines": console.total_lines,
                "other_lines": console.other_lines,
                **analysis_json(analysis, console),
            }
        )
    else:
        print(
            f"{clean(args.file)}: {console.total_lines} lines, "
            f"{len(console.grant_dumps)} grant-table dump(s), "
            f"{len(console.event_dumps)} event-channel dump(s), "
            f"{len(console.unparsed)} line(s) not parsed, {console.other_lines} unrelated"
        )
        print_lines(render_text(analysis, console))  # quotes console lines: cleaned
        if not found:
            print(
                "No 'g' or 'e' dump found. Expected lines like \"gnttab_usage_print_all [ key "
                "'g' pressed\" or \"'e' pressed -> dumping event-channel info\"."
            )
    return 0 if found else 1


def run_capture(args: argparse.Namespace) -> int:
    """Capture dumps from the running hypervisor and write their text."""
    from grantscope.sources.hvdump import capture_dumps, check_keys

    check_keys(args.keys)  # refuse a bad key before touching anything
    if getattr(args, "demo", False):
        raise UsageError(
            "dump capture cannot run under --demo: the demo host has no hypervisor console",
            "Its 'g' and 'e' dumps are built from the simulated tables, not captured as text: "
            "'grantscope --demo report' shows them parsed, and 'grantscope --demo bundle "
            "export' stores them.",
        )
    if args.output:
        check_new_file(args.output, "--output")
    cap = capture_dumps(args.keys)
    if cap.unavailable:
        raise NoXenError(
            cap.unavailable,
            "Capturing needs the Xen tools ('xl') and root in dom0; a domU cannot send "
            "debug keys.",
        )
    text = cap.text
    if args.output:
        write_new_file(args.output, text.encode(), "--output")
    if args.json:
        print_json({"ok": True, **cap.to_json(), "output": args.output})
    elif not args.output and text:
        # The ring holds guests' (dN) lines too: shown with escapes visible, line by line
        # (the file written with -o keeps the bytes as Xen printed them).
        print_lines(text.rstrip("\n"))
    for p in cap.problems:
        sys.stderr.write(f"grantscope: {p}\n")
    for n in cap.notes:
        sys.stderr.write(f"grantscope: note: {n}\n")
    return 0 if not cap.problems else 1
