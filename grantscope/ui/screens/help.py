"""The help screen: every key binding of the app and its panes, with its id for keymaps."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from grantscope.model.toolout import ProcessInfo
from grantscope.ui.panes.grants import process_text
from grantscope.ui.tabs import tabs_sentence

INTRO = (
    "grantscope shows Xen grant tables, event channels and XenStore. Tabs: "
    f"{tabs_sentence()}. Ctrl+P opens the command palette (every screen "
    "and probe). The hypervisor tables (Grants h, Events e) and the findings (Findings a) are "
    "captured only when you press their key: on a live dom0 each sends 'xl debug-keys' and "
    "empties the hypervisor console ring. "
    "q quits; in a text field (a probe's parameters, the XenStore filter) Escape leaves it "
    "first. A theme picked from the palette is remembered. "
    "Remap keys in $XDG_CONFIG_HOME/grantscope/keymap.toml (~/.config/grantscope/keymap.toml; "
    "$GRANTSCOPE_KEYMAP overrides): a \\[keys] table of binding id = \"keys\", with the ids "
    "listed here."
)


class HelpScreen(ModalScreen[None]):
    """A table of bindings grouped by where they apply."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss_help", "Close", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-width: 100%; height: 80%; border: thick $primary;
                                  background: $surface; padding: 1 2; }
    """

    def __init__(self, groups: list[tuple[str, list[Binding]]],
                 own: ProcessInfo | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.own = own

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("where")
        table.add_column("key")
        table.add_column("action")
        table.add_column("binding id", style="dim")
        for where, bindings in self.groups:
            for b in bindings:
                table.add_row(where, b.key.replace("question_mark", "?").replace("slash", "/")
                              .replace("colon", ":"), b.description or b.action, b.id or "")
        with VerticalScroll():
            yield Static(INTRO + "\n")
            if self.own is not None:  # plain text: a command line is not markup
                yield Static(Text("grantscope itself: " + process_text(self.own) + "\n"),
                             id="help-own")
            yield Static(table)

    def action_dismiss_help(self) -> None:
        """Close the help."""
        self.dismiss(None)
