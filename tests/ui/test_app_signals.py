"""q, SIGINT, SIGTERM and SIGHUP quit the TUI alike: a running probe step is cancelled, then
cleaned up, and the exit status says how it ended (0 for q, 128 + the signal's number)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from pilot import SIZE, async_test, make_app, settle, wait_for

from grantscope.host.sim import SimHost
from grantscope.ui.panes.probes import ProbesPane
from grantscope.ui.screens.confirm import ConfirmScreen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, None],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "q"])
def test_signal_during_a_step_quits_after_the_step_and_cleans_up(
        sig: signal.Signals | None) -> None:
    # Imported here, not at collection: tests/unit/test_bundle_cli.py replaces the module.
    from grantscope.cli.tui import exit_on_signals

    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    seen: dict[str, Any] = {}

    @async_test
    async def scenario() -> None:
        with exit_on_signals(app):
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                app.open_probe("offer-page")
                await settle(pilot)
                pane = app.query_one(ProbesPane)
                pane.values = lambda: {"domid": "1", "hold": "60"}  # type: ignore[method-assign]
                await pilot.press("a")
                await settle(pilot)
                if isinstance(app.screen, ConfirmScreen):
                    await pilot.press("y")
                await wait_for(pilot, lambda: pane.run is not None and pane.busy
                               and pane.run.next_index >= 4)
                run = pane.run
                seen["run"] = run
                if sig is None:
                    await pilot.press("q")
                else:
                    os.kill(os.getpid(), sig)
                await wait_for(pilot, lambda: not app.is_running, timeout=10.0)
        seen["return"] = app.return_value

    scenario()
    run = seen["run"]
    # the status run_tui returns (q leaves no return value: 0)
    assert int(seen["return"] or 0) == (0 if sig is None else 128 + sig.value)
    hold = [r for r in run.records if r.name == "hold the offer for the peer"]
    assert hold and not hold[0].ok and "cancelled" in hold[0].explanation
    cleanup = [r for r in run.records if r.phase == "cleanup"]
    assert cleanup and all(r.ok for r in cleanup)
    assert [g for g in host.grants().own if g.owner == "probe"] == []
