"""The XenStore pane's status line when its watch loses the connection and gets it back.

The real behaviour (xenstored stopped for 10 s) is tested in tests/xen/test_xenstore_tui.py;
here a scripted watch on the simulated host shows what each state puts on screen.
"""

from __future__ import annotations

import threading

from pilot import FROZEN_AT, SIZE, async_test, make_app, settle, wait_for

from grantscope.host.sim import SimHost


class ScriptedWatch:
    """A watch whose connection the test drops and restores (``lost`` / ``back``)."""

    def __init__(self) -> None:
        self.connected = True
        self.lost_reason: str | None = None
        self._notices: list[str] = []
        self._event = threading.Event()

    def get(self, timeout: float) -> str | None:
        self._event.wait(timeout)
        return None

    def take_notice(self) -> str | None:
        return self._notices.pop(0) if self._notices else None

    def close(self) -> None:
        self._event.set()

    def lose(self) -> None:
        self.connected, self.lost_reason = False, "a request timed out unanswered"

    def back(self) -> None:
        self.connected, self.lost_reason = True, None
        self._notices.append("XenStore connection lost; reconnected and watching / again: "
                             "changes made while disconnected were not seen")


class ScriptedHost(SimHost):
    def __init__(self) -> None:
        super().__init__(frozen_at=FROZEN_AT)
        self.scripted = ScriptedWatch()

    def watch(self, path: str) -> ScriptedWatch:  # type: ignore[override]
        return self.scripted


@async_test
async def test_the_pane_says_while_disconnected_and_after_reconnecting() -> None:
    host = ScriptedHost()
    app = make_app(host=host, live=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = app.query_one("#xs-status")

        def says() -> str:
            return str(status.render()) if status.has_class("visible") else ""

        assert says() == ""  # connected: nothing to say, the line takes no room
        host.scripted.lose()
        assert await wait_for(pilot, lambda: "disconnected at" in says())
        assert "a request timed out unanswered" in says() and "reconnected" not in says()
        host.scripted.back()
        assert await wait_for(pilot, lambda: "reconnected at" in says())
        assert "disconnected at" in says() and "not seen" in says()
