"""The xterm-like screen model: pyte's Screen plus what pyte lacks.

References: the xterm "ctlseqs" document (private modes 47/1047/1049 for the alternate screen, 3 for
DECCOLM, DSR 6 cursor report, DA), VT220 (DECSC/DECRC, charsets G0/G1) and ECMA-48 §8.3 (ED, EL, SU, SD,
REP). pyte (0.8) supplies the cell grid and most cursor and erase operations; this subclass adds the
alternate screen, bounded scrollback, background-colour erase, xterm-style resize, replies through a
callback, and fast paths for drawing ASCII text and scrolling.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes as pyte_modes
from pyte.charsets import LAT1_MAP
from pyte.screens import Char, StaticDefaultDict
from wcwidth import wcwidth

from sshtui.ui.terminal.vt_parser import DEFAULT_COLOUR, sgr_changes

Row = StaticDefaultDict[int, Char]

ALTERNATE_SCREEN_MODES = frozenset({47, 1047, 1049})
DECCOLM = 3
SAVED_CURSOR_LIMIT = 16
CELL_CACHE_LIMIT = 512
SGR_CACHE_LIMIT = 4096

PRIMARY_DEVICE_ATTRIBUTES = "\x1b[?62;22c"  # VT220 with ANSI colour: what ncurses apps expect of xterm.

class _CellCache(dict[str, Char]):
    """The cells one set of attributes produces, so drawing text allocates nothing per character."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, data: str) -> Char:
        cell = self.attrs._replace(data=data)
        self[data] = cell
        return cell


