"""``grantscope map`` and ``grantscope offer``: map a grant, offer pages.

Numbers (domid, gref, port) accept ``xs:PATH`` to read a decimal value from
XenStore.  Order of checks: argument syntax (exit 2), then Xen present (exit 2),
then the device calls (exit 1 with an explanation on failure).

The device commands (``map``, ``offer`` here, ``notify`` and ``pingpong`` in
:mod:`grantscope.cli.events`) are front-ends of the probe engine: each runs its probe
(``map-grant``, ``offer-page``, ``notify``, ``pingpong``) through
:func:`grantscope.probing.runner.run_probe`, the driver ``probe run`` uses too, which gives
them the probes' steps, cleanup, signal semantics and interrupt exit status, and prints the
probe's outcome in the command's own words.  With the global ``--demo`` they run on the
simulated host's devices, labelled SIMULATED.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from grantscope.cli.output import print_json
from grantscope.errors import UsageError
from grantscope.probing.devices import RealDevices
from grantscope.probing.engine import ProbeRun
from grantscope.probing.runner import RunHooks, interrupt_name, run_probe
from grantscope.xen.abi import DOMID_FIRST_RESERVED

HEAD_BYTES = 64
MAX_DOMID = DOMID_FIRST_RESERVED - 1  # the largest real domain id (the rest are reserved)
MAX_MAP_DOMID = 0xFFFF  # what domid_t holds: a map explains a reserved one when it fails
MAX_GREF = 0xFFFFFFFF
MAX_PORT = 0xFFFFFFFF


# -- helpers shared with grantscope.cli.events ---------------------------------------------
class Specs:
    """Resolves number specs (``12`` or ``xs:PATH``), opening XenStore only when needed."""

    def __init__(self, opener: Callable[[], Any] | None = None) -> None:
        self._store: Any = None
        self._opener = opener

    def store(self) -> Any:
        """The XenStore connection (opened on first use; ``opener`` gives another store)."""
        if self._store is None:
            if self._opener is not None:
                self._store = self._opener()
            else:
                from grantscope.xen.xenstore import XenStore

                self._store = XenStore.open()
        return self._store

    def number(self, spec: int | str, what: str, maximum: int) -> int:
        """One number; ``xs:`` specs are read from XenStore."""
        from grantscope.xen.xsref import resolve_number

        if isinstance(spec, int):
            return _in_range(spec, what, maximum)
        return resolve_number(spec, self.store(), what=what, maximum=maximum)

    def numbers(self, spec: int | str, what: str, maximum: int) -> list[int]:
        """One or several space-separated numbers (an ``xs:`` node may hold several)."""
        from grantscope.xen.xsref import resolve_numbers

        if isinstance(spec, int):
            return [_in_range(spec, what, maximum)]
        return resolve_numbers(spec, self.store(), what=what, maximum=maximum)

    def close(self) -> None:
        """Close XenStore if it was opened."""
        if self._store is not None:
            store, self._store = self._store, None
            store.close()


def _in_range(value: int, what: str, maximum: int) -> int:
    if value > maximum:
        raise UsageError(f"{what} {value} is above the largest {what} ({maximum})")
    return value


def parse_spec(text: str, option: str) -> int | str:
    """Syntax check of a number spec (UsageError naming the option)."""
    from grantscope.xen.xsref import parse_number_spec

    try:
        return parse_number_spec(text)
    except UsageError as err:
        raise UsageError(f"{option}: {err.message}", err.explanation) from None


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def seconds(text: str) -> float:
    """argparse type: a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def hexdump(data: bytes, width: int = 16) -> str:
    """A short ``offset  hex  ascii`` dump."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"  {off:04x}  {hexpart:<{width * 3 - 1}}  {text}")
    return "\n".join(lines)


# -- the probe engine behind the device commands -------------------------------------------


class CliDevices(RealDevices):
    """This host's devices, whose XenStore is the command's :class:`Specs` connection (the one
    that resolved the ``xs:`` arguments), closed with it."""

    def __init__(self, specs: Specs) -> None:
        super().__init__()
        self._specs = specs

    def xenstore(self) -> Any:
        """The command's XenStore connection."""
        return self._specs.store()

    def close(self) -> None:
        """Close the XenStore connection if one was opened."""
        self._specs.close()


