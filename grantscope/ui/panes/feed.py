"""One reading a pane polls from the host (a snapshot, the table use): how to take it, how to
paint it, how often, and what arrived while the pane was hidden.  :class:`~grantscope.ui.panes.
base.PolledPane` runs the polls; this module holds the state of each feed and its message."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from textual.message import Message
from textual.timer import Timer

T = TypeVar("T")

#: The feed of the pane's own snapshot (the one ``take``/``apply`` and a capture give).
MAIN_FEED = "poll"


class SnapshotPolled(Message):
    """A new reading of one feed of the pane that took it; a newer reading of the same feed
    replaces it if still queued (another feed's never does)."""

    def __init__(self, snapshot: object, feed: str = MAIN_FEED) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.feed = feed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotPolled) and message.feed == self.feed


class Feed(Generic[T]):
    """A reading taken by ``take`` (in a worker thread, never None) every ``seconds`` and
    shown by ``paint``; ``pending`` holds the one that came while the pane was hidden,
    ``timer`` the next poll."""

    def __init__(self, name: str, seconds: float, take: Callable[[], T],
                 paint: Callable[[T], None]) -> None:
        self.name = name
        self.seconds = seconds
        self.take = take
        self.paint = paint
        self.pending: T | None = None
        self.timer: Timer | None = None
        self._reading = threading.Lock()

    def read(self) -> T | None:
        """Take a reading; None at once when the last one still runs (slow tools on the xen
        host): two alongside would only load the host twice for the same answer."""
        if not self._reading.acquire(blocking=False):
            return None
        try:
            return self.take()
        finally:
            self._reading.release()

    def paint_pending(self) -> None:
        """Paint the reading kept while hidden, if any."""
        reading, self.pending = self.pending, None
        if reading is not None:
            self.paint(reading)
