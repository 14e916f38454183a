"""The XenStore pane: lazy tree, details, ``/`` filter, ``:`` jump, copy path, live watches."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from grantscope.errors import GrantscopeError
from grantscope.host.base import Host
from grantscope.ui.domains import dom
from grantscope.ui.messages import XsChange, XsChanged
from grantscope.ui.panes.base import TabBody
from grantscope.ui.themes import theme_colour
from grantscope.ui.widgets.xs_tree import NodeData, XsTree
from grantscope.xen.xs_escape import escape_value

FILTER_LIMIT = 200



def unreadable_details(path: str, err: GrantscopeError) -> Text:
    """The details text for a node XenStore refused to read (EACCES in a domU, mostly)."""
    text = Text()
    text.append(path + "\n", style="bold")
    text.append(f"cannot read: {err.message}\n", style="italic")
    text.append("A domU reads only its own home (/local/domain/<domid>) and nodes whose "
                "permissions let it; press : to jump to a path.\n", style="dim")
    return text

class XenStorePane(TabBody, Vertical):
    """Browse the store; values are shown raw (escaped like xenstore-ls) with permissions."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="xenstore.filter"),
        Binding("colon", "jump", "Jump", id="xenstore.jump"),
        Binding("c", "copy_path", "Copy path", id="xenstore.copy"),
        Binding("escape", "close_input", "Close", show=False, id="xenstore.close"),
    ]
    DEFAULT_CSS = """
    XenStorePane #xs-input { display: none; dock: top; }
    XenStorePane #xs-input.visible { display: block; }
    XenStorePane #xs-side { width: 1fr; min-width: 40; padding: 0 1; }
    XenStorePane #xs-details { height: auto; }
    XenStorePane #xs-status { display: none; height: auto; color: $warning; }
    XenStorePane #xs-status.visible { display: block; }
    XenStorePane #xs-results { display: none; height: 1fr; }
    XenStorePane #xs-results.visible { display: block; }
    """

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.mode = ""
        self.selected_path = "/"

    def compose(self) -> ComposeResult:
        yield Input(id="xs-input")
        with Horizontal():
            yield XsTree(self.host, id="xs-tree")
            with Vertical(id="xs-side"):
                yield Static(id="xs-status")
                yield Static(id="xs-details")
                yield OptionList(id="xs-results")

    def on_mount(self) -> None:
        self.query_one("#xs-input", Input).cursor_blink = self.live
        self.show_details("/")
        if self.live:
            self.watch_store()
            self.set_interval(0.5, lambda: self.xs_tree.fade(time.monotonic()))

    @property
    def xs_tree(self) -> XsTree:
        """The tree widget."""
        return self.query_one(XsTree)

    # -- details --------------------------------------------------------------------------
    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeData]) -> None:
        data = event.node.data
        if data is not None and data.more_from < 0:
            self.show_details(data.path)

    @work(exclusive=True, group="xs-details")
    async def show_details(self, path: str) -> None:
        """Read value and permissions of ``path`` in a thread; show them with the raw bytes."""
        self.selected_path = path
        try:
            value, perms = await asyncio.to_thread(
                lambda: (self.host.read(path), self.host.perms(path)))
        except GrantscopeError as err:
            # A domU may not read "/" or other domains' nodes (EACCES): say so, do not crash.
            self._set_details(unreadable_details(path, err))
            return
        text = Text()
        text.append(path + "\n", style="bold")
        if value is None:
            text.append("(no such node)\n", style="italic")
        else:
            text.append("value  ", style="dim")
            text.append(f'"{escape_value(value)}"\n')
            text.append("bytes  ", style="dim")
            text.append(f"{len(value)}\n")
            if value:
                text.append("hex    ", style="dim")
                shown = value[:48].hex(" ")
                text.append(shown + (" …" if len(value) > 48 else "") + "\n")
        if perms is not None:
            text.append("perms  ", style="dim")
            text.append(f"{perms}\n")
            text.append("owner  ", style="dim")
            text.append(f"{dom(self, perms.owner)}, others '{perms.default}'\n")
        self._set_details(text)

    def _set_details(self, content: Text) -> None:
        # The read ran in a thread: the app may have closed meanwhile (quit right after a
        # jump), and a worker that raises on a removed widget fails the whole app.
        found = self.query("#xs-details")
        if found:
            found.first(Static).update(content)

    # -- filter and jump -------------------------------------------------------------------
    def _open_input(self, mode: str, placeholder: str) -> None:
        self.mode = mode
        box = self.query_one("#xs-input", Input)
        box.placeholder = placeholder
        box.value = ""
        box.add_class("visible")
        box.focus()

    def action_filter(self) -> None:
        """``/``: find nodes whose path contains the text (searched in a snapshot)."""
        self._open_input("filter", "filter: paths containing… (Enter)")

    def action_jump(self) -> None:
        """``:``: go to a path."""
        self._open_input("jump", "jump to path, e.g. /local/domain/1/device/vbd (Enter)")

    def action_close_input(self) -> None:
        """Esc: hide the input and the results."""
        self.query_one("#xs-input", Input).remove_class("visible")
        self.query_one("#xs-results", OptionList).remove_class("visible")
        self.xs_tree.focus()

    def action_copy_path(self) -> None:
        """``c``: copy the selected node's path to the clipboard (OSC 52)."""
        self.app.copy_to_clipboard(self.selected_path)
        self.notify(f"copied {self.selected_path}", markup=False)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "xs-input":
            return
        event.stop()
        text = event.value.strip()
        event.input.remove_class("visible")
        if self.mode == "jump":
            await self.jump(text)
        elif text:
            self.run_filter(text)

    async def jump(self, path: str) -> bool:
        """Expand to ``path`` and select it; tell the user when it does not exist."""
        node = await self.xs_tree.jump(path)
        self.xs_tree.focus()
        if node is None:
            self.notify(f"no XenStore node {path!r}", severity="warning", markup=False)
            return False
        return True

    @work(exclusive=True, group="xs-filter")
    async def run_filter(self, text: str) -> None:
        """Search the whole tree (in a thread) and list matching paths."""
        results = self.query_one("#xs-results", OptionList)
        try:
            nodes = await asyncio.to_thread(self.host.xenstore_snapshot)
        except GrantscopeError as err:
            # In a domU the walk of "/" is refused (EACCES): report it in the list.
            results.clear_options()
            results.add_option(Option(f"cannot search: {err.message}", disabled=True))
            results.add_class("visible")
            return
        needle = text.lower()
        hits = [n.path for n in nodes if needle in n.path.lower()]
        results.clear_options()
        for path in hits[:FILTER_LIMIT]:
            results.add_option(Option(path, id=path))
        if len(hits) > FILTER_LIMIT:
            results.add_option(Option(f"… {len(hits) - FILTER_LIMIT} more, refine the filter",
                                      disabled=True))
        if not hits:
            results.add_option(Option(f"nothing matches {text!r}", disabled=True))
        results.add_class("visible")
        results.highlighted = 0
        results.focus()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "xs-results" and event.option.id:
            event.stop()
            await self.jump(event.option.id)

    # -- watches ------------------------------------------------------------------------------
    def show_status(self, text: str) -> None:
        """The line above the details that says the watch was (or is) disconnected."""
        found = self.query("#xs-status")  # the app may be closing (called from the watch thread)
        if found:
            status = found.first(Static)
            status.update(Text(text))
            status.set_class(bool(text), "visible")

    @work(thread=True, exclusive=True, group="xs-watch", exit_on_error=False)
    def watch_store(self) -> None:
        """Follow the whole store: batch changed paths, read them, post at most 10 times/s.

        A lost connection (xenstored restarted, or paused so that a request timed out) is
        shown above the details while it lasts; once the watch is registered again on a new
        connection the line says when it was lost and that changes made meanwhile were missed.
        """
        worker = get_current_worker()
        watch = self.host.watch("/")
        lost_at: str | None = None  # wall-clock time the loss was seen, while disconnected
        try:
            pending: dict[str, None] = {}
            deadline = time.monotonic() + 0.1
            while not worker.is_cancelled:
                # checked before get(): get() itself blocks while it tries to reconnect
                if lost_at is None and not getattr(watch, "connected", True):
                    lost_at = time.strftime("%H:%M:%S")
                    why = getattr(watch, "lost_reason", None) or "lost"
                    self.app.call_from_thread(
                        self.show_status, f"XenStore disconnected at {lost_at} ({why}); "
                        "reconnecting… changes are not seen meanwhile")
                path = watch.get(0.1)
                notice = getattr(watch, "take_notice", lambda: None)()
                if notice is not None:  # reconnected: say so on screen
                    since = f"disconnected at {lost_at}, " if lost_at else ""
                    lost_at = None
                    self.app.call_from_thread(
                        self.show_status, f"XenStore {since}reconnected at "
                        f"{time.strftime('%H:%M:%S')}: {notice}")
                    self.app.call_from_thread(self.notify, notice, title="XenStore",
                                              severity="warning")
                if path is not None and path != "/":
                    pending[path] = None
                if pending and time.monotonic() >= deadline:
                    changes = []
                    for p in pending:
                        try:
                            value = self.host.read(p)
                            kids = bool(self.host.list(p)) if value is not None else False
                        except Exception:  # vanished again between event and read
                            value, kids = None, False
                        changes.append(XsChange(p, value, value is not None, kids))
                    pending.clear()
                    self.post_message(XsChanged(changes))
                if time.monotonic() >= deadline:
                    deadline = time.monotonic() + 0.1
        finally:
            watch.close()

    def on_xs_changed(self, message: XsChanged) -> None:
        style = f"bold {theme_colour(self.app, 'gs-changed', 'yellow')}"
        with self.app.batch_update():
            for ch in message.changes:
                self.xs_tree.apply_change(ch.path, ch.value, ch.exists, ch.has_children, style,
                                          time.monotonic())
        if any(ch.path == self.selected_path for ch in message.changes):
            self.show_details(self.selected_path)

