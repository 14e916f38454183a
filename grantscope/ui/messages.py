"""Messages: from worker threads to the UI, from panes to the app (a pane never calls into
the app), and from the app to the panes.  Snapshot messages replace older pending ones."""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from grantscope._compat import slotted_dataclass
from grantscope.host.base import FindingsSnapshot


@slotted_dataclass(frozen=True)
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


class PageReleased(Message):
    """A probe's cleanup released the page ``key``: the Page view drops it."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class DomainNamesRead(Message):
    """The app read the domain names again: each pane labels domains with ``names`` from
    now on (domid -> name, as :func:`grantscope.ui.domains.read_domain_names` gives them)."""

    bubble = False  # sent to each widget that shows names; nothing above it wants it

    def __init__(self, names: Mapping[int, str]) -> None:
        super().__init__()
        self.names = names
