"""What every tab's pane shares: built from the app, it says when it is mounted and shown and
keeps the domain names the app sends it; and the poll/capture/re-arm loop of the panes that
poll the host (Grants, Events).

A pane never reaches into the app: it posts messages (:class:`PaneMounted` and
:class:`PaneShown` here, the page messages in :mod:`grantscope.ui.messages`) and the app or
its tab answers them; the app sends it messages (:class:`~grantscope.ui.messages.
DomainNamesRead`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from textual import work
from textual.message import Message
from textual.widget import Widget

from grantscope.host.base import Host
from grantscope.ui.messages import DomainNamesRead
from grantscope.ui.panes.feed import MAIN_FEED, Feed, SnapshotPolled

__all__ = ["PaneContext", "PaneMounted", "PaneShown", "PolledPane", "SnapshotPolled", "TabBody"]

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


class PaneMounted(Message):
    """A tab's pane mounted (lazily, after the first paint): the app hands it the requests
    that waited for it (a tab key's analysis, a probe's page, a probe to select)."""

    def __init__(self, pane: TabBody) -> None:
        super().__init__()
        self.pane = pane


class PaneContext(Protocol):
    """What a pane is built from: the app's host and options, and the domain names read so
    far (:class:`grantscope.ui.app.GrantscopeApp`, which builds the tabs)."""

    @property
    def host(self) -> Host: ...

    @property
    def live(self) -> bool: ...

    @property
    def readonly(self) -> bool: ...

    @property
    def domain_names(self) -> Mapping[int, str]: ...


class TabBody(_Widget):
    """The widget a tab shows (a mixin before its container class); :meth:`for_app`
    builds it from the app's host and options.  ``domain_names`` (domid -> name) are the
    app's, as the last :class:`DomainNamesRead` gave them."""

    def __init__(self, host: Host, *, live: bool = True,
                 domain_names: Mapping[int, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.live = live
        self.domain_names: Mapping[int, str] = dict(domain_names or {})

    @classmethod
    def for_app(cls, app: PaneContext) -> TabBody:
        """The pane for ``app`` (a pane needing more than the host and ``live`` overrides)."""
        return cls(app.host, live=app.live, domain_names=app.domain_names)

    def on_mount(self) -> None:
        self.post_message(PaneMounted(self))

    def on_show(self) -> None:
        self.post_message(PaneShown())

    def on_domain_names_read(self, message: DomainNamesRead) -> None:
        # painted with the next poll or analysis, as the pane's other data
        self.domain_names = message.names


class PolledPane(TabBody, Generic[Snap]):
    """A pane that shows host readings taken in a thread while live: its snapshot every
    ``POLL_SECONDS``, and any other feed a subclass adds (:meth:`add_feed`) at its own pace.

    Each feed is one chain of polls: each result re-arms a single timer (a refresh or a
    capture resets it rather than starting a second chain), and one reading of a feed runs
    at a time.  A reading that arrives while the pane is hidden is kept, not painted, and
    painted when the pane shows again.  Subclasses give :meth:`take`, :meth:`capture_now`
    and :meth:`apply`.
    """

    POLL_SECONDS: ClassVar[float] = 2.0
    #: What the notification says while a capture runs.
    CAPTURING: ClassVar[str] = "capturing…"

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.snapshot: Snap | None = None
        self._feeds: dict[str, Feed[Any]] = {}
        # through self at call time: a test (or subclass) may replace take or apply later
        self.add_feed(MAIN_FEED, self.POLL_SECONDS, lambda: self.take(),
                      lambda snap: self.apply(snap))

    def add_feed(self, name: str, seconds: float, take: Callable[[], Any],
                 paint: Callable[[Any], None]) -> None:
        """Poll ``take`` too, every ``seconds``, under the same rules as the snapshot."""
        self._feeds[name] = Feed(name, seconds, take, paint)

    @property
    def pending(self) -> Snap | None:
        """The snapshot taken while hidden, not painted yet."""
        pending: Snap | None = self._feeds[MAIN_FEED].pending
        return pending

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
        for name in self._feeds:
            self.poll_feed(name)

    def poll(self) -> None:
        """Take a snapshot in a thread; its handler paints it and re-arms the next poll."""
        self.poll_feed(MAIN_FEED)

    def poll_feed(self, name: str) -> None:
        """Read the feed ``name`` in a thread; its handler paints it and re-arms its poll."""
        feed = self._feeds[name]
        self.run_worker(partial(self._read, feed), thread=True, exclusive=True, group=name,
                        exit_on_error=False)

    def _read(self, feed: Feed[Any]) -> None:
        reading = feed.read()
        if reading is not None:  # None: the last reading still runs, and will be posted
            self.post_message(SnapshotPolled(reading, feed.name))

    def action_refresh(self) -> None:
        """``r``: poll every feed now."""
        for name in self._feeds:
            self.poll_feed(name)

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
        feed = self._feeds[message.feed]
        feed.pending = message.snapshot
        # hidden (another tab shown): keep it for on_show; a non-live app paints at once
        if self.is_on_screen or not self.live:
            feed.paint_pending()
        if self.live:
            if feed.timer is not None:
                feed.timer.stop()
            feed.timer = self.set_timer(feed.seconds, partial(self.poll_feed, feed.name))

    def on_show(self) -> None:
        # readings that arrived while another tab was shown were kept, not painted
        for feed in self._feeds.values():
            feed.paint_pending()
