"""``grantscope xs``: read, list, watch and (with consent) write XenStore.

- ``xs ls PATH [-r] [-p] [--json]``: the children of PATH as ``/path = "value"`` lines; ``-r``
  walks the whole subtree (pipelined) and prints exactly what ``xenstore-ls -f PATH`` prints
  (``-p`` adds ``   (n0,r1)`` like ``xenstore-ls -f -p``; an unreadable node prints ``/path:``).
- ``xs read PATH [--raw] [--json]``: the value escaped like ``xenstore-read``; ``--raw`` writes
  the bytes unchanged.
- ``xs watch PATH [--count N] [--max-wait S] [--json]``: one line per event, the changed path
  (like ``xenstore-watch``; the first event is PATH itself).  With ``--json`` each event is one
  JSON object on its own line (JSON Lines): ``{"n": 1, "watch": PATH, "path": CHANGED}``; after
  a lost connection the watch is registered again and a ``{"notice": ...}`` line (stderr
  without --json) says changes may have been missed,
  and an error is one line too: ``{"ok": false, "error": {...}}``.
- ``xs write PATH VALUE --allow-write``: VALUE is unescaped like ``xenstore-write`` (``\\n``,
  ``\\x00``, ``\\ooo``) unless ``--raw``.  ``xs rm PATH --allow-write`` removes a subtree.
  Both refuse (exit 2) without ``--allow-write`` and under the global ``--readonly``.

Values in JSON are the escaped text (null when unreadable), plus ``hex`` for ``read``.
Exit status: 0 success, 1 a XenStore request failed (explained), 2 bad usage, refusal or no Xen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from grantscope.cli.output import clean, print_json
from grantscope.cli.progress import Progress, on_terminal
from grantscope.errors import GrantscopeError, UsageError
from grantscope.host.target import SIMULATED, Target, target_for
from grantscope.xen.xenstore import XenStore, XsNode, escape_value, format_ls_line, unescape_value


def register(subparsers: Any) -> None:
    """Add ``xs ls|read|watch|write|rm`` to the top-level parser."""
    parser = subparsers.add_parser(
        "xs",
        help="read, list, watch and write XenStore",
        description="XenStore access over the xenstored socket or /dev/xen/xenbus "
        "(XENSTORED_PATH picks one explicitly).",
    )
    sub = parser.add_subparsers(dest="xs_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument(
            "--timeout",
            type=float,
            default=5.0,
            metavar="S",
            help="give up on a XenStore request after S seconds (default 5)",
        )

    ls = sub.add_parser(
        "ls", help="list a node's children with their values",
        description="One line per child, as 'xenstore-ls -f' prints it (PATH = \"value\"); "
        "with -r the whole subtree. PATH defaults to /, as for xenstore-ls.")
    ls.add_argument("path", metavar="PATH", nargs="?", default="/",
                    help="the node to list (default /)")
    ls.add_argument(
        "-r", "--recursive", action="store_true", help="whole subtree, like xenstore-ls -f"
    )
    ls.add_argument("-p", "--perms", action="store_true", help="show permissions too")
    common(ls)
    ls.set_defaults(run=run_ls)

    read = sub.add_parser(
        "read", help="print a node's value",
        description="Print PATH's value on one line, escaped as xenstore-ls prints values "
        "(\\t \\n \\\\, \\xHH for other bytes); --raw writes the bytes as they are.")
    read.add_argument("path", metavar="PATH", help="the node to read (absolute, or relative to "
                      "this domain's home, as xenstore-read takes it)")
    read.add_argument("--raw", action="store_true", help="write the bytes unescaped")
    common(read)
    read.set_defaults(run=run_read)

    watch = sub.add_parser(
        "watch",
        help="print changed paths as they change",
        description="One line per event (JSON Lines with --json). The first event fires at "
        "once, for PATH itself. Runs until --count events, --max-wait seconds or Ctrl-C.",
    )
    watch.add_argument("path", metavar="PATH")
    watch.add_argument("--count", type=int, default=None, metavar="N", help="stop after N events")
    watch.add_argument(
        "--max-wait",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (exit 1 if --count events were not seen by then)",
    )
    common(watch)
    watch.set_defaults(run=run_watch)

    write = sub.add_parser(
        "write", help="write a node's value (needs --allow-write)",
        description="Write VALUE to PATH (created if missing). VALUE is unescaped first "
        "(\\n, \\xHH: what 'xs ls' and 'xs read' print); --raw writes it as typed. Refused "
        "without --allow-write and under --readonly (exit 2).")
    write.add_argument("path", metavar="PATH")
    write.add_argument("value", metavar="VALUE")
    write.add_argument("--raw", action="store_true", help="write VALUE as is (no unescaping)")
    write.add_argument("--allow-write", action="store_true", help="confirm changing XenStore")
    common(write)
    write.set_defaults(run=run_write)

    rm = sub.add_parser(
        "rm", help="remove a node and its subtree (needs --allow-write)",
        description="Remove PATH and everything under it. Refused without --allow-write "
        "and under --readonly (exit 2).")
    rm.add_argument("path", metavar="PATH")
    rm.add_argument("--allow-write", action="store_true", help="confirm changing XenStore")
    common(rm)
    rm.set_defaults(run=run_rm)

    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


MAX_TIMEOUT_S = 86400.0


#: How long ``grantscope --demo xs watch`` runs when neither --count nor --max-wait is given
#: (the simulated guests' heartbeats change every 2 s).
DEMO_WATCH_S = 10.0


def _check_timeout(args: argparse.Namespace) -> None:
    # "nan" and "inf" parse as floats; a socket timeout of NaN raises deep in the client.
    if not 0 < args.timeout <= MAX_TIMEOUT_S:
        raise UsageError(
            f"--timeout must be a number of seconds from 0 to {MAX_TIMEOUT_S:g}, "
            f"got {args.timeout:g}"
        )


def _open(args: argparse.Namespace) -> XenStore:
    """The real store: ``xs write`` and ``xs rm``.  Under ``--demo`` they are refused before
    anything connects: the demo host's store lives for one command, so a write there would
    change nothing, and writing to this machine's XenStore instead would surprise."""
    if getattr(args, "demo", False):
        raise UsageError(
            f"'xs {args.xs_command}' cannot run under --demo",
            "The demo host's XenStore exists only while one command runs, so there is nothing "
            "a write could change; without --demo it writes to this machine's XenStore. Try "
            "'grantscope --demo xs ls -r /' to look at the simulated one.")
    _check_timeout(args)
    return XenStore.open(timeout=args.timeout)


