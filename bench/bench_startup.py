"""Benchmark: what a command costs before it does anything (issue 19: ``--version`` within
1.5x and ``xs read`` within 2x of ``python -c pass`` in the same venv).

Run on any host (``.venv/bin/python bench/bench_startup.py``) or inside the lab's dom0, where
``xs read`` really reads XenStore::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_startup.py

The three commands are run alternately ``--runs`` times each, as new processes (the way a
shell loop runs them), and the median wall time of each is printed with its ratio to the bare
interpreter.  Off Xen, ``xs read`` ends with exit 2 after trying the XenStore paths; it has
imported everything the real read imports by then.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "grantscope --version": [str(VENV_BIN / "grantscope"), "--version"],
    "grantscope xs read /local/domain/0/domid": [
        str(VENV_BIN / "grantscope"), "xs", "read", "/local/domain/0/domid"],
}


def wall_ms(command: list[str]) -> float:
    """One run of ``command``, in milliseconds, output discarded."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # one warm-up each (page cache, .pyc files)
        wall_ms(command)
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            samples[name].append(wall_ms(command))
    base = statistics.median(samples["python -c pass"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:44} median {median:7.1f} ms  ({median / base:4.2f}x python -c pass)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
