"""Count PVH/HVM guest deaths in the lab, by phase (issue 18; results in docs/LAB.md).

Run inside the lab's dom0, one boot per combination of the host side (QEMU, CPU model, Xen)::

    grantscope lab run --timeout 5400 -- .venv/bin/python bench/guest_deaths.py \
        --kinds pvh,hvm --boots 10 --memory 512

Each guest is the Python guest image (grantscope itself, the agent), booted one after another.
A guest's life has three phases, and a death is counted in the one it happened in:

- ``boot``: before the guest's init printed that it starts the agent (kernel, initramfs);
- ``python``: after that, before the agent wrote ``data/agent/ready`` (the interpreter starting);
- ``selfmap``: while ``probe run mailbox-loopback force=true`` maps the guest's own grant.

A death is what Xen logged (``xl dmesg``: triple fault, crash) and the guest gone from ``xl``.
A guest whose memory cannot hold the image says so on its console and powers off: it is counted
as "image did not fit", not as a death.
One JSON line per guest, then a summary per kind, on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from grantscope.lab.errors import LabError
from grantscope.lab.guest import PyGuest

STARTED_AGENT = "starting the agent"
# What the guest's init says, then powers off, when its memory cannot hold the image: not a death
TOO_SMALL = "the image did not fit in this guest's memory"


def selfmap_outcome(stdout: str) -> str:
    """What the self-map probe said, in one line: "ok", or its first failed step and why."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return f"no JSON ({len(stdout)} chars): {stdout[:200]!r}"
    if doc.get("ok"):
        return "ok"
    failed = [s for s in doc.get("steps", []) if not s.get("ok")]
    if failed:
        return f"{failed[0].get('name')}: {str(failed[0].get('explanation'))[:160]}"
    return str(doc.get("error", doc))[:200]


def one_guest(kind: str, memory_mb: int, selfmap: bool) -> dict[str, object]:
    """Boot one guest and walk it through the phases; what happened."""
    record: dict[str, object] = {"kind": kind, "memory": memory_mb}
    started = time.monotonic()
    guest = PyGuest(kind, memory_mb=memory_mb)
    try:
        guest.start()
    except LabError as err:
        # xl create succeeded but the domain was gone before it had a name: it died at once.
        guest.destroy()
        return {**record, "died": "create", "error": err.message[:200],
                "seconds": round(time.monotonic() - started, 1)}
    record["domid"] = guest.domid
    phase = "boot"
    try:
        try:
            guest.wait_ready(timeout=900)
            record["ready_s"] = round(time.monotonic() - started, 1)
            if selfmap:
                phase = "selfmap"
                done = guest.run(["grantscope", "probe", "run", "mailbox-loopback",
                                  "force=true", "--json"], timeout=300)
                record["selfmap_rc"] = done.rc
                record["selfmap"] = selfmap_outcome(done.stdout)
            record["died"] = None if guest.alive() else phase
        except LabError as err:
            alive = guest.alive()
            console = guest.console_log()
            if phase == "boot" and STARTED_AGENT in console:
                phase = "python"
            record["died"] = None if alive or TOO_SMALL in console else phase
            record["too_small"] = TOO_SMALL in console
            record["error"] = err.message[:200]
        record["xen"] = guest.xen_log(lines=6)
    finally:
        guest.destroy()
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="pvh,hvm")
    parser.add_argument("--boots", type=int, default=10)
    parser.add_argument("--memory", type=int, default=512)
    parser.add_argument("--no-selfmap", action="store_true")
    parser.add_argument("--memories", default="",
                        help="comma-separated guest sizes in MiB, run one after another "
                        "(overrides --memory)")
    args = parser.parse_args()
    summary: dict[str, Counter[str]] = {}
    memories = [int(m) for m in args.memories.split(",") if m] or [args.memory]
    for kind, memory in ((k, m) for m in memories for k in args.kinds.split(",")):
        counts = summary.setdefault(f"{kind} memory={memory}", Counter())
        for _ in range(args.boots):
            record = one_guest(kind, memory, not args.no_selfmap)
            counts["guests"] += 1
            counts[f"died:{record['died']}" if record["died"]
                   else "image did not fit" if record.get("too_small") else "survived"] += 1
            print(json.dumps(record), flush=True)
    for kind, counts in summary.items():
        print(f"SUMMARY {kind}: {dict(counts)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
