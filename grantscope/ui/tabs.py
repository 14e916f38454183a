"""The one table of the app's tabs: everything that lists the tabs derives from it.

The tab strip and its panes, the number keys and their binding ids, the focus on a tab
switch, the help screen's groups and text, the command palette's "Show ..." entries and the
snapshot tests all read :data:`TABS`; a new tab is one row here.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import NoScreen
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from grantscope._compat import slotted_dataclass
from grantscope.ui.panes.base import PaneContext, PaneShown, TabBody


# Each pane's module is imported when its tab is first built: the first paint imports only
# the first tab's.
def _xenstore() -> type[TabBody]:
    from grantscope.ui.panes.xenstore import XenStorePane
    return XenStorePane


def _grants() -> type[TabBody]:
    from grantscope.ui.panes.grants import GrantsPane
    return GrantsPane


def _events() -> type[TabBody]:
    from grantscope.ui.panes.events import EventsPane
    return EventsPane


def _page() -> type[TabBody]:
    from grantscope.ui.panes.page import PagePane
    return PagePane


def _probes() -> type[TabBody]:
    from grantscope.ui.panes.probes import ProbesPane
    return ProbesPane


def _findings() -> type[TabBody]:
    from grantscope.ui.panes.findings import FindingsPane
    return FindingsPane


@slotted_dataclass(frozen=True)
class TabSpec:
    """One tab: its id, the key that shows it, its title, its pane (imported on first use
    through ``load``), the widget that takes the focus when it shows (so the pane's keys
    reach it) and one line for the palette."""

    id: str
    key: str
    title: str
    load: Callable[[], type[TabBody]]
    focus: str
    help: str

    @property
    def pane(self) -> type[TabBody]:
        """The pane's class (its module is imported the first time)."""
        return self.load()

    @property
    def label(self) -> str:
        """What the tab strip shows: ``2 Grants``."""
        return f"{self.key} {self.title}"

    @property
    def binding_id(self) -> str:
        """The id of the binding of :attr:`key` (what a keymap names)."""
        return f"app.tab.{self.id}"


TABS: tuple[TabSpec, ...] = (
    TabSpec("xenstore", "1", "XenStore", _xenstore, "#xs-tree",
            "browse the store: values, permissions, watches"),
    TabSpec("grants", "2", "Grants", _grants, "#own-grants",
            "own maps and offers, gntdev holders, hypervisor table, table use per domain"),
    TabSpec("events", "3", "Events", _events, "#irqs",
            "interrupt counters, rates and own ports"),
    TabSpec("page", "4", "Page", _page, "#hexdump",
            "hexdump of a mapped or offered page, ring header"),
    TabSpec("probes", "5", "Probes", _probes, "#probe-list",
            "run probes step by step"),
    TabSpec("findings", "6", "Findings", _findings, "#findings-table",
            "what is wrong on this host: findings, evidence, what to do"),
)

#: The tab shown first (its pane mounts with the app; the others after the first paint).
FIRST = TABS[0]


class LazyPane(Widget):
    """Stands in for a tab's pane until the first paint is done, then imports, builds and
    mounts the pane in its place (Textual's ``Lazy`` needs the pane built, and so imported,
    before the first paint)."""

    DEFAULT_CSS = "LazyPane { display: none; }"

    def __init__(self, spec: TabSpec, context: PaneContext) -> None:
        super().__init__()
        self.spec = spec
        self.context = context

    def on_mount(self) -> None:
        self.call_after_refresh(self._replace)

    async def _replace(self) -> None:
        parent = self.parent
        if not isinstance(parent, Widget):
            return
        await parent.mount(self.spec.pane.for_app(self.context), after=self)
        await self.remove()


BY_ID: dict[str, TabSpec] = {t.id: t for t in TABS}


def tabs_sentence() -> str:
    """``1 XenStore, 2 Grants, ...``: the tabs in the help text."""
    return ", ".join(t.label for t in TABS)


class FocusingTabPane(TabPane):
    """A tab that gives the focus to its pane's main widget each time it shows.

    Two events lead here: the tab itself shows (a tab switch), and its pane shows
    (:class:`PaneShown`: a lazily mounted pane appeared, possibly long after the switch).
    Either way the focus is given after the refresh that laid the widget out, and only
    while this tab is still the current one: focusing a widget activates the tab that
    holds it, so a late focus for a tab the user has left would switch back to it.
    """

    def __init__(self, spec: TabSpec) -> None:
        super().__init__(spec.label, id=spec.id)
        self.spec = spec

    def on_show(self) -> None:
        self.call_after_refresh(self.focus_pane)

    def on_pane_shown(self, message: PaneShown) -> None:
        message.stop()
        self.call_after_refresh(self.focus_pane)

    def focus_pane(self) -> None:
        """Focus the pane's main widget, if this tab is current and the focus is elsewhere."""
        tabs = next((a for a in self.ancestors if isinstance(a, TabbedContent)), None)
        if tabs is None or tabs.active != self.id:
            return
        try:
            screen = self.screen  # this tab's screen, under any dialog on top
        except NoScreen:  # the app is closing
            return
        focused = screen.focused
        if focused is not None and self in focused.ancestors:
            return  # already in this tab (a field the user chose keeps the focus)
        found = self.query(self.spec.focus)
        if found:  # else the pane has not mounted yet: its PaneShown comes when it shows
            # now, not deferred as Widget.focus() is: a key switching tabs in between
            # would otherwise see the focus land in the tab it left, and switch back
            screen.set_focus(found.first())


class SteadyTabbedContent(TabbedContent):
    """TabbedContent that ignores a stale "a widget in this tab got the focus" message.

    Textual switches to the tab of a newly focused widget through a message; when the user
    switched tabs between the focus and that message (a number key right after a tab's pane
    took the focus), obeying it would switch back to the tab just left.  The message counts
    only while the focus is still in its tab.
    """

    def on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        try:
            focused = self.screen.focused
        except NoScreen:
            return
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()  # Textual's own handler would switch tabs
            event.stop()
