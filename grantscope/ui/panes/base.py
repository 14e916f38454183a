"""What every tab's pane shares: built from the app, it says when it is shown; and the
poll/capture/re-arm loop of the panes that poll the host (Grants, Events).

A pane never reaches into the app: it posts messages (:class:`PaneShown` here, the page
messages in :mod:`grantscope.ui.messages`) and the app or its tab answers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from textual import work
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget

from grantscope.host.base import Host

Snap = TypeVar("Snap")

# The panes are mixins ahead of their Textual container (``class P(TabBody, Vertical)``):
# Textual takes a widget's CSS type names from its first widget base, so the container's
# CSS (``Vertical { height: 1fr; ... }``) must stay on that line.
if TYPE_CHECKING:
    _Widget = Widget
else:
    _Widget = object


class PaneShown(Message):
    """A tab's pane became visible: its tab gives the focus to the pane's main widget.

    Posted from ``on_show`` (the pane is laid out and its widgets can take the focus), so
    a pane that mounts late (lazily, after the first paint; seconds later under an
    emulator) still gets the focus the moment it appears.
    """


class TabBody(_Widget):
    """The widget a tab shows (a mixin before its container class); :meth:`for_app`
    builds it from the app's host and options."""

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.live = live

    @classmethod
    def for_app(cls, app: Any) -> TabBody:
        """The pane for ``app`` (a pane needing more than the host and ``live`` overrides)."""
        return cls(app.host, live=app.live)

    def on_show(self) -> None:
        self.post_message(PaneShown())


class SnapshotPolled(Message):
    """A new snapshot for the pane that took it; a newer one replaces it if still queued."""

    def __init__(self, snapshot: object) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotPolled)


class PolledPane(TabBody, Generic[Snap]):
    """A pane that shows a host snapshot taken in a thread every ``POLL_SECONDS`` (while live).

    One chain of polls: each result re-arms a single timer (a refresh or a capture resets
    it rather than starting a second chain).  A snapshot that arrives while the pane is
    hidden is kept, not painted, and painted when the pane shows again.  Subclasses give
    :meth:`take`, :meth:`capture_now` and :meth:`apply`.
    """

    POLL_SECONDS: ClassVar[float] = 2.0
    #: What the notification says while a capture runs.
    CAPTURING: ClassVar[str] = "capturing…"

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.snapshot: Snap | None = None
        self.pending: Snap | None = None
        self._next_poll: Timer | None = None

    def take(self) -> Snap:
        """Read a snapshot from the host (in a worker thread)."""
        raise NotImplementedError

    def capture_now(self) -> str:
        """Capture the hypervisor's table (in a worker thread); why it could not, or ''."""
        raise NotImplementedError

    def apply(self, snap: Snap) -> None:
        """Show ``snap``."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.poll()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Take a snapshot in a thread; its handler paints it and re-arms the next poll."""
        self.post_message(SnapshotPolled(self.take()))

    def action_refresh(self) -> None:
        """``r``: poll now."""
        self.poll()

    def action_capture(self) -> None:
        """Capture the hypervisor's table now (on the xen host: ``xl debug-keys``)."""
        self.notify(self.CAPTURING)
        self.capture()

    @work(thread=True, exclusive=True, group="capture", exit_on_error=False)
    def capture(self) -> None:
        """Run the capture in a thread (it spawns xl three times), then take a snapshot."""
        why = self.capture_now()
        if why:
            self.app.call_from_thread(self.notify, why, severity="warning")
        self.post_message(SnapshotPolled(self.take()))

    def on_snapshot_polled(self, message: SnapshotPolled) -> None:
        message.stop()
        self.pending = message.snapshot  # type: ignore[assignment]  # take()'s own type
        # hidden (another tab shown): keep it for on_show; a non-live app paints at once
        if self.is_on_screen or not self.live:
            self._paint_pending()
        if self.live:
            if self._next_poll is not None:
                self._next_poll.stop()
            self._next_poll = self.set_timer(self.POLL_SECONDS, self.poll)

    def on_show(self) -> None:
        # polls that arrived while another tab was shown were kept, not painted
        self._paint_pending()

    def _paint_pending(self) -> None:
        snap, self.pending = self.pending, None
        if snap is not None:
            self.apply(snap)
