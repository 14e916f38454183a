"""The header bar: who we are (domid, dom0/domU), the Xen version, backend and read-only badges."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from grantscope.host.base import HostInfo
from grantscope.safetext import clean
from grantscope.ui.domains import dom
from grantscope.ui.messages import DomainNamesRead
from grantscope.ui.themes import theme_colour


class HostBar(Static):
    """One line naming the host, with a badge per backend (``xen``, ``replay``, ``SIMULATED``)."""

    DEFAULT_CSS = """
    HostBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, info: HostInfo, domain_names: Mapping[int, str],
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.info = info
        self.domain_names = domain_names

    def on_domain_names_read(self, message: DomainNamesRead) -> None:
        self.domain_names = message.names
        self.refresh()

    def render(self) -> Text:
        """The header line; badge colours follow the theme."""
        info = self.info
        ink = theme_colour(self.app, "ansi-background", "black")
        if ink == "default":
            ink = theme_colour(self.app, "background", "black")
        text = Text()
        text.append(" grantscope ", style=f"bold {ink} on {theme_colour(self.app, 'primary')}")
        text.append("  ")
        role = "dom0" if info.is_dom0 else "domU"
        text.append(dom(self, info.domid), style="bold")
        # host or bundle text: escapes shown, never control codes
        text.append(f" {role} ({clean(info.guest_type)})   Xen {clean(info.xen_version)}   ")
        if info.backend == "sim":
            badge, colour = " SIMULATED ", theme_colour(self.app, "gs-sim", "magenta")
        elif info.backend == "replay":
            badge, colour = f" replay: {clean(info.label)} ", theme_colour(self.app, "warning")
        else:
            badge, colour = f" xen: {clean(info.label)} ", theme_colour(self.app, "success")
        text.append(badge, style=f"bold {ink} on {colour}")
        if info.readonly:
            text.append("  ")
            text.append(" read-only ", style=f"bold {ink} on {theme_colour(self.app, 'warning')}")
        return text
