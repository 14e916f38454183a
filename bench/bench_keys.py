"""Benchmark: how long a key takes to reach the screen, in the lab's dom0, with and without a storm.

Run inside the lab's dom0::

    .venv/bin/grantscope lab run -- .venv/bin/python bench/bench_keys.py

Issue 13 asks that the UI keep answering keys during an event storm, within 200 ms from a key
to its repaint.  The storm test (tests/xen/test_storm_tui.py) proves that every key is
answered and records the gaps; this bench says what they are made of, each for ``--seconds``
of keys (down/up, every 0.5 s, measured as ``tests/pilot.py``'s ``key_gaps`` does):

- ``bare``: a Textual app holding one DataTable of as many rows as dom0's Xen IRQs, nothing
  else: Textual's floor on this emulated CPU;
- ``events``: grantscope's Events view on the real host (it polls every second);
- ``bare+storm``, ``still+storm``, ``events+storm``: while ``xenpeer storm`` notifies a
  loopback port flat out, the bare table, the Events view with its polls stopped after the first
  (``live=False``: no poll, no watch, nothing of grantscope's own running), and the live view.
  ``bare+storm`` against ``events+storm`` separates the storm's share of the emulated CPU from
  grantscope's periodic work; each storm case records the interrupts the kernel counted;
- ``bare+storm19``, ``events+storm19``: the same storm with its sender at nice 19, as a storm
  from a peer domain (which runs on its own vCPUs) would be: the interrupts still reach dom0,
  the sender no longer competes with the UI for dom0's CPU at equal priority.

Nothing is asserted; medians and maxima are printed (and written with ``--json``).  Under QEMU
TCG every figure is many times what the same code takes on hardware: compare the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pilot import key_gaps  # the storm test's measurement

EVERY = 0.5
LIVENESS = 120.0


async def _bare(seconds: float, rows: int) -> list[float]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            table: DataTable[str] = DataTable(cursor_type="row")
            table.add_columns("irq", "count", "rate/s", "chip", "action")
            for i in range(rows):
                table.add_row(str(i), "0", "0.0", "xen-dyn-event", f"evtchn:{i}", key=str(i))
            yield table

    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.0)
        table = app.query_one(DataTable)
        table.focus()
        await pilot.pause(0.5)
        return await key_gaps(app, table, time.monotonic() + seconds, EVERY, LIVENESS)


async def _events(seconds: float, live: bool = True) -> list[float]:
    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.events import EventsPane
    from grantscope.ui.widgets.row_table import RowTable

    app = GrantscopeApp(XenHost(), live=live)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(2.0)
        app.action_show_tab("events")
        deadline = time.monotonic() + 120
        while not app.query(EventsPane) and time.monotonic() < deadline:
            await pilot.pause(0.2)
        table = app.query_one(EventsPane).query_one("#irqs", RowTable)
        while table.row_count == 0 and time.monotonic() < deadline:
            await pilot.pause(0.2)
        table.focus()
        await pilot.pause(1.0)
        return await key_gaps(app, table, time.monotonic() + seconds, EVERY, LIVENESS)


def _xen_irq_rows() -> int:
    lines = Path("/proc/interrupts").read_text().splitlines()
    return sum(1 for line in lines if " xen-" in line)


def _storm_interrupts() -> int:
    """Interrupts the kernel counted so far for the storm's ports (all CPUs)."""
    total = 0
    for line in Path("/proc/interrupts").read_text().splitlines():
        if line.rstrip().endswith("evtchn:xenpeer"):
            total += sum(int(w) for w in line.split(":", 1)[1].split() if w.isdigit())
    return total


def _figures(gaps: list[float]) -> dict[str, Any]:
    ms = sorted(g * 1000 for g in gaps)
    return {"keys": len(ms), "median_ms": round(statistics.median(ms), 1),
            "max_ms": round(ms[-1], 1), "under_200ms": sum(g < 200 for g in ms)}


def _run_storm(peer: str, nice: int, cases: dict[str, Any], out: dict[str, Any]) -> Any:
    """Run ``cases`` while ``xenpeer storm`` runs at ``nice``; each case's figures and the
    interrupts/s the kernel counted go to ``out``; returns the sender's own figures."""
    storm = subprocess.Popen([peer, "storm", "1200"], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.nice(nice))
    try:
        assert storm.stdout is not None
        storm.stdout.readline()  # ready: the port is bound and the sender runs
        for name, case in cases.items():
            before, started = _storm_interrupts(), time.monotonic()
            out[name] = _figures(asyncio.run(case()))
            out[name]["storm_irqs_per_s"] = round(
                (_storm_interrupts() - before) / (time.monotonic() - started))
    finally:
        storm.send_signal(signal.SIGTERM)
        tail, _ = storm.communicate(timeout=120)
    return next((json.loads(line) for line in tail.splitlines() if line.startswith("{")), None)


def main() -> int:
    """Run the seven cases and print their figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    from grantscope.lab.build import current_build

    rows = _xen_irq_rows()
    out: dict[str, Any] = {"xen_irq_rows": rows}
    out["bare"] = _figures(asyncio.run(_bare(args.seconds, rows)))
    out["events"] = _figures(asyncio.run(_events(args.seconds)))
    storm_cases = {"bare+storm": lambda: _bare(args.seconds, rows),
                   "still+storm": lambda: _events(args.seconds, live=False),
                   "events+storm": lambda: _events(args.seconds)}
    # The same storm with its sender (and the receiver it forks) at nice 19: in the field the
    # storm comes from a peer domain running on its own vCPUs; in the lab the sender shares
    # dom0's, and at nice 19 it takes only what the UI leaves (the interrupts still come).
    niced_cases = {"bare+storm19": storm_cases["bare+storm"],
                   "events+storm19": storm_cases["events+storm"]}
    for nice, cases in ((0, storm_cases), (19, niced_cases)):
        sender = _run_storm(str(current_build().peer), nice, cases, out)
        out["storm" if nice == 0 else "storm19"] = sender
    for name in ("bare", "events", *storm_cases, *niced_cases):
        f = out[name]
        rate = f" (storm {f['storm_irqs_per_s']} interrupts/s)" if "storm_irqs_per_s" in f else ""
        print(f"{name:>14}: key to screen median {f['median_ms']:.0f} ms, max "
              f"{f['max_ms']:.0f} ms, {f['under_200ms']} of {f['keys']} under 200 ms{rate}")
    print(f"storm: {out['storm']}; at nice 19: {out['storm19']}; dom0 Xen IRQ rows: {rows}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
