"""A keyed table on Textual's Line API for rows that change every second (the Events view's IRQs).

Textual's DataTable renders every cell through Rich and drops its whole render cache on each
``update_cell``, so a table whose counters move every poll is rendered in full every second,
and a cursor move re-renders it again.  Profiled in the lab under QEMU TCG that was most of a
key's way to the screen (a bare DataTable answered a key in 42 ms, the Events view in 167 ms
median, 2 s at worst).  Here each row is one cached :class:`Strip`, rebuilt only when its text,
the cursor or the theme changed, and a changed row repaints its own line alone.

Cells are :class:`rich.text.Text` with one style each (what the Events view shows); a column
has a fixed width and the cell's ``justify``.  The API is the part of DataTable's the Events
view and its tests use: ``add_column``, ``add_row``/``update_row``/``remove_row`` by key,
``rows``, ``row_count``, ``get_cell``, ``cursor_row``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from grantscope._compat import slotted_dataclass

GAP = 1  # blank cells between two columns (as DataTable's cell padding)


@slotted_dataclass(frozen=True)
class Column:
    """One column: its key (also its heading) and width in cells."""

    key: str
    width: int


@functools.lru_cache(maxsize=256)
def _parsed(style: str) -> Style:
    return Style.parse(style)


def _signature(cells: tuple[Text, ...]) -> tuple[tuple[str, str, str], ...]:
    """What a row looks like: Text's own ``==`` ignores the style, a fading highlight is one."""
    return tuple((c.plain, str(c.style), c.justify or "") for c in cells)


def _fit(text: str, width: int, justify: str) -> str:
    """``text`` cut or padded to ``width`` cells (its justification decides the side)."""
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 0 else ""
    return text.rjust(width) if justify == "right" else text.ljust(width)


