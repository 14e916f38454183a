"""The session's read-only policy, checked where each effect happens.

``--readonly`` (CLI and TUI) makes the whole process a read-only session.  The checks live
at the effect sites, not in the commands: granting pages (gntalloc), a writable gntdev map,
binding or notifying an event channel, every XenStore request that changes the store
(WRITE, MKDIR, RM, SET_PERMS, ...) and sending a debug key to Xen all call
:func:`refuse_if_readonly` first, so a command that forgets the flag is still refused.

A refusal is a :class:`ReadOnlyError` (a :class:`UsageError`: exit status 2) with one line
naming the action and ``--readonly``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from grantscope.errors import UsageError

__all__ = ["ReadOnlyError", "is_readonly", "readonly_session", "refuse_if_readonly"]

_lock = threading.Lock()
_depth = 0  # >0 while a read-only session is active (sessions may nest in tests)


class ReadOnlyError(UsageError):
    """An action that changes state was attempted in a ``--readonly`` session (exit 2)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"refused: {action} changes state and --readonly is set")
        self.action = action


def is_readonly() -> bool:
    """True while this process runs a ``--readonly`` session."""
    return _depth > 0


def refuse_if_readonly(action: str) -> None:
    """Raise :class:`ReadOnlyError` naming ``action`` when the session is read-only."""
    if _depth > 0:
        raise ReadOnlyError(action)


@contextlib.contextmanager
def readonly_session(enabled: bool = True) -> Iterator[None]:
    """Make the process read-only for the ``with`` block (nothing happens when not ``enabled``).

    The CLI wraps the whole command (and the TUI's whole life) in it; threads started
    inside see the same policy, since it is process-wide rather than per thread.
    """
    global _depth
    if not enabled:
        yield
        return
    with _lock:
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
