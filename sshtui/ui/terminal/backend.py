"""The terminal-emulator adapter behind the widget: a small protocol and its pyte implementation.

The widget talks only to ``TerminalBackend``, so the emulator can be swapped (bench/terminal.py measures a
pyavt one) without touching rendering or input. Colours follow xterm's SGR (ECMA-48 §8.3.117 plus the
256-colour and 24-bit extensions) and come out as Rich colours: the 16 ANSI colours as Rich *standard*
colours, so the app's ANSI theme recolours them; 256-colour indices as ``color(n)``; true colour as hex.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Protocol

from pyte.screens import Char
from rich.color import ColorParseError
from rich.errors import StyleSyntaxError
from rich.segment import Segment
from rich.style import Style
from wcwidth import wcwidth

from sshtui.ui.terminal.vt_parser import DEFAULT_COLOUR, VtParser
from sshtui.ui.terminal.vt_screen import Row, XtermScreen

DEFAULT_SCROLLBACK = 10_000
STYLE_CACHE_LIMIT = 4096

MOUSE_TRACKING_MODES = (1003, 1002, 1000)  # any-motion, button-motion, press/release: strongest wins
PRIVATE_MODE_SHIFT = 5  # pyte stores private mode n as n << 5


class TerminalBackend(Protocol):
    """What the widget needs from an emulator: feed bytes, read rows and modes, resize."""

    @property
    def columns(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def cursor(self) -> tuple[int, int]:
        """(x, y) of the cursor, 0-based, always inside the screen."""
    @property
    def cursor_visible(self) -> bool: ...
    @property
    def title(self) -> str: ...
    @property
    def application_cursor(self) -> bool:
        """DECCKM (mode ?1): cursor keys send SS3 instead of CSI."""
    @property
    def bracketed_paste(self) -> bool: ...
    @property
    def mouse_tracking(self) -> int:
        """The active mouse tracking mode (1000, 1002 or 1003), or 0 when the remote wants no mouse."""
    @property
    def mouse_sgr(self) -> bool:
        """Mode ?1006: mouse reports in SGR form rather than X10 bytes."""
    @property
    def focus_reporting(self) -> bool: ...
    @property
    def synchronized_output(self) -> bool:
        """Mode ?2026: the remote is mid-frame, so repainting now would show a half-drawn screen."""
    @property
    def alternate_screen(self) -> bool: ...
    @property
    def history_size(self) -> int:
        """Lines in the scrollback (always 0 of them belong to the alternate screen)."""
    @property
    def history_pushed(self) -> int:
        """Total lines ever pushed into the scrollback: lets a scrolled-back view stay put."""

    def feed(self, data: bytes) -> None: ...
    def resize(self, columns: int, rows: int) -> None: ...
    def take_dirty(self) -> set[int]:
        """Rows changed since the last call (and forget them)."""
    def row_segments(self, y: int) -> list[Segment]:
        """Screen row ``y`` as run-length segments, one cell of width per column."""
    def history_segments(self, index: int) -> list[Segment]:
        """Scrollback line ``index`` (0 is the oldest kept) as segments."""
    def display(self) -> list[str]:
        """The screen as text, one string per row (for tests and screenshots)."""
    def set_base_style(self, style: Style) -> None:
        """The style under every cell (the theme's colours for cells in default colours)."""


class BackendFactory(Protocol):
    """How the widget builds its backend; ``PyteBackend`` itself is one."""

    def __call__(
        self,
        columns: int,
        rows: int,
        *,
        scrollback: int,
        on_reply: Callable[[bytes], None] | None,
        on_title: Callable[[str], None] | None,
        on_bell: Callable[[], None] | None,
    ) -> TerminalBackend: ...


_PYTE_NAMES = {"brown": "yellow", "bfightmagenta": "bright_magenta"}  # pyte's own SGR spellings


def _rich_colour(name: str) -> str | None:
    """Our cell colours are already Rich names; pyte's own (from its DECSCNM path) are translated."""
    if name == DEFAULT_COLOUR:
        return None  # let the widget's themed foreground/background show through
    name = _PYTE_NAMES.get(name, name)
    if name.startswith("bright") and not name.startswith("bright_"):
        name = "bright_" + _PYTE_NAMES.get(name[6:], name[6:])
    elif len(name) == 6 and all(c in "0123456789abcdef" for c in name):
        name = "#" + name
    return name


class StyleCache:
    """One Rich Style per distinct cell appearance, built once, on top of a base style.

    The base carries the widget's themed foreground and background, which cells in the terminal's
    default colours show; combining it here, once per appearance, saves a style addition per segment.
    """

    def __init__(self, base: Style | None = None) -> None:
        self._styles: dict[tuple[object, ...], Style] = {}
        self.base = base or Style()

    def set_base(self, base: Style) -> None:
        if base != self.base:
            self.base = base
            self._styles.clear()

    def __call__(self, appearance: tuple[object, ...]) -> Style:
        style = self._styles.get(appearance)
        if style is None:
            if len(self._styles) >= STYLE_CACHE_LIMIT:
                self._styles.clear()
            style = self._styles[appearance] = self.base + self._build(appearance)
        return style

    @staticmethod
    def _build(appearance: tuple[object, ...]) -> Style:
        fg, bg, bold, italics, underscore, strikethrough, reverse, blink = appearance
        flags = Style(
            bold=bool(bold) or None, italic=bool(italics) or None, underline=bool(underscore) or None,
            strike=bool(strikethrough) or None, reverse=bool(reverse) or None, blink=bool(blink) or None,
        )
        try:
            return Style(color=_rich_colour(str(fg)), bgcolor=_rich_colour(str(bg))) + flags
        except (ColorParseError, StyleSyntaxError):
            return flags


class PyteBackend:
    """The pyte-based emulator with our screen subclass and parser (see ``vt.py``)."""

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
        self._on_reply = on_reply
        self._screen = XtermScreen(
            max(columns, 1), max(rows, 1), scrollback=scrollback, on_reply=self._reply,
            on_title=on_title, on_bell=on_bell,
        )
        self._parser = VtParser(self._screen)
        # A multi-byte character split across two reads must come out whole; undecodable bytes show as U+FFFD.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.style_of = StyleCache()

    def _reply(self, text: str) -> None:
        if self._on_reply is not None:
            self._on_reply(text.encode())

    @property
    def screen(self) -> XtermScreen:
        return self._screen

    @property
    def handler_errors(self) -> int:
        """Sequences a handler could not apply (ignored, as a terminal would)."""
        return self._parser.handler_errors

    # -- input -----------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._parser.feed(self._decoder.decode(data))

    def resize(self, columns: int, rows: int) -> None:
        if columns > 0 and rows > 0:
            self._screen.resize(lines=rows, columns=columns)

    # -- state -----------------------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return self._screen.columns

    @property
    def rows(self) -> int:
        return self._screen.lines

    @property
    def cursor(self) -> tuple[int, int]:
        cursor = self._screen.cursor
        return min(cursor.x, self._screen.columns - 1), min(cursor.y, self._screen.lines - 1)

    @property
    def cursor_visible(self) -> bool:
        return not self._screen.cursor.hidden

    @property
    def title(self) -> str:
        return self._screen.title

    def _private(self, mode: int) -> bool:
        return (mode << PRIVATE_MODE_SHIFT) in self._screen.mode

    @property
    def application_cursor(self) -> bool:
        return self._private(1)

    @property
    def bracketed_paste(self) -> bool:
        return self._private(2004)

    @property
    def mouse_tracking(self) -> int:
        return next((mode for mode in MOUSE_TRACKING_MODES if self._private(mode)), 0)

    @property
    def mouse_sgr(self) -> bool:
        return self._private(1006)

    @property
    def focus_reporting(self) -> bool:
        return self._private(1004)

    @property
    def synchronized_output(self) -> bool:
        return self._private(2026)

    @property
    def alternate_screen(self) -> bool:
        return self._screen.alternate_active

    @property
    def history_size(self) -> int:
        return len(self._screen.history)

    @property
    def history_pushed(self) -> int:
        return self._screen.history_pushed

    def take_dirty(self) -> set[int]:
        dirty = self._screen.dirty
        self._screen.dirty = set()
        rows = self._screen.lines
        return dirty if all(y < rows for y in dirty) else {y for y in dirty if 0 <= y < rows}

    # -- rows ------------------------------------------------------------------------------------------

    def row_segments(self, y: int) -> list[Segment]:
        return self._segments(self._screen.buffer.get(y), self._screen.default_char)

    def history_segments(self, index: int) -> list[Segment]:
        return self._segments(self._screen.history[index], self._screen.default_char)

    def _segments(self, row: Row | None, blank: Char) -> list[Segment]:
        columns = self._screen.columns
        style_of = self.style_of
        if not row:
            fill = row.default if row is not None else blank
            return [Segment(" " * columns, style_of(fill[1:]))]
        cell_at = row.get
        default = row.default
        segments: list[Segment] = []
        run: list[str] = []
        run_key: tuple[object, ...] | None = None
        wide_pending = False
        for x in range(columns):
            cell = cell_at(x, default)
            data = cell[0]
            if not data:
                if wide_pending:
                    wide_pending = False
                    continue  # the right half of the wide character just emitted
                data = " "  # a stub orphaned by overwriting its wide character's left half
            elif data.isascii():
                wide_pending = False
            else:
                wide_pending = wcwidth(data[0]) == 2
            key = cell[1:]
            if key != run_key:
                if run:
                    segments.append(Segment("".join(run), style_of(run_key or ())))
                run = [data]
                run_key = key
            else:
                run.append(data)
        if run:
            segments.append(Segment("".join(run), style_of(run_key or ())))
        return segments

    def set_base_style(self, style: Style) -> None:
        self.style_of.set_base(style)

    def display(self) -> list[str]:
        return ["".join(segment.text for segment in self.row_segments(y)) for y in range(self.rows)]

    def cell(self, x: int, y: int) -> tuple[str, Style]:
        """The text and Rich style of one cell."""
        row = self._screen.buffer.get(y)
        cell = row.get(x, row.default) if row is not None else self._screen.default_char
        return cell.data, self.style_of(cell[1:])
