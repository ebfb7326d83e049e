"""Terminal input encoding: Textual key, paste, mouse and focus events to the bytes xterm would send.

Follows xterm's "ctlseqs" (PC-style function keys, modifier parameter ``1 + shift + 2*alt + 4*ctrl``,
DECCKM application cursor keys, bracketed paste mode 2004, mouse modes 1000/1002/1003 with X10 or SGR
1006 reports, focus reports 1004), which is what ``TERM=xterm-256color`` promises to the remote side.
Everything here is a pure function, so it is tested without an app.
"""

from __future__ import annotations

import unicodedata
from enum import Enum

from textual.keys import KEY_TO_UNICODE_NAME

ESC = "\x1b"

_CURSOR_FINALS = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_SS3_FUNCTION_FINALS = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_TILDE_NUMBERS = {
    "insert": 2, "delete": 3, "pageup": 5, "pagedown": 6,
    "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24,
    "f13": 25, "f14": 26, "f15": 28, "f16": 29, "f17": 31, "f18": 32, "f19": 33, "f20": 34,
}
# Ctrl with a non-letter: the control codes a VT220 keyboard produced for these keys.
_CTRL_SYMBOLS = {
    "@": "\x00", "at": "\x00", "space": "\x00", "2": "\x00",
    "left_square_bracket": ESC, "3": ESC,
    "backslash": "\x1c", "4": "\x1c",
    "right_square_bracket": "\x1d", "5": "\x1d",
    "circumflex_accent": "\x1e", "6": "\x1e",
    "underscore": "\x1f", "slash": "\x1f", "7": "\x1f",
    "question_mark": "\x7f", "8": "\x7f",
}
_MODIFIER_NAMES = frozenset({"shift", "alt", "meta", "ctrl", "super", "hyper"})

BRACKETED_PASTE_START = ESC + "[200~"
BRACKETED_PASTE_END = ESC + "[201~"


def _split_key(key: str) -> tuple[str, set[str]]:
    """``"ctrl+shift+left"`` -> ("left", {"ctrl", "shift"}); a bare ``"+"`` key stays itself."""
    parts = key.split("+")
    modifiers: set[str] = set()
    while len(parts) > 1 and parts[0] in _MODIFIER_NAMES:
        modifiers.add(parts.pop(0))
    return "+".join(parts), modifiers


def _character_of(base: str) -> str | None:
    """The character a Textual key name stands for (``"slash"`` -> "/"), or None for named keys."""
    if len(base) == 1:
        return base
    name = KEY_TO_UNICODE_NAME.get(base, base.replace("_", " ").upper())
    try:
        return unicodedata.lookup(name)
    except KeyError:
        return None


def encode_key(key: str, character: str | None = None, *, application_cursor: bool = False) -> bytes | None:
    """The bytes a key press sends to the remote, or None for keys a terminal cannot express."""
    base, modifiers = _split_key(key)
    shift = "shift" in modifiers
    alt = "alt" in modifiers or "meta" in modifiers
    ctrl = "ctrl" in modifiers
    modifier = 1 + shift + 2 * alt + 4 * ctrl
    text = _encode_named(base, modifier, application_cursor)
    if text is None:
        text = _encode_text(base, character, shift=shift, ctrl=ctrl)
        if text is None:
            return None
        if alt:
            text = ESC + text  # xterm's metaSendsEscape: Alt prefixes the key with ESC
    return text.encode("utf-8", "replace")


def _encode_named(base: str, modifier: int, application_cursor: bool) -> str | None:
    if base in _CURSOR_FINALS:
        final = _CURSOR_FINALS[base]
        if modifier > 1:
            return f"{ESC}[1;{modifier}{final}"
        return (ESC + "O" if application_cursor else ESC + "[") + final
    if base in _SS3_FUNCTION_FINALS:
        final = _SS3_FUNCTION_FINALS[base]
        return f"{ESC}[1;{modifier}{final}" if modifier > 1 else ESC + "O" + final
    if base in _TILDE_NUMBERS:
        number = _TILDE_NUMBERS[base]
        return f"{ESC}[{number};{modifier}~" if modifier > 1 else f"{ESC}[{number}~"
    if base == "tab" and modifier == 2:
        return ESC + "[Z"  # shift+tab: back-tab
    return None


def _encode_text(base: str, character: str | None, *, shift: bool, ctrl: bool) -> str | None:
    if base == "enter":
        return "\r"
    if base == "tab":
        return "\t"
    if base == "escape":
        return ESC
    if base == "backspace":
        if ctrl:
            return "\x08"
        return character if character in ("\x08", "\x7f") else "\x7f"
    if ctrl:
        letter = base.lower() if len(base) == 1 else ""
        if "a" <= letter <= "z":
            return chr(ord(letter) - ord("a") + 1)
        if base in _CTRL_SYMBOLS:
            return _CTRL_SYMBOLS[base]
    if base == "space":
        return " "
    if character is not None and character.isprintable():
        return character
    # Under the kitty keyboard protocol a modified key may arrive without its character.
    derived = _character_of(base)
    if derived is None or not derived.isprintable():
        return None
    return derived.upper() if shift else derived


def encode_paste(text: str, *, bracketed: bool) -> bytes:
    """Pasted text as xterm sends it: newlines become CR; bracketed when the remote enabled mode 2004."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if bracketed:
        # A paste that contains the end marker could otherwise smuggle keystrokes past the bracket.
        text = text.replace(BRACKETED_PASTE_END, "").replace(BRACKETED_PASTE_START, "")
        text = BRACKETED_PASTE_START + text + BRACKETED_PASTE_END
    return text.encode("utf-8", "replace")


class MouseAction(Enum):
    PRESS = "press"
    RELEASE = "release"
    MOTION = "motion"
    WHEEL_UP = "wheel_up"
    WHEEL_DOWN = "wheel_down"


X10_COORDINATE_LIMIT = 223  # one byte, offset by 32


def encode_mouse(
    action: MouseAction,
    button: int,
    column: int,
    row: int,
    *,
    shift: bool = False,
    alt: bool = False,
    ctrl: bool = False,
    sgr: bool = False,
) -> bytes | None:
    """A mouse report for a 0-based cell; ``button`` is Textual's (1 left, 2 middle, 3 right, 0 none).

    Returns None when the position cannot be expressed (X10 coordinates past 223).
    """
    if action is MouseAction.WHEEL_UP:
        code = 64
    elif action is MouseAction.WHEEL_DOWN:
        code = 65
    elif action is MouseAction.MOTION:
        code = 32 + (button - 1 if 1 <= button <= 3 else 3)
    elif action is MouseAction.RELEASE and not sgr:
        code = 3  # X10 release does not say which button
    else:
        code = button - 1 if 1 <= button <= 3 else 0
    code += 4 * shift + 8 * alt + 16 * ctrl
    x, y = column + 1, row + 1
    if sgr:
        final = "m" if action is MouseAction.RELEASE else "M"
        return f"{ESC}[<{code};{x};{y}{final}".encode()
    if x > X10_COORDINATE_LIMIT or y > X10_COORDINATE_LIMIT:
        return None
    return b"\x1b[M" + bytes((32 + code, 32 + x, 32 + y))


def encode_focus(focused: bool) -> bytes:
    """Focus in/out report (mode 1004)."""
    return b"\x1b[I" if focused else b"\x1b[O"
