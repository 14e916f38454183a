"""Benchmark: map and event round-trip times per guest type, grantscope on both ends.

Run inside the lab's dom0 (it boots a PV, a PVH and an HVM guest in turn)::

    .venv/bin/grantscope lab run --timeout 3600 -- .venv/bin/python bench/bench_guests.py

For each guest type:

- boot: ``xl create`` time and the time until the guest's agent answered;
- guest -> dom0: the guest offers a page (``grantscope offer --echo``); dom0 maps it with the
  map-grant probe (the "map the grant" step: MAP_GRANT_REF ioctl + mmap) and times round trips
  with ``grantscope pingpong``;
- dom0 -> guest: dom0 offers (``offer --echo``); the guest maps it with the same probe (the
  auto-translated path in PVH/HVM) and runs ``pingpong`` against dom0.

Absolute times under TCG move between boots; compare guest types within one run.  Nothing is
asserted: tests/xen/test_guest_types.py proves behaviour, this file measures it.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grantscope.lab.guest import boot_guest
from grantscope.xen.xenstore import XenStore

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
MAPS = 5
ROUND_TRIPS = 200


def _wait(path: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    with XenStore.open() as xs:
        while xs.read_or_none(path) is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {path} did not appear")
            time.sleep(0.2)


def _map_ms(doc: dict[str, Any]) -> float:
    step = next(s for s in doc["steps"] if s["name"] == "map the grant")
    if not step["ok"]:
        raise SystemExit(f"bench: map failed: {step['explanation']}")
    return float(step["duration_s"]) * 1000


def _dom0(*args: str) -> dict[str, Any]:
    proc = subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, check=False,
                          timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"bench: grantscope {' '.join(args)}: {proc.stderr[-2000:]}")
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def measure(kind: str) -> dict[str, Any]:
    """All figures for one guest type."""
    out: dict[str, Any] = {"type": kind}
    with boot_guest(kind) as guest:
        out["xl_create_s"] = round(guest.create_seconds or 0.0, 1)
        out["agent_ready_s"] = round(guest.ready_seconds or 0.0, 1)
        # guest offers, dom0 maps and ping-pongs
        mbox = guest.path("data/bench-g")
        offer = guest.submit(["grantscope", "offer", "--to", "0", "--text", "bench",
                              "--publish", mbox, "--wait", "1800", "--echo", "--json"],
                             timeout=1900)
        _wait(f"{mbox}/port")
        maps = [_map_ms(_dom0("probe", "run", "map-grant", f"domid={guest.domid}",
                              f"gref=xs:{mbox}/gref", "--json")) for _ in range(MAPS)]
        pp = _dom0("pingpong", "--domid", str(guest.domid), "--port", f"xs:{mbox}/port",
                   "--count", str(ROUND_TRIPS), "--json")
        guest.signal(offer, signal.SIGTERM)
        guest.result(offer)
        out["dom0_maps_guest_ms_p50"] = round(statistics.median(maps), 2)
        out["dom0_pingpong_us"] = {k: round(pp[k]) for k in ("min_us", "p50_us", "p99_us")}
        # dom0 offers, the guest maps and ping-pongs
        mbox = guest.path("data/bench-d")
        echo = subprocess.Popen([GRANTSCOPE, "offer", "--to", str(guest.domid), "--text",
                                 "bench", "--publish", mbox, "--wait", "1800", "--echo",
                                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait(f"{mbox}/port")
            gmaps = []
            for _ in range(MAPS):
                res = guest.run(["grantscope", "probe", "run", "map-grant", "domid=0",
                                 f"gref=xs:{mbox}/gref", "--json"])
                gmaps.append(_map_ms(res.json()))
            res = guest.run(["grantscope", "pingpong", "--domid", "0", "--port",
                             f"xs:{mbox}/port", "--count", str(ROUND_TRIPS), "--json"])
            gpp: dict[str, Any] = res.json()
        finally:
            echo.send_signal(signal.SIGTERM)
            echo.communicate(timeout=120)
        out["guest_maps_dom0_ms_p50"] = round(statistics.median(gmaps), 2)
        out["guest_pingpong_us"] = {k: round(gpp[k]) for k in ("min_us", "p50_us", "p99_us")}
    return out


def main() -> int:
    """Measure each guest type named on the command line (default: pv pvh hvm)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("types", nargs="*", default=["pv", "pvh", "hvm"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    for kind in args.types:
        row = measure(kind)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