def open_devices(args: argparse.Namespace, mutating: str = "") -> tuple[Any, Specs, bool]:
    """``(devices, specs, simulated)`` for a device command.

    With ``--demo``: the simulated host's devices (a fresh demo host: dom0 with two guests).
    Otherwise this machine's: exit 2, naming ``--demo``, when it is not a Xen host
    (:meth:`grantscope.host.target.Target.require_xen`).  ``mutating`` names what the command
    changes: the simulated devices do not look at ``--readonly``, so it is refused here, as
    the real devices refuse it.  The text output of a simulated run starts with the SIMULATED
    line (``--json`` has ``"simulated": true``).
    """
    from grantscope.host.target import target_for

    target = target_for(args, str(getattr(args, "command", "") or "map"))
    if target.simulated:
        from grantscope.host.sim import SimHost
        from grantscope.xen.readonly import refuse_if_readonly

        if mutating:
            refuse_if_readonly(mutating)
        if not getattr(args, "json", False):
            sys.stdout.write(target.banner + "\n")
            sys.stdout.flush()
        # Not target.sim(): a read-only SimHost has no devices, and --readonly is enforced
        # just above for what this command would change.
        sim = SimHost().devices()
        assert sim is not None  # only a read-only SimHost has none
        return sim, Specs(opener=sim.xenstore), True
    target.require_xen()  # exit 2 off Xen, naming --demo
    specs = Specs()
    return CliDevices(specs), specs, False


# -- registration -----------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add ``map`` and ``offer``."""
    m = subparsers.add_parser(
        "map",
        help="map another domain's grant(s) read-only and show the first bytes",
        description="Map grant(s) of domain D through /dev/xen/gntdev. When the map fails, "
        "a one-byte GRANT_COPY of the same grant names Xen's status (GNTST). Least privilege "
        "on both ends: 'map' maps read-only unless --writable, as 'offer' grants read-only "
        "unless --writable, so 'offer' then 'map' with defaults work together.",
    )
    m.add_argument("--domid", required=True, metavar="D", help="granting domain (or xs:PATH)")
    m.add_argument("--gref", required=True, metavar="G",
                   help="first grant reference (or xs:PATH holding one or several grefs)")
    m.add_argument("--count", type=positive, default=1, metavar="N",
                   help="map N consecutive refs starting at G (default 1)")
    mode = m.add_mutually_exclusive_group()
    mode.add_argument("--ro", action="store_true",
                      help="map read-only (the default; says so explicitly)")
    mode.add_argument("--writable", "--rw", action="store_true",
                      help="map writable (the grant must allow writing; refused with the "
                      "global --readonly)")
    m.add_argument("--force", action="store_true",
                   help="map even a grant of this domain's own in a PVH or HVM guest, which "
                   "grantscope refuses: Xen turns the offered page into a hole (reads 0xff)")
    # The old spelling, confusable with the global --readonly: refused with a hint.
    m.add_argument("--readonly", dest="map_readonly", action="store_true",
                   help=argparse.SUPPRESS)
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(run=run_map)

    o = subparsers.add_parser(
        "offer",
        help="grant pages to a domain, with an unbound event channel",
        description="Grant N pages to domain D (gntalloc), bind an unbound port for D, "
        "optionally publish both in XenStore, wait for a notification, then clean up.",
    )
    o.add_argument("--to", required=True, metavar="D", help="domain to grant to (or xs:PATH)")
    o.add_argument("--pages", type=positive, default=1, metavar="N", help="pages (default 1)")
    o.add_argument("--writable", action="store_true",
                   help="let the peer write the pages (default: the peer may only read them, "
                   "which is what 'map' without --writable needs)")
    o.add_argument("--text", default=None, metavar="STR",
                   help="write STR (UTF-8) at the start of the first page")
    o.add_argument("--publish", default=None, metavar="XSPATH",
                   help="write XSPATH/gref (space-separated) and XSPATH/port; removed at exit")
    o.add_argument("--wait", type=seconds, default=0.0, metavar="SEC",
                   help="wait up to SEC seconds for a notification (default 0)")
    o.add_argument("--echo", action="store_true",
                   help="answer every notification with one back, until --wait ends "
                   "(a peer for 'grantscope pingpong')")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.set_defaults(run=run_offer)


# -- map --------------------------------------------------------------------------------
def run_map(args: argparse.Namespace) -> int:
    """Map, read the head, unmap (the map-grant probe); print the result."""
    from grantscope.probes.map_grant import PROBE

    if args.map_readonly:
        raise UsageError(
            "'map --readonly' was renamed 'map --ro'",
            "map maps read-only by default ('--ro' says so, '--writable' maps writable). For a "
            "read-only session put the global flag before the command: "
            "'grantscope --readonly map ...'.",
        )
    domid_spec = parse_spec(args.domid, "--domid")
    gref_spec = parse_spec(args.gref, "--gref")
    writable = bool(args.writable)
    devices, specs, simulated = open_devices(
        args, "a writable map of a grant (map read-only)" if writable else "")
    try:
        # Up to the 16-bit limit: a reserved domid (DOMID_SELF...) reaches the map, whose
        # failure explains it (grantscope.xen.errors.map_failed_error).
        domid = specs.number(domid_spec, "domid", MAX_MAP_DOMID)
        grefs = specs.numbers(gref_spec, "gref", MAX_GREF)
    except BaseException:
        specs.close()
        raise
    if len(grefs) == 1 and args.count > 1:
        first = grefs[0]
        if first + args.count - 1 > MAX_GREF:
            specs.close()
            raise UsageError(f"--count {args.count} from gref {first} passes the largest gref")
        grefs = list(range(first, first + args.count))
    done = run_probe(PROBE, {"domid": domid, "gref": grefs, "writable": writable, "reply": "",
                             "force": bool(args.force)}, devices)
    if done.interrupted is not None:
        sys.stderr.write(f"grantscope: map interrupted by {interrupt_name(done.interrupted)}\n")
        return done.exit_code
    done.raise_failure()
    head = bytes(done.run.state["read:mapping"][:HEAD_BYTES])
    if args.json:
        result: dict[str, Any] = {"ok": True, "domid": domid, "grefs": grefs,
                                  "writable": writable, "head": head.hex()}
        if simulated:
            result["simulated"] = True
        print_json(result)
    else:
        mode = "writable" if writable else "read-only"
        refs = " ".join(str(g) for g in grefs)
        sys.stdout.write(f"mapped domain {domid} gref {refs} ({len(grefs)} page"
                         f"{'s' if len(grefs) > 1 else ''}, {mode}); first {HEAD_BYTES} bytes:\n")
        sys.stdout.write(hexdump(head) + "\n")
    return 0


