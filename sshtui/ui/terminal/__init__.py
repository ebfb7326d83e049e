"""The embedded terminal: a Textual widget over a swappable VT emulator backend (xterm-compatible).

Two emulators sit behind the same ``TerminalBackend`` interface: ``avt`` (the default: a native core
plus our mode scanner, tens of MB/s) and ``pyte`` (pure Python, our own parser; slower, kept because it
needs nothing compiled). ``config.toml`` picks one with ``[terminal] emulator = "pyte"``.
"""

from sshtui.ui.terminal.avt_backend import AvtBackend
from sshtui.ui.terminal.backend import BackendFactory, PyteBackend, TerminalBackend
from sshtui.ui.terminal.keys import MouseAction, encode_focus, encode_key, encode_mouse, encode_paste
from sshtui.ui.terminal.widget import TerminalView

EMULATORS: dict[str, BackendFactory] = {"avt": AvtBackend, "pyte": PyteBackend}
DEFAULT_EMULATOR: BackendFactory = AvtBackend

__all__ = [
    "DEFAULT_EMULATOR",
    "EMULATORS",
    "AvtBackend",
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
