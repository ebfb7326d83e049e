"""The default emulator backend: asciinema's ``avt`` core (native code) plus our mode scanner.

avt parses and draws at tens of MB/s (xterm-style VT500 subset: cursor, erase, insert/delete, scroll
margins, DEC graphics, SGR with 16/256/24-bit colours, the alternate screen 47/1047/1049, DECCKM, DECTCEM),
where a Python parser manages a few. What it lacks, ``ModeScanner`` supplies from the same text: the
mouse, focus, paste and synchronized-output modes, DSR/DA/DECRQM replies (xterm ctlseqs), OSC titles,
the bell and ED 3. Scrollback is ours: avt keeps none (limit 0) and hands back every line that leaves the
top of the primary screen, which goes into a bounded deque, so a flood costs one append per line and
reading any history line is O(1).

Known differences from xterm, kept because they are rare and cheap to live with: a combining mark with
no precomposed form takes a cell of its own (text is NFC-normalised first, which covers accented Latin,
Greek and Cyrillic); the curly/dotted underline forms (``4:3``) are ignored; the cursor report in origin
mode counts from the screen's top, not the margin's.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

from avt._avt import Color, Vt
from rich.segment import Segment
from rich.style import Style

from sshtui.ui.terminal.backend import DEFAULT_SCROLLBACK, MOUSE_TRACKING_MODES, StyleCache
from sshtui.ui.terminal.mode_scanner import SYNCHRONIZED_OUTPUT, TRACKED_MODES, Action, Anchored, ModeScanner
from sshtui.ui.terminal.vt_parser import DEFAULT_COLOUR, SECONDARY_DEVICE_ATTRIBUTES, STANDARD_COLOURS
from sshtui.ui.terminal.vt_screen import PRIMARY_DEVICE_ATTRIBUTES

# Combining marks (the main Unicode blocks of them): only text holding one is worth normalising.
# Underline styles (curly, dotted...: ``4:3``) are underlines to us; avt would drop the attribute.
_UNDERLINE_STYLE = re.compile(r"\x1b\[4:([0-5])m")
_COMBINING = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_PALETTE = (
    *STANDARD_COLOURS,
    *("bright_" + name for name in STANDARD_COLOURS),
    *(f"color({index})" for index in range(16, 256)),
)

Appearance = tuple[str, str, bool, bool, bool, bool, bool, bool]


def _colour(colour: Any) -> str:
    if colour is None:
        return DEFAULT_COLOUR
    if isinstance(colour, Color.Indexed):
        index = colour[0]
        return _PALETTE[index] if 0 <= index < 256 else DEFAULT_COLOUR
    return f"#{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}"


class AvtBackend:
    """``TerminalBackend`` over avt; see the module docstring."""

    def __init__(
        self,
        columns: int = 80,
        rows: int = 24,
        *,
        scrollback: int = DEFAULT_SCROLLBACK,
        on_reply: Callable[[bytes], None] | None = None,
        on_title: Callable[[str], None] | None = None,
        on_bell: Callable[[], None] | None = None,
    ) -> None:
        self._columns, self._rows = max(columns, 1), max(rows, 1)
        self._vt = Vt(self._columns, self._rows, scrollback_limit=0)
        self._vt.feed_str("")  # avt calls every line changed on its first feed; the widget paints all anyway
        self._history: deque[Any] = deque(maxlen=max(scrollback, 0))
        self._pushed = 0
        self._scanner = ModeScanner()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._dirty: set[int] = set(range(self._rows))
        self._on_reply = on_reply
        self._on_title = on_title
        self._on_bell = on_bell
        self._title = ""
        self._pen_appearance: dict[str, Appearance] = {}
        self.style_of = StyleCache()

    # -- input -----------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if not text:
            return
        if not text.isascii() and _COMBINING.search(text):
            text = unicodedata.normalize("NFC", text)
        if "\x1b[4:" in text:
            text = _UNDERLINE_STYLE.sub(_plain_underline, text)
        found = self._scanner.scan(text)
        if found.actions:
            start = 0
            for anchored in found.actions:
                self._draw(text[start : anchored.end])
                start = anchored.end
                self._act(anchored)
            self._draw(text[start:])
        else:
            self._draw(text)
        if found.titles:
            self._title = found.titles[-1]
            if self._on_title is not None:
                self._on_title(self._title)
        if found.bells and self._on_bell is not None:
            self._on_bell()

    def _draw(self, text: str) -> None:
        if not text:
            return
        changed, scrolled_off = self._vt.feed_str(text)
        self._dirty.update(changed)
        if scrolled_off:
            self._remember(scrolled_off)

    def _remember(self, lines: list[Any]) -> None:
        if self._history.maxlen:
            self._history.extend(lines)
        self._pushed += len(lines)

    def _act(self, anchored: Anchored) -> None:
        action = anchored.action
        if action is Action.CLEAR_HISTORY:
            self._history.clear()
            return
        reply = self._answer(anchored)
        if reply and self._on_reply is not None:
            self._on_reply(reply.encode())

    def _answer(self, anchored: Anchored) -> str:
        action = anchored.action
        if action is Action.CURSOR or action is Action.CURSOR_EXTENDED:
            x, y = self.cursor
            return f"\x1b[{'?' if action is Action.CURSOR_EXTENDED else ''}{y + 1};{x + 1}R"
        if action is Action.STATUS:
            return "\x1b[0n"
        if action is Action.PRIMARY_ATTRIBUTES:
            return PRIMARY_DEVICE_ATTRIBUTES
        if action is Action.SECONDARY_ATTRIBUTES:
            return SECONDARY_DEVICE_ATTRIBUTES
        return f"\x1b[?{anchored.mode};{self._mode_report(anchored.mode)}$y"

    def _mode_report(self, mode: int) -> int:
        """DECRPM's Pm: 1 set, 2 reset, 0 a mode we cannot report."""
        if mode == 1:
            return 1 if self._vt.cursor_key_app_mode else 2
        if mode == 25:
            return 1 if self.cursor_visible else 2
        if mode in TRACKED_MODES:
            return 1 if mode in self._scanner.modes else 2
        return 0

    def resize(self, columns: int, rows: int) -> None:
        if columns <= 0 or rows <= 0 or (columns, rows) == (self._columns, self._rows):
            return
        _changed, scrolled_off = self._vt.resize(columns, rows)
        if scrolled_off and not self.alternate_screen:
            self._remember(scrolled_off)
        self._columns, self._rows = columns, rows
        self._dirty = set(range(rows))

    # -- state -----------------------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return self._columns

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cursor(self) -> tuple[int, int]:
        cursor = self._vt.cursor
        return min(cursor.col, self._columns - 1), min(cursor.row, self._rows - 1)

    @property
    def cursor_visible(self) -> bool:
        return bool(self._vt.cursor.visible)

    @property
    def title(self) -> str:
        return self._title

    @property
    def application_cursor(self) -> bool:
        return bool(self._vt.cursor_key_app_mode)

    @property
    def bracketed_paste(self) -> bool:
        return 2004 in self._scanner.modes

    @property
    def mouse_tracking(self) -> int:
        modes = self._scanner.modes
        return next((mode for mode in MOUSE_TRACKING_MODES if mode in modes), 0)

    @property
    def mouse_sgr(self) -> bool:
        return 1006 in self._scanner.modes

    @property
    def focus_reporting(self) -> bool:
        return 1004 in self._scanner.modes

    @property
    def synchronized_output(self) -> bool:
        return SYNCHRONIZED_OUTPUT in self._scanner.modes

    @property
    def alternate_screen(self) -> bool:
        return self._scanner.alternate_screen

    @property
    def history_size(self) -> int:
        return len(self._history)

    @property
    def history_pushed(self) -> int:
        return self._pushed

    def take_dirty(self) -> set[int]:
        dirty, self._dirty = self._dirty, set()
        rows = self._rows
        return dirty if all(y < rows for y in dirty) else {y for y in dirty if 0 <= y < rows}

    # -- rows ------------------------------------------------------------------------------------------

    def row_segments(self, y: int) -> list[Segment]:
        return self._segments(self._vt[y])

    def history_segments(self, index: int) -> list[Segment]:
        return self._segments(self._history[index])

    def _appearance(self, pen: Any) -> Appearance:
        # Pens are not hashable; their debug text is a faithful key, and far cheaper than reading
        # eight attributes and two colours for every run of every row.
        key = repr(pen)
        appearance = self._pen_appearance.get(key)
        if appearance is None:
            if len(self._pen_appearance) >= 4096:
                self._pen_appearance.clear()
            appearance = self._pen_appearance[key] = (
                _colour(pen.foreground), _colour(pen.background), pen.bold, pen.italic, pen.underline,
                pen.strikethrough, pen.inverse, pen.blink,
            )
        return appearance

    def _segments(self, line: Any) -> list[Segment]:
        cells = line.cells
        if not cells:
            return []
        pens = [cell.pen for cell in cells]
        # Runs of one pen become one segment; pens compare natively, so only run starts are inspected.
        starts = [x for x, (left, right) in enumerate(itertools.pairwise(pens), 1) if left != right]
        text = line.text
        by_column = len(text) == len(cells) and text.isascii()  # no wide characters: text[x] is column x
        style_of, appearance = self.style_of, self._appearance
        segments: list[Segment] = []
        begin = 0
        for end in (*starts, len(cells)):
            if by_column:
                run = text[begin:end]
            else:
                run = "".join([cell.char for cell in cells[begin:end] if cell.width])
            segments.append(Segment(run, style_of(appearance(pens[begin]))))
            begin = end
        return segments

    def set_base_style(self, style: Style) -> None:
        self.style_of.set_base(style)

    def display(self) -> list[str]:
        return ["".join(segment.text for segment in self.row_segments(y)) for y in range(self._rows)]

    def cell(self, x: int, y: int) -> tuple[str, Style]:
        """The text and Rich style of one cell."""
        cell = self._vt[y][x]
        return cell.char, self.style_of(self._appearance(cell.pen))


def _plain_underline(match: re.Match[str]) -> str:
    return "\x1b[24m" if match.group(1) == "0" else "\x1b[4m"