# -- offer ------------------------------------------------------------------------------
def run_offer(args: argparse.Namespace) -> int:
    """Grant, bind, publish, wait, report, clean up (the offer-page probe; the cleanup runs
    also on Ctrl-C, SIGTERM and SIGHUP)."""
    from grantscope.probes.offer_page import HOLD_STEP, PROBE

    to_spec = parse_spec(args.to, "--to")
    text = args.text.encode("utf-8") if args.text is not None else None
    if text is not None and len(text) > 4096 * args.pages:
        raise UsageError(f"--text is {len(text)} bytes, more than {args.pages} page(s) hold")
    if args.publish is not None and not args.publish.strip():
        raise UsageError("--publish needs a XenStore path")
    devices, specs, simulated = open_devices(args, f"granting {args.pages} page(s) (gntalloc)")
    try:
        to = specs.number(to_spec, "domid", MAX_DOMID)
    except BaseException:
        specs.close()
        raise
    base = (args.publish.rstrip("/") or "/") if args.publish else None
    values: dict[str, Any] = {
        "domid": to, "writable": bool(args.writable), "message": args.text or "",
        "publish": base or "", "hold": args.wait, "pages": args.pages,
        # Without --echo the first notification ends the wait; with it, the deadline does.
        "events": 0 if args.echo else 1, "echo": bool(args.echo),
    }
    said: list[bool] = []
    head: list[bytes] = []

    def before(run: ProbeRun) -> bool:
        if said or run.steps[run.next_index].name != HOLD_STEP or args.json:
            return True
        said.append(True)
        where = f", published under {base}" if base else ""
        sys.stdout.write(f"offered {args.pages} page(s) to domain {to}: gref "
                         f"{' '.join(map(str, run.state['grefs']))}, port {run.state['port']}"
                         f"{where}\n")
        sys.stdout.flush()
        return True

    def last(run: ProbeRun) -> None:
        offer = run.artifacts.get("offer")
        if "events" in run.state and offer is not None:  # the wait was reached
            head.append(bytes(run.state.get("read:offer") or offer.read(0, HEAD_BYTES)))

    done = run_probe(PROBE, values, devices, RunHooks(before=before, last=last))
    done.raise_failure()
    if not head and done.interrupted is not None:
        sys.stderr.write(f"grantscope: offer interrupted by "
                         f"{interrupt_name(done.interrupted)}; released everything\n")
        return done.exit_code
    state = done.run.state
    seen = int(state.get("events", 0))
    result: dict[str, Any] = {
        "ok": True, "domid": to, "grefs": list(state["grefs"]), "port": state["port"],
        "writable": bool(args.writable), "notified": seen > 0,
        "page_head": head[0][:HEAD_BYTES].hex(),
    }
    if args.echo:
        result["echoed"] = seen
    if done.interrupted is not None:
        result["interrupted"] = interrupt_name(done.interrupted)
    if simulated:
        result["simulated"] = True
    problems = done.cleanup_problems()
    if problems:
        result["cleanup_problems"] = problems
    if args.json:
        print_json(result)
    else:
        state_text = "notified" if result["notified"] else "no notification"
        if done.interrupted is not None:
            state_text += f" (interrupted by {result['interrupted']})"
        sys.stdout.write(f"{state_text}; first {HEAD_BYTES} bytes of the page now:\n")
        sys.stdout.write(hexdump(head[0][:HEAD_BYTES]) + "\n")
        for p in problems:
            sys.stderr.write(f"grantscope: {p}\n")
    # A release that failed is reported above (cleanup_problems) and leaves the status as it
    # always was: offer's exit status says whether the offer was made and held.
    return done.exit_code if done.interrupted is not None else 0
