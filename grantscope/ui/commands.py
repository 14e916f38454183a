"""Command palette entries: every screen, every probe, and ``/path`` jumps into XenStore."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from grantscope.ui.tabs import TABS

if TYPE_CHECKING:  # the engine is imported with the Probes pane, after the first paint
    from grantscope.probing.engine import Probe


class PaletteTarget(Protocol):
    """What the palette's entries do: the app's actions (:class:`grantscope.ui.app.
    GrantscopeApp`, which lists this provider and so cannot be imported here)."""

    def action_show_tab(self, tab: str) -> None: ...

    def analyze_findings(self) -> None: ...

    def action_help(self) -> None: ...

    def probe_list(self) -> Sequence[Probe]: ...

    def open_probe(self, name: str) -> None: ...

    async def jump_to(self, path: str) -> None: ...


class GrantscopeCommands(Provider):
    """Screens, probes and XenStore jumps."""

    @property
    def target(self) -> PaletteTarget:
        """The app the palette acts on (only GrantscopeApp lists this provider)."""
        return cast(PaletteTarget, self.app)

    def _entries(self) -> list[tuple[str, str, object]]:
        app = self.target
        out: list[tuple[str, str, object]] = [
            (f"Show {t.title}", t.help, partial(app.action_show_tab, t.id)) for t in TABS
        ]
        out.append(("Analyze: findings now", "as 'grantscope report' (on a live host this "
                    "sends xl debug-keys g/e)", app.analyze_findings))
        out.append(("Help: keys and binding ids", "every binding", app.action_help))
        for probe in app.probe_list():
            out.append((f"Probe: {probe.name}", probe.summary,
                        partial(app.open_probe, probe.name)))
        return out

    async def discover(self) -> Hits:
        """All screens and probes, before anything is typed."""
        for text, help_text, cb in self._entries():
            yield DiscoveryHit(text, cb, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        """Fuzzy matches; a query starting with ``/`` also offers a XenStore jump."""
        app = self.target
        if query.startswith("/"):
            yield Hit(1.0, f"Jump to XenStore {query}", partial(app.jump_to, query),
                      help="open the XenStore tab at this path")
        matcher = self.matcher(query)
        for text, help_text, cb in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), cb, help=help_text)  # type: ignore[arg-type]