class XtermScreen(pyte.Screen):
    """pyte's screen with the alternate screen, bounded scrollback, replies and xterm's edge cases."""

    def __init__(
        self,
        columns: int,
        lines: int,
        *,
        scrollback: int = 10_000,
        on_reply: Callable[[str], None] | None = None,
        on_title: Callable[[str], None] | None = None,
        on_bell: Callable[[], None] | None = None,
    ) -> None:
        self.history: deque[Row] = deque(maxlen=max(scrollback, 0))
        self.history_pushed = 0
        self.alternate_active = False
        self._primary_buffer: dict[int, Row] | None = None
        self._on_reply = on_reply
        self._on_title = on_title
        self._on_bell = on_bell
        self._cell_caches: dict[Char, _CellCache] = {}
        self._sgr_cache: dict[tuple[Char, str, bool], Char] = {}
        self.last_graphic = ""
        self._blank = Char(data=" ", fg=DEFAULT_COLOUR, bg=DEFAULT_COLOUR)
        self._blank_reverse = self._blank._replace(reverse=True)
        super().__init__(columns, lines)
        self.buffer = self._new_buffer()

    # -- state -----------------------------------------------------------------------------------------

    def reset(self) -> None:
        if self.alternate_active and self._primary_buffer is not None:
            self.buffer = self._primary_buffer
        self.alternate_active = False
        self._primary_buffer = None
        super().reset()
        self.g1_charset = LAT1_MAP  # xterm starts G1 as ASCII; pyte's line-drawing default garbles stray SO
        self.last_graphic = ""

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        # Like xterm, shrinking drops rows from the bottom while the cursor stays visible, and only then
        # from the top; rows leaving the top are still the session's output, so they go to the scrollback.
        from_top = max(0, self.cursor.y - (lines - 1))
        if not self.alternate_active:
            for y in range(from_top):
                self._remember(self.buffer[y])
        _clip(self.buffer, from_top, lines, columns)
        if self._primary_buffer is not None:
            _clip(self._primary_buffer, 0, lines, columns)
        self.cursor.y -= from_top
        self.lines, self.columns = lines, columns
        self.tabstops = {x for x in range(8, columns, 8)}
        self.dirty.update(range(lines))
        self.set_margins()
        self.ensure_hbounds()
        self.ensure_vbounds()

    def save_cursor(self) -> None:
        super().save_cursor()
        if len(self.savepoints) > SAVED_CURSOR_LIMIT:  # ESC 7 repeated must not grow memory without bound
            del self.savepoints[0]

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        private = bool(kwargs.get("private"))
        if private:
            # The widget's size owns the column count; 132-column mode would desynchronise it.
            modes = tuple(mode for mode in modes if mode != DECCOLM)
        super().set_mode(*modes, **kwargs)
        if private:
            for mode in modes:
                if mode in ALTERNATE_SCREEN_MODES:
                    self._enter_alternate(mode)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        private = bool(kwargs.get("private"))
        if private:
            modes = tuple(mode for mode in modes if mode != DECCOLM)
        super().reset_mode(*modes, **kwargs)
        if private:
            for mode in modes:
                if mode in ALTERNATE_SCREEN_MODES:
                    self._leave_alternate(mode)

    def _enter_alternate(self, mode: int) -> None:
        if mode == 1049:
            self.save_cursor()
        if not self.alternate_active:
            self._primary_buffer = self.buffer
            self.buffer = self._new_buffer()
            self.alternate_active = True
        elif mode == 1049:
            self.buffer.clear()
        self.dirty.update(range(self.lines))

    def _leave_alternate(self, mode: int) -> None:
        if self.alternate_active and self._primary_buffer is not None:
            self.buffer = self._primary_buffer
            self._primary_buffer = None
            self.alternate_active = False
            self.dirty.update(range(self.lines))
        if mode == 1049:
            self.restore_cursor()

    def _new_buffer(self) -> dict[int, Row]:
        return _RowBuffer(self._blank_row)

    def _blank_row(self) -> Row:
        blank = self._blank_reverse if pyte_modes.DECSCNM in self.mode else self._blank
        return StaticDefaultDict[int, Char](blank)

    def _remember(self, row: Row) -> None:
        self.history.append(row)
        self.history_pushed += 1

    # -- output ----------------------------------------------------------------------------------------

    def draw(self, data: str) -> None:
        charset = self.g1_charset if self.charset else self.g0_charset
        if charset is not LAT1_MAP:
            data = data.translate(charset)
        if data.isascii() and pyte_modes.IRM not in self.mode:
            self._draw_ascii(data)
        else:
            self._draw_wide(data)
        self.last_graphic = data[-1:]

    def _cells(self, attrs: Char) -> _CellCache:
        cells = self._cell_caches.get(attrs)
        if cells is None:
            if len(self._cell_caches) >= CELL_CACHE_LIMIT:
                self._cell_caches.clear()
            cells = self._cell_caches[attrs] = _CellCache(attrs)
        return cells

    def _draw_ascii(self, data: str) -> None:
        """Printable ASCII: one cell per character, written a row-slice at a time."""
        cursor = self.cursor
        columns = self.columns
        cell_of = self._cells(cursor.attrs).__getitem__
        autowrap = pyte_modes.DECAWM in self.mode
        position, length = 0, len(data)
        while position < length:
            if cursor.x >= columns:
                if autowrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x = columns - 1
            room = columns - cursor.x
            if not autowrap and length - position > room:
                chunk = data[position : position + room - 1] + data[-1]  # overflow overwrites the last cell
                position = length
            else:
                chunk = data[position : position + room]
                position += len(chunk)
            x = cursor.x
            self.buffer[cursor.y].update(zip(range(x, x + len(chunk)), map(cell_of, chunk), strict=True))
            cursor.x = x + len(chunk)
        self.dirty.add(cursor.y)

    def _draw_wide(self, data: str) -> None:
        """Any text: wide characters take two cells, combining ones join the previous cell."""
        cursor = self.cursor
        cell_of = self._cells(cursor.attrs).__getitem__
        autowrap = pyte_modes.DECAWM in self.mode
        insert = pyte_modes.IRM in self.mode
        for char in data:
            width = wcwidth(char)
            if width < 0 or width > self.columns:
                continue  # unprintable: xterm shows nothing for it
            if width == 0:
                self._combine(char)
                continue
            if cursor.x + width > self.columns:
                if autowrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x = max(0, self.columns - width)
            if insert:
                self.insert_characters(width)
            row = self.buffer[cursor.y]
            row[cursor.x] = cell_of(char)
            if width == 2:
                row[cursor.x + 1] = cell_of("")  # pyte's convention: an empty stub follows a wide character
            cursor.x += width
            self.dirty.add(cursor.y)

    def _combine(self, char: str) -> None:
        x, y = self.cursor.x - 1, self.cursor.y
        if x < 0:
            if y == 0:
                return
            x, y = self.columns - 1, y - 1
        row = self.buffer[y]
        if x > 0 and row[x].data == "":
            x -= 1  # the stub's owner is the wide character to its left
        previous = row[x]
        row[x] = previous._replace(data=unicodedata.normalize("NFC", previous.data + char))
        self.dirty.add(y)

    def repeat_last(self, count: int | None = None) -> None:
        if self.last_graphic:
            self.draw(self.last_graphic * min(count or 1, self.columns * self.lines))

    def select_rendition(self, parameters: str) -> None:
        reverse_screen = pyte_modes.DECSCNM in self.mode
        key = (self.cursor.attrs, parameters, reverse_screen)
        attrs = self._sgr_cache.get(key)
        if attrs is None:
            reset, changes = sgr_changes(parameters)
            base = self.default_char if reset else self.cursor.attrs
            attrs = base._replace(**changes) if changes else base
            if len(self._sgr_cache) >= SGR_CACHE_LIMIT:
                self._sgr_cache.clear()
            self._sgr_cache[key] = attrs
        self.cursor.attrs = attrs

    # -- scrolling -------------------------------------------------------------------------------------

    def index(self) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y != bottom:
            self.cursor_down()
            return
        if top == 0 and not self.alternate_active and self.history.maxlen:
            self._remember(self.buffer[0])
        self._shift_up(top, bottom)

    def _shift_up(self, top: int, bottom: int) -> None:
        buffer = self.buffer
        moved = list(map(buffer.__getitem__, range(top + 1, bottom + 1)))
        buffer.update(zip(range(top, bottom), moved, strict=True))
        buffer.pop(bottom, None)
        if len(self.dirty) < self.lines:  # during a flood every row is already dirty
            self.dirty.update(range(top, bottom + 1))

    def insert_lines(self, count: int | None = None) -> None:
        self._move_lines(count or 1, insert=True)

    def delete_lines(self, count: int | None = None) -> None:
        self._move_lines(count or 1, insert=False)

    def _move_lines(self, count: int, *, insert: bool) -> None:
        # pyte's versions leave a line in place when the blank line that should replace it was never
        # written to; moving the whole region at once has no such case.
        top, bottom = self.margins or (0, self.lines - 1)
        start = self.cursor.y
        if not top <= start <= bottom:
            return
        height = bottom - start + 1
        count = min(count, height)
        rows: list[Row | None] = [self.buffer.pop(y, None) for y in range(start, bottom + 1)]
        blanks: list[Row | None] = [None] * count
        rows = (blanks + rows)[:height] if insert else (rows + blanks)[count:]
        for y, row in enumerate(rows, start):
            if row is not None:
                self.buffer[y] = row
        self.dirty.update(range(start, self.lines))
        self.carriage_return()

    def scroll_up(self, count: int | None = None) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        for _ in range(min(count or 1, bottom - top + 1)):
            self._shift_up(top, bottom)

    def scroll_down(self, count: int | None = None) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        saved = self.cursor.y
        for _ in range(min(count or 1, bottom - top + 1)):
            self.cursor.y = top
            self.reverse_index()
        self.cursor.y = saved

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:
            self.history.clear()  # xterm: ED 3 erases the saved lines, not the screen
            return
        if how == 0:
            rows = range(self.cursor.y + 1, self.lines)
            self.erase_in_line(0)
        elif how == 1:
            rows = range(self.cursor.y)
            self.erase_in_line(1)
        elif how == 2:
            rows = range(self.lines)
        else:
            return
        # Whole rows are replaced rather than overwritten cell by cell; a row whose blank carries the
        # current background shows that colour in every cell, as xterm's background-colour erase does.
        blank = self.cursor.attrs._replace(data=" ")
        if blank == self.default_char:
            for y in rows:
                self.buffer.pop(y, None)
        else:
            for y in rows:
                self.buffer[y] = StaticDefaultDict[int, Char](blank)
        self.dirty.update(rows)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        if how in (0, 1, 2):
            super().erase_in_line(how)

    # -- replies ---------------------------------------------------------------------------------------

    def report_device_status(self, mode: int = 0) -> None:
        if mode == 6:
            x = min(self.cursor.x, self.columns - 1) + 1
            y = self.cursor.y + 1
            if pyte_modes.DECOM in self.mode and self.margins is not None:
                y -= self.margins.top
            self.write_process_input(f"\x1b[{y};{x}R")
        elif mode == 5:
            self.write_process_input("\x1b[0n")

    def report_device_attributes(self, mode: int = 0, **kwargs: Any) -> None:
        if mode == 0:
            self.write_process_input(PRIMARY_DEVICE_ATTRIBUTES)

    def write_process_input(self, data: str) -> None:
        if self._on_reply is not None:
            self._on_reply(data)

    def set_title(self, param: str) -> None:
        super().set_title(param)
        if self._on_title is not None:
            self._on_title(param)

    def bell(self, *args: Any) -> None:
        if self._on_bell is not None:
            self._on_bell()


class _RowBuffer(dict[int, Row]):
    """A row map that creates blank rows on first use (what pyte's defaultdict does), typed for mypy."""

    __slots__ = ("_make_row",)

    def __init__(self, make_row: Callable[[], Row]) -> None:
        super().__init__()
        self._make_row = make_row

    def __missing__(self, y: int) -> Row:
        row = self[y] = self._make_row()
        return row


def _clip(buffer: dict[int, Row], from_top: int, lines: int, columns: int) -> None:
    """Drop ``from_top`` rows from the top, rows at or past ``lines`` and cells at or past ``columns``."""
    rows = {y - from_top: row for y, row in buffer.items() if from_top <= y < lines + from_top}
    buffer.clear()
    buffer.update(rows)
    for row in rows.values():
        for x in [x for x in row if x >= columns]:
            del row[x]
