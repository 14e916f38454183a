"""The Page view: a live hexdump of a mapped or offered page, its ring header, freeze and save.

A sampler thread reads the page up to 30 times a second into a latest-value slot and posts
nothing; the hexdump's own 30 Hz timer takes the newest sample and repaints changed rows.
So a slow UI never slows the sampler, and a slow page source never blocks the UI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from grantscope.errors import GrantscopeError
from grantscope.host.base import Host
from grantscope.model.ring import decode_ring_header
from grantscope.safefile import write_new_file
from grantscope.ui.domains import name_domids
from grantscope.ui.panes.base import TabBody
from grantscope.ui.widgets.hexdump import LINE_WIDTH, HexDump, LatestSlot

RATE_HZ = 30.0
ALIVE_CHECK_S = 2.0  # how often the sampler asks whether the page's domain still exists
#: Below this width the page list goes above the hexdump: beside it (at most 34 columns) it
#: would leave less than a whole row (LINE_WIDTH) and the scrollbar.
NARROW_BELOW = 34 + LINE_WIDTH + 2
# The granting domain of a page mapped from another domain, as its title names it: the Grants
# tab's "map d5 gref 3", a probe's "map-grant: mapping d5 gref 8".  An offer's dN is the peer
# allowed to map our page, not its owner, so offers do not match.
_MAPPED_FROM = re.compile(r"\b(?:map|mapping) d(\d+)\b")


def page_domid(title: str) -> int | None:
    """The domain a mapped page comes from (its title's ``map dN``), or None."""
    m = _MAPPED_FROM.search(title)
    return int(m.group(1)) if m else None


class RingView(Widget):
    """Two lines for the decoded ring header (the indices, then the counts derived from them);
    updating it repaints only itself (no layout)."""

    DEFAULT_CSS = """
    RingView { height: 2; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = Text()

    def show(self, text: Text) -> None:
        """Replace the text (a Static.update would re-layout the whole screen 30 times/s)."""
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        """The current text."""
        return self.text


class PagePane(TabBody, Vertical):
    """Pick a page on the left; see its bytes, highlighted as they change, on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "freeze", "Freeze/resume", id="page.freeze"),
        Binding("s", "save", "Save page", id="page.save"),
    ]
    DEFAULT_CSS = """
    PagePane #page-list { width: 30%; max-width: 34; min-width: 22; border-right: solid $panel; }
    PagePane #page-title { padding: 0 1; text-style: bold; }
    PagePane.-narrow > Horizontal { layout: vertical; }
    PagePane.-narrow #page-list {
        width: 1fr; max-width: 100%; height: auto; max-height: 5;
        border-right: none; border-bottom: solid $panel;
    }
    """

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.sources: dict[str, tuple[str, Callable[[], bytes], bool]] = {}
        self.current: str | None = None
        self.slot = LatestSlot()
        self.saved_to: Path | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="page-list")
            with Vertical():
                yield Label("no page selected", id="page-title")
                yield RingView(id="ring")
                yield HexDump(id="hexdump")

    def on_resize(self) -> None:
        # the list beside the hexdump leaves it too little room: the list goes above it
        self.set_class(self.size.width < NARROW_BELOW, "-narrow")

    def on_mount(self) -> None:
        for ref in self.host.pages():
            self.add_source(ref.key, ref.title, partial(self.host.read_page, ref.key), ref.ring)
        if self.live:
            self.set_interval(1 / RATE_HZ, self.tick)
        if self.sources:
            self.open(next(iter(self.sources)))

    @property
    def hexdump(self) -> HexDump:
        """The hexdump widget."""
        return self.query_one(HexDump)

    def add_source(
        self, key: str, title: str, read: Callable[[], bytes], ring: bool = False
    ) -> None:
        """Offer a page in the list (host pages, probe mappings and offers)."""
        fresh = key not in self.sources
        title = name_domids(self, title)  # titles say dN: the domain's name follows
        self.sources[key] = (title, read, ring)
        if fresh:
            self.query_one("#page-list", OptionList).add_option(Option(title, id=key))

    def remove_source(self, key: str) -> None:
        """A probe's page went away (cleanup): drop it, stop sampling it."""
        if key not in self.sources:
            return
        del self.sources[key]
        ol = self.query_one("#page-list", OptionList)
        ol.remove_option(key)
        if self.current == key:
            self.current = None
            self.workers.cancel_group(self, "page-sampler")
            self.query_one("#page-title", Label).update(f"{key}: released by cleanup")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "page-list" and event.option.id:
            event.stop()
            self.open(event.option.id)

    def open(self, key: str) -> None:
        """Show the page ``key`` and start sampling it."""
        if key not in self.sources:
            self.notify(f"no page {key!r}", severity="warning", markup=False)
            return
        self.current = key
        title, read, _ = self.sources[key]
        self.hexdump.reset()
        self.hexdump.frozen = False
        self.slot = LatestSlot()
        self.query_one("#page-title", Label).update(title)
        if self.live:
            self.sample(key, read)
        else:
            # tests and snapshots: one sample on the spot, so the screen is deterministic
            self.workers.cancel_group(self, "page-sampler")
            try:
                self.slot.put(1, read(), self.host.clock())
            except Exception as err:
                self.notify(f"page {key}: {err}", severity="error", markup=False)
                return
            self.tick()

    @work(thread=True, exclusive=True, group="page-sampler", exit_on_error=False)
    def sample(self, key: str, read: Callable[[], bytes]) -> None:
        """Read the page into the latest-value slot, at most 30 times a second."""
        worker = get_current_worker()
        seq = 0
        owner = page_domid(self.sources[key][0]) if key in self.sources else None
        checked, gone = 0.0, False
        while not worker.is_cancelled:
            started = time.monotonic()
            try:
                data = read()
            except Exception as err:  # the page went away: tell the UI once, stop
                self.app.call_from_thread(self.notify, f"page {key}: {err}", severity="error")
                return
            seq += 1
            self.slot.put(seq, data, self.host.clock())
            if owner is not None and not gone and started - checked >= ALIVE_CHECK_S:
                checked = started
                if self.host.domain_alive(owner) is False:  # None: cannot tell, say nothing
                    gone = True
                    self.app.call_from_thread(self.show_owner_gone, key, owner)
            time.sleep(max(0.0, 1 / RATE_HZ - (time.monotonic() - started)))

    def show_owner_gone(self, key: str, domid: int) -> None:
        """The domain the page comes from no longer exists: say so in the title, once."""
        if self.current != key or key not in self.sources:
            return
        title = f"{self.sources[key][0]} · d{domid} is gone (destroyed): this mapping " \
            "keeps its page until it is unmapped"
        self.query_one("#page-title", Label).update(title)
        self.notify(f"d{domid}, which granted this page, no longer exists", severity="warning",
                    markup=False)

    def tick(self) -> None:
        """UI timer: show the newest sample and repaint the ring header if it moved."""
        if self.live and not self.hexdump.is_on_screen:
            return  # another tab is shown: nothing to paint (the sampler keeps the slot fresh)
        if self.hexdump.take(self.slot):
            self.show_ring()

    def show_ring(self) -> None:
        """Decode the shared-ring header when the page is a ring (or looks like one)."""
        if self.current is None:
            return
        _, _, ring = self.sources.get(self.current, ("", None, False))
        data = self.hexdump.data
        header = decode_ring_header(data)
        box = self.query_one(RingView)
        if not ring and not (header.plausible() and any(data[:16])):
            box.show(Text())
            return
        # one line for the four indices, one for the counts: each fits in 80 columns, where
        # one long line wrapped at any place and lost its end
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("ring  ", style="bold")
        for name, value in header.as_dict().items():
            if name == "in_flight":
                text.append("\n      ")
            text.append(f"{name} ", style="dim")
            text.append(f"{value}  ")
        if self.hexdump.frozen:
            text.append(" FROZEN", style="bold reverse")
        box.show(text)

    def action_freeze(self) -> None:
        """``f``: stop repainting (the sampler keeps the newest bytes) or resume."""
        self.hexdump.frozen = not self.hexdump.frozen
        self.notify("frozen: press f to resume" if self.hexdump.frozen else "resumed")
        self.show_ring()

    def action_save(self) -> None:
        """``s``: write the bytes on screen to a file in the current directory."""
        if self.current is None:
            self.notify("no page to save", severity="warning")
            return
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.current)
        path = Path.cwd() / f"grantscope-page-{name}-{time.strftime('%Y%m%d-%H%M%S')}.bin"
        try:
            write_new_file(str(path), bytes(self.hexdump.data), "page save")
        except GrantscopeError as err:
            self.notify(f"could not save to {path}: {err.message}", severity="error")
            return
        self.saved_to = path
        self.notify(f"saved {len(self.hexdump.data)} bytes to {path}")
