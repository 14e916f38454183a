"""The Grants pane: own maps and offers, processes holding gntdev/gntalloc, table use per domain
(gauges), the hypervisor table."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from grantscope.errors import GrantscopeError
from grantscope.host.base import GrantsSnapshot, Host, UsageSnapshot
from grantscope.model.toolout import ProcessInfo
from grantscope.safetext import clean
from grantscope.ui.domains import dom
from grantscope.ui.messages import OpenPage
from grantscope.ui.panes.base import PolledPane
from grantscope.ui.themes import theme_colour
from grantscope.ui.widgets.gauge import gauge

POLL_SECONDS = 2.0
#: Table use is read less often: on the xen host it runs two short tools per domain.
USAGE_SECONDS = 10.0
USAGE_FEED = "usage"
#: From this width on the gauges have bars; below it they are text only (numbers and %).
GAUGE_BARS_FROM = 100
#: A pane lower than this drops its blank lines (the hypervisor table keeps some rows).
SHORT_BELOW = 26
USAGE_TITLE = "Table use per domain (grant frames, maptrack frames, XenStore nodes of quota)"
PROC_HINT = "(the cursor on a process shows its command line, user, start, CPU and memory)"


def process_text(info: ProcessInfo) -> str:
    """One holder in two lines: who runs it, since when and what it costs; its command."""
    parts = [f"{info.pid}:"]
    if info.user:
        parts.append(f"user {info.user}")
    if info.started is not None:
        parts.append("started " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(info.started)))
    if info.cpu_s is not None:
        parts.append(f"CPU {info.cpu_s:.1f} s")
    if info.rss is not None:
        parts.append(f"RSS {info.rss / 2**20:.1f} MiB")
    command = " ".join(info.cmdline) or f"{info.name} (command line not readable)"
    return " ".join(parts[:1]) + " " + " · ".join(parts[1:]) + "\n$ " + command


class GrantsPane(PolledPane[GrantsSnapshot], Vertical):
    """Three tables refreshed by the poll loop of :class:`PolledPane`."""

    POLL_SECONDS = POLL_SECONDS
    CAPTURING = "capturing the hypervisor grant table…"

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.usage: UsageSnapshot | None = None
        # a second feed at its own pace, under the same rules as the grants (not painted
        # while hidden, one chain, refreshed by r)
        self.add_feed(USAGE_FEED, USAGE_SECONDS, self.read_usage, self.show_usage)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_page", "Open page", id="grants.open"),
        Binding("r", "refresh", "Refresh", id="grants.refresh"),
        Binding("h", "capture", "Capture HV table", id="grants.capture"),
    ]
    DEFAULT_CSS = """
    GrantsPane Label { padding: 0 1; color: $text-muted; text-style: bold; }
    GrantsPane DataTable { height: auto; max-height: 12; margin-bottom: 1; }
    GrantsPane #proc-grants { margin-bottom: 0; }
    GrantsPane #hv-grants { height: 1fr; max-height: 100%; }
    GrantsPane #usage { max-height: 7; margin-bottom: 0; }
    /* a short terminal (24 rows): no blank lines, one line of details, rows for the table */
    GrantsPane.-short DataTable { margin-bottom: 0; }
    GrantsPane.-short #proc-details { max-height: 1; margin-bottom: 0; }
    GrantsPane #proc-details { padding: 0 1; margin-bottom: 1; color: $text-muted;
                               height: auto; max-height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield Label("Own mappings and offers  (Enter opens the page)")
        yield DataTable(id="own-grants", cursor_type="row", zebra_stripes=True)
        yield Label("Processes holding /dev/xen/gntdev or /dev/xen/gntalloc")
        yield DataTable(id="proc-grants", cursor_type="row")
        yield Static(PROC_HINT, id="proc-details")
        yield Label(USAGE_TITLE, id="usage-label")
        yield DataTable(id="usage", cursor_type="row")
        yield Label("Hypervisor grant table", id="hv-label")
        yield DataTable(id="hv-grants", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#own-grants", DataTable).add_columns(
            "kind", "peer", "grefs", "access", "made by")
        self.query_one("#proc-grants", DataTable).add_columns(
            "pid", "process", "device", "fds", "mapped pages")
        self.query_one("#hv-grants", DataTable).add_columns(
            "granter", "ref", "mapped by", "flags", "frame")
        self.query_one("#usage", DataTable).add_columns(
            "domain", "grant frames", "maptrack", "XenStore nodes")

    def read_usage(self) -> UsageSnapshot:
        """The table use per domain (in a worker thread: on the xen host it runs tools)."""
        try:
            return self.host.usage()
        except GrantscopeError as err:  # a malformed bundle member: say so, show no gauges
            return UsageSnapshot((), (f"table use: {err.message}",), 0.0)

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT_BELOW, "-short")
        # across GAUGE_BARS_FROM the gauges change form: draw them again at once
        if self.usage is not None:
            self.show_usage(self.usage)

    def show_usage(self, snap: UsageSnapshot) -> None:
        """One row of gauges per domain (bars from GAUGE_BARS_FROM columns, else text)."""
        self.usage = snap
        width = 8 if self.app.size.width >= GAUGE_BARS_FROM else 0
        colours = {"ok": theme_colour(self.app, "success", "green"),
                   "notice": theme_colour(self.app, "warning", "yellow"),
                   "full": theme_colour(self.app, "error", "red")}
        table = self.query_one("#usage", DataTable)
        with self.app.batch_update():
            table.clear()
            for d in snap.domains:
                table.add_row(Text(dom(self, d.domid)),
                              *(gauge(pair, width, colours) for pair in
                                (d.grant_frames, d.maptrack_frames, d.xenstore_entries)),
                              key=str(d.domid))
            label = self.query_one("#usage-label", Label)
            if snap.unavailable:
                label.update(f"{USAGE_TITLE} · {len(snap.unavailable)} not read "
                             "(? cells; the tooltip says why)")
                label.tooltip = "\n".join(clean(u) for u in snap.unavailable)
            else:
                label.update(USAGE_TITLE)
                label.tooltip = None

    def take(self) -> GrantsSnapshot:
        """The host's grants now."""
        return self.host.grants()

    def capture_now(self) -> str:
        """``h``: capture the hypervisor grant table (``xl debug-keys g`` on the xen host)."""
        return self.host.capture_hypervisor_grants()

    def apply(self, snap: GrantsSnapshot) -> None:
        """Show ``snap`` (tables are small; rebuilt inside one batch update when it changed)."""
        old = self.snapshot
        if old is not None and (old.own, old.processes, old.hypervisor) == (
                snap.own, snap.processes, snap.hypervisor):
            self.snapshot = snap
            return
        self.snapshot = snap
        with self.app.batch_update():
            own = self.query_one("#own-grants", DataTable)
            own.clear()
            for i, g in enumerate(snap.own):
                access = "rw" if g.writable else "ro"
                colour = theme_colour(self.app, "gs-grant-rw" if g.writable else "gs-grant-ro")
                # Text, never markup, escapes shown: names come from the host or a bundle.
                own.add_row(Text(clean(g.kind)), Text(dom(self, g.domid)),
                            ",".join(map(str, g.grefs)), Text(access, style=colour),
                            Text(clean(g.owner)), key=f"{i}:{g.page_key}")
            procs = self.query_one("#proc-grants", DataTable)
            procs.clear()
            for p in snap.processes:
                procs.add_row(str(p.pid), Text(clean(p.name)), Text(clean(p.device)), str(p.fds),
                              "?" if p.mapped_pages is None else str(p.mapped_pages))
            hv = self.query_one("#hv-grants", DataTable)
            hv.clear()
            label = self.query_one("#hv-label", Label)
            if snap.hypervisor is None:
                label.update("Hypervisor grant table: not captured "
                             "(h captures it with 'xl debug-keys g'; dom0 only)")
            else:
                label.update(f"Hypervisor grant table ({len(snap.hypervisor)} entries in use)")
                for r in snap.hypervisor:
                    hv.add_row(Text(dom(self, r.granter)), str(r.ref),
                               Text(dom(self, r.mapper)), Text(clean(r.flags)),
                               "" if r.frame is None else f"{r.frame:#x}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "proc-grants" and event.cursor_row >= 0:
            event.stop()
            pid = str(event.data_table.get_row(event.row_key)[0])
            if pid.isdigit():
                self.describe(int(pid))

    @work(thread=True, exclusive=True, group="describe-process", exit_on_error=False)
    def describe(self, pid: int) -> None:
        """Name, command line, user, start, CPU and memory of a holder (psutil, in a thread)."""
        info = self.host.process_info(pid)
        text = process_text(info) if info is not None else f"pid {pid}: no details (gone, " \
            "or this host cannot tell)"
        self.app.call_from_thread(self._show_details, text)

    def _show_details(self, text: str) -> None:
        found = self.query("#proc-details")
        if found:
            found.first(Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "own-grants":
            event.stop()
            self.action_open_page()

    def action_open_page(self) -> None:
        """Enter (or ``o``) on an own grant: show its page in the Page view."""
        if self.snapshot is None or not self.snapshot.own:
            return
        own = self.query_one("#own-grants", DataTable)
        g = self.snapshot.own[min(own.cursor_row, len(self.snapshot.own) - 1)]
        if g.page_key is None:
            self.notify("this grant's bytes cannot be shown", severity="warning")
            return
        self.post_message(OpenPage(g.page_key, f"{g.kind} d{g.domid} gref {g.grefs[0]}"))
