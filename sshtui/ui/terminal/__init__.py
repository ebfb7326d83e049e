"""The embedded terminal: a Textual widget over a swappable VT emulator backend (xterm-compatible)."""

from sshtui.ui.terminal.backend import BackendFactory, PyteBackend, TerminalBackend
from sshtui.ui.terminal.keys import MouseAction, encode_focus, encode_key, encode_mouse, encode_paste
from sshtui.ui.terminal.widget import TerminalView

__all__ = [
    "BackendFactory",
    "MouseAction",
    "PyteBackend",
    "TerminalBackend",
    "TerminalView",
    "encode_focus",
    "encode_key",
    "encode_mouse",
    "encode_paste",
]
