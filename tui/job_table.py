"""A table that draws only the rows in view, so 10,000 jobs cost what 20 do: rows are job ids in
display order, and a row's cells are asked for only when that row is drawn."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.job_rows import Column

CellsOf = Callable[[int], dict[str, Text]]


def header_text(columns: Iterable[Column], sorted_by: str | None = None, arrow: str = "") -> Text:
    """The column labels, the sorted one marked with `arrow` (and underlined)."""
    line = Text(no_wrap=True, end="")
    for column in columns:
        marked = column.key == sorted_by
        label = Text(column.label + (arrow if marked else ""), style="underline" if marked else "")
        if column.right:
            label.align("right", column.width)
        else:
            label.truncate(column.width, overflow="ellipsis", pad=True)
        line.append_text(label)
    return line


def column_at(columns: Iterable[Column], x: int) -> str | None:
    """The key of the column drawn at cell `x` of a row."""
    left = 0
    for column in columns:
        if left <= x < left + column.width:
            return column.key
        left += column.width
    return None


class JobTable(ScrollView, can_focus=True):
    """Rows of jobs with a cursor. The owner keeps the jobs; this keeps their order."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"job-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First", show=False),
        Binding("end,ctrl+end", "last", "Last", show=False),
        Binding("enter", "choose", "Details", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Chosen(Message):
        def __init__(self, job_id: int) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, columns: tuple[Column, ...], cells_of: CellsOf, *, id: str | None = None):
        super().__init__(id=id)
        self.columns = columns
        self.cells_of = cells_of
        self.order: list[int] = []
        self._position: dict[int, int] = {}
        self._strips: dict[int, Strip] = {}
        self._width = sum(c.width for c in columns)
        # (base, cursor) styles: resolving them walks the CSS of every ancestor, too slow to
        # repeat for each line of each frame; they change only when styles do
        self._styles: tuple[Style, Style] | None = None

    def set_columns(self, columns: tuple[Column, ...]) -> None:
        """New column widths (sized to the jobs and the terminal): every row is redrawn."""
        if columns == self.columns:
            return
        self.columns = columns
        self._width = sum(c.width for c in columns)
        self._strips.clear()
        self.virtual_size = Size(self._width, len(self.order))
        self.refresh()

    # -- rows ----------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.order)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._position

    def set_order(self, job_ids: list[int], *, keep_cursor_on: int | None = None) -> None:
        """Show these jobs in this order (after a filter or sort)."""
        self.order = job_ids
        self._position = {job_id: i for i, job_id in enumerate(job_ids)}
        self._strips.clear()
        self.virtual_size = Size(self._width, len(job_ids))
        if keep_cursor_on is not None and keep_cursor_on in self._position:
            self.cursor_row = self._position[keep_cursor_on]
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(job_ids) - 1))
        self.refresh()

    def append_job(self, job_id: int) -> None:
        self._position[job_id] = len(self.order)
        self.order.append(job_id)
        self.virtual_size = Size(self._width, len(self.order))
        self.refresh_line(len(self.order) - 1)

    def remove_job(self, job_id: int) -> None:
        cursor_job = self.cursor_job_id
        self.order.remove(job_id)
        self.set_order(self.order, keep_cursor_on=cursor_job)

    def job_changed(self, job_id: int) -> None:
        """The job's cells changed: redraw its row if it is in view (it is cheap if not)."""
        self._strips.pop(job_id, None)
        position = self._position.get(job_id)
        if position is not None and self._in_view(position):
            self.refresh_line(position)

    def changed_all(self) -> None:
        self._strips.clear()
        self.refresh()

    def visible_job_ids(self) -> list[int]:
        top = int(self.scroll_offset.y)
        return self.order[top : top + self.size.height]

    def _in_view(self, position: int) -> bool:
        top = int(self.scroll_offset.y)
        return top <= position < top + self.size.height

    @property
    def cursor_job_id(self) -> int | None:
        if not self.order:
            return None
        return self.order[min(self.cursor_row, len(self.order) - 1)]

    def cell_text(self, job_id: int, column: str) -> str | None:
        """What the cell shows (for tests and tools); None when the job has no row."""
        if job_id not in self._position:
            return None
        return self.cells_of(job_id)[column].plain.strip()

    # -- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        position = scroll_y + y
        width = self.size.width
        base, cursor = self._line_styles()
        if position >= len(self.order):
            return Strip.blank(width, base)
        job_id = self.order[position]
        strip = self._strips.get(job_id)
        if strip is None:
            strip = self._row_strip(job_id)
            self._strips[job_id] = strip
        if position == self.cursor_row:
            strip = Strip(
                [Segment(t, (s or Style()) + cursor, c) for t, s, c in strip],
                strip.cell_length,
            )
            return strip.crop_extend(scroll_x, scroll_x + width, base + cursor)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _row_strip(self, job_id: int) -> Strip:
        cells = self.cells_of(job_id)
        line = Text(no_wrap=True, end="")
        for column in self.columns:
            text = cells[column.key].copy()
            if column.right:
                text.align("right", column.width)
            else:
                text.truncate(column.width, overflow="ellipsis", pad=True)
            line.append_text(text)
        segments = list(line.render(self.app.console))
        return Strip(segments, self._width).apply_style(self._line_styles()[0])

    def _line_styles(self) -> tuple[Style, Style]:
        if self._styles is None:
            self._styles = (
                self.rich_style,
                self.get_component_rich_style("job-table--cursor"),
            )
        return self._styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._strips.clear()

    def on_focus(self) -> None:
        self._styles = None  # the cursor's colours differ with and without focus
        self.refresh_line(self.cursor_row)

    def on_blur(self) -> None:
        self._styles = None
        self.refresh_line(self.cursor_row)

    # -- cursor --------------------------------------------------------------------------

    def watch_cursor_row(self, old: int, new: int) -> None:
        if not self.order:
            return
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False)
        self.refresh_line(old)
        self.refresh_line(new)

    def _move_to(self, row: int) -> None:
        if self.order:
            self.cursor_row = max(0, min(row, len(self.order) - 1))

    def action_move(self, rows: int) -> None:
        self._move_to(self.cursor_row + rows)

    def action_page(self, pages: int) -> None:
        self._move_to(self.cursor_row + pages * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self.order) - 1)

    def action_choose(self) -> None:
        job_id = self.cursor_job_id
        if job_id is not None:
            self.post_message(self.Chosen(job_id))

    def on_click(self, event: Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.order):
            self.cursor_row = row
            if event.chain >= 2:
                self.action_choose()