def _target(args: argparse.Namespace) -> Target:
    return target_for(args, f"xs {args.xs_command}")


def _open_read(args: argparse.Namespace, target: Target) -> Any:
    """The store the read-only subcommands use: the simulated one under ``--demo``."""
    _check_timeout(args)
    return target.store(timeout=args.timeout)


def _banner(target: Target, *, stream: Any = None) -> None:
    """Under ``--demo``, the SIMULATED line before any text output."""
    if target.simulated:
        out = stream or sys.stdout
        out.write(target.banner + "\n")
        out.flush()


def _node_json(node: XsNode) -> dict[str, Any]:
    return {
        "path": node.path,
        "value": None if node.value is None else escape_value(node.value),
        "perms": None if node.perms is None else str(node.perms),
    }


def run_ls(args: argparse.Namespace) -> int:
    """``xs ls``: children (or the subtree with -r) as xenstore-ls -f lines."""
    target = _target(args)
    with _open_read(args, target) as store:
        if args.recursive:  # a whole tree can take a while: a spinner on a terminal
            with Progress(f"walking {clean(args.path)}",
                          enabled=on_terminal() and not args.json):
                nodes = store.walk(args.path, perms=args.perms)
        else:
            nodes = []
            base = args.path if args.path.endswith("/") else args.path + "/"
            for name in store.list(args.path):
                path = base + name
                perms = store.get_perms(path) if args.perms else None
                nodes.append(XsNode(path, _read_or_none(store, path), perms))
    if args.json:
        print_json(target.mark(
            {
                "ok": True,
                "path": args.path,
                "recursive": args.recursive,
                "nodes": [_node_json(n) for n in nodes],
            }
        ))
    else:
        _banner(target)
        out = sys.stdout
        for node in nodes:
            out.write(format_ls_line(node, with_perms=args.perms) + "\n")
        out.flush()
    return 0


def _read_or_none(store: Any, path: str) -> bytes | None:
    """The value, or None where xenstore-ls would print ``path:`` (vanished or unreadable)."""
    from grantscope.xen.xenstore import XenStoreError

    try:
        return store.read(path)
    except XenStoreError as err:
        if err.errno_name in ("ENOENT", "EACCES"):
            return None
        raise


