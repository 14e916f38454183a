"""Messages from worker threads to the UI.  Snapshot messages replace older pending ones."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from grantscope.host.base import EventsSnapshot, FindingsSnapshot, GrantsSnapshot


@dataclass(frozen=True, slots=True)
class XsChange:
    """A watched path changed: its new value, whether it exists and has children."""

    path: str
    value: bytes | None
    exists: bool
    has_children: bool


class XsChanged(Message):
    """A batch of XenStore watch events (at most one message per 100 ms)."""

    def __init__(self, changes: list[XsChange]) -> None:
        super().__init__()
        self.changes = changes


class GrantsPolled(Message):
    """A new grants snapshot; a newer one replaces it if it was not handled yet."""

    def __init__(self, snapshot: GrantsSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GrantsPolled)


class EventsPolled(Message):
    """A new events snapshot; a newer one replaces it if it was not handled yet."""

    def __init__(self, snapshot: EventsSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsPolled)


class FindingsReady(Message):
    """An analysis finished (``snapshot`` None when it could not run; the user was told why)."""

    def __init__(self, snapshot: FindingsSnapshot | None) -> None:
        super().__init__()
        self.snapshot = snapshot


class OpenPage(Message):
    """Ask the app to show a page in the Page view: a host page key or a probe artifact."""

    def __init__(self, key: str, title: str, source: object | None = None) -> None:
        super().__init__()
        self.key = key
        self.title = title
        self.source = source
