"""GrantscopeApp: the header, six tabs (XenStore, Grants, Events, Page, Probes, Findings), help,
palette.

The only layer that imports Textual.  All data comes from a :class:`~grantscope.host.base.Host`
through workers; ``live=False`` (tests, snapshots) loads every view once and starts no timer
or watch, so a frozen simulated host gives identical screens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding, BindingType
from textual.lazy import Lazy
from textual.widgets import Footer, TabbedContent, TabPane

from grantscope.host.base import Host
from grantscope.ui.commands import GrantscopeCommands
from grantscope.ui.domains import read_domain_names
from grantscope.ui.keymap import keymap_path, load_keymap
from grantscope.ui.messages import OpenPage
from grantscope.ui.panes.events import EventsPane
from grantscope.ui.panes.findings import FindingsPane
from grantscope.ui.panes.grants import GrantsPane
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.probes import ProbesPane
from grantscope.ui.panes.xenstore import XenStorePane
from grantscope.ui.screens.help import HelpScreen
from grantscope.ui.settings import save_theme, saved_theme
from grantscope.ui.themes import DEFAULT_THEME, derived_variables, load_themes
from grantscope.ui.widgets.host_bar import HostBar

TABS = ("xenstore", "grants", "events", "page", "probes", "findings")
# How often and how long to retry focusing a tab's pane that has not mounted yet (30 s).
FOCUS_RETRY_S = 0.05
DOMAIN_NAMES_SECONDS = 5.0
FOCUS_TRIES = 600
FOCUS = {"xenstore": "#xs-tree", "grants": "#own-grants", "events": "#irqs",
         "page": "#hexdump", "probes": "#probe-list", "findings": "#findings-table"}


class GrantscopeApp(App[int]):
    """The interactive diagnostics app for one host."""

    # absolute, so a subclass defined elsewhere (a benchmark, a plugin) still finds it
    CSS_PATH = Path(__file__).with_name("grantscope.tcss")
    TITLE = "grantscope"
    COMMANDS = App.COMMANDS | {GrantscopeCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("f1,question_mark", "help", "Help", key_display="F1", id="app.help"),
        Binding("1", "show_tab('xenstore')", "XenStore", show=False, id="app.tab.xenstore"),
        Binding("2", "show_tab('grants')", "Grants", show=False, id="app.tab.grants"),
        Binding("3", "show_tab('events')", "Events", show=False, id="app.tab.events"),
        Binding("4", "show_tab('page')", "Page", show=False, id="app.tab.page"),
        Binding("5", "show_tab('probes')", "Probes", show=False, id="app.tab.probes"),
        Binding("6", "show_tab('findings')", "Findings", show=False, id="app.tab.findings"),
    ]

    def __init__(self, host: Host, *, theme: str | None = None, readonly: bool = False,
                 live: bool = True) -> None:
        super().__init__()
        self.host = host
        self.info = host.info()
        self.readonly = readonly or self.info.readonly
        self.live = live
        self._probes_pane: ProbesPane | None = None
        self._wanted_tab = "xenstore"
        loaded = load_themes()
        self.theme_problems = loaded.problems
        for t in loaded.themes.values():
            self.register_theme(t)
        self._save_theme_changes = False  # set once mounted: only the user's own picks are saved
        # the theme asked for, else the one the user last chose (if it still exists)
        saved = saved_theme()
        if theme is None and saved is not None and saved in self.available_themes:
            theme = saved
        self.theme = theme or (DEFAULT_THEME if DEFAULT_THEME in loaded.themes else "textual-dark")
        if self.info.backend == "sim":
            self.sub_title = "SIMULATED"
        # read once here (a few XenStore reads) so the first tables already show names;
        # refreshed in a thread while live, for domains started later
        self.domain_names: dict[int, str] = read_domain_names(host, (self.info.domid,))

    def compose(self) -> ComposeResult:
        yield HostBar(self.info, id="hostbar")
        with TabbedContent(id="tabs", initial="xenstore"):
            with TabPane("1 XenStore", id="xenstore"):
                yield XenStorePane(self.host, live=self.live)
            # hidden tabs mount after the first paint (Lazy): the XenStore tree shows sooner
            with TabPane("2 Grants", id="grants"):
                yield Lazy(GrantsPane(self.host, live=self.live))
            with TabPane("3 Events", id="events"):
                yield Lazy(EventsPane(self.host, live=self.live))
            with TabPane("4 Page", id="page"):
                yield Lazy(PagePane(self.host, live=self.live))
            with TabPane("5 Probes", id="probes"):
                yield Lazy(ProbesPane(self.host, readonly=self.readonly, live=self.live))
            with TabPane("6 Findings", id="findings"):
                yield Lazy(FindingsPane(self.host, live=self.live))
        yield Footer()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # grantscope's $gs-* variables for themes that do not set them (every Textual theme)
        return derived_variables(self.current_theme)

    def watch_theme(self, name: str) -> None:
        if self._save_theme_changes:
            problem = save_theme(name)
            if problem:
                self.notify(problem, title="theme", severity="warning")

    def on_mount(self) -> None:
        self._save_theme_changes = True
        self.query_one("#xs-tree").focus()
        if self.live:
            self.set_interval(DOMAIN_NAMES_SECONDS, self.refresh_domain_names)
        if self.theme_problems:
            self.notify("; ".join(self.theme_problems), title="theme files skipped",
                        severity="warning")
        keymap = load_keymap(keymap_path(), binding_ids())
        if keymap.keys:
            self.set_keymap(keymap.keys)
        if keymap.problems:
            self.notify("; ".join(keymap.problems), title="keymap", severity="warning")

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # keys go to the tab's main widget, not to the tab strip
        self._focus_pane(str(event.pane.id))

    def _active_tab(self) -> str | None:
        """The current tab; None while a dialog is up or the app is shutting down (a focus
        retry timer can still fire then)."""
        try:
            found = self.screen.query(TabbedContent)
        except ScreenStackError:  # no screen left: the app is closing
            return None
        return found.first().active if found else None

    def _focus_pane(self, tab: str, tries: int = 0) -> None:
        # Focusing a widget activates the tab that holds it, so a late focus for a tab the
        # user has already left would switch back to it: only the current tab takes focus.
        if tab != self._active_tab():
            return
        target = FOCUS.get(tab)
        found = self.query(target) if target else None
        if found:
            # after the refresh that shows the pane: a widget still hidden cannot take focus
            self.call_after_refresh(self._focus_if_current, tab, found.first(), tries)
        elif target and tries < FOCUS_TRIES:
            # The pane mounts lazily after the first paint: try again shortly, for as long as
            # its tab stays current.  Under an emulator mounting took over a second (seen in
            # the lab), and a pane left unfocused ignores its keys (e, h, a).
            self.set_timer(FOCUS_RETRY_S, lambda: self._focus_pane(tab, tries + 1))

    def _focus_if_current(self, tab: str, widget: Any, tries: int = 0) -> None:
        if tab == self._active_tab():
            widget.focus()
            # A widget not shown yet refuses the focus without a word (seen under QEMU: the
            # pane's keys then went nowhere): look again after the next refresh.
            self.call_after_refresh(self._check_focus, tab, tries)

    def _check_focus(self, tab: str, tries: int) -> None:
        if tab != self._active_tab() or tries >= FOCUS_TRIES:
            return
        pane = self.query_one(f"#{tab}", TabPane)
        focused = self.focused
        if focused is None or (focused is not pane and pane not in focused.ancestors):
            self.set_timer(FOCUS_RETRY_S, lambda: self._focus_pane(tab, tries + 1))

    @work(thread=True, exclusive=True, group="domain-names", exit_on_error=False)
    def refresh_domain_names(self) -> None:
        """Read the domain names again (a new domain shows its name at the next poll)."""
        self.domain_names = read_domain_names(self.host, (self.info.domid,))

    # -- actions ----------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        """Switch to one of the six tabs (the last one asked for wins)."""
        self._wanted_tab = tab
        self._apply_wanted_tab()

    def _apply_wanted_tab(self, tries: int = 0) -> None:
        # Retries read the latest wish, never the tab of the key that scheduled them: with
        # keys pressed quickly, a stale retry would otherwise switch back to an older tab.
        tab = self._wanted_tab
        tabs = self.query_one(TabbedContent)
        if tabs.active != tab:
            tabs.active = tab
        if tabs.active != tab and tries < 20:
            # pressed before the tabs were composed: the switch was dropped, retry shortly
            self.set_timer(0.05, lambda: self._apply_wanted_tab(tries + 1))

    def action_help(self) -> None:
        """Show every binding and its id."""
        groups: list[tuple[str, list[Binding]]] = [("anywhere", _bindings(GrantscopeApp))]
        for name, cls in (("XenStore", XenStorePane), ("Grants", GrantsPane),
                          ("Events", EventsPane), ("Page", PagePane), ("Probes", ProbesPane),
                          ("Findings", FindingsPane)):
            groups.append((name, _bindings(cls)))
        self.push_screen(HelpScreen(groups))

    def register_probes_pane(self, pane: ProbesPane) -> None:
        """Called by the Probes pane when it mounts."""
        self._probes_pane = pane

    def probes_pane(self) -> ProbesPane | None:
        """The Probes pane once mounted (it mounts lazily, after the first paint)."""
        if self._probes_pane is None:
            found = self.query(ProbesPane)
            # kept so cleanup on quit needs no DOM query while widgets are being removed
            self._probes_pane = found.first() if found else None
        return self._probes_pane

    def probe_list(self) -> list[Any]:
        """The probes shown in the Probes tab (mutating ones are hidden with --readonly)."""
        pane = self.probes_pane()
        return list(pane.probes) if pane is not None else []

    def open_probe(self, name: str) -> None:
        """Show the Probes tab with ``name`` selected."""
        self.action_show_tab("probes")
        pane = self.probes_pane()
        if pane is not None:
            pane.select_probe(name)

    def analyze_findings(self, tries: int = 0) -> None:
        """Show the Findings tab and run an analysis (the pane mounts lazily: wait for it)."""
        self.action_show_tab("findings")
        found = self.query(FindingsPane)
        if found:
            found.first().action_analyze()
        elif tries < 20:
            self.set_timer(0.05, lambda: self.analyze_findings(tries + 1))

    async def jump_to(self, path: str) -> None:
        """Show the XenStore tab at ``path``."""
        self.action_show_tab("xenstore")
        await self.query_one(XenStorePane).jump(path)

    def on_open_page(self, message: OpenPage) -> None:
        pane = self.query_one(PagePane)
        if message.source is not None:
            src = message.source
            pane.add_source(message.key, message.title, lambda: src.read())  # type: ignore[attr-defined]
            self.notify(f"{message.title}: o opens it in the Page view", markup=False)
        else:
            self.action_show_tab("page")
            pane.open(message.key)

    def open_page(self, key: str) -> None:
        """Show the page ``key`` (already offered to the Page view)."""
        self.action_show_tab("page")
        self.query_one(PagePane).open(key)

    def remove_page(self, key: str) -> None:
        """A probe released the page ``key``."""
        self.query_one(PagePane).remove_source(key)

    def cleanup_probes(self) -> None:
        """Release every grant and port a probe run still holds (idempotent)."""
        pane = self._probes_pane  # no query: this runs while the DOM is torn down
        if pane is not None and pane.run is not None:
            run, pane.run = pane.run, None
            run.cleanup()

    def on_unmount(self) -> None:
        # cleanup on quit, whatever way the app ends (q, Ctrl+C, an error)
        self.cleanup_probes()
        self.host.close()


def binding_ids() -> set[str]:
    """Every binding id of the app and its panes (what a keymap may name)."""
    classes = (GrantscopeApp, XenStorePane, GrantsPane, EventsPane, PagePane, ProbesPane,
               FindingsPane)
    return {b.id for cls in classes for b in _bindings(cls) if b.id}


def _bindings(cls: type) -> list[Binding]:
    return [b for b in Binding.make_bindings(getattr(cls, "BINDINGS", []))]
