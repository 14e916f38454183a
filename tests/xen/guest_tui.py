"""Run INSIDE a lab guest (test_guest_types.py puts it there with ``PyGuest.put_file``):
the TUI, headless, against the guest's real devices: map-grant DOMID GREF through the Probes
pane, open the mapping in the Page view, print what the hexdump shows as one JSON line, clean up.
Every wait that ran out of time is named in "timed_out", and "done" says whether the probe's
run completed: the test asserts both.

argv: DOMID GREF EXPECTED_TEXT
"""
import asyncio
import json
import sys

from textual.pilot import WaitForScreenTimeout
from textual.widgets import Input

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
        # (queried again each time: a query's result is kept once read)
        await wait("the Probes pane",
                   lambda: any(pane.is_mounted for pane in app.query(ProbesPane)), 60)
        pane = app.query_one(ProbesPane)
        await wait("map-grant selected",
                   lambda: pane.probe is not None and pane.probe.name == "map-grant", 60)

        def fill_in():
            # The pane first shows its first probe's form (explain-map: the same fields), and
            # selecting map-grant rebuilds it; values typed into the old form are lost, so
            # fill in until the form map-grant reads holds them.
            boxes = pane.query("#probe-form Input")
            if len(boxes) != len(pane.probe.params) or not all(b.is_mounted for b in boxes):
                return False  # the old form is still going or the new one still coming
            for name, value in (("domid", domid), ("gref", gref)):
                pane.query_one(f"#param-{name}").value = value
            return pane.values().get("domid") == domid and pane.values().get("gref") == gref

        await wait("the map-grant form holding DOMID and GREF", fill_in, 60)
        # A user presses keys once the pane has the focus (it gets it when its tab is shown
        # and laid out); before that, "s" goes to no pane and is lost.  In a field it is text.
        await wait("the Probes pane's focus",
                   lambda: app.focused is not None and pane in app.focused.ancestors_with_self
                   and not isinstance(app.focused, Input), 60)
        def progress():
            return len(pane.run.records) if pane.run is not None else 0

        # Each key waits for its effect (a confirmation, or one more step recorded and the
        # pane idle again) before the next one: a key pressed while a step runs is ignored
        # by design, so pressing ahead of the pane would lose steps on a slow guest.
        for _ in range(10):
            if pane.run is not None and pane.run.done:
                break
            before = progress()
            await press(pilot, "s")
            if not await wait("a confirmation or the step's end",
                              lambda before=before: isinstance(app.screen, ConfirmScreen)
                              or (progress() > before and not pane.busy), 120):
                break
            if isinstance(app.screen, ConfirmScreen):
                await press(pilot, "y")
                if not await wait("the confirmed step's end",
                                  lambda before=before: progress() > before and not pane.busy, 120):
                    break
        out["done"] = pane.run is not None and pane.run.done
        out["log"] = pane.transcript[-20:]
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