def run_read(args: argparse.Namespace) -> int:
    """``xs read``: the value, escaped (or raw bytes; under ``--demo`` the label goes to
    stderr then, so the bytes stay unchanged)."""
    target = _target(args)
    with _open_read(args, target) as store:
        value = store.read(args.path)
    if args.json:
        print_json(target.mark({"ok": True, "path": args.path, "value": escape_value(value),
                                "hex": value.hex()}))
        return 0
    _banner(target, stream=sys.stderr if args.raw else sys.stdout)
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(escape_value(value) + "\n")
    return 0


def run_watch(args: argparse.Namespace) -> int:
    """``xs watch``: print events until --count, --max-wait or Ctrl-C.

    With ``--json`` every output line is one JSON object, errors included
    (``{"ok": false, "error": {...}}`` on one line), so the stream stays JSON Lines.
    """
    target = _target(args)
    if not args.json:
        return _watch(args, target)
    try:
        return _watch(args, target)
    except GrantscopeError as err:
        sys.stdout.write(json.dumps({"ok": False, "error": err.to_json()}) + "\n")
        sys.stdout.flush()
        return err.exit_code


def _watch(args: argparse.Namespace, target: Target) -> int:
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.max_wait is not None and args.max_wait < 0:
        raise UsageError(f"--max-wait must not be negative, got {args.max_wait:g}")
    if target.simulated and args.count is None and args.max_wait is None:
        args.max_wait = DEMO_WATCH_S  # the demo is a sample: it ends by itself
        sys.stderr.write(f"grantscope: {SIMULATED}: watching the demo host's store for "
                         f"{DEMO_WATCH_S:g} s (--count or --max-wait change this)\n")
    if not args.json:
        _banner(target)
    end = None if args.max_wait is None else time.monotonic() + args.max_wait
    seen = 0
    with _open_read(args, target) as store, store.watch(args.path) as watch:
        while args.count is None or seen < args.count:
            wait = 1.0 if end is None else min(1.0, end - time.monotonic())
            if wait <= 0:
                break
            path = watch.get(wait)
            notice = watch.take_notice()
            if notice is not None:  # disconnected meanwhile: say so, events may be missing
                if args.json:
                    sys.stdout.write(json.dumps(target.mark(
                        {"notice": notice, "watch": args.path})) + "\n")
                    sys.stdout.flush()
                else:
                    sys.stderr.write(f"grantscope: {notice}\n")
            if path is None:
                continue
            seen += 1
            line = (json.dumps(target.mark({"n": seen, "watch": args.path, "path": path}))
                    if args.json else clean(path))
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    if args.count is not None and seen < args.count:
        from grantscope.xen.xenstore import XenStoreError

        raise XenStoreError(
            f"watch {args.path}: {seen} of {args.count} events within {args.max_wait:g} s",
            "Nothing changed at or below the path in time.",
            errno_name="ETIMEDOUT",
            op="WATCH",
            path=args.path,
        )
    return 0


def _refuse_unless_allowed(args: argparse.Namespace, action: str) -> None:
    if getattr(args, "readonly", False):
        raise UsageError(
            f"refusing to {action}: --readonly is set",
            "--readonly forbids every change; run without it (and with --allow-write) to write.",
        )
    if not args.allow_write:
        raise UsageError(
            f"refusing to {action} without --allow-write",
            "Changing XenStore can disturb running guests and their backends; add "
            "--allow-write to confirm.",
        )


def run_write(args: argparse.Namespace) -> int:
    """``xs write``: refuse without --allow-write or under --readonly, else write."""
    _refuse_unless_allowed(args, f"write {args.path}")
    value = os.fsencode(args.value) if args.raw else unescape_value(args.value)
    with _open(args) as store:
        store.write(args.path, value)
    if args.json:
        print_json({"ok": True, "path": args.path, "value": escape_value(value),
                    "bytes": len(value)})
    return 0


def run_rm(args: argparse.Namespace) -> int:
    """``xs rm``: refuse without --allow-write or under --readonly, else remove."""
    _refuse_unless_allowed(args, f"remove {args.path}")
    with _open(args) as store:
        store.rm(args.path)
    if args.json:
        print_json({"ok": True, "path": args.path, "removed": True})
    return 0
