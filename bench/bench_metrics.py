"""Benchmark: one ``grantscope metrics`` scrape on a dom0 with 100 domains and 10,000 more
XenStore nodes (issue 17's budget: under 1 s, without walking the whole tree).

Run inside the lab's dom0::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_metrics.py

The lab cannot hold 100 guests, so the 100 domains are XenStore homes written for the run
(``/local/domain/2000`` ... ``2099``, each with a name and a vif whose dom0 backend directory
exists too, with the keys a real vif has on each end: 10 more in the frontend, 17 more in
the backend, as the lab's PV guests have them): the scrape lists and reads them exactly as
real homes, and asks Xen (one
``GNTTABOP_query_size`` hypercall each) and xenstored (one ``quota DOMID`` request each) about
every one of them; Xen and xenstored answer "no such domain" instead of a size, which costs
the same round trip.  Plus the 10,100-node ``/bench`` tree of bench_xenstore.py, which a
scrape must not read.  The first scrape (imports, the cffi cdef) is timed apart; then
``--runs`` scrapes in the same process, as ``metrics --listen`` serves them.  Everything
written is removed at the end.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench_xenstore import ROOT, build_tree

from grantscope.metrics.collect import collect_reading
from grantscope.xen.xenstore import XenStore

FIRST_FAKE = 2000


# The other keys of a connected vif, as a lab PV guest and its dom0 netback write them.
FRONTEND_EXTRA = ("handle", "mac", "mtu", "tx-ring-ref", "rx-ring-ref", "event-channel",
                  "request-rx-copy", "feature-rx-notify", "feature-sg", "feature-gso-tcpv4")
BACKEND_EXTRA = ("handle", "mac", "bridge", "script", "type", "online", "hotplug-status",
                 "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6", "feature-rx-copy",
                 "feature-rx-flip", "feature-multicast-control", "feature-split-event-channels",
                 "multi-queue-max-queues", "feature-ctrl-ring", "feature-ipv6-csum-offload")


def write_homes(store: XenStore, count: int) -> list[str]:
    """``count`` domain homes with a name and a vif (both ends, each with a real vif's keys);
    returns the roots to remove."""
    roots: list[str] = []
    for i in range(count):
        domid = FIRST_FAKE + i
        home, be = f"/local/domain/{domid}", f"/local/domain/0/backend/vif/{domid}/0"
        fe = f"{home}/device/vif/0"
        for path, value in ((f"{home}/name", f"bench-{i:03d}"),
                            (f"{fe}/backend", be), (f"{fe}/backend-id", "0"),
                            (f"{fe}/state", "4"),
                            (f"{be}/frontend", fe), (f"{be}/frontend-id", str(domid)),
                            (f"{be}/state", "4"),
                            *((f"{fe}/{k}", "1") for k in FRONTEND_EXTRA),
                            *((f"{be}/{k}", "1") for k in BACKEND_EXTRA)):
            store.write(path, value.encode())
        roots += [home, f"/local/domain/0/backend/vif/{domid}"]
    return roots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with XenStore.open(timeout=120) as store:
        built = build_tree(store, 100, 100)
        roots = write_homes(store, args.domains)
        try:
            t0 = time.monotonic()
            first = collect_reading()
            first_s = time.monotonic() - t0
            times: list[float] = []
            per_source: dict[str, list[float]] = {}
            for _ in range(args.runs):
                t0 = time.monotonic()
                reading = collect_reading()
                times.append(time.monotonic() - t0)
                for s in reading.sources:
                    per_source.setdefault(s.name, []).append(s.seconds)
        finally:
            for path in [*roots, ROOT]:
                store.rm(path)
    print(f"tree: {ROOT} written ({100 * 100} keys) in {built:.1f} s; "
          f"{len(first.domains)} domains listed")
    print(f"first scrape (imports, cffi cdef): {first_s:.3f} s")
    print(f"scrapes 2..{args.runs + 1}: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s")
    for name, values in per_source.items():
        print(f"  {name:16} median {statistics.median(values):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
