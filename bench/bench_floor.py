"""Benchmark: how close to C can Python get at all?  The floor under the 1.5x goals.

Run inside the lab's dom0::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_floor.py

In one boot, alternating, ``--runs`` times, the same two loops as bench_devices.py in three
forms: the C anchor (``xenpeer``), grantscope's API, and the leanest Python there is (raw
``fcntl.ioctl`` on prebuilt buffers, ``select.poll``, ``os.read``/``os.write``, libc
``mmap``/``munmap`` through cffi: no objects, no checks).  The lean loop is the floor any
binding written in Python can reach; the gap between it and the API is what grantscope's own
code costs.  The lean map loop also times each phase (MAP ioctl, mmap, touch, munmap,
UNMAP ioctl).  The event-channel table also has ``pingpong``'s own loops (issue 19: within
1.1x of C): the compiled C loop (``grantscope.xen.evtloop``) and its pure-Python fallback, on
the same loopback pair as the C anchor.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import statistics
import struct
import sys
import time
from typing import Any

from bench_devices import c_anchor, percentiles, pin_to_a_steady_cpu, py_evtchn, py_map_shared_fd

from grantscope._compat import zip_strict
from grantscope.lab.build import current_build
from grantscope.probing import roundtrips
from grantscope.xen import abi
from grantscope.xen.compiled import fast_path
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import Gntdev

PHASES = ("MAP ioctl", "mmap", "touch", "munmap", "UNMAP ioctl")


def lean_evtchn(n: int, warmup: int) -> dict[str, float]:
    """The loopback round trip with nothing but the four syscalls per side."""
    samples: list[float] = []
    with EventChannel() as a_side, EventChannel() as b_side:
        a = a_side.bind_unbound(0)
        b = b_side.bind_interdomain(0, a)
        fa, fb = a_side.fileno(), b_side.fileno()
        poll_a, poll_b = select.poll(), select.poll()
        poll_a.register(fa, select.POLLIN)
        poll_b.register(fb, select.POLLIN)
        arg_a, arg_b = struct.pack("=I", a), struct.pack("=I", b)
        notify, ioctl, read, write = abi.IOCTL_EVTCHN_NOTIFY, fcntl.ioctl, os.read, os.write
        clock = time.perf_counter_ns
        for i in range(warmup + n):
            t0 = clock()
            ioctl(fb, notify, arg_b)
            poll_a.poll(5000)
            write(fa, read(fa, 4096))
            ioctl(fa, notify, arg_a)
            poll_b.poll(5000)
            write(fb, read(fb, 4096))
            if i >= warmup:
                samples.append((clock() - t0) / 1000)
    return percentiles(samples)


class _NoCancel:
    """The StepContext part the round-trip loops use: nothing ever cancels a bench."""

    def check_cancelled(self) -> None:
        return None


def pingpong_loop(n: int, warmup: int, *, c_loop: bool) -> dict[str, float]:
    """pingpong's loop on the anchor's pair: notify B, A answers in-process, wait on B."""
    with EventChannel() as a_side, EventChannel() as b_side:
        a = a_side.bind_unbound(0)
        b = b_side.bind_interdomain(0, a)
        a_side.drain()
        b_side.drain()
        ctx: Any = _NoCancel()
        if c_loop:
            timed = roundtrips.round_trips(ctx, b_side, b, b_side, b, a_side, a, n, 5.0, warmup)
            if timed.loop != "c":
                raise SystemExit(f"the C loop did not run: {timed.loop_note}")
            samples = timed.samples
        else:
            samples = roundtrips.python_round_trips(ctx, b_side, b, b_side, b, a_side, a, n, 5.0,
                                                warmup)
    return percentiles([s * 1e6 for s in samples])


def lean_map(n: int, warmup: int, phases: dict[str, list[float]]) -> dict[str, float]:
    """MAP ioctl, mmap, touch, munmap, UNMAP ioctl on raw buffers; phase times into ``phases``."""
    samples: list[float] = []
    ffi, libc = abi.ffi, abi.libc()
    with GrantOffer(0, 1, writable=True) as offer, Gntdev() as dev:
        fd, gref = dev.fileno(), offer.grefs[0]
        map_req, unmap_req = abi.IOCTL_GNTDEV_MAP_GRANT_REF, abi.IOCTL_GNTDEV_UNMAP_GRANT_REF
        prot, shared, null = abi.PROT_READ | abi.PROT_WRITE, abi.MAP_SHARED, ffi.NULL
        clock, ioctl = time.perf_counter_ns, fcntl.ioctl
        for i in range(warmup + n):
            buf = bytearray(struct.pack("=IIQII", 1, 0, 0, 0, gref))
            t0 = clock()
            ioctl(fd, map_req, buf)
            t1 = clock()
            index = struct.unpack_from("=Q", buf, 8)[0]
            ptr = libc.mmap(null, 4096, prot, shared, fd, index)
            t2 = clock()
            ffi.cast("char *", ptr)[0] = b"\x01"
            t3 = clock()
            libc.munmap(ptr, 4096)
            t4 = clock()
            ioctl(fd, unmap_req, struct.pack("=QII", index, 1, 0))
            t5 = clock()
            if i >= warmup:
                samples.append((t5 - t0) / 1000)
                for name, start, end in zip_strict(PHASES, (t0, t1, t2, t3, t4),
                                                   (t1, t2, t3, t4, t5)):
                    phases[name].append((end - start) / 1000)
    return percentiles(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("evtchn", "map"), help="one of the two loops")
    args = parser.parse_args(argv)
    pin_to_a_steady_cpu()
    peer = str(current_build().peer)
    n, w = args.n, args.warmup
    phases: dict[str, list[float]] = {name: [] for name in PHASES}
    loops = {
        "evtchn": {"C": lambda: c_anchor(peer, "bench-evtchn", n, w),
                   "Python, lean": lambda: lean_evtchn(n, w),
                   "Python, EventChannel": lambda: py_evtchn(n, w),
                   "pingpong, C loop": lambda: pingpong_loop(n, w, c_loop=True),
                   "pingpong, Python loop": lambda: pingpong_loop(n, w, c_loop=False)},
        "map": {"C": lambda: c_anchor(peer, "bench-gnt", n, w),
                "Python, lean": lambda: lean_map(n, w, phases),
                "Python, Gntdev.map": lambda: py_map_shared_fd(n, w)},
    }
    for loop, contenders in loops.items():
        if args.only and loop != args.only:
            continue
        p50s: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):
            for name, run in contenders.items():
                p50s[name].append(run()["p50"])
        base = statistics.median(p50s["C"])
        print(f"\n{loop}, N={n} per run, {args.runs} runs\n")
        print("| implementation | p50 per run, µs | **p50** | ÷ C |\n|---|---|---|---|")
        for name, values in p50s.items():
            med = statistics.median(values)
            per_run = ", ".join(f"{v:.0f}" for v in values)
            print(f"| {name} | {per_run} | **{med:.0f}** | {med / base:.2f} |")
    print("\nthe API's own paths: " + ", ".join(
        f"{what} {'compiled (grantscope.xen._evtloop)' if fast_path(name) else 'Python'}"
        for what, name in (("EventChannel.wait", "gs_wait_once"), ("Gntdev.map", "gs_map_grants"))))
    if args.only != "evtchn":
        print("\nlean map+unmap, p50 of each phase over all runs, µs: " + ", ".join(
            f"{name} {statistics.median(v):.0f}" for name, v in phases.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
