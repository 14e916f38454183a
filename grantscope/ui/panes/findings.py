"""The Findings pane: what ``grantscope report`` finds wrong, one row per finding, details below.

Analysing a live host captures the hypervisor's ``g`` and ``e`` dumps (``xl debug-keys``, which
also empties the console ring), so the pane never analyses on its own: it shows what the host
already has (a bundle's findings, the demo's) and runs a new analysis only on the user's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static
from textual.widgets.data_table import ColumnKey

from grantscope.errors import GrantscopeError
from grantscope.host.base import FindingsSnapshot, Host
from grantscope.model.findings import Finding
from grantscope.model.runs import ref_ranges
from grantscope.safetext import clean
from grantscope.ui.domains import domain_label
from grantscope.ui.messages import FindingsReady
from grantscope.ui.panes.base import TabBody
from grantscope.ui.themes import theme_colour

#: Theme variable per severity (Textual's generated theme colours).
SEVERITY_COLOUR = {"error": "error", "warning": "warning", "info": "primary"}
NOT_ANALYZED = ("No analysis yet. Press a to analyze: it reads XenStore, quota and counters "
                "and captures 'xl debug-keys g' and 'e', as 'grantscope report' does.")


#: Subject keys whose value is a domid: shown with the domain's name (``granter=d1 web01``).
DOMAIN_KEYS = frozenset({"domid", "granter", "mapper", "backend", "frontend"})


def subject_text(subject: dict[str, Any], names: Mapping[int, str] | None = None) -> str:
    """The finding's subject in one short line: ``granter=d1 web01 ref=31 mapper=d2``.

    A list of refs reads as ranges (``refs=8-207``) and is left out when the single ``ref``
    it would repeat is there.  Domids read as :func:`domain_label` (with ``names``).
    """
    parts = []
    for key, value in subject.items():
        if value is None or (key.endswith("s") and key[:-1] in subject):
            continue
        if key in DOMAIN_KEYS and isinstance(value, int) and not isinstance(value, bool):
            value = domain_label(names or {}, value)
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            value = ref_ranges(value).replace(" ", "")
        parts.append(f"{key}={value}")
    return " ".join(parts)


#: From this width on the table has a subject column (below it, the details show it).
WIDE_COLUMNS = 110


class FindingsPane(TabBody, Vertical):
    """A table of findings (worst first) and the selected finding's evidence and action."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "analyze", "Analyze now", id="findings.analyze"),
    ]
    DEFAULT_CSS = """
    FindingsPane > Label { padding: 0 1; color: $text-muted; text-style: bold; }
    FindingsPane #findings-table { height: auto; max-height: 50%; }
    FindingsPane #finding-scroll { height: 1fr; border-top: solid $panel; }
    FindingsPane #finding-details { padding: 0 1; }
    """

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.snapshot: FindingsSnapshot | None = None
        self.busy = False
        self._wide = True

    def compose(self) -> ComposeResult:
        yield Label("Findings", id="findings-label")
        yield DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="finding-scroll"):
            yield Static("", id="finding-details")

    def on_mount(self) -> None:
        self._columns(wide=self.size.width >= WIDE_COLUMNS)
        self.query_one("#finding-details", Static).update(NOT_ANALYZED)
        self.load()

    def _columns(self, wide: bool) -> None:
        """The table's columns: the subject only when there is room for it and the title;
        on a narrow terminal (80 columns) it is in the details below, never cut."""
        table = self.query_one("#findings-table", DataTable)
        self._wide = wide
        table.clear(columns=True)
        # fixed widths so a long subject (paths) cannot push the title off the screen
        widths = (("severity", 8), ("code", 16)) + ((("subject", 30),) if wide else ())
        for label, width in widths:
            table.add_column(label, width=width, key=label)
        table.add_column("finding", key="finding")

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_COLUMNS
        if wide != getattr(self, "_wide", None):
            self._columns(wide)
            if self.snapshot is not None:
                self.apply(self.snapshot)

    @work(thread=True, exclusive=True, group="findings", exit_on_error=False)
    def load(self) -> None:
        """What the host already has (never analyzes: no debug keys are sent)."""
        try:
            snap = self.host.findings()
        except GrantscopeError as err:
            self.app.call_from_thread(self.notify, err.message, severity="warning")
            return
        if snap is not None:
            self.post_message(FindingsReady(snap))

    def action_analyze(self) -> None:
        """``a``: run the system-wide analysis now (on a live host: sends xl debug-keys g/e)."""
        if self.busy:
            self.notify("an analysis is already running")
            return
        self.busy = True
        self.query_one("#findings-label", Label).update("Findings: analyzing…")
        from grantscope.xen.readonly import is_readonly

        self.notify("analyzing: XenStore, quota, counters and "
                    + ("the dumps the console ring holds (--readonly: no debug key)…"
                       if is_readonly() else "'xl debug-keys g' and 'e'…"))
        self.analyze()

    @work(thread=True, exclusive=True, group="findings-analyze", exit_on_error=False)
    def analyze(self) -> None:
        """Run :meth:`Host.analyze` in a thread; failures become a notification."""
        try:
            snap: FindingsSnapshot | None = self.host.analyze()
        except GrantscopeError as err:
            why = err.message + (f": {err.explanation}" if err.explanation else "")
            self.app.call_from_thread(self.notify, why, title="no analysis",
                                      severity="warning")
            snap = None
        except Exception as err:  # a bug in a source must not reach the user as a traceback
            self.app.call_from_thread(self.notify, f"the analysis failed: {err}",
                                      severity="error")
            snap = None
        self.post_message(FindingsReady(snap))

    def on_findings_ready(self, message: FindingsReady) -> None:
        self.busy = False
        if message.snapshot is None:
            self._show_label()
            return
        self.apply(message.snapshot)

    def _show_label(self) -> None:
        snap = self.snapshot
        label = self.query_one("#findings-label", Label)
        if snap is None:
            label.update("Findings: not analyzed yet (a analyzes)")
            return
        n = len(snap.findings)
        counts = ", ".join(
            f"{sum(1 for f in snap.findings if f.severity == s)} {s}"
            for s in ("error", "warning", "info")
            if any(f.severity == s for f in snap.findings)
        )
        label.update(f"Findings: {n}" + (f" ({counts})" if counts else "")
                     + f" from {snap.source}  (a analyzes again)")

    def apply(self, snap: FindingsSnapshot) -> None:
        """Show ``snap``: the table, then the first finding's details."""
        self.snapshot = snap
        names = self.domain_names
        self._show_label()
        table = self.query_one("#findings-table", DataTable)
        with self.app.batch_update():
            table.clear()
            if self._wide:  # as wide as the longest subject, within reason
                longest = max((len(subject_text(f.subject, names)) for f in snap.findings),
                              default=0)
                table.columns[ColumnKey("subject")].width = max(
                    12, min(max(36, self.size.width * 3 // 10), longest))
            for i, f in enumerate(snap.findings):
                colour = theme_colour(self.app, SEVERITY_COLOUR.get(f.severity, "primary"))
                subject = ((Text(clean(subject_text(f.subject, names))),) if self._wide
                           else ())
                table.add_row(Text(f.severity.upper(), style=f"bold {colour}"),
                              Text(clean(f.code)), *subject, Text(clean(f.title)), key=str(i))
        self.show_details(0 if snap.findings else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_details(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.show_details(event.cursor_row)

    def selected(self) -> Finding | None:
        """The finding under the table's cursor, if any."""
        if self.snapshot is None or not self.snapshot.findings:
            return None
        row = self.query_one("#findings-table", DataTable).cursor_row
        return self.snapshot.findings[min(max(row, 0), len(self.snapshot.findings) - 1)]

    def show_details(self, row: int | None) -> None:
        """The evidence and the action of finding ``row`` in full (or what was not checked)."""
        details = self.query_one("#finding-details", Static)
        snap = self.snapshot
        names = self.domain_names
        if snap is None:
            details.update(NOT_ANALYZED)
            return
        # Rich Text, not markup: evidence quotes XenStore values and paths with brackets.
        out = Text()
        if row is not None and 0 <= row < len(snap.findings):
            f = snap.findings[row]
            colour = theme_colour(self.app, SEVERITY_COLOUR.get(f.severity, "primary"))
            out.append(f.severity.upper(), style=f"bold {colour}")
            out.append(" ")
            out.append(clean(f.code), style="bold")
            out.append(f": {clean(f.title)}\n")
            if f.subject:
                out.append("subject: ", style="dim")
                out.append(clean(subject_text(f.subject, names)) + "\n")
            out.append("\nEvidence\n", style="bold")
            for e in f.evidence:  # quotes host or bundle text: escapes shown
                out.append(f"  • {clean(e)}\n")
            out.append("\nWhat to do\n", style="bold")
            out.append(f"  {clean(f.action)}\n")
        else:
            out.append("No findings: nothing the checks look for is wrong.\n")
        if snap.not_checked:
            out.append("\nNot checked\n", style="bold")
            for c in snap.not_checked:
                out.append(f"  - {clean(c)}\n")
        out.rstrip()
        details.update(out)
