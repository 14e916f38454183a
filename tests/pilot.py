"""Helpers for the TUI tests: the app on a frozen simulated host, settling, async tests."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from grantscope.host.sim import SimHost
from grantscope.ui.app import GrantscopeApp

FROZEN_AT = 100.0
SIZE = (120, 40)


def make_app(*, theme: str | None = None, readonly: bool = False, big_dir: int = 0,
             live: bool = False, host: SimHost | None = None) -> GrantscopeApp:
    """The app on a simulated host frozen at FROZEN_AT (deterministic screens)."""
    host = host or SimHost(frozen_at=FROZEN_AT, readonly=readonly, big_dir=big_dir)
    return GrantscopeApp(host, theme=theme, readonly=readonly, live=live)


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let workers finish and messages drain (non-live apps have no endless workers)."""
    for _ in range(rounds):
        # a short real pause lets a screen refresh happen (call_after_refresh work, e.g. focus)
        await pilot.pause(0.05)
        workers = [w for w in pilot.app.workers if w.group not in ("xs-watch", "page-sampler")]
        if workers:
            await pilot.app.workers.wait_for_complete(workers)
        await pilot.pause()


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Pause until ``cond()`` holds or ``timeout`` seconds pass; return whether it held."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if cond():
            return True
        await pilot.pause(0.02)
    return cond()


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def`` test in a fresh event loop (no pytest-asyncio in the venv)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def focus_within(app: Any, widget: Any) -> bool:
    """True when the app's focused widget is ``widget`` or inside it (so its keys reach it)."""
    focused = app.focused
    return focused is not None and (focused is widget or widget in focused.ancestors)


async def key_gaps(app: Any, table: Any, end: float, every: float,
                   liveness: float) -> list[float]:
    """Press down/up on ``table`` (a focused DataTable) every ``every`` s until ``end`` (a
    ``time.monotonic()`` value); how long each key took to reach the screen, in s.

    A gap runs from the moment the key event is posted to the app (what the terminal driver's
    thread does with a key it read) to the end of the first screen refresh that shows its
    effect: we wait until the table's cursor has moved (looking every 2 ms, so a gap is over-,
    never under-estimated by up to that), then ask the screen for a callback after its next
    refresh (``call_after_refresh``: Textual runs it once the compositor has rendered the dirty
    widgets, the moved cursor row among them, and sent the frame to the driver).  A key not on
    screen within ``liveness`` s fails: the UI stopped answering.  Used by the storm test in
    the lab and by bench/bench_ui.py on this machine.
    """
    import time

    from textual import events

    gaps: list[float] = []
    while time.monotonic() < end:
        row = table.cursor_row
        key, want = ("down", row + 1) if row == 0 else ("up", row - 1)
        painted = asyncio.Event()
        sent = time.monotonic()
        event = events.Key(key, None)
        event.set_sender(app)
        app.post_message(event)
        while table.cursor_row != want:
            assert time.monotonic() - sent < liveness, \
                f"{key} did not move the cursor in {liveness:g} s"
            await asyncio.sleep(0.002)
        app.screen.call_after_refresh(painted.set)
        await asyncio.wait_for(painted.wait(), liveness)
        gaps.append(time.monotonic() - sent)
        await asyncio.sleep(max(0.0, every - (time.monotonic() - sent)))
    return gaps


async def open_tab(pilot: Any, key: str, pane_type: type[Any], *, focused: bool = False,
                   timeout: float = 120.0) -> Any:
    """Press a tab's number key and return its pane once mounted (tabs mount lazily);
    with ``focused``, also once the focus is inside it, so the pane's own keys reach it."""
    app = pilot.app
    await pilot.press(key)
    assert await wait_for(pilot, lambda: bool(app.query(pane_type)), timeout), pane_type
    pane = app.query_one(pane_type)
    if focused:
        assert await wait_for(pilot, lambda: focus_within(app, pane), timeout), app.focused
    return pane
