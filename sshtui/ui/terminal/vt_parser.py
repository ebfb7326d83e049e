"""Control-sequence parsing for the terminal: text runs, C0 controls, CSI/OSC/escape sequences and SGR.

References: ECMA-48 §5.4 (control sequence syntax) and §8.3.117 (SGR), ITU T.416 / xterm "ctlseqs" for
the 256-colour and 24-bit colour forms (both ``38;5;n`` and the colon form ``38:5:n``), and xterm's
OSC 0/1/2 titles and DA/DSR replies.

pyte's own ``Stream`` is not used: it walks escape sequences one character at a time through a
generator, raises on unexpected parameters (dropping the rest of the chunk), prints colon SGR
sub-parameters and DCS strings as text. This parser matches each whole sequence with one regular
expression, carries an incomplete one over to the next chunk, and passes handlers only the parameters
they take.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sshtui.ui.terminal.vt_screen import XtermScreen

MAX_PARAMETER = 9999
MAX_CARRY = 64 * 1024

STANDARD_COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
DEFAULT_COLOUR = "default"

SECONDARY_DEVICE_ATTRIBUTES = "\x1b[>0;10;1c"

_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")
_ESCAPE = re.compile(
    r"\x1b(?:"
    r"\[([0-?]*)([ -/]*)([@-~])"  # CSI: parameter bytes, intermediates, final byte
    r"|\]([^\x07\x1b]*)(?:\x07|\x1b\\)"  # OSC, ended by BEL or ST
    r"|[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC: understood as strings and ignored
    r"|([ -/]*)([0-OQ-WYZ\\`-~])"  # two-character escape (not a string or CSI introducer)
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

