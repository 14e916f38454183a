"""Benchmark: grantscope's device bindings against the C anchors, in one lab boot.

Run inside the lab's dom0::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_devices.py

Two measurements, each alternating C and Python runs in the same boot so that only ratios
are compared (reference/baselines.md: absolute times under TCG move 10-20 % between boots):

- event-channel loopback ping-pong: fd A offers an unbound port to dom0, fd B binds
  interdomain to it; one round trip is notify(b) -> A wakes -> notify(a) -> B wakes.
  C: ``xenpeer bench-evtchn N``; Python: two :class:`EventChannel` objects.
- grant map+unmap of one page dom0 grants to itself: MAP ioctl, mmap, touch one byte, munmap,
  UNMAP ioctl. C: ``xenpeer bench-gnt N``; Python: :meth:`Gntdev.map` on one open gntdev fd
  (what a tool mapping many grants does) and, for the cost of convenience, one
  :class:`GrantMapping` per cycle (which opens and closes its own fd).

Goals (issue text): p50 ping-pong <= 1.5x C, p50 map+unmap <= 1.5x C. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from grantscope.lab.build import current_build
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import Gntdev, GrantMapping


def percentiles(samples_us: list[float]) -> dict[str, float]:
    """min/p50/p90/p99/max of one run, in microseconds."""
    s = sorted(samples_us)
    n = len(s)
    return {"n": n, "min": s[0], "p50": s[n // 2], "p90": s[n * 9 // 10],
            "p99": s[n * 99 // 100], "max": s[-1]}


def pin_to_a_steady_cpu() -> int:
    """Stay on one CPU whose clock is seen to advance, and return it.

    Under TCG the vCPUs' Xen clocks drift apart and Linux keeps one system-wide last value so
    the clock never goes back: on a CPU running behind, reads return that value and short
    intervals read 0.  ``xenpeer``'s bench modes choose their CPU the same way.
    """
    cpus = sorted(os.sched_getaffinity(0))
    for _ in range(20):
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            if all(time.perf_counter_ns() < time.perf_counter_ns() for _ in range(200)):
                return cpu
    print("warning: no CPU's clock advanced steadily; timings may read 0", file=sys.stderr)
    return cpus[0]


def c_anchor(peer: str, bench: str, n: int, warmup: int) -> dict[str, float]:
    """Run the C anchor in the lab peer binary; it prints one JSON line."""
    out = subprocess.run([peer, bench, str(n), str(warmup)], capture_output=True, text=True,
                         check=True, timeout=1800).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("{"))
    data = json.loads(line)
    return {k: float(data[k]) for k in ("min", "p50", "p90", "p99", "max")} | {"n": n}


def py_evtchn(n: int, warmup: int) -> dict[str, float]:
    """Loopback ping-pong through grantscope's EventChannel (one fd per side)."""
    samples: list[float] = []
    with EventChannel() as a_side, EventChannel() as b_side:
        a = a_side.bind_unbound(0)
        b = b_side.bind_interdomain(0, a)
        clock = time.perf_counter_ns
        for i in range(warmup + n):
            t0 = clock()
            b_side.notify(b)
            a_side.wait(5.0)
            a_side.notify(a)
            b_side.wait(5.0)
            if i >= warmup:
                samples.append((clock() - t0) / 1000)
    return percentiles(samples)


def py_map_shared_fd(n: int, warmup: int) -> dict[str, float]:
    """Map+touch+unmap of an own grant through one open gntdev fd."""
    samples: list[float] = []
    with GrantOffer(0, 1, writable=True) as offer, Gntdev() as dev:
        grefs = offer.grefs
        clock = time.perf_counter_ns
        for i in range(warmup + n):
            t0 = clock()
            mapping = dev.map(0, grefs)
            mapping.page[0] = i & 0xFF
            mapping.close()
            if i >= warmup:
                samples.append((clock() - t0) / 1000)
    return percentiles(samples)


def py_map_own_fd(n: int, warmup: int) -> dict[str, float]:
    """The convenience form: one GrantMapping (its own gntdev fd) per cycle."""
    samples: list[float] = []
    with GrantOffer(0, 1, writable=True) as offer:
        grefs = offer.grefs
        clock = time.perf_counter_ns
        for i in range(warmup + n):
            t0 = clock()
            with GrantMapping(0, grefs) as mapping:
                mapping.page[0] = i & 0xFF
            if i >= warmup:
                samples.append((clock() - t0) / 1000)
    return percentiles(samples)


Figures = dict[str, float]


def alternate(runs: int, contenders: dict[str, Callable[[], Figures]]) -> dict[str, list[Figures]]:
    """Run every contender once per round, ``runs`` rounds, printing each run as it ends."""
    results: dict[str, list[Figures]] = {name: [] for name in contenders}
    for r in range(runs):
        for name, fn in contenders.items():
            res = fn()
            results[name].append(res)
            print(f"  run {r + 1} {name:<28} p50 {res['p50']:8.1f} us  p99 {res['p99']:8.1f} us",
                  flush=True)
    return results


def table(title: str, results: dict[str, list[Figures]], anchor: str) -> list[str]:
    """A markdown table: median over runs of each run's p50/p99, and p50 / anchor's p50."""
    base = statistics.median(r["p50"] for r in results[anchor])
    lines = [f"### {title}", "",
             "| implementation | p50 per run, µs | **p50** (median) | p99 (median) | p50 ÷ C |",
             "|---|---|---|---|---|"]
    for name, runs in results.items():
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        per_run = ", ".join(f"{r['p50']:.0f}" for r in runs)
        lines.append(f"| {name} | {per_run} | **{p50:.0f}** | {p99:.0f} | {p50 / base:.2f} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="round trips / cycles per run")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    pin_to_a_steady_cpu()
    peer = str(current_build().peer)
    n, w = args.n, args.warmup

    print(f"event-channel loopback ping-pong, N={n} per run, {args.runs} runs", flush=True)
    ev = alternate(args.runs, {
        "C (xenpeer bench-evtchn)": lambda: c_anchor(peer, "bench-evtchn", n, w),
        "Python (EventChannel)": lambda: py_evtchn(n, w),
    })
    print(f"grant map+touch+unmap of an own page, N={n} per run, {args.runs} runs", flush=True)
    gnt = alternate(args.runs, {
        "C (xenpeer bench-gnt)": lambda: c_anchor(peer, "bench-gnt", n, w),
        "Python (Gntdev.map, one fd)": lambda: py_map_shared_fd(n, w),
        "Python (GrantMapping per cycle)": lambda: py_map_own_fd(n, w),
    })
    print()
    print("\n".join(table("Event-channel ping-pong (goal: p50 ≤ 1.5× C)", ev,
                          "C (xenpeer bench-evtchn)")))
    print("\n".join(table("Grant map+unmap (goal: p50 ≤ 1.5× C)", gnt,
                          "C (xenpeer bench-gnt)")))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"evtchn": ev, "map": gnt}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
