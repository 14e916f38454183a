"""A hexdump of a page on Textual's Line API: 16 bytes a row, changed bytes highlighted and fading.

The widget never reads a device itself.  A sampler (a thread worker of the Page pane) puts the
latest bytes into :class:`LatestSlot`; the widget's own 30 Hz timer takes them, asks
:class:`~grantscope.model.pagediff.ChangeTracker` which rows changed or are fading, and repaints
only those lines.  Strips are cached by (row bytes, fade buckets, theme generation).
"""

from __future__ import annotations

import threading
from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from grantscope.model.pagediff import ROW_BYTES, ChangeTracker

LINE_WIDTH = 8 + 16 * 3 + 2 + 18


class LatestSlot:
    """A lock-protected latest value: the sampler overwrites, the UI reads; nobody waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[int, bytes, float] | None = None

    def put(self, seq: int, data: bytes, at: float) -> None:
        """Store the newest sample (``seq`` increases with every sample)."""
        with self._lock:
            self._value = (seq, data, at)

    def get(self) -> tuple[int, bytes, float] | None:
        """The newest sample or None."""
        with self._lock:
            return self._value


class _RowStyles(NamedTuple):
    """The resolved styles a row is drawn with."""

    base: Style
    offset: Style
    byte: Style
    zero: Style
    ascii: Style
    changed: tuple[Style, ...]


def _printable(b: int) -> str:
    return chr(b) if 0x20 <= b < 0x7F else "."


class HexDump(ScrollView, can_focus=True):
    """The bytes of one page, 16 a row, with a fading highlight on bytes that changed."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hexdump--offset",
        "hexdump--byte",
        "hexdump--zero",
        "hexdump--ascii",
        "hexdump--changed-1",
        "hexdump--changed-2",
        "hexdump--changed-3",
    }
    DEFAULT_CSS = """
    HexDump { height: 1fr; background: $surface; }
    HexDump > .hexdump--offset { color: $gs-offset; }
    HexDump > .hexdump--byte { color: $foreground; }
    HexDump > .hexdump--zero { color: $gs-zero; }
    HexDump > .hexdump--ascii { color: $text-muted; }
    HexDump > .hexdump--changed-1 { color: $gs-changed-dim; }
    HexDump > .hexdump--changed-2 { color: $gs-changed; }
    HexDump > .hexdump--changed-3 { color: $background; background: $gs-changed; text-style: bold; }
    """

    def __init__(self, size: int = 4096, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.tracker = ChangeTracker(size=size)
        self.now = 0.0
        self._cache: dict[tuple[int, bytes, tuple[int, ...]], Strip] = {}
        self._styles: _RowStyles | None = None
        self._last_seq = -1
        self.frozen = False
        self.virtual_size = Size(LINE_WIDTH, size // ROW_BYTES)

    @property
    def data(self) -> bytes:
        """The bytes shown now."""
        return self.tracker.data

    def reset(self, size: int = 4096) -> None:
        """Show a new page: forget the old bytes and highlights."""
        self.tracker = ChangeTracker(size=size)
        self._cache.clear()
        self._last_seq = -1
        self.virtual_size = Size(LINE_WIDTH, size // ROW_BYTES)
        self.refresh()

    def show(self, data: bytes, now: float) -> list[int]:
        """Take new bytes at time ``now``; repaint the rows that changed or fade; return them."""
        self.now = now
        rows = self.tracker.update(data, now)
        # Only the rows on screen, each on its own: a whole-widget refresh would re-render
        # every visible line through Textual's styles cache, changed or not.
        if not self.size.height or len(rows) >= self.tracker.size // ROW_BYTES:
            self.refresh()  # not laid out yet, or a first sight: every line is new
            return rows
        top = int(self.scroll_offset.y)
        bottom = top + self.size.height
        for row in rows:
            if top <= row < bottom:
                self.refresh_line(row)  # virtual line number: ScrollView subtracts the scroll
        return rows

    def take(self, slot: LatestSlot) -> bool:
        """Show the slot's newest sample if it is new and we are not frozen; True if shown."""
        sample = slot.get()
        if sample is None or self.frozen:
            return False
        seq, data, at = sample
        if seq == self._last_seq:
            # no new sample: only the fading rows need repainting
            self.show(self.tracker.data, at if at > self.now else self.now)
            return False
        self._last_seq = seq
        self.show(data, at)
        return True

    def notify_style_update(self) -> None:
        """Theme changed: cached strips hold old colours."""
        super().notify_style_update()
        self._cache.clear()
        self._styles = None

    def render_line(self, y: int) -> Strip:
        """One row: offset, 16 bytes in hex with change highlight, and their ASCII."""
        row = y + int(self.scroll_offset.y)
        if row >= self.tracker.size // ROW_BYTES:
            return Strip.blank(self.size.width, self.rich_style)
        start = row * ROW_BYTES
        chunk = self.tracker.data[start:start + ROW_BYTES]
        buckets = self.tracker.row_buckets(row, self.now)
        key = (row, chunk, buckets)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(start, chunk, buckets)
            if len(self._cache) > 2048:
                self._cache.clear()
            self._cache[key] = strip
        return strip.crop(int(self.scroll_offset.x), int(self.scroll_offset.x) + self.size.width)

    def _row_styles(self) -> _RowStyles:
        """The styles of a row, resolved once per theme (resolving them costs more than a row)."""
        if self._styles is None:
            style = self.get_component_rich_style
            base: Style = self.rich_style
            self._styles = _RowStyles(
                base=base, offset=base + style("hexdump--offset"),
                byte=base + style("hexdump--byte"), zero=base + style("hexdump--zero"),
                ascii=base + style("hexdump--ascii"),
                changed=tuple(base + style(f"hexdump--changed-{n}") for n in (1, 2, 3)))
        return self._styles

    def _render_row(self, start: int, chunk: bytes, buckets: tuple[int, ...]) -> Strip:
        styles = self._row_styles()
        base, byte_style, zero_style = styles.base, styles.byte, styles.zero
        changed, ascii_style = styles.changed, styles.ascii
        segs = [Segment(f"{start:06x}  ", styles.offset)]
        for i, b in enumerate(chunk):
            bucket = buckets[i] if i < len(buckets) else 0
            st = changed[bucket - 1] if bucket else (zero_style if b == 0 else byte_style)
            segs.append(Segment(f"{b:02x}", st))
            segs.append(Segment("  " if i == 7 else " ", base))
        segs.append(Segment(" ", base))
        for i, b in enumerate(chunk):
            bucket = buckets[i] if i < len(buckets) else 0
            segs.append(Segment(_printable(b), changed[bucket - 1] if bucket else ascii_style))
        return Strip(segs)
