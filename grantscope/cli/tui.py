"""``grantscope`` with no command: open the TUI on the chosen backend.

Textual is imported only here, inside :func:`run_tui`, so every other command starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

from grantscope.errors import UsageError
from grantscope.host.base import Host


def make_host(args: argparse.Namespace) -> Host:
    """The simulated host with ``--demo``, else this machine (NoXenError, exit 2, when not Xen)."""
    from grantscope.host.target import target_for

    return target_for(args, "").host()


@contextlib.contextmanager
def exit_on_signals(app: Any) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP quit the app the way ``q`` does, so the same cleanup runs.

    SIGINT is among them because in the TUI Ctrl+C is a key (the terminal is in raw mode):
    a SIGINT comes from ``kill -INT`` or a supervisor, and must not break out of the event
    loop as a KeyboardInterrupt while a probe step runs in its thread.

    The handler only schedules ``app.exit`` on the app's event loop (woken through its
    self-pipe); the probe cleanup then runs when the app unmounts, after the running step
    ended (:meth:`grantscope.probing.engine.ProbeRun.cleanup` waits for it).
    """
    from grantscope.probing.runner import STOP_SIGNALS, signals_handled

    def handler(signum: int, frame: FrameType | None) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app is not running (yet, or any more)
            raise KeyboardInterrupt from None
        loop.call_soon_threadsafe(app.exit, 128 + signum)

    with signals_handled((signal.SIGINT, *STOP_SIGNALS), handler):
        yield


def freeze_startup_objects() -> None:
    """Move what the imports built (modules, classes, functions: kept for the process's life)
    out of the cyclic collector's reach, so that its collections while the first screen is
    built do not walk them again and again.

    Measured with ``bench/bench_ui.py`` (which calls this where :func:`run_tui` does): the
    ``--demo`` first frame came 14 ms sooner after the imports, 93 ms against 107
    (docs/PERFORMANCE.md, "First paint again").
    """
    gc.freeze()


def run_tui(args: argparse.Namespace, host: Host | None = None) -> int:
    """Run the app on ``host`` (else the one the command line names) until the user quits;
    return the exit status.  The host is closed on the way out."""
    host = host if host is not None else make_host(args)
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.themes import theme_names

    theme = getattr(args, "theme", None)
    if theme is not None:
        names = theme_names()
        if theme not in names:
            host.close()
            raise UsageError(f"no theme named {theme!r}", f"Themes: {', '.join(names)}.")
    freeze_startup_objects()
    app = GrantscopeApp(host, theme=theme, readonly=bool(getattr(args, "readonly", False)))
    try:
        with exit_on_signals(app):
            result = app.run()
    finally:
        app.cleanup_probes()  # again, in case the app died before unmounting (idempotent)
        host.close()
    # A crash inside the app (Textual prints its traceback) sets return_code 1 and returns
    # no result: that must not look like a clean quit.
    return app.return_code or int(result or 0)
