"""The header bar: who we are (domid, dom0/domU), the Xen version, backend and read-only badges."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from grantscope.host.base import HostInfo


class HostBar(Static):
    """One line naming the host, with a badge per backend (``xen``, ``replay``, ``SIMULATED``)."""

    DEFAULT_CSS = """
    HostBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, info: HostInfo, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.info = info

    def render(self) -> Text:
        """The header line; badge colours follow the theme."""
        info = self.info
        v = self.app.theme_variables
        text = Text()
        text.append(" grantscope ", style=f"bold {v.get('background', 'black')} on {v['primary']}")
        text.append("  ")
        role = "dom0" if info.is_dom0 else "domU"
        text.append(f"d{info.domid}", style="bold")
        text.append(f" {role} ({info.guest_type})   Xen {info.xen_version}   ")
        if info.backend == "sim":
            badge, colour = " SIMULATED ", v.get("gs-sim", v["secondary"])
        elif info.backend == "replay":
            badge, colour = f" replay: {info.label} ", v["warning"]
        else:
            badge, colour = f" xen: {info.label} ", v["success"]
        text.append(badge, style=f"bold {v.get('background', 'black')} on {colour}")
        if info.readonly:
            text.append("  ")
            ink = v.get("background", "black")
            text.append(" read-only ", style=f"bold {ink} on {v['warning']}")
        return text
