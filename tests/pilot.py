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
