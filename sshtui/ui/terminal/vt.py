"""The xterm-like screen model: pyte's Screen plus what pyte lacks, and a faster control-sequence parser.

References: ECMA-48 (control functions, SGR), the xterm "ctlseqs" document (private modes 47/1047/1049,
1000-1006, 2004, 2026; DSR/DA replies; OSC 0/2 titles) and VT220 (charsets, DECSC/DECRC).

pyte (0.8) supplies the cell grid and most cursor/erase operations. Its own ``Stream`` parser is
replaced here because it walks escape sequences one character at a time through a generator, raises
on unexpected parameters (dropping the rest of the chunk), prints colon SGR sub-parameters and DCS
strings as text, and has no alternate screen. This parser matches whole sequences with one regular
expression each, carries incomplete ones across chunks, and passes handlers only the parameters they take.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes as pyte_modes
from pyte.charsets import LAT1_MAP
from pyte.screens import Char, StaticDefaultDict
from wcwidth import wcwidth

Row = StaticDefaultDict[int, Char]

ALTERNATE_SCREEN_MODES = frozenset({47, 1047, 1049})
DECCOLM = 3
MAX_PARAMETER = 9999
MAX_CARRY = 64 * 1024
SAVED_CURSOR_LIMIT = 16
CELL_CACHE_LIMIT = 512
SGR_CACHE_LIMIT = 4096

STANDARD_COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
DEFAULT_COLOUR = "default"

PRIMARY_DEVICE_ATTRIBUTES = "\x1b[?62;22c"  # VT220 with ANSI colour: what ncurses apps expect of xterm.
SECONDARY_DEVICE_ATTRIBUTES = "\x1b[>0;10;1c"

_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")
_ESCAPE = re.compile(
    r"\x1b(?:"
    r"\[([0-?]*)([ -/]*)([@-~])"  # CSI: parameter bytes, intermediates, final byte
    r"|\]([^\x07\x1b]*)(?:\x07|\x1b\\)"  # OSC, ended by BEL or ST
    r"|[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC: understood as strings and ignored
    r"|([ -/]*)([0-~])"  # two-character escape, maybe with intermediates
    r")",
    re.DOTALL,
)
_ESCAPE_PREFIX = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[PX^_][^\x1b]*\x1b?|[ -/]*)", re.DOTALL
)


def _number(text: str) -> int:
    return min(int(text), MAX_PARAMETER) if text.isascii() and text.isdigit() else 0


def _palette_colour(index: int) -> str | None:
    if 0 <= index < 8:
        return STANDARD_COLOURS[index]
    if 8 <= index < 16:
        return "bright_" + STANDARD_COLOURS[index - 8]
    if 16 <= index < 256:
        return f"color({index})"
    return None


def _rgb_colour(red: int, green: int, blue: int) -> str:
    return f"#{min(red, 255):02x}{min(green, 255):02x}{min(blue, 255):02x}"


def _extended_colour(fields: list[str]) -> str | None:
    """Decode what follows 38/48 in colon form: ``5:n``, ``2:r:g:b`` or ``2:colourspace:r:g:b``."""
    if not fields:
        return None
    kind = _number(fields[0])
    if kind == 5 and len(fields) >= 2:
        return _palette_colour(_number(fields[1]))
    if kind == 2 and len(fields) >= 4:
        red, green, blue = fields[-3:]
        return _rgb_colour(_number(red), _number(green), _number(blue))
    return None


def sgr_changes(parameters: str) -> tuple[bool, dict[str, Any]]:
    """Return (starts from a reset, attribute changes) for one SGR parameter string."""
    fields = parameters.split(";") if parameters else ["0"]
    reset = False
    changes: dict[str, Any] = {}
    index = 0
    while index < len(fields):
        field = fields[index]
        index += 1
        if ":" in field:
            code, *rest = field.split(":")
            number = _number(code)
            if number in (38, 48):
                colour = _extended_colour(rest)
                if colour is not None:
                    changes["fg" if number == 38 else "bg"] = colour
            elif number == 4:
                changes["underscore"] = not rest or _number(rest[0]) != 0
            continue
        code_number = _number(field)
        if code_number == 0:
            reset = True
            changes.clear()
        elif code_number in (38, 48):
            key = "fg" if code_number == 38 else "bg"
            kind = _number(fields[index]) if index < len(fields) else -1
            extended: str | None = None
            if kind == 5 and index + 1 < len(fields):
                extended = _palette_colour(_number(fields[index + 1]))
                index += 2
            elif kind == 2 and index + 3 < len(fields):
                extended = _rgb_colour(*(_number(value) for value in fields[index + 1 : index + 4]))
                index += 4
            else:
                index = len(fields)  # a truncated extended colour leaves nothing sensible to read after it
            if extended is not None:
                changes[key] = extended
        elif 30 <= code_number <= 37:
            changes["fg"] = STANDARD_COLOURS[code_number - 30]
        elif 40 <= code_number <= 47:
            changes["bg"] = STANDARD_COLOURS[code_number - 40]
        elif 90 <= code_number <= 97:
            changes["fg"] = "bright_" + STANDARD_COLOURS[code_number - 90]
        elif 100 <= code_number <= 107:
            changes["bg"] = "bright_" + STANDARD_COLOURS[code_number - 100]
        elif code_number == 39:
            changes["fg"] = DEFAULT_COLOUR
        elif code_number == 49:
            changes["bg"] = DEFAULT_COLOUR
        elif code_number in _SGR_FLAGS:
            name, value = _SGR_FLAGS[code_number]
            changes[name] = value
    return reset, changes


_SGR_FLAGS: dict[int, tuple[str, bool]] = {
    1: ("bold", True), 3: ("italics", True), 4: ("underscore", True), 5: ("blink", True),
    6: ("blink", True), 7: ("reverse", True), 9: ("strikethrough", True), 21: ("underscore", True),
    22: ("bold", False), 23: ("italics", False), 24: ("underscore", False), 25: ("blink", False),
    27: ("reverse", False), 29: ("strikethrough", False),
}


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
        return _RowBuffer(lambda: StaticDefaultDict[int, Char](self.default_char))

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
        self.dirty.update(range(top, bottom + 1))

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


class VtParser:
    """Splits decoded output into text runs, controls and escape sequences, and applies them to a screen."""

    def __init__(self, screen: XtermScreen) -> None:
        self.screen = screen
        self.handler_errors = 0
        self._carry = ""
        self._controls: dict[str, Callable[[], None]] = {
            "\x07": screen.bell, "\x08": screen.backspace, "\t": screen.tab, "\n": screen.linefeed,
            "\x0b": screen.linefeed, "\x0c": screen.linefeed, "\r": screen.carriage_return,
            "\x0e": screen.shift_out, "\x0f": screen.shift_in,
        }
        # Final byte -> (handler, how many numeric parameters it takes); sequences without a private marker.
        self._csi: dict[str, tuple[Callable[..., None], int]] = {
            "@": (screen.insert_characters, 1), "A": (screen.cursor_up, 1), "B": (screen.cursor_down, 1),
            "C": (screen.cursor_forward, 1), "D": (screen.cursor_back, 1), "E": (screen.cursor_down1, 1),
            "F": (screen.cursor_up1, 1), "G": (screen.cursor_to_column, 1), "`": (screen.cursor_to_column, 1),
            "H": (screen.cursor_position, 2), "f": (screen.cursor_position, 2),
            "J": (screen.erase_in_display, 1), "K": (screen.erase_in_line, 1), "L": (screen.insert_lines, 1),
            "M": (screen.delete_lines, 1), "P": (screen.delete_characters, 1),
            "X": (screen.erase_characters, 1),
            "S": (screen.scroll_up, 1), "T": (screen.scroll_down, 1), "a": (screen.cursor_forward, 1),
            "b": (screen.repeat_last, 1), "c": (screen.report_device_attributes, 1),
            "d": (screen.cursor_to_line, 1), "e": (screen.cursor_down, 1), "g": (screen.clear_tab_stop, 1),
            "n": (screen.report_device_status, 1), "r": (screen.set_margins, 2), "s": (screen.save_cursor, 0),
            "u": (screen.restore_cursor, 0),
        }
        self._escapes: dict[str, Callable[[], None]] = {
            "c": screen.reset, "D": screen.index, "E": self._next_line, "M": screen.reverse_index,
            "H": screen.set_tab_stop, "7": screen.save_cursor, "8": screen.restore_cursor,
        }

    def feed(self, text: str) -> None:
        if self._carry:
            text = self._carry + text
            self._carry = ""
        screen = self.screen
        draw = screen.draw
        controls = self._controls
        match_text = _TEXT.match
        match_escape = _ESCAPE.match
        position, length = 0, len(text)
        while position < length:
            char = text[position]
            if char == "\x1b":
                escape = match_escape(text, position)
                if escape is None:
                    tail = text[position:]
                    if len(tail) <= MAX_CARRY and _ESCAPE_PREFIX.fullmatch(tail):
                        self._carry = tail  # the rest of this sequence is in the next chunk
                        return
                    position += 1  # a malformed sequence: drop the ESC and show what follows as text
                    continue
                position = escape.end()
                self._dispatch_escape(escape)
            elif char < " " or char == "\x7f":
                position += 1
                control = controls.get(char)
                if control is not None:
                    control()
            else:
                run = match_text(text, position)
                assert run is not None  # the first character already qualifies
                position = run.end()
                try:
                    draw(run.group())
                except Exception:
                    self.handler_errors += 1

    def _next_line(self) -> None:
        self.screen.carriage_return()
        self.screen.index()

    def _dispatch_escape(self, escape: re.Match[str]) -> None:
        # A handler tripping over an odd parameter must not lose the rest of the chunk (pyte's failure
        # mode); such input is counted and otherwise ignored.
        try:
            final = escape.group(3)
            if final is not None:
                self._dispatch_csi(escape.group(1), escape.group(2), final)
            elif escape.group(4) is not None:
                self._dispatch_osc(escape.group(4))
            elif escape.group(6) is not None:
                self._dispatch_plain_escape(escape.group(5), escape.group(6))
        except Exception:
            self.handler_errors += 1

    def _dispatch_csi(self, parameters: str, intermediates: str, final: str) -> None:
        screen = self.screen
        marker = parameters[:1]
        if marker in ("<", "=", ">", "?"):
            parameters = parameters[1:]
        else:
            marker = ""
        if intermediates:
            return  # DECSCUSR, DECRQM, DECSTR and friends change nothing we display
        if final == "m":
            if not marker:
                screen.select_rendition(parameters)
            return
        numbers = [_number(field) for field in parameters.split(";")] if parameters else []
        if marker == "?":
            if final == "h":
                screen.set_mode(*numbers, private=True)
            elif final == "l":
                screen.reset_mode(*numbers, private=True)
            elif final in "JK":
                self._csi[final][0](*numbers[:1])
        elif marker == ">":
            if final == "c" and not any(numbers):
                screen.write_process_input(SECONDARY_DEVICE_ATTRIBUTES)
        elif not marker:
            if final == "h":
                screen.set_mode(*numbers)
            elif final == "l":
                screen.reset_mode(*numbers)
            elif final in self._csi:
                handler, arity = self._csi[final]
                handler(*numbers[:arity])

    def _dispatch_osc(self, body: str) -> None:
        code, _, value = body.partition(";")
        if code in ("0", "2"):
            self.screen.set_title(value)
        if code in ("0", "1"):
            self.screen.set_icon_name(value)

    def _dispatch_plain_escape(self, intermediates: str, final: str) -> None:
        if not intermediates:
            handler = self._escapes.get(final)
            if handler is not None:
                handler()
        elif intermediates == "#" and final == "8":
            self.screen.alignment_display()
        elif intermediates in ("(", ")"):
            self.screen.define_charset(final, intermediates)
