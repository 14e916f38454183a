"""RowTable: the Events view's IRQ table on the Line API (grantscope/ui/widgets/row_table.py)."""

from __future__ import annotations

from typing import Any

from pilot import async_test, settle
from rich.text import Text
from textual.app import App, ComposeResult

from grantscope.ui.widgets.row_table import RowTable


class _One(App[None]):
    def compose(self) -> ComposeResult:
        yield RowTable(id="t")


def _row(n: int, rate: str, style: str = "") -> tuple[Text, ...]:
    return (Text(str(n)), Text(f"irq{n}"), Text(rate, style=style, justify="right"))


async def _table(pilot: Any) -> RowTable:
    table = pilot.app.query_one(RowTable)
    for key, width in (("irq", 4), ("name", 8), ("rate/s", 7)):
        table.add_column(key, width=width)
    for n in range(30):
        table.add_row(*_row(n, "1.0"), key=str(n))
    table.focus()
    await settle(pilot)
    return table


@async_test
async def test_lines_show_the_heading_and_fitted_justified_cells() -> None:
    async with _One().run_test(size=(40, 10)) as pilot:
        table = await _table(pilot)
        assert table.render_line(0).text.startswith(" irq  name     rate/s")
        assert table.render_line(2).text.startswith(" 1    irq1         1.0 ")
        table.update_row("1", (Text("1"), Text("a-very-long-name"), Text("2.5")))
        assert table.render_line(2).text.startswith(" 1    a-very-… 2.5    ")
        assert table.column_end("name") == 1 + 4 + 1 + 8
        assert table.row_count == 30 and list(table.rows)[:2] == ["0", "1"]
        assert table.get_cell("1", "rate/s").plain == "2.5"


@async_test
async def test_an_update_repaints_only_a_row_whose_look_changed() -> None:
    async with _One().run_test(size=(40, 10)) as pilot:
        table = await _table(pilot)
        repainted: list[int] = []
        table.refresh_line = lambda y: repainted.append(y)  # type: ignore[method-assign]
        table.update_row("3", _row(3, "1.0"))  # the same text and style
        assert repainted == []
        table.update_row("3", _row(3, "1.0", style="bold yellow"))  # a highlight: same text
        assert repainted == [4]  # the heading is line 0
        line = table.render_line(4)
        assert any("bold" in str(seg.style) for seg in line if seg.text.strip() == "1.0")
        table.update_row("25", _row(25, "9.0"))  # below the screen: nothing to repaint
        assert repainted == [4]


@async_test
async def test_keys_move_the_cursor_and_scroll_it_into_view() -> None:
    async with _One().run_test(size=(40, 10)) as pilot:
        table = await _table(pilot)
        assert table.cursor_row == 0
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("up", "up", "up")
        assert table.cursor_row == 0  # clamped
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_row == 29
        bottom = table.render_line(table.size.height - 1).text
        assert bottom.startswith(" 29 "), bottom  # scrolled so that the cursor shows
        await pilot.press("home")
        await settle(pilot)
        assert table.cursor_row == 0 and table.render_line(1).text.startswith(" 0 ")
        table.move_cursor(29)
        for n in range(29, 26, -1):
            table.remove_row(str(n))
        assert table.cursor_row == 26 and table.row_count == 27
