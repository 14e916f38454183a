"""Benchmark: grantscope's pipelined XenStore walk against ``xenstore-ls -f``, in one lab boot.

Run inside the lab's dom0::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_xenstore.py

It writes a /bench tree of 100 ``dNN`` x 100 ``kNN`` nodes (values like ``v3.7``; 10,100 nodes
with the directories), then times, alternating, grantscope's ``XenStore.walk("/bench")`` (inside
this process) and the ``xenstore-ls -f /bench`` process, checks that both give the same lines,
and prints the medians and their ratio (goal: walk <= 0.5x xenstore-ls).  With ``--perms`` it
also compares ``walk(perms=True)`` with ``xenstore-ls -f -p``.  Nothing is asserted: these are
figures (reference/baselines.md explains why only ratios within one boot mean anything).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from grantscope.xen.xenstore import XenStore, format_ls_line
from grantscope.xen.xs_wire import Op

ROOT = "/bench"


def build_tree(store: XenStore, dirs: int, keys: int) -> float:
    """Write the tree with up to 1,000 WRITEs in flight; returns seconds taken."""
    conn = store._conn
    items = [
        (f"{ROOT}/d{d:02d}/k{k:02d}", f"v{d}.{k}".encode())
        for d in range(dirs)
        for k in range(keys)
    ]
    t0 = time.monotonic()
    for i in range(0, len(items), 1000):
        chunk = items[i : i + 1000]
        ids = set(
            conn.submit(
                [(Op.WRITE, 0, p.encode() + b"\0" + v) for p, v in chunk], time.monotonic() + 120
            )
        )
        while ids:
            got = conn.collect(ids, time.monotonic() + 120)
            if not got:
                raise SystemExit("xenstored stopped answering writes")
            bad = [p for p in got.values() if p.op != Op.WRITE]
            if bad:
                raise SystemExit(f"a WRITE failed: {bad[0]}")
    return time.monotonic() - t0


def time_tool(argv: list[str]) -> tuple[float, list[str]]:
    """Wall time of one C tool process (output to a pipe, so never truncated) and its lines."""
    t0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, check=True)
    elapsed = time.monotonic() - t0
    return elapsed, done.stdout.decode("utf-8", "surrogateescape").splitlines()


def time_walk(store: XenStore, perms: bool, window: int) -> tuple[float, list[str]]:
    """Time of one in-process pipelined walk and its xenstore-ls -f lines."""
    t0 = time.monotonic()
    nodes = store.walk(ROOT, perms=perms, window=window)
    elapsed = time.monotonic() - t0
    return elapsed, [format_ls_line(n, with_perms=perms) for n in nodes]


def fmt(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.2f} s  "
        f"(min {min(values):.2f}, max {max(values):.2f}, runs {len(values)})"
    )


def compare(store: XenStore, runs: int, perms: bool, window: int) -> None:
    tool = ["xenstore-ls", "-f", *(["-p"] if perms else []), ROOT]
    label = " ".join(tool)
    walk_times: list[float] = []
    tool_times: list[float] = []
    same = True
    for _ in range(runs):  # alternate, so drift in the host hits both alike
        t, tool_lines = time_tool(tool)
        tool_times.append(t)
        t, walk_lines = time_walk(store, perms, window)
        walk_times.append(t)
        print(f"  run {len(walk_times)}: {label} {tool_times[-1]:.2f} s, walk {t:.2f} s")
        same = same and walk_lines == tool_lines
    nodes = len(walk_lines)
    print(f"\n== {label}  vs  XenStore.walk({ROOT!r}, perms={perms})  [{nodes} nodes]")
    print(f"  {label:<28} {fmt(tool_times)}  {nodes / statistics.median(tool_times):6.0f} nodes/s")
    print(
        f"  {'grantscope walk':<28} {fmt(walk_times)}  "
        f"{nodes / statistics.median(walk_times):6.0f} nodes/s"
    )
    ratio = statistics.median(walk_times) / statistics.median(tool_times)
    print(f"  ratio walk / xenstore-ls: {ratio:.2f}  (goal <= 0.50)")
    print(f"  same lines as {label}: {'yes' if same else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--window", type=int, default=2000, help="requests in flight")
    parser.add_argument("--perms", action="store_true", help="also compare with xenstore-ls -f -p")
    parser.add_argument(
        "--process",
        action="store_true",
        help="also time the whole 'grantscope xs ls -r' process once",
    )
    parser.add_argument("--keep", action="store_true", help="leave /bench in XenStore")
    args = parser.parse_args()

    with XenStore.open(timeout=120.0) as store:
        print(f"transport: {store.transport} ({store.path})")
        if store.exists(ROOT):
            store.rm(ROOT)
        took = build_tree(store, args.dirs, args.keys)
        count = args.dirs * args.keys
        print(f"wrote {count} nodes in {took:.2f} s ({count / took:.0f} writes/s)")
        try:
            compare(store, args.runs, False, args.window)
            if args.perms:
                compare(store, args.runs, True, args.window)
            if args.process:
                t, lines = time_tool([sys.executable, "-m", "grantscope", "xs", "ls", "-r", ROOT])
                print(
                    f"\nwhole process 'grantscope xs ls -r {ROOT}': {t:.2f} s "
                    f"({len(lines)} lines; includes interpreter start and imports)"
                )
        finally:
            if not args.keep:
                store.rm(ROOT)
    print(f"\npid {os.getpid()} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
