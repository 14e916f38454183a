"""The Events pane: Xen rows of /proc/interrupts (rate, sparkline, highlight), own ports, and the
hypervisor-wide port table of the last ``e`` dump (captured only on the user's key)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from grantscope.host.base import EventsSnapshot, Host, HvPort, OwnPort
from grantscope.model.pagediff import fade_bucket
from grantscope.model.rates import RateTracker
from grantscope.safetext import clean
from grantscope.ui.domains import dom
from grantscope.ui.panes.base import PolledPane
from grantscope.ui.themes import theme_colour
from grantscope.ui.widgets.row_table import RowTable

POLL_SECONDS = 1.0
FADE_SECONDS = 3.0
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24


def sparkline(values: list[float], width: int = SPARK_WIDTH, top: float | None = None) -> str:
    """The last ``width`` values as block characters scaled to ``top`` (default: their own
    maximum). The Events table passes one ``top`` for every row, so bars compare across rows."""
    tail = values[-width:]
    top = max(tail, default=0.0) if top is None else top
    if top <= 0:
        return (BARS[0] * len(tail)).rjust(width)
    return "".join(BARS[max(0, min(7, int(v / top * 7.999)))] for v in tail).rjust(width)


def shared_top(histories: list[list[float]], width: int = SPARK_WIDTH) -> float:
    """The one scale of every row's sparkline: the highest rate any row shows."""
    return max((max(h[-width:], default=0.0) for h in histories), default=0.0)


def scale_label(top: float) -> str:
    """The Xen interrupts heading, with the sparklines' shared scale."""
    scale = f"history on one scale: █ = {top:,.1f}/s" if top > 0 else "history: no rates yet"
    return f"Xen interrupts (/proc/interrupts) · {scale}"


class EventsPane(PolledPane[EventsSnapshot], Vertical):
    """Counters per Xen interrupt and per own port, polled once a second."""

    POLL_SECONDS = POLL_SECONDS
    CAPTURING = "capturing the hypervisor event-channel table…"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="events.refresh"),
        Binding("e", "capture", "Capture HV ports", id="events.capture"),
    ]
    DEFAULT_CSS = """
    EventsPane Label { padding: 0 1; color: $text-muted; text-style: bold; }
    EventsPane #irqs-label { width: 1fr; height: 1; }
    EventsPane #irqs { height: 1fr; }
    EventsPane #ports { height: auto; max-height: 8; }
    EventsPane #hv-ports { height: 1fr; }
    """

    def __init__(self, host: Host, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.rates = RateTracker()
        self._shown_ports: tuple[OwnPort, ...] | None = None
        self._shown_hv: tuple[HvPort, ...] | bool | None = False  # False: nothing shown yet
        self._shown_label = ""  # the heading: a poll relabels it only when it changed

    def compose(self) -> ComposeResult:
        yield Label(scale_label(0.0), id="irqs-label")
        # every poll changes some rows: a RowTable repaints those lines alone (a DataTable
        # renders itself whole on any update, which under QEMU TCG delayed keys by seconds)
        yield RowTable(id="irqs")
        yield Label("Own event-channel ports")
        yield DataTable(id="ports", cursor_type="row")
        yield Label("Hypervisor event channels", id="hv-ports-label")
        yield DataTable(id="hv-ports", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        irqs = self.query_one("#irqs", RowTable)
        # rate and history first after the name: they fit in 80 columns, chip and count may not
        for label, width in (("irq", 4), ("name", 18), ("rate/s", 9), ("history", SPARK_WIDTH),
                             ("count", 12), ("chip", 22)):
            irqs.add_column(label, width=width)
        self.query_one("#ports", DataTable).add_columns(
            "port", "kind", "remote", "fired", "owner")
        self.query_one("#hv-ports", DataTable).add_columns(
            "domain", "port", "state", "remote", "pending", "masked", "vcpu", "detail")

    def take(self) -> EventsSnapshot:
        """The host's counters and ports now."""
        return self.host.events()

    def capture_now(self) -> str:
        """``e``: capture the hypervisor port table (``xl debug-keys e`` on the xen host)."""
        return self.host.capture_hypervisor_events()

    def apply(self, snap: EventsSnapshot) -> None:
        """Update rates and rows; a row whose rate moved is highlighted and fades out."""
        self.snapshot = snap
        now = snap.taken_at
        hot = theme_colour(self.app, "gs-changed", "yellow")
        warm = theme_colour(self.app, "gs-changed-dim", "yellow")
        irqs = self.query_one("#irqs", RowTable)
        present = set()
        states = [(row, self.rates.update(row.irq, row.total, now)) for row in snap.interrupts]
        top = shared_top([list(st.history) for _, st in states])
        with self.app.batch_update():
            label = scale_label(top)
            if label != self._shown_label:
                self._shown_label = label
                # one line of fixed width: no re-layout of the whole screen every poll
                self.query_one("#irqs-label", Label).update(label, layout=False)
            for row, st in states:
                key = str(row.irq)
                present.add(key)
                bucket = fade_bucket(now - st.changed_at, FADE_SECONDS)
                style = f"bold {hot}" if bucket >= 2 else (warm if bucket == 1 else "")
                cells = (Text(str(row.irq)), Text(row.name),
                         Text(f"{st.rate:,.1f}", style=style, justify="right"),
                         Text(sparkline(list(st.history), top=top),
                              style=hot if bucket else "green"),
                         Text(f"{row.total:,}", justify="right"), Text(row.chip, style="dim"))
                if key in irqs.rows:
                    irqs.update_row(key, cells)  # repaints that line, if its text changed
                else:
                    irqs.add_row(*cells, key=key)
            for gone in [k for k in irqs.rows if k not in present]:
                irqs.remove_row(gone)
            self.rates.forget_missing({int(k) for k in present})
            # clear() re-lays out the screen: the port tables are rebuilt only when they changed
            if self._shown_ports != snap.ports:
                self._shown_ports = snap.ports
                ports = self.query_one("#ports", DataTable)
                ports.clear()
                for p in snap.ports:
                    ports.add_row(str(p.port), Text(clean(p.kind)),
                                  Text(dom(self, p.remote_domid, p.remote_port)),
                                  str(p.fired), Text(clean(p.owner)))
            if self._shown_hv is False or self._shown_hv != snap.hypervisor:
                self._shown_hv = snap.hypervisor
                self._show_hypervisor(snap.hypervisor)

    def _show_hypervisor(self, rows: tuple[HvPort, ...] | None) -> None:
        table = self.query_one("#hv-ports", DataTable)
        table.clear()
        label = self.query_one("#hv-ports-label", Label)
        if rows is None:
            label.update("Hypervisor event channels: not captured "
                         "(e captures them with 'xl debug-keys e'; dom0 only)")
            return
        domains = len({r.domid for r in rows})
        label.update(f"Hypervisor event channels ({len(rows)} ports in {domains} domains)")
        hot = theme_colour(self.app, "gs-changed", "yellow")
        for r in rows:
            table.add_row(Text(dom(self, r.domid)), str(r.port), Text(clean(r.state)),
                          Text(dom(self, r.remote_domid, r.remote_port)),
                          Text("1", style=f"bold {hot}") if r.pending else "0",
                          "1" if r.masked else "0", str(r.vcpu), Text(clean(r.detail)))

