"""``grantscope map`` and ``grantscope offer``: map a grant, offer pages.

Numbers (domid, gref, port) accept ``xs:PATH`` to read a decimal value from
XenStore.  Order of checks: argument syntax (exit 2), then Xen present (exit 2),
then the device calls (exit 1 with an explanation on failure).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from grantscope.cli.output import print_json
from grantscope.errors import UsageError

HEAD_BYTES = 64
MAX_DOMID = 0x7FEF  # the largest real domain id (0x7FF0 and up are reserved)
MAX_MAP_DOMID = 0xFFFF  # what domid_t holds: a map explains a reserved one when it fails
MAX_GREF = 0xFFFFFFFF
MAX_PORT = 0xFFFFFFFF


# -- helpers shared with grantscope.cli.events ---------------------------------------------
class Specs:
    """Resolves number specs (``12`` or ``xs:PATH``), opening XenStore only when needed."""

    def __init__(self) -> None:
        self._store: Any = None

    def store(self) -> Any:
        """The XenStore connection (opened on first use)."""
        if self._store is None:
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


#: The signals that end a command the way Ctrl-C does: cleanup runs, then exit 128+n.
#: SIGHUP is the SSH session that drops; SIGTERM is kill/systemd.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)


class Stop(BaseException):
    """Raised by the SIGTERM/SIGHUP handler (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_handled(signals: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    """Install ``handler`` (a function or ``signal.SIG_IGN``) for ``signals`` for the block and
    restore the previous handlers after; outside the main thread (tests calling run() from a
    thread) signals cannot be handled, and the block runs as it is."""
    old: dict[signal.Signals, Any] = {}
    try:
        for sig in signals:
            old[sig] = signal.signal(sig, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def sigterm_as_stop() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Stop` so ``with`` blocks clean up; restore after."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Stop(signum)

    with signals_handled(STOP_SIGNALS, handler):
        yield


def signals_deferred() -> contextlib.AbstractContextManager[None]:
    """While cleaning up, a second Ctrl-C, SIGTERM or SIGHUP must not cut the cleanup short."""
    return signals_handled((signal.SIGINT, *STOP_SIGNALS), signal.SIG_IGN)


def interrupt_code(exc: BaseException) -> int:
    """The exit status for Ctrl-C (130) or a signal turned into :class:`Stop` (128+n)."""
    if isinstance(exc, Stop):
        return 128 + exc.signum
    return 130


def interrupt_name(exc: BaseException) -> str:
    """``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``."""
    if isinstance(exc, Stop):
        return signal.Signals(exc.signum).name
    return "SIGINT"


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
    """Map, read the head, unmap; print the result."""
    from grantscope.xen.errors import require_xen
    from grantscope.xen.gntdev import GrantMapping

    if args.map_readonly:
        raise UsageError(
            "'map --readonly' was renamed 'map --ro'",
            "map maps read-only by default ('--ro' says so, '--writable' maps writable). For a "
            "read-only session put the global flag before the command: "
            "'grantscope --readonly map ...'.",
        )
    domid_spec = parse_spec(args.domid, "--domid")
    gref_spec = parse_spec(args.gref, "--gref")
    require_xen()
    specs = Specs()
    try:
        # Up to the 16-bit limit: a reserved domid (DOMID_SELF...) reaches the map, whose
        # failure explains it (grantscope.xen.errors.map_failed_error).
        domid = specs.number(domid_spec, "domid", MAX_MAP_DOMID)
        grefs = specs.numbers(gref_spec, "gref", MAX_GREF)
    finally:
        specs.close()
    if len(grefs) == 1 and args.count > 1:
        first = grefs[0]
        if first + args.count - 1 > MAX_GREF:
            raise UsageError(f"--count {args.count} from gref {first} passes the largest gref")
        grefs = list(range(first, first + args.count))
    writable = bool(args.writable)
    with GrantMapping(domid, grefs, writable=writable) as mapping:
        head = mapping.read(0, HEAD_BYTES)
    if args.json:
        print_json({"ok": True, "domid": domid, "grefs": grefs, "writable": writable,
                    "head": head.hex()})
    else:
        mode = "writable" if writable else "read-only"
        refs = " ".join(str(g) for g in grefs)
        sys.stdout.write(f"mapped domain {domid} gref {refs} ({len(grefs)} page"
                         f"{'s' if len(grefs) > 1 else ''}, {mode}); first {HEAD_BYTES} bytes:\n")
        sys.stdout.write(hexdump(head) + "\n")
    return 0


# -- offer ------------------------------------------------------------------------------
class _Published:
    """XenStore nodes written by ``offer --publish``; at exit exactly those are removed."""

    def __init__(self, specs: Specs, base: str) -> None:
        self.base = base.rstrip("/") or "/"
        self._specs = specs
        self._owned: Any = None

    def publish(self, grefs: list[int], port: int) -> None:
        from grantscope.xen.xs_owned import OwnedNodes

        if self._owned is None:
            self._owned = OwnedNodes(self._specs.store())
        for key, value in (("gref", " ".join(str(g) for g in grefs)), ("port", str(port))):
            self._owned.write(f"{self.base}/{key}", value.encode("ascii"))

    def remove(self) -> list[str]:
        """Remove the nodes written (and the directories created, if left empty)."""
        if self._owned is None:
            return []
        return list(self._owned.remove())


def run_offer(args: argparse.Namespace) -> int:
    """Grant, bind, publish, wait, report, clean up (also on Ctrl-C, SIGTERM and SIGHUP)."""
    from grantscope.xen.errors import require_xen

    to_spec = parse_spec(args.to, "--to")
    text = args.text.encode("utf-8") if args.text is not None else None
    if text is not None and len(text) > 4096 * args.pages:
        raise UsageError(f"--text is {len(text)} bytes, more than {args.pages} page(s) hold")
    if args.publish is not None and not args.publish.strip():
        raise UsageError("--publish needs a XenStore path")
    require_xen()
    specs = Specs()
    try:
        with sigterm_as_stop():
            return _offer(args, specs, to_spec, text)
    except (KeyboardInterrupt, Stop) as exc:
        sys.stderr.write(f"grantscope: offer interrupted by {interrupt_name(exc)}; "
                         "released everything\n")
        return interrupt_code(exc)
    finally:
        with signals_deferred():
            specs.close()


def _offer(args: argparse.Namespace, specs: Specs, to_spec: int | str,
           text: bytes | None) -> int:
    from grantscope.xen.evtchn import EventChannel
    from grantscope.xen.gntalloc import GrantOffer

    to = specs.number(to_spec, "domid", MAX_DOMID)
    published = _Published(specs, args.publish) if args.publish else None
    problems: list[str] = []
    interrupted: BaseException | None = None
    offer = GrantOffer(to, args.pages, writable=args.writable)
    try:
        channel = EventChannel()
        try:
            port = channel.bind_unbound(to)
            if text:
                offer.write(0, text)
            if published is not None:
                published.publish(list(offer.grefs), port)
            if not args.json:
                where = f", published under {published.base}" if published else ""
                sys.stdout.write(f"offered {args.pages} page(s) to domain {to}: gref "
                                 f"{' '.join(map(str, offer.grefs))}, port {port}{where}\n")
                sys.stdout.flush()
            seen = [0]  # notifications seen, kept even when a signal ends the wait
            try:
                _wait_for(channel, port, args.wait, echo=args.echo, seen=seen)
            except (KeyboardInterrupt, Stop) as exc:
                interrupted = exc
            head = offer.read(0, HEAD_BYTES)
            result: dict[str, Any] = {
                "ok": True, "domid": to, "grefs": list(offer.grefs), "port": port,
                "writable": args.writable, "notified": seen[0] > 0, "page_head": head.hex(),
            }
            if args.echo:
                result["echoed"] = seen[0]
            if interrupted is not None:
                result["interrupted"] = interrupt_name(interrupted)
        finally:
            with signals_deferred():
                if published is not None:
                    problems = published.remove()
                channel.close()
    finally:
        with signals_deferred():
            offer.close()
    if problems:
        result["cleanup_problems"] = problems
    if args.json:
        print_json(result)
    else:
        state = "notified" if result["notified"] else "no notification"
        if interrupted is not None:
            state += f" (interrupted by {result['interrupted']})"
        sys.stdout.write(f"{state}; first {HEAD_BYTES} bytes of the page now:\n")
        sys.stdout.write(hexdump(head) + "\n")
        for p in problems:
            sys.stderr.write(f"grantscope: {p}\n")
    if interrupted is not None:
        return interrupt_code(interrupted)
    return 0


def _wait_for(channel: Any, port: int, timeout: float, *, echo: bool, seen: list[int]) -> None:
    """Count notifications on ``port`` into ``seen[0]`` for up to ``timeout`` seconds.

    The first one ends the wait, unless ``echo``: then each is answered with a
    notification back and waiting goes on until the deadline.
    """
    if timeout <= 0:
        seen[0] += len([p for p in channel.drain() if p == port])
        return
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if port in channel.wait(left):
            seen[0] += 1
            if not echo:
                return
            channel.notify(port)