class RowTable(ScrollView, can_focus=True):
    """Rows by key under a fixed heading; a row cursor moved with the arrow keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"row-table--header", "row-table--cursor"}
    DEFAULT_CSS = """
    RowTable { height: 1fr; background: $surface; }
    RowTable > .row-table--header { color: $text; background: $panel; text-style: bold; }
    RowTable > .row-table--cursor { color: $block-cursor-blurred-foreground;
                                   background: $block-cursor-blurred-background; }
    RowTable:focus > .row-table--cursor { color: $block-cursor-foreground;
                                         background: $block-cursor-background;
                                         text-style: $block-cursor-text-style; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = []
        self._rows: dict[str, tuple[Text, ...]] = {}
        self._looks: dict[str, tuple[tuple[str, str, str], ...]] = {}
        self._order: list[str] = []
        self._cursor = 0
        # key -> (what the strip was made from, the strip); cleared with the theme
        self._strips: dict[str, tuple[tuple[object, ...], Strip]] = {}
        self._styles: dict[str, Style] = {}

    # -- content --------------------------------------------------------------------------
    def add_column(self, key: str, *, width: int) -> None:
        """A column at the right end."""
        self.columns.append(Column(key, width))
        self._strips.clear()
        self._resize()

    @property
    def rows(self) -> Mapping[str, tuple[Text, ...]]:
        """Row key -> its cells, in display order (rows are only appended or removed)."""
        return self._rows

    @property
    def row_count(self) -> int:
        """How many rows."""
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        """The index of the row under the cursor."""
        return self._cursor

    def column_end(self, column: str) -> int:
        """The x (in cells, from the table's left edge) where ``column`` ends."""
        end = GAP
        for c in self.columns:
            end += c.width
            if c.key == column:
                return end
            end += GAP
        raise KeyError(column)

    def get_cell(self, key: str, column: str) -> Text:
        """The cell of row ``key`` in column ``column``."""
        index = next(i for i, c in enumerate(self.columns) if c.key == column)
        return self._rows[key][index]

    def add_row(self, *cells: Text, key: str) -> None:
        """A row at the bottom."""
        self._rows[key] = cells
        self._looks[key] = _signature(cells)
        self._order.append(key)
        self._resize()
        self.refresh()

    def update_row(self, key: str, cells: tuple[Text, ...]) -> None:
        """New cells for row ``key``; only its line is repainted, and only if it shows."""
        look = _signature(cells)
        if self._looks.get(key) == look:
            return
        self._rows[key] = cells
        self._looks[key] = look
        self._refresh_row(self._order.index(key))

    def remove_row(self, key: str) -> None:
        """Drop row ``key``."""
        self._order.remove(key)
        del self._rows[key]
        del self._looks[key]
        self._strips.pop(key, None)
        self._cursor = max(0, min(self._cursor, len(self._order) - 1))
        self._resize()
        self.refresh()

    # -- cursor ---------------------------------------------------------------------------
    def move_cursor(self, row: int) -> None:
        """Put the cursor on ``row`` (clamped) and scroll it into view."""
        row = max(0, min(row, len(self._order) - 1))
        if row == self._cursor:
            return
        old, self._cursor = self._cursor, row
        self._refresh_row(old)
        self._refresh_row(row)
        top = int(self.scroll_offset.y)
        visible = max(1, self.size.height - 1)  # the heading takes the first line
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False)

    def action_cursor_up(self) -> None:
        """``up``: the row above."""
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """``down``: the row below."""
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        """``pageup``: a screenful up."""
        self.move_cursor(self._cursor - max(1, self.size.height - 1))

    def action_page_down(self) -> None:
        """``pagedown``: a screenful down."""
        self.move_cursor(self._cursor + max(1, self.size.height - 1))

    def action_first(self) -> None:
        """``home``: the first row."""
        self.move_cursor(0)

    def action_last(self) -> None:
        """``end``: the last row."""
        self.move_cursor(len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        """A click on a row puts the cursor there."""
        if event.y >= 1:
            self.move_cursor(int(self.scroll_offset.y) + event.y - 1)

    # -- painting -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        """Theme or focus changed: cached strips hold old colours."""
        super().notify_style_update()
        self._strips.clear()
        self._styles.clear()

    def on_focus(self) -> None:
        self._strips.clear()  # the cursor's colour depends on the focus
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def _resize(self) -> None:
        width = sum(c.width for c in self.columns) + GAP * (len(self.columns) + 1)
        self.virtual_size = Size(width, len(self._order) + 1)

    def _refresh_row(self, index: int) -> None:
        top = int(self.scroll_offset.y)
        if self.size.height and top <= index < top + self.size.height - 1:
            # the heading is line 0; ScrollView's refresh_line counts from the virtual top
            self.refresh_line(index + 1)

    def _style(self, name: str) -> Style:
        got = self._styles.get(name)
        if got is None:
            base: Style = self.rich_style
            got = base if name == "base" else base + self.get_component_rich_style(name)
            self._styles[name] = got
        return got

    def _strip(self, cells: tuple[Text | str, ...], line_style: Style,
               over: Style | None = None) -> Strip:
        """One line: each cell fitted to its column in the line's style plus its own; ``over``
        (the cursor's) is laid over every cell's style."""
        segs = [Segment(" " * GAP, line_style)]
        for column, cell in zip(self.columns, cells):
            style = line_style
            if isinstance(cell, Text):
                text, justify = cell.plain, cell.justify or "left"
                if cell.style:
                    style = line_style + (_parsed(cell.style) if isinstance(cell.style, str)
                                          else cell.style)
            else:
                text, justify = cell, "left"
            if over is not None:
                style = style + over
            segs.append(Segment(_fit(text, column.width, justify), style))
            segs.append(Segment(" " * GAP, line_style))
        return Strip(segs)

    def render_line(self, y: int) -> Strip:
        """Line 0 is the heading; the rest are rows from the scroll offset down."""
        width = self.size.width
        scroll_x = int(self.scroll_offset.x)
        if y == 0:
            header = self._strip(tuple(c.key for c in self.columns),
                                 self._style("row-table--header"))
            return header.crop_extend(scroll_x, scroll_x + width, self._style("row-table--header"))
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, self._style("base"))
        key = self._order[index]
        on_cursor = index == self._cursor
        made_from = (self._looks[key], on_cursor)
        cached = self._strips.get(key)
        if cached is None or cached[0] != made_from:
            base = self._style("base")
            if on_cursor:
                cursor = self._style("row-table--cursor")
                strip = self._strip(self._rows[key], cursor, over=cursor)
            else:
                strip = self._strip(self._rows[key], base)
            cached = (made_from, strip)
            self._strips[key] = cached
        line_style = self._style("row-table--cursor" if on_cursor else "base")
        return cached[1].crop_extend(scroll_x, scroll_x + width, line_style)
