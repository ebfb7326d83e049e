"""Key, paste, mouse and focus encoding: the bytes the remote program receives for what the user does."""

from __future__ import annotations

import contextlib

import pytest
from textual import events
from textual._parser import ParseError
from textual._xterm_parser import XTermParser

from sshtui.ui.terminal.keys import MouseAction, encode_focus, encode_key, encode_mouse, encode_paste

# Expected bytes from xterm's ctlseqs (PC-style function keys) and the VT100 control-code table.
KEY_TABLE = [
    ("a", "a", b"a"),
    ("A", "A", b"A"),
    ("ctrl+a", None, b"\x01"),
    ("ctrl+c", None, b"\x03"),
    ("ctrl+d", None, b"\x04"),
    ("ctrl+z", None, b"\x1a"),
    ("ctrl+c", "\x03", b"\x03"),
    ("ctrl+@", None, b"\x00"),
    ("ctrl+space", None, b"\x00"),
    ("ctrl+backslash", None, b"\x1c"),
    ("ctrl+right_square_bracket", None, b"\x1d"),
    ("ctrl+circumflex_accent", None, b"\x1e"),
    ("ctrl+underscore", None, b"\x1f"),
    ("enter", "\r", b"\r"),
    ("tab", "\t", b"\t"),
    ("shift+tab", None, b"\x1b[Z"),
    ("escape", "\x1b", b"\x1b"),
    ("space", " ", b" "),
    ("backspace", "\x7f", b"\x7f"),
    ("backspace", "\x08", b"\x08"),
    ("up", None, b"\x1b[A"),
    ("down", None, b"\x1b[B"),
    ("right", None, b"\x1b[C"),
    ("left", None, b"\x1b[D"),
    ("home", None, b"\x1b[H"),
    ("end", None, b"\x1b[F"),
    ("insert", None, b"\x1b[2~"),
    ("delete", None, b"\x1b[3~"),
    ("pageup", None, b"\x1b[5~"),
    ("pagedown", None, b"\x1b[6~"),
    ("f1", None, b"\x1bOP"),
    ("f2", None, b"\x1bOQ"),
    ("f3", None, b"\x1bOR"),
    ("f4", None, b"\x1bOS"),
    ("f5", None, b"\x1b[15~"),
    ("f6", None, b"\x1b[17~"),
    ("f7", None, b"\x1b[18~"),
    ("f8", None, b"\x1b[19~"),
    ("f9", None, b"\x1b[20~"),
    ("f10", None, b"\x1b[21~"),
    ("f11", None, b"\x1b[23~"),
    ("f12", None, b"\x1b[24~"),
    ("alt+x", "x", b"\x1bx"),
    ("alt+x", None, b"\x1bx"),
    ("ctrl+left", None, b"\x1b[1;5D"),
    ("shift+up", None, b"\x1b[1;2A"),
    ("alt+up", None, b"\x1b[1;3A"),
    ("ctrl+shift+right", None, b"\x1b[1;6C"),
    ("ctrl+delete", None, b"\x1b[3;5~"),
    ("shift+f1", None, b"\x1b[1;2P"),
    ("ctrl+f5", None, b"\x1b[15;5~"),
    ("slash", "/", b"/"),
    ("euro_sign", "€", "€".encode()),
]


@pytest.mark.parametrize(("key", "character", "expected"), KEY_TABLE)
def test_key_encoding_table(key: str, character: str | None, expected: bytes) -> None:
    assert encode_key(key, character) == expected


@pytest.mark.parametrize(
    ("key", "normal", "application"),
    [("up", b"\x1b[A", b"\x1bOA"), ("down", b"\x1b[B", b"\x1bOB"), ("right", b"\x1b[C", b"\x1bOC"),
     ("left", b"\x1b[D", b"\x1bOD"), ("home", b"\x1b[H", b"\x1bOH"), ("end", b"\x1b[F", b"\x1bOF")],
)
def test_cursor_keys_follow_application_cursor_mode(key: str, normal: bytes, application: bytes) -> None:
    assert encode_key(key, application_cursor=False) == normal
    assert encode_key(key, application_cursor=True) == application
    assert encode_key("ctrl+" + key, application_cursor=True) == encode_key("ctrl+" + key)


def test_keys_without_a_terminal_encoding_send_nothing() -> None:
    assert encode_key("f24") is None
    assert encode_key("ctrl+f24") is None


def _decoded_keys(data: bytes) -> list[str]:
    parser = XTermParser()
    decoded = list(parser.feed(data.decode()))
    with contextlib.suppress(ParseError):
        decoded += list(parser.feed(""))  # end of input: settles a pending ESC prefix
    return [event.key for event in decoded if isinstance(event, events.Key)]


@pytest.mark.parametrize(
    "key",
    ["up", "down", "left", "right", "home", "end", "insert", "delete", "pageup", "pagedown",
     "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12",
     "ctrl+left", "ctrl+right", "shift+up", "alt+down", "ctrl+shift+left", "shift+pageup", "ctrl+f4",
     "shift+tab", "ctrl+a", "ctrl+c", "ctrl+z", "tab", "enter", "alt+x", "ctrl+right_square_bracket"],
)
def test_textual_decodes_our_bytes_back_to_the_same_key(key: str) -> None:
    # Textual's own terminal-input parser is an independent decoder of the same xterm encoding.
    # (ctrl+f3 is left out: xterm's CSI 1;5R for it is also a cursor position report.)
    data = encode_key(key)
    assert data is not None
    assert _decoded_keys(data)[0] == key


def test_paste_is_bracketed_only_when_the_remote_asked() -> None:
    assert encode_paste("ls\n", bracketed=False) == b"ls\r"
    assert encode_paste("a\r\nb", bracketed=True) == b"\x1b[200~a\rb\x1b[201~"


def test_a_paste_cannot_end_the_bracket_early() -> None:
    hostile = "echo safe\x1b[201~rm -rf ~\n"
    encoded = encode_paste(hostile, bracketed=True)
    assert encoded.count(b"\x1b[201~") == 1 and encoded.endswith(b"\x1b[201~")


def test_mouse_reports_in_sgr_form_decode_to_the_same_click() -> None:
    press = encode_mouse(MouseAction.PRESS, 1, 4, 2, sgr=True)
    assert press == b"\x1b[<0;5;3M"
    assert encode_mouse(MouseAction.RELEASE, 1, 4, 2, sgr=True) == b"\x1b[<0;5;3m"
    assert encode_mouse(MouseAction.WHEEL_UP, 0, 0, 0, sgr=True) == b"\x1b[<64;1;1M"
    assert encode_mouse(MouseAction.PRESS, 3, 0, 0, ctrl=True, sgr=True) == b"\x1b[<18;1;1M"
    assert press is not None
    (decoded,) = XTermParser().feed(press.decode())
    assert isinstance(decoded, events.MouseDown)
    assert (decoded.x, decoded.y, decoded.button) == (4, 2, 1)


def test_x10_mouse_reports_and_their_coordinate_limit() -> None:
    assert encode_mouse(MouseAction.PRESS, 1, 0, 0) == b"\x1b[M !!"
    assert encode_mouse(MouseAction.RELEASE, 1, 9, 9) == b"\x1b[M#**"
    assert encode_mouse(MouseAction.MOTION, 1, 0, 0) == b"\x1b[M@!!"
    assert encode_mouse(MouseAction.PRESS, 1, 300, 0) is None


def test_focus_reports() -> None:
    assert encode_focus(True) == b"\x1b[I"
    assert encode_focus(False) == b"\x1b[O"
