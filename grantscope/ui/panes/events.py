"""The Events pane: Xen rows of /proc/interrupts and own ports: rate, sparkline, highlight."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from grantscope.host.base import EventsSnapshot, Host, OwnPort
from grantscope.model.pagediff import fade_bucket
from grantscope.model.rates import RateTracker
from grantscope.ui.messages import EventsPolled
from grantscope.ui.themes import theme_colour

POLL_SECONDS = 1.0
FADE_SECONDS = 3.0
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters scaled to their maximum."""
    tail = values[-width:]
    top = max(tail, default=0.0)
    if top <= 0:
        return (BARS[0] * len(tail)).rjust(width)
    return "".join(BARS[min(7, int(v / top * 7.999))] for v in tail).rjust(width)


class EventsPane(Vertical):
    """Counters per Xen interrupt and per own port, polled once a second."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="events.refresh"),
    ]
    DEFAULT_CSS = """
    EventsPane Label { padding: 0 1; color: $text-muted; text-style: bold; }
    EventsPane #irqs { height: 1fr; }
    EventsPane #ports { height: auto; max-height: 12; }
    """

    def __init__(self, host: Host, *, live: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self.live = live
        self.rates = RateTracker()
        self.snapshot: EventsSnapshot | None = None
        self._shown_ports: tuple[OwnPort, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Label("Xen interrupts (/proc/interrupts)")
        yield DataTable(id="irqs", cursor_type="row")
        yield Label("Own event-channel ports")
        yield DataTable(id="ports", cursor_type="row")

    def on_mount(self) -> None:
        irqs = self.query_one("#irqs", DataTable)
        for label, width in (("irq", 5), ("name", 22), ("chip", 22), ("count", 12),
                             ("rate/s", 10), ("history", SPARK_WIDTH)):
            irqs.add_column(label, width=width, key=label)
        self.query_one("#ports", DataTable).add_columns(
            "port", "kind", "remote", "fired", "owner")
        self.poll()

    @work(thread=True, exclusive=True, group="poll-events", exit_on_error=False)
    def poll(self) -> None:
        """Take a snapshot in a thread; the handler re-arms the next poll."""
        self.post_message(EventsPolled(self.host.events()))

    def action_refresh(self) -> None:
        """``r``: poll now."""
        self.poll()

    def on_events_polled(self, message: EventsPolled) -> None:
        self.apply(message.snapshot)
        if self.live:
            self.set_timer(POLL_SECONDS, self.poll)

    def apply(self, snap: EventsSnapshot) -> None:
        """Update rates and rows; a row whose rate moved is highlighted and fades out."""
        self.snapshot = snap
        now = snap.taken_at
        hot = theme_colour(self.app, "gs-changed", "yellow")
        warm = theme_colour(self.app, "gs-changed-dim", "yellow")
        irqs = self.query_one("#irqs", DataTable)
        present = set()
        with self.app.batch_update():
            for row in snap.interrupts:
                key = str(row.irq)
                present.add(row.irq)
                st = self.rates.update(row.irq, row.total, now)
                bucket = fade_bucket(now - st.changed_at, FADE_SECONDS)
                style = f"bold {hot}" if bucket >= 2 else (warm if bucket == 1 else "")
                cells = (Text(str(row.irq)), Text(row.name), Text(row.chip, style="dim"),
                         Text(f"{row.total:,}", justify="right"),
                         Text(f"{st.rate:,.1f}", style=style, justify="right"),
                         Text(sparkline(list(st.history)), style=hot if bucket else "green"))
                if key in irqs.rows:
                    for col, cell in zip(("count", "rate/s", "history"), cells[3:], strict=True):
                        irqs.update_cell(key, col, cell)
                else:
                    irqs.add_row(*cells, key=key)
            for row_key in [k for k in irqs.rows if int(str(k.value)) not in present]:
                irqs.remove_row(row_key)
            self.rates.forget_missing(set(present))
            if self._shown_ports == snap.ports:
                return
            self._shown_ports = snap.ports
            ports = self.query_one("#ports", DataTable)
            ports.clear()  # clear() re-lays out the screen: only when the ports changed
            for p in snap.ports:
                remote = "-" if p.remote_domid is None else f"d{p.remote_domid}" + (
                    f":{p.remote_port}" if p.remote_port is not None else "")
                ports.add_row(str(p.port), p.kind, remote, str(p.fired), p.owner)
