"""GrantscopeApp: the header, the tabs of :data:`grantscope.ui.tabs.TABS`, help, palette.

The only layer that imports Textual.  All data comes from a :class:`~grantscope.host.base.Host`
through workers; ``live=False`` (tests, snapshots) loads every view once and starts no timer
or watch, so a frozen simulated host gives identical screens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, TabbedContent, TabPane

from grantscope.host.base import Host
from grantscope.ui.commands import GrantscopeCommands
from grantscope.ui.domains import name_domids, read_domain_names
from grantscope.ui.messages import DomainNamesRead, OpenPage, PageReleased
from grantscope.ui.panes.base import PaneMounted, TabBody
from grantscope.ui.settings import save_theme, saved_theme
from grantscope.ui.tabs import FIRST, TABS, FocusingTabPane, LazyPane, SteadyTabbedContent
from grantscope.ui.themes import DEFAULT_THEME, derived_variables, load_themes
from grantscope.ui.widgets.host_bar import HostBar

if TYPE_CHECKING:
    from grantscope.model.toolout import ProcessInfo
    from grantscope.probing.engine import Probe
    from grantscope.ui.panes.page import PagePane
    from grantscope.ui.panes.probes import ProbesPane

DOMAIN_NAMES_SECONDS = 5.0

Pane = TypeVar("Pane", bound=TabBody)


class GrantscopeApp(App[int]):
    """The interactive diagnostics app for one host."""

    # absolute, so a subclass defined elsewhere (a benchmark, a plugin) still finds it
    CSS_PATH = Path(__file__).with_name("grantscope.tcss")
    TITLE = "grantscope"
    COMMANDS = App.COMMANDS | {GrantscopeCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("f1,question_mark", "help", "Help", key_display="F1", id="app.help"),
        *(Binding(t.key, f"show_tab('{t.id}')", t.title, show=False, id=t.binding_id)
          for t in TABS),
    ]

    def __init__(self, host: Host, *, theme: str | None = None, readonly: bool = False,
                 live: bool = True) -> None:
        super().__init__()
        self.host = host
        self.info = host.info()
        self.readonly = readonly or self.info.readonly
        self.live = live
        self._probes_pane: ProbesPane | None = None
        self._wanted_tab = FIRST.id
        self._tabs_ready = False  # the tab strip composed: a switch can be applied
        # The panes mounted so far, and what waits for a pane still to mount (the tabs but
        # the first mount after the first paint): each runs when its PaneMounted comes.
        self._panes: list[TabBody] = []
        self._waiting: list[tuple[type[TabBody], Callable[[Any], object]]] = []
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
        yield HostBar(self.info, self.domain_names, id="hostbar")
        with SteadyTabbedContent(id="tabs", initial=FIRST.id):
            for spec in TABS:
                with FocusingTabPane(spec):
                    # the other tabs are imported, built and mounted after the first paint
                    yield spec.pane.for_app(self) if spec is FIRST else LazyPane(spec, self)
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
        # a tab key pressed before the tabs were composed is applied now
        self._tabs_ready = True
        self._apply_wanted_tab()
        if self.live:
            self.set_interval(DOMAIN_NAMES_SECONDS, self.refresh_domain_names)
        if self.theme_problems:
            self.notify("; ".join(self.theme_problems), title="theme files skipped",
                        severity="warning")
        # after the first paint: the binding ids come from every pane, and importing the
        # panes not shown is what the first paint skips
        self.call_after_refresh(self._load_keymap)

    def _load_keymap(self) -> None:
        # imported here: the TOML reader is not needed for the first frame
        from grantscope.ui.keymap import keymap_path, load_keymap

        keymap = load_keymap(keymap_path(), binding_ids())
        if keymap.keys:
            self.set_keymap(keymap.keys)
        if keymap.problems:
            self.notify("; ".join(keymap.problems), title="keymap", severity="warning")

    @work(thread=True, exclusive=True, group="domain-names", exit_on_error=False)
    def refresh_domain_names(self) -> None:
        """Read the domain names again (a new domain shows its name at the next poll)."""
        names = read_domain_names(self.host, (self.info.domid,))
        self.call_from_thread(self.tell_domain_names, names)

    def tell_domain_names(self, names: dict[int, str]) -> None:
        """Keep ``names`` and send them to the host bar and every pane mounted (a pane
        mounted later is built with them)."""
        self.domain_names = names
        for widget in (*self.query(HostBar), *self._panes):  # none while the app closes
            widget.post_message(DomainNamesRead(names))

    # -- actions ----------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        """Switch to the tab ``tab`` (an id of :data:`TABS`; the last one asked for wins)."""
        self._wanted_tab = tab
        self._apply_wanted_tab()

    def _apply_wanted_tab(self) -> None:
        # Before the tabs are composed the wish waits for on_mount, which applies the latest
        # one: with keys pressed quickly, only the last key's tab is shown.
        if not self._tabs_ready:
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active != self._wanted_tab:
            self._leave_tab()
            tabs.active = self._wanted_tab

    def _leave_tab(self) -> None:
        # Textual moves the focus off a widget as it hides, to a neighbour in the same
        # (now hidden) tab, and focusing that activates its tab again: the switch would
        # bounce back. With nothing focused the new tab's FocusingTabPane gives the focus.
        focused = self.focused
        if focused is not None and any(isinstance(a, TabPane) for a in focused.ancestors):
            self.set_focus(None)

    def action_help(self) -> None:
        """Show every binding and its id."""
        groups: list[tuple[str, list[Binding]]] = [("anywhere", _bindings(GrantscopeApp))]
        groups.extend((t.title, _bindings(t.pane)) for t in TABS)
        from grantscope.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen(groups, self.own_process()))

    def own_process(self) -> ProcessInfo | None:
        """This TUI's own process through psutil: the help screen shows what it costs."""
        from grantscope.sources.procfs import describe_process

        return describe_process(os.getpid())

    # -- panes that mount later ------------------------------------------------------------
    def when_mounted(self, pane_cls: type[Pane], then: Callable[[Pane], object]) -> None:
        """Run ``then`` on the pane of class ``pane_cls``: now if it is mounted, else when it
        mounts (the panes of the tabs but the first mount after the first paint)."""
        # attached: while the app closes the panes go, and what asks for them then is dropped
        pane = next((p for p in self._panes if isinstance(p, pane_cls) and p.is_attached),
                    None)
        if pane is not None:
            then(pane)
        else:
            self._waiting.append((pane_cls, then))

    def on_pane_mounted(self, message: PaneMounted) -> None:
        pane = message.pane
        if not pane.is_attached:  # removed meanwhile: the app is closing
            return
        self._panes.append(pane)
        from grantscope.ui.panes.probes import ProbesPane  # imported with the pane by now

        if isinstance(pane, ProbesPane):
            # kept so cleanup on quit needs no DOM query while widgets are being removed
            self._probes_pane = pane
        ready = [(cls, then) for cls, then in self._waiting if isinstance(pane, cls)]
        self._waiting = [w for w in self._waiting if w not in ready]
        for _, then in ready:  # in the order they were asked for
            then(pane)

    def probes_pane(self) -> ProbesPane | None:
        """The Probes pane once mounted (it mounts lazily, after the first paint)."""
        return self._probes_pane

    def probe_list(self) -> list[Probe]:
        """The probes shown in the Probes tab (mutating ones are hidden with --readonly)."""
        pane = self.probes_pane()
        return list(pane.probes) if pane is not None else []

    def open_probe(self, name: str) -> None:
        """Show the Probes tab with ``name`` selected."""
        from grantscope.ui.panes.probes import ProbesPane

        self.action_show_tab("probes")
        self.when_mounted(ProbesPane, lambda pane: pane.select_probe(name))

    def analyze_findings(self) -> None:
        """Show the Findings tab and run an analysis (once its pane has mounted)."""
        from grantscope.ui.panes.findings import FindingsPane

        self.action_show_tab("findings")
        self.when_mounted(FindingsPane, lambda pane: pane.action_analyze())

    async def jump_to(self, path: str) -> None:
        """Show the XenStore tab at ``path``."""
        from grantscope.ui.panes.xenstore import XenStorePane

        self.action_show_tab("xenstore")
        await self.query_one(XenStorePane).jump(path)

    def on_open_page(self, message: OpenPage) -> None:
        """Offer a probe's page to the Page view (or show a host page there), once the Page
        pane has mounted (a probe's step can end before it has)."""
        from grantscope.ui.panes.page import PagePane

        self.when_mounted(PagePane, lambda pane: self._open_page(pane, message))

    def _open_page(self, pane: PagePane, message: OpenPage) -> None:
        if message.source is not None:
            src = message.source
            pane.add_source(message.key, message.title, lambda: src.read())  # type: ignore[attr-defined]
            self.notify(f"{name_domids(self, message.title)}: o opens it in the Page view",
                        markup=False)
        else:
            self.action_show_tab("page")
            pane.open(message.key)

    def open_page(self, key: str) -> None:
        """Show the page ``key`` (already offered to the Page view)."""
        from grantscope.ui.panes.page import PagePane

        self.action_show_tab("page")
        self.query_one(PagePane).open(key)

    def on_page_released(self, message: PageReleased) -> None:
        from grantscope.ui.panes.page import PagePane

        for pane in self.query(PagePane):  # none while the app closes (cleanup on quit)
            pane.remove_source(message.key)

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
    classes: list[type] = [GrantscopeApp, *(t.pane for t in TABS)]
    return {b.id for cls in classes for b in _bindings(cls) if b.id}


def _bindings(cls: type) -> list[Binding]:
    return [b for b in Binding.make_bindings(getattr(cls, "BINDINGS", []))]
