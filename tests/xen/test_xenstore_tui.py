"""The TUI's XenStore pane while the real xenstored is paused (issue 13, item 5).

The pane is open on a path; xenstored is stopped (SIGSTOP) for 10 s and continued.  The pane
must say on screen that it was disconnected, register its watch again, and show a node that
``xenstore-write`` (the C tool) writes after SIGCONT.  The CLI's ``xs watch`` and the client's
reconnect are tested in test_xenstore.py.

Run: ``grantscope lab run -- .venv/bin/pytest tests/xen/test_xenstore_tui.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from pilot import SIZE, async_test, settle, wait_for

pytestmark = pytest.mark.xen

PAUSE = 10.0  # seconds xenstored stays stopped (the 10 s)


def _tool(*argv: str) -> None:
    subprocess.run(argv, capture_output=True, timeout=600, check=True)


@pytest.mark.timeout(1500)  # Textual under QEMU TCG is slow
@async_test
async def test_the_xenstore_pane_survives_xenstored_paused_and_says_so(
        paused_daemon: int) -> None:
    from textual.widgets import Static

    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.xenstore import XenStorePane

    base = f"/grantscope-test-tui-pause-{os.getpid()}"
    _tool("xenstore-write", f"{base}/before", "0")
    try:
        app = GrantscopeApp(XenHost(), live=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            pane = app.query_one(XenStorePane)
            assert await pane.jump(f"{base}/before")
            tree = pane.xs_tree
            status = pane.query_one("#xs-status", Static)

            def says() -> str:
                return str(status.render()) if status.has_class("visible") else ""

            # the watch works before the pause: a node written now appears under the path
            _tool("xenstore-write", f"{base}/first", "1")
            assert await wait_for(pilot, lambda: f"{base}/first" in tree.nodes_by_path, 300)
            assert says() == ""

            os.kill(paused_daemon, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                # The user goes on browsing: moving the cursor reads the node's details, a
                # request xenstored cannot answer.  It times out (the client's 5 s) and ends
                # the connection the watch is on, so the pane says it is disconnected.
                await pilot.press("up")
                seen_while_paused = await wait_for(
                    pilot, lambda: "disconnected at" in says(),
                    max(0.0, PAUSE - 0.3 - (time.monotonic() - stopped)))
                said_while_paused = says()
                seen_after = time.monotonic() - stopped
                await pilot.pause(max(0.0, PAUSE - (time.monotonic() - stopped)))
            finally:
                os.kill(paused_daemon, signal.SIGCONT)
            print(f"while paused the pane said ({seen_after:.1f} s after SIGSTOP): "
                  f"{said_while_paused!r}", flush=True)
            assert seen_while_paused, said_while_paused
            assert "reconnected" not in said_while_paused
            assert "timed out" in said_while_paused  # why it was lost, not just "lost"
            # continued: the watch is registered again and the pane says so (it stays said)
            assert await wait_for(pilot, lambda: "reconnected at" in says(), 300), says()
            print(f"after SIGCONT the pane says: {says()!r}", flush=True)
            assert "disconnected at" in says() and "not seen" in says()

            # a change made now reaches the pane through the watch registered again
            _tool("xenstore-write", f"{base}/after", "written after SIGCONT")
            assert await wait_for(pilot, lambda: f"{base}/after" in tree.nodes_by_path, 300)
            label = str(tree.nodes_by_path[f"{base}/after"].label)
            assert "written after SIGCONT" in label, label
    finally:
        os.kill(paused_daemon, signal.SIGCONT)  # before the cleanup needs xenstored
        _tool("xenstore-rm", base)
