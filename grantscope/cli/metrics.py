"""``grantscope metrics``: grant, event-channel and XenStore health for Prometheus.

Prints one scrape in the text exposition format, writes it atomically to ``--output`` (for
node_exporter's textfile collector), or serves ``/metrics`` with ``--listen``.  Only cheap,
side-effect-free sources are read (see :mod:`grantscope.metrics.collect`); it never sends a
debug key, so it behaves the same under ``--readonly``.  Under ``--demo`` it reads the
simulated host and labels every series ``simulated="1"``.  docs/METRICS.md lists the series.

Exit status: 0 printed, written or served until stopped (SIGTERM); 1 the port could not be
bound or the file not written; 2 a bad argument or not a Xen host.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from grantscope.errors import GrantscopeError, UsageError
from grantscope.host.target import target_for
from grantscope.xen.readonly import refuse_if_readonly

__all__ = ["DEFAULT_PORT", "parse_listen", "register", "run_metrics"]

#: The default ``--listen`` port (docs/METRICS.md says why this one, and never 9603).
DEFAULT_PORT = 10603
DEFAULT_ADDR = "127.0.0.1"


def register(subparsers: Any) -> None:
    """Add ``metrics`` to the top-level parser."""
    p = subparsers.add_parser(
        "metrics",
        help="grant, event-channel and XenStore health in Prometheus' text format",
        description="Read grant frames per domain (GNTTABOP_query_size), XenStore "
        "quota, xenbus device states and sysfs counters, Xen IRQ counts and /dev/xen holders, "
        "and print them as Prometheus metrics with the findings they support. Never sends a "
        "debug key. With 'grantscope --demo metrics' the simulated host, every series "
        "labelled simulated=\"1\". See docs/METRICS.md.",
    )
    p.add_argument("--output", metavar="FILE",
                   help="write to FILE atomically (replacing it; mode 0644) instead of "
                   "stdout: for node_exporter's textfile collector (name it *.prom)")
    p.add_argument("--listen", metavar="[ADDR:]PORT", nargs="?",
                   const=f"{DEFAULT_ADDR}:{DEFAULT_PORT}",
                   help=f"serve /metrics over HTTP until stopped (default "
                   f"{DEFAULT_ADDR}:{DEFAULT_PORT}; ADDR defaults to {DEFAULT_ADDR}, "
                   "[::1]:PORT for IPv6); the host is read at each scrape")
    p.add_argument("--per-device", action="store_true",
                   help="add per-device and per-IRQ series (more series: one per PV device "
                   "end and per Xen IRQ)")
    p.add_argument("--maptrack-every", metavar="SECONDS", type=float, default=None,
                   help="also export maptrack use per domain, from a 'g' debug-key dump taken "
                   "at most once per SECONDS (at least 300; scrapes in between get the last "
                   "one and its age). Off by default: a debug key writes to the console ring "
                   "and stalls the CPU on a big host; refused under --readonly")
    p.set_defaults(run=run_metrics)


def parse_listen(text: str) -> tuple[str, int]:
    """``PORT``, ``ADDR:PORT`` or ``[IPV6]:PORT`` as ``(addr, port)``; UsageError otherwise."""
    addr, port = DEFAULT_ADDR, text
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(f"--listen {text}: expected [IPV6]:PORT")
        addr, port = host, rest[1:]
    elif ":" in text:
        addr, _, port = text.rpartition(":")
        if ":" in addr:
            raise UsageError(f"--listen {text}: an IPv6 address goes in brackets",
                             "Write it as [::1]:PORT.")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text}: the port must be a number from 0 to 65535",
                         "0 picks a free port (printed on stderr).")
    return addr or DEFAULT_ADDR, int(port)


def _maptrack(args: argparse.Namespace, capture: Callable[[], Any] | None = None) -> Any:
    """The opt-in maptrack reader, or None; refuses an interval under the minimum, and
    ``--readonly`` (the option sends a debug key)."""
    every = getattr(args, "maptrack_every", None)
    if every is None:
        return None
    from grantscope.metrics.maptrack import MIN_INTERVAL, MaptrackReader

    if not every >= MIN_INTERVAL:
        raise UsageError(f"--maptrack-every {every:g}: the interval must be at least "
                         f"{MIN_INTERVAL:g} seconds",
                         "Each maptrack reading sends the 'g' debug key, which stalls the CPU "
                         "on a big host; scrapes in between reuse the last reading.")
    refuse_if_readonly("--maptrack-every (it sends the 'g' debug key to Xen)")
    return MaptrackReader(every, capture=capture)


def _reader(args: argparse.Namespace) -> Callable[[], Any]:
    target = target_for(args, "metrics")
    if target.simulated:
        from grantscope.metrics.demo import demo_capture, demo_reading

        host = target.sim()
        demo_maptrack = _maptrack(args, demo_capture(host))
        return lambda: demo_reading(host, demo_maptrack)
    target.require_xen()
    from grantscope.metrics.collect import collect_reading

    maptrack = _maptrack(args)
    return lambda: collect_reading(maptrack)


def run_metrics(args: argparse.Namespace) -> int:
    """Print, write or serve the metrics (see the module doc)."""
    if args.output and args.listen:
        raise UsageError("--output and --listen contradict each other", "Give one of them.")
    listen = parse_listen(args.listen) if args.listen else None
    from grantscope.metrics.exposition import make_registry, render, serve

    registry = make_registry(_reader(args), per_device=args.per_device)
    if listen is None:
        data = render(registry)
        if args.output:
            from grantscope.safefile import replace_file

            replace_file(args.output, data, "--output")
        else:
            sys.stdout.buffer.write(data)
        return 0
    addr, port = listen
    try:
        server, _thread = serve(registry, addr, port)
    except OSError as err:
        raise GrantscopeError(
            f"cannot listen on {addr}:{port}: {err.strerror or err}",
            "Another program may hold the port, or the address is not one of this host's: "
            "choose another with --listen ADDR:PORT.",
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    bound = server.server_address
    sys.stderr.write(f"grantscope: serving http://{_show(bound[0])}:{bound[1]}/metrics "
                     "(SIGTERM or Ctrl-C stops)\n")
    sys.stderr.flush()
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def _show(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr
