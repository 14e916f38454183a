"""``grantscope bundle export | inspect | open | diff``: the diagnostic bundle.

* ``export [-o FILE] [--include-pages] [--no-redact] [--redact-rules FILE] [--allow-partial]
  [--json]`` collects this host's state into
  one .tar.gz (redacted unless ``--no-redact``); on a terminal a progress bar (stderr,
  :mod:`grantscope.cli.progress`) names each collector, and nothing when piped.  A
  collector that fails or is slow is recorded in the manifest and never stops the export.
* ``inspect FILE [--json]``: the manifest in brief and the sha256 of every member checked.
* ``open FILE``: the TUI on the read-only ``replay`` backend, labelled with the bundle's host.
* ``diff A B [--json]``: what changed in XenStore, grants, ports and findings.

Exit status: 0 done; 1 the bundle is unsafe, damaged or fails its integrity check (or could
not be written, or ``export`` wrote a partial bundle: a collector the host should support
failed, unless ``--allow-partial``); 2 bad usage.  A bundle is never extracted to disk.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import socket
import sys
from typing import Any

from grantscope.bundle.collect import CollectorResult
from grantscope.bundle.format import BundleError
from grantscope.cli.output import clean, print_json, print_lines
from grantscope.cli.progress import Progress, on_terminal
from grantscope.errors import GrantscopeError
from grantscope.host.target import SIMULATED, target_for


def register(subparsers: Any) -> None:
    """Add ``bundle export|inspect|open|diff`` to the top-level parser."""
    parser = subparsers.add_parser(
        "bundle",
        help="export, inspect, open and compare diagnostic bundles",
        description="A diagnostic bundle is one .tar.gz with this host's Xen state, "
        "redacted by default, that can be opened in the TUI on any machine.",
    )
    sub = parser.add_subparsers(dest="bundle_command", metavar="SUBCOMMAND")

    export = sub.add_parser(
        "export",
        help="collect this host's state into one .tar.gz",
        description="Collect XenStore (with permissions), domains, mappings, interrupts, sysfs "
        "counters, hypervisor dumps, quotas and findings into one .tar.gz. Secrets "
        "(vncpasswd, passwords, tokens, keys, clipboards) are redacted unless --no-redact.",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="bundle file to write (default: grantscope-bundle-HOST-TIME.tar.gz here)",
    )
    export.add_argument(
        "--include-pages",
        action="store_true",
        help="also store the bytes of the pages the host can show",
    )
    export.add_argument(
        "--no-redact",
        action="store_true",
        help="keep passwords, keys and clipboards (the manifest says so)",
    )
    export.add_argument(
        "--redact-rules",
        metavar="FILE",
        help="also redact by this site's rules: one 'name REGEX' or 'value REGEX' a line "
        "(see docs/BUNDLE.md)",
    )
    export.add_argument(
        "--allow-partial",
        action="store_true",
        help="exit 0 even when a collector this host should support failed",
    )
    export.add_argument(
        "--capture",
        action="store_true",
        help="send 'g' and 'e' to Xen for fresh dumps (default: use the dumps the console "
        "ring already holds; refused with --readonly)",
    )
    export.add_argument("--json", action="store_true", help="print one JSON document")
    export.set_defaults(run=run_export)

    inspect = sub.add_parser(
        "inspect",
        help="summarize a bundle and check every member's sha256",
        description="Show the manifest (host, times, collectors, redactions) and check the "
        "integrity of every member. Exit status 1 when a check fails.",
    )
    inspect.add_argument("file", metavar="FILE", help="bundle file")
    inspect.add_argument("--json", action="store_true", help="print one JSON document")
    inspect.set_defaults(run=run_inspect)

    opener = sub.add_parser(
        "open",
        help="open a bundle in the TUI (read-only replay)",
        description="Open FILE in the TUI on the read-only replay backend. Works without Xen.",
    )
    opener.add_argument("file", metavar="FILE", help="bundle file")
    opener.set_defaults(run=run_open)

    diff = sub.add_parser(
        "diff",
        help="compare two bundles (XenStore, grants, ports, findings)",
        description="Show what changed from bundle A to bundle B.",
    )
    diff.add_argument("a", metavar="A", help="the earlier bundle")
    diff.add_argument("b", metavar="B", help="the later bundle")
    diff.add_argument("--json", action="store_true", help="print one JSON document")
    diff.set_defaults(run=run_diff)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# -- export -----------------------------------------------------------------------------------
def default_output_name() -> str:
    """``grantscope-bundle-<host>-<UTC time>.tar.gz`` (host name made file-safe)."""
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname())
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"grantscope-bundle-{host or 'host'}-{stamp}.tar.gz"


def live_host(args: argparse.Namespace | None = None) -> tuple[Any, str]:
    """The Host to export: the simulated one under ``--demo``, else the real machine's
    (the ``xen`` backend), or None and why it is not available (the export goes on)."""
    if args is not None and getattr(args, "demo", False):
        return target_for(args, "bundle export").sim(), ""
    try:
        from grantscope.host.xen import XenHost
    except ImportError as err:
        return None, f"the xen host backend is not available ({err})"
    try:
        # Read-only, and without its own g-dump capture: the hvdump collector captures once.
        return XenHost(readonly=True), ""
    except GrantscopeError as err:
        return None, err.message
    except Exception as err:  # the export must go on with whatever else it can read
        return None, f"{type(err).__name__}: {err}"


def _progress_printer(enabled: bool, bar: Progress | None = None) -> Any:
    """The export's progress callback: with ``bar`` (a terminal) the bar names the running
    collector and each outcome stays above it as a line; without, plain lines on stderr."""
    def show(event: str, name: str, index: int, total: int, result: CollectorResult | None) -> None:
        if not enabled:
            return
        detail = ""
        if result is not None and result.error and result.status != "ok":
            detail = f" ({clean(result.error)})"
        if bar is not None:
            if event == "start":
                bar.update(name, completed=index)
            elif result is not None:
                bar.note(f"[{index + 1}/{total}] {name}: {result.status} "
                         f"{result.duration_s:.2f}s{detail}")
                bar.update(name, completed=index + 1)
            return
        if event == "start":
            sys.stderr.write(f"[{index + 1}/{total}] {name} ...")
        elif result is not None:
            sys.stderr.write(f" {result.status} {result.duration_s:.2f}s{detail}\n")
        sys.stderr.flush()

    return show


def run_export(args: argparse.Namespace) -> int:
    """Collect and write the bundle; exit 1 (the bundle still written) when it is partial:
    a collector this host should support failed, unless ``--allow-partial``."""
    from grantscope.bundle.collectors import ExportSources, standard_collectors
    from grantscope.bundle.completeness import partial_failures
    from grantscope.xen.readonly import refuse_if_readonly

    if getattr(args, "capture", False):  # refused up front, not as one failed collector
        refuse_if_readonly("bundle export --capture (sends debug keys g and e to Xen)")
    from grantscope.bundle.export import export_bundle
    from grantscope.bundle.redact import load_site_rules

    target = args.output or default_output_name()
    site_rules = load_site_rules(args.redact_rules) if args.redact_rules else None
    host, why = live_host(args)
    try:
        sources = ExportSources(host=host, include_pages=bool(args.include_pages), host_note=why,
                                capture=bool(getattr(args, "capture", False)))
        collectors = standard_collectors(sources)
        with Progress("bundle export", total=len(collectors),
                      enabled=on_terminal() and not args.json) as bar:
            result = export_bundle(
                target,
                collectors,
                redact=not args.no_redact,
                include_pages=bool(args.include_pages),
                progress=_progress_printer(bar.enabled, bar),
                site_rules=site_rules,
            )
    finally:
        if host is not None:
            host.close()
    manifest = result.manifest
    statuses = [(c["name"], c["status"], c["error"]) for c in manifest["collectors"]]
    redaction = manifest["redaction"]
    failed = partial_failures(manifest)
    role = manifest["host"].get("role") or "unknown"
    code = 1 if failed and not args.allow_partial else 0
    simulated = manifest.get("simulated") is True
    if args.json:
        print_json(
            {
                "ok": code == 0,
                "simulated": simulated,
                "partial": [c["name"] for c in failed],
                "role": role,
                "path": result.path,
                "size": result.size,
                "collectors": manifest["collectors"],
                "members": len(manifest["members"]),
                "redaction": {
                    "enabled": redaction["enabled"],
                    "redacted": len(redaction.get("redacted", [])),
                },
            }
        )
        return code
    ok = sum(1 for _, status, _ in statuses if status == "ok")
    if simulated:
        print(f"{SIMULATED}: a bundle of the demo host (grantscope --demo), not of this machine")
    print(f"wrote {clean(result.path)} ({result.size} bytes, {len(manifest['members'])} members)")
    print(f"collectors: {ok} of {len(statuses)} ok")
    for name, status, error in statuses:
        if status != "ok":
            print(f"  {clean(name)}: {clean(status)}: {clean(error)}")
    if redaction["enabled"]:
        print(f"redaction on: {len(redaction.get('redacted', []))} value(s) redacted")
    else:
        print("redaction OFF (--no-redact): the bundle may hold passwords, keys and clipboards")
    if role not in ("dom0", "domU"):
        print("this machine is not a Xen host: the bundle holds host facts and /proc only")
    if failed:
        names = ", ".join(f"{clean(c['name'])} ({clean(c['status'])})" for c in failed)
        verdict = "accepted (--allow-partial)" if args.allow_partial else "exit status 1"
        sys.stderr.write(
            f"grantscope: partial bundle: {len(failed)} collector(s) a {clean(role)} host should "
            f"support failed: {names}; the bundle was written; {verdict}\n"
        )
        if not args.allow_partial:
            sys.stderr.write(
                "  See each reason above. Fix the cause and export again, or pass "
                "--allow-partial to accept this bundle.\n"
            )
    return code


# -- inspect ----------------------------------------------------------------------------------
def run_inspect(args: argparse.Namespace) -> int:
    """Print the summary; exit 1 when any member fails its integrity check."""
    from grantscope.bundle.check import format_summary, inspect_bundle

    summary = inspect_bundle(args.file)
    if args.json:
        print_json(summary)
    else:
        print_lines(format_summary(summary))
    return 0 if summary["ok"] else 1


# -- open -------------------------------------------------------------------------------------
def run_open(args: argparse.Namespace) -> int:
    """Verify the bundle, then run the TUI on the replay backend."""
    from grantscope.host.replay import ReplayHost

    host = ReplayHost.open(args.file)
    args.readonly = True
    try:
        return _run_tui_on(host, args)
    finally:
        host.close()


def _run_tui_on(host: Any, args: argparse.Namespace) -> int:
    """The TUI on ``host``, started as ``grantscope`` starts it (signals, cleanup, exit status)."""
    try:
        from grantscope.cli import tui
    except ImportError as err:
        raise BundleError(
            "the TUI is not available in this build",
            f"grantscope.cli.tui could not be imported ({err}); 'grantscope bundle inspect' "
            "and 'grantscope bundle diff' work without it.",
        ) from None
    return int(tui.run_tui(args, host=host))


# -- diff -------------------------------------------------------------------------------------
def run_diff(args: argparse.Namespace) -> int:
    """Print what changed from A to B."""
    from grantscope.bundle.diff import diff_bundles, format_diff
    from grantscope.bundle.reader import read_bundle

    result = diff_bundles(read_bundle(args.a), read_bundle(args.b))
    if args.json:
        print_json({"ok": True, **result})
    else:
        print_lines(format_diff(result))
    return 0
