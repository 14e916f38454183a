"""``grantscope notify`` and ``grantscope pingpong``: event-channel round trips.

Both bind interdomain to a peer's unbound port (the spurious event Xen raises on
the new port is drained), notify, and time the answer: front-ends of the ``notify`` and
``pingpong`` probes (:func:`grantscope.probing.runner.run_probe`); with ``--demo`` on the
simulated host, whose guests answer every notification.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from grantscope.cli.grants import MAX_DOMID, MAX_PORT, open_devices, parse_spec, positive, seconds
from grantscope.cli.output import print_json
from grantscope.model.histogram import percentile, summarize
from grantscope.probing.runner import Outcome, interrupt_name, run_probe
from grantscope.safetext import clean
from grantscope.sources.lsevtchn import silent_peer_reason

__all__ = ["percentile", "register", "run_notify", "run_pingpong", "summarize"]


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


def _resolve(args: argparse.Namespace, action: str) -> tuple[Any, bool, int, int]:
    """``(devices, simulated, domid, port)``: syntax (exit 2), then Xen (exit 2), then xs:."""
    domid_spec = parse_spec(args.domid, "--domid")
    port_spec = parse_spec(args.port, "--port")
    devices, specs, simulated = open_devices(args, action)
    try:
        return (devices, simulated, specs.number(domid_spec, "domid", MAX_DOMID),
                specs.number(port_spec, "port", MAX_PORT))
    except BaseException:
        specs.close()
        raise


def _interrupted(command: str, done: Outcome) -> int | None:
    """The exit status when a signal or Ctrl-C stopped the probe (said on stderr)."""
    if done.interrupted is None:
        return None
    sys.stderr.write(f"grantscope: {command} interrupted by {interrupt_name(done.interrupted)}\n")
    return done.exit_code


def run_notify(args: argparse.Namespace) -> int:
    """Bind, notify, maybe wait (the notify probe); print the outcome."""
    from grantscope.probes.notify import PROBE

    devices, simulated, domid, remote_port = _resolve(args, "binding an event channel")
    values: dict[str, Any] = {"domid": domid, "port": remote_port, "count": 1}
    if args.wait is not None:
        values["wait"] = args.wait
    done = run_probe(PROBE, values, devices)
    code = _interrupted("notify", done)
    if code is not None:
        return code
    failed = done.failed
    waited = failed is not None and failed.name.startswith("wait for")
    if not waited:
        done.raise_failure()
    local = int(done.run.state["local_port"])
    back: bool | None = None
    rtt: float | None = None
    if args.wait is not None:
        answer = [r for r in done.run.records if r.name.startswith("wait for")]
        back = bool(answer and answer[-1].ok)
        if back:
            rtt = float(answer[-1].result["waited_ms"]) * 1000
    ok = back is not False
    result: dict[str, Any] = {
        "ok": ok, "domid": domid, "remote_port": remote_port, "local_port": local,
        "notified_back": back, "roundtrip_us": None if rtt is None else round(rtt, 1)}
    if back is False:
        result["why"] = silent_peer_reason(local, domid, remote_port)
    if simulated:
        result["simulated"] = True
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


def run_pingpong(args: argparse.Namespace) -> int:
    """Time COUNT notify/echo round trips (the pingpong probe against a peer)."""
    from grantscope.probes.pingpong import PROBE
    from grantscope.probing.roundtrips import loop_text

    devices, simulated, domid, remote_port = _resolve(args, "binding an event channel")
    done = run_probe(PROBE, {"domid": domid, "port": remote_port, "count": args.count,
                             "warmup": args.warmup, "timeout": args.timeout}, devices)
    code = _interrupted("pingpong", done)
    if code is not None:
        return code
    done.raise_failure()
    samples: list[float] = done.run.state["samples_us"]
    local = int(done.run.state["local_port"])
    stats = summarize(samples)
    loop, note = done.run.state["loop"], done.run.state["loop_note"]
    result: dict[str, Any] = {"ok": True, "domid": domid, "remote_port": remote_port,
                              "local_port": local, **stats, "loop": loop}
    if note:
        result["loop_note"] = note
    if simulated:
        result["simulated"] = True
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(
            f"{stats['count']} round trips with domain {domid} port {remote_port}: "
            f"min {stats['min_us']:.0f} µs, p50 {stats['p50_us']:.0f} µs, "
            f"p99 {stats['p99_us']:.0f} µs, max {stats['max_us']:.0f} µs\n"
            f"  {loop_text(loop, note)}\n")
        from grantscope.model.histogram import histogram

        sys.stdout.writelines(f"  {line}\n" for line in histogram(samples))
    return 0
