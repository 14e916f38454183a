"""Run INSIDE dom0 (by test_safety.py, under strace): the TUI headless on the xen backend in a
--readonly session, pressing every action a user could try: h (capture the grant table),
e (capture the port table), a (analyze), the Probes tab (no mutating probe is listed).
Prints one JSON line: the notifications shown and what the Probes and Findings tabs hold.
"""
import asyncio
import json
import sys

from grantscope.host.xen import XenHost
from grantscope.ui.app import GrantscopeApp
from grantscope.ui.panes.findings import FindingsPane
from grantscope.xen.readonly import readonly_session

shown = []
_notify = GrantscopeApp.notify


def record(self, message, *args, **kwargs):
    shown.append(str(message))
    return _notify(self, message, *args, **kwargs)


GrantscopeApp.notify = record


async def until(pilot, cond, seconds):
    for _ in range(int(seconds * 10)):
        if cond():
            return True
        await pilot.pause(0.1)
    return cond()


async def main():
    out = {}
    app = GrantscopeApp(XenHost(readonly=True), readonly=True, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.0)
        for tab, key, needle in (("2", "h", "--readonly"), ("3", "e", "--readonly")):
            await pilot.press(tab)
            await pilot.pause(0.5)
            await pilot.press(key)
            await until(pilot, lambda n=needle: any(n in s for s in shown), 300)
        await pilot.press("6")
        await pilot.pause(0.5)
        await pilot.press("a")
        findings = app.query_one(FindingsPane)
        await until(pilot, lambda: findings.snapshot is not None, 600)
        out["findings_source"] = findings.snapshot.source if findings.snapshot else None
        await pilot.press("5")
        await pilot.pause(0.5)
        out["probes"] = [p.name for p in app.probe_list()]
    out["notifications"] = shown
    sys.stdout.write(json.dumps(out) + "\n")


with readonly_session():
    asyncio.run(main())
