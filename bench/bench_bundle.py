"""Benchmark: bundle reading at 1x, 10x and 100x a real host's size (on the host, no Xen).

    .venv/bin/python bench/bench_bundle.py

Times (best of ``--runs``) the cases the bounded-reading tests check by counts and sizes
(tests/unit/test_bundle_bounded.py), on the same generated inputs
(tests/unit/bundle_corpus/large.py): concatenated empty gzip members, /proc/interrupts with
many CPU columns, a flat XenStore directory through the replay loader, and ``bundle diff`` of
findings.json.  Linear code shows ~10x per 10x step.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from bundle_corpus import large

from grantscope.bundle.diff import diff_bundles
from grantscope.bundle.reader import read_bundle
from grantscope.host.replay import ReplayHost
from grantscope.model.interrupts import parse_interrupts


def best(fn: Callable[[], object], runs: int) -> float:
    """The fastest of ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-bundle-"))

    def write(name: str, data: bytes) -> str:
        path = tmp / name
        path.write_bytes(data)
        return str(path)

    def gzip_case(k: int) -> Callable[[], object]:
        path = write(f"g{k}", large.empty_gzip_members(1000 * k))
        return lambda: read_bundle(path)

    def interrupts_case(k: int) -> Callable[[], object]:
        text = large.interrupts(large.REAL_CPUS * k)
        return lambda: parse_interrupts(text)

    def replay_case(k: int) -> Callable[[], object]:
        member = large.flat_xenstore(large.REAL_NODES * k)
        path = write(f"x{k}", large.bundle({"xenstore.json": member}))
        return lambda: ReplayHost.open(path)

    def diff_case(k: int) -> Callable[[], object]:
        count = large.REAL_FINDINGS * k
        a = write(f"fa{k}", large.bundle({"findings.json": large.findings(count)}))
        b = write(f"fb{k}", large.bundle({"findings.json": large.findings(count // 2)}))
        return lambda: diff_bundles(read_bundle(a), read_bundle(b))

    cases: list[tuple[str, Callable[[int], Callable[[], object]]]] = [
        ("read: bundle + 1,000*k empty gzip members", gzip_case),
        (f"parse_interrupts: {large.REAL_CPUS}*k CPU columns, 20 rows", interrupts_case),
        (f"replay open: {large.REAL_NODES}*k nodes in one directory", replay_case),
        (f"diff: findings.json, {large.REAL_FINDINGS}*k findings + as many {{}}", diff_case),
    ]
    print(f"{'case':<58} {'1x':>9} {'10x':>9} {'100x':>9}  100x/10x")
    for label, make in cases:
        figures = [best(make(k), args.runs) for k in (1, 10, 100)]
        ratio = figures[2] / figures[1] if figures[1] else float("nan")
        shown = " ".join(f"{f * 1000:8.1f}ms" for f in figures)
        print(f"{label:<58} {shown}  {ratio:6.1f}")


if __name__ == "__main__":
    main()
