"""``grantscope notify`` and ``grantscope pingpong``: event-channel round trips.

Both bind interdomain to a peer's unbound port (the spurious event Xen raises on
the new port is drained by the binding), notify, and time the answer.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

from grantscope.cli.grants import (
    MAX_DOMID,
    MAX_PORT,
    Specs,
    Stop,
    interrupt_code,
    interrupt_name,
    parse_spec,
    positive,
    seconds,
    signals_deferred,
    sigterm_as_stop,
)
from grantscope.cli.output import print_json
from grantscope.safetext import clean
from grantscope.sources.lsevtchn import silent_peer_reason
from grantscope.xen.errors import XenError


def register(subparsers: Any) -> None:
    """Add ``notify`` and ``pingpong``."""
    n = subparsers.add_parser(
        "notify",
        help="bind to a peer's port, send one notification, optionally wait for one back",
        description="Bind interdomain to port P of domain D, notify it, and with --wait "
        "wait for a notification back (exit 1 if none comes).",
    )
    n.add_argument("--domid", required=True, metavar="D", help="peer domain (or xs:PATH)")
    n.add_argument("--port", required=True, metavar="P",
                   help="the peer's unbound port (or xs:PATH)")
    n.add_argument("--wait", type=seconds, default=None, metavar="SEC",
                   help="wait up to SEC seconds for a notification back")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.set_defaults(run=run_notify)

    p = subparsers.add_parser(
        "pingpong",
        help="time notify round trips against a peer that echoes each notification",
        description="Bind interdomain to port P of domain D, then COUNT times: notify and "
        "wait for the echo. Reports min/p50/p99/max in microseconds.",
    )
    p.add_argument("--domid", required=True, metavar="D", help="peer domain (or xs:PATH)")
    p.add_argument("--port", required=True, metavar="P",
                   help="the peer's unbound port (or xs:PATH)")
    p.add_argument("--count", type=positive, default=100, metavar="N",
                   help="round trips to time (default 100)")
    p.add_argument("--warmup", type=_nonnegative, default=5, metavar="W",
                   help="untimed round trips first (default 5)")
    p.add_argument("--timeout", type=seconds, default=5.0, metavar="SEC",
                   help="give up when one echo takes longer than SEC (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_pingpong)


def _nonnegative(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _resolve(args: argparse.Namespace) -> tuple[int, int]:
    from grantscope.xen.errors import require_xen

    domid_spec = parse_spec(args.domid, "--domid")
    port_spec = parse_spec(args.port, "--port")
    require_xen()
    specs = Specs()
    try:
        return (specs.number(domid_spec, "domid", MAX_DOMID),
                specs.number(port_spec, "port", MAX_PORT))
    finally:
        specs.close()


def _await(channel: Any, port: int, timeout: float) -> bool:
    """True once ``port`` fires within ``timeout`` seconds (other ports are ignored)."""
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        if port in channel.wait(left):
            return True


def run_notify(args: argparse.Namespace) -> int:
    """Bind, notify, maybe wait; print the outcome."""
    from grantscope.xen.evtchn import EventChannel

    domid, remote_port = _resolve(args)
    with sigterm_as_stop():
        try:
            with EventChannel() as channel:
                local = channel.bind_interdomain(domid, remote_port)
                t0 = time.perf_counter()
                channel.notify(local)
                back: bool | None = None
                rtt: float | None = None
                if args.wait is not None:
                    back = _await(channel, local, args.wait)
                    if back:
                        rtt = (time.perf_counter() - t0) * 1e6
                with signals_deferred():
                    channel.close()
        except (KeyboardInterrupt, Stop) as exc:
            sys.stderr.write(f"grantscope: notify interrupted by {interrupt_name(exc)}\n")
            return interrupt_code(exc)
    ok = back is not False
    result: dict[str, Any] = {
        "ok": ok, "domid": domid, "remote_port": remote_port, "local_port": local,
        "notified_back": back, "roundtrip_us": None if rtt is None else round(rtt, 1)}
    if back is False:
        result["why"] = silent_peer_reason(local, domid, remote_port)
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(f"notified domain {domid} port {remote_port} (local port {local})\n")
        if back:
            sys.stdout.write(f"notified back after {rtt:.0f} µs\n")
        elif back is False:
            sys.stdout.write(f"no notification back within {args.wait:g} s\n")
            if result["why"]:
                sys.stdout.write(f"  {clean(str(result['why']))}\n")
    return 0 if ok else 1


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (``pct`` in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(samples_us: list[float]) -> dict[str, float | int]:
    """count, min, p50, p99, max of round-trip samples in microseconds."""
    ordered = sorted(samples_us)
    return {
        "count": len(ordered),
        "min_us": round(ordered[0], 1),
        "p50_us": round(percentile(ordered, 50), 1),
        "p99_us": round(percentile(ordered, 99), 1),
        "max_us": round(ordered[-1], 1),
    }


def run_pingpong(args: argparse.Namespace) -> int:
    """Time COUNT notify/echo round trips."""
    from grantscope.xen.evtchn import EventChannel

    domid, remote_port = _resolve(args)
    samples: list[float] = []
    with sigterm_as_stop():
        try:
            with EventChannel() as channel:
                local = channel.bind_interdomain(domid, remote_port)
                wait = channel.wait
                notify = channel.notify
                clock = time.perf_counter
                for i in range(args.warmup + args.count):
                    t0 = clock()
                    notify(local)
                    fired = wait(args.timeout)
                    # Usually exactly [local]; anything else goes the slow, careful way.
                    if fired != [local] and (local not in fired and not _await(
                            channel, local, max(0.0, args.timeout - (clock() - t0)))):
                        done = max(0, i - args.warmup)
                        seen = silent_peer_reason(local, domid, remote_port)
                        raise XenError(
                            f"no echo from domain {domid} port {remote_port} within "
                            f"{args.timeout:g} s (after {done} timed round trips)"
                            + (f": {seen}" if seen else ""),
                            "pingpong needs a peer that answers every notification with one "
                            "back (e.g. 'grantscope offer --to MYDOMID --echo --wait 60').",
                            call="wait", arguments={"domid": domid, "port": remote_port},
                            causes=[seen] if seen else [
                                "the peer does not echo", "the peer exited or unbound",
                                "the peer is too slow for --timeout"],
                        )
                    if i >= args.warmup:
                        samples.append((clock() - t0) * 1e6)
                with signals_deferred():
                    channel.close()
        except (KeyboardInterrupt, Stop) as exc:
            sys.stderr.write(f"grantscope: pingpong interrupted by {interrupt_name(exc)}\n")
            return interrupt_code(exc)
    stats = summarize(samples)
    result: dict[str, Any] = {"ok": True, "domid": domid, "remote_port": remote_port,
                              "local_port": local, **stats}
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(
            f"{stats['count']} round trips with domain {domid} port {remote_port}: "
            f"min {stats['min_us']:.0f} µs, p50 {stats['p50_us']:.0f} µs, "
            f"p99 {stats['p99_us']:.0f} µs, max {stats['max_us']:.0f} µs\n")
        from grantscope.model.histogram import histogram

        sys.stdout.writelines(f"  {line}\n" for line in histogram(samples))
    return 0
