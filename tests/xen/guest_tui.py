"""Run INSIDE a lab guest (sent by test_guest_types.py as ``python3 -c``): the TUI, headless,
against the guest's real devices: map-grant DOMID GREF through the Probes pane, open the
mapping in the Page view, print what the hexdump shows as one JSON line, clean up.
Every wait that ran out of time is named in "timed_out", and "done" says whether the probe's
run completed: the test asserts both.

argv: DOMID GREF EXPECTED_TEXT
"""
import asyncio
import json
import sys

from textual.pilot import WaitForScreenTimeout

from grantscope.host.xen import XenHost
from grantscope.ui.app import GrantscopeApp
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.probes import ProbesPane
from grantscope.ui.screens.confirm import ConfirmScreen

# Textual's pilot gives the screen 30 s to drain its messages; under TCG a PVH guest's screen
# once needed longer (CI: WaitForScreenTimeout).  Patience, counted: "screen_waits" in the output.
SLOW = {"screen_waits": 0}


async def settle(pilot, delay):
    for _ in range(20):
        try:
            await pilot.pause(delay)
            return
        except WaitForScreenTimeout:
            SLOW["screen_waits"] += 1
    await pilot.pause(delay)


async def press(pilot, key):
    try:
        await pilot.press(key)
    except WaitForScreenTimeout:
        SLOW["screen_waits"] += 1
        await settle(pilot, 0)


async def until(pilot, cond, seconds):
    for _ in range(int(seconds * 10)):
        if cond():
            return True
        await settle(pilot, 0.1)
    return cond()


async def main(domid, gref, want):
    app = GrantscopeApp(XenHost(), live=False)
    out = {"timed_out": []}

    async def wait(name, cond, seconds):
        reached = await until(pilot, cond, seconds)
        if not reached:
            out["timed_out"].append(name)
        return reached

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.5)
        out["hostbar"] = str(app.query_one("#hostbar").render())
        app.open_probe("map-grant")
        await settle(pilot, 0.5)
        pane = app.query_one(ProbesPane)
        pane.query_one("#param-domid").value = domid
        pane.query_one("#param-gref").value = gref
        for _ in range(10):
            if pane.run is not None and pane.run.done:
                break
            await press(pilot, "s")
            await wait("a confirmation or the step's end",
                       lambda: isinstance(app.screen, ConfirmScreen) or not pane.busy, 60)
            if isinstance(app.screen, ConfirmScreen):
                await press(pilot, "y")
            await wait("the step's end", lambda: not pane.busy, 120)
        out["done"] = pane.run is not None and pane.run.done
        out["steps"] = [[r.name, r.ok, r.explanation] for r in pane.run.records] if pane.run else []
        page = app.query_one(PagePane)
        keys = [k for k in page.sources if k.startswith("probe:map-grant:")]
        out["sources"] = keys
        if keys:
            app.open_page(keys[0])
            out["shown"] = await wait("the page's bytes",
                                      lambda: page.hexdump.data.startswith(want), 120)
            out["head"] = page.hexdump.data[:32].hex()

            def rows():
                return ["".join(s.text for s in page.hexdump.render_line(y)) for y in range(2)]

            # the rows are cropped to the widget's width: wait until the Page tab is laid out
            await wait("the Page tab's rows", lambda: want[:16].decode() in rows()[0], 60)
            out["rows"] = rows()
        pane.action_cleanup()
        out["cleaned"] = await wait("the cleanup", lambda: pane.run is None, 60)
    out.update(SLOW)
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].encode()))
