"""Typed channel request bodies (RFC 4254 §6.2-§6.10; OpenSSH PROTOCOL §2.1, §2.3), including
keepalive@openssh.com, which also goes out as a global request.

``ChannelRequest.body()`` in ``messages.connection`` looks a request type up in
``CHANNEL_REQUEST_BODIES``; a type not listed there is one we do not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sshtui.ssh.errors import DecodeError
from sshtui.ssh.messages.connection_fields import (
    ASCII,
    BOOL,
    BYTES,
    TEXT,
    UINT32,
    Empty,
    TypedData,
    body_registry,
)

# Bounds a peer cannot exceed in a pty-req / window-change (no real terminal comes close).
MAX_TERMINAL_CELLS = 10_000


@dataclass(frozen=True, slots=True)
class PtyReq(TypedData):
    """``modes`` is the encoded terminal modes string (see ``terminal_modes.encode_terminal_modes``)."""

    NAME: ClassVar[str] = "pty-req"
    term: str = field(metadata=TEXT)
    cols: int = field(metadata=UINT32)
    rows: int = field(metadata=UINT32)
    width_px: int = field(default=0, metadata=UINT32)
    height_px: int = field(default=0, metadata=UINT32)
    modes: bytes = field(default=b"\x00", metadata=BYTES)

    def _check_decoded(self, what: str) -> None:
        _check_terminal_size(what, self.cols, self.rows)


@dataclass(frozen=True, slots=True)
class Shell(Empty):
    NAME: ClassVar[str] = "shell"


@dataclass(frozen=True, slots=True)
class Exec(TypedData):
    """The command is bytes: it need not be UTF-8, the remote shell interprets it."""

    NAME: ClassVar[str] = "exec"
    command: bytes = field(metadata=BYTES)


@dataclass(frozen=True, slots=True)
class Subsystem(TypedData):
    NAME: ClassVar[str] = "subsystem"
    subsystem: str = field(metadata=TEXT)


@dataclass(frozen=True, slots=True)
class Env(TypedData):
    NAME: ClassVar[str] = "env"
    variable: str = field(metadata=TEXT)
    value: str = field(metadata=TEXT)


@dataclass(frozen=True, slots=True)
class WindowChange(TypedData):
    NAME: ClassVar[str] = "window-change"
    cols: int = field(metadata=UINT32)
    rows: int = field(metadata=UINT32)
    width_px: int = field(default=0, metadata=UINT32)
    height_px: int = field(default=0, metadata=UINT32)

    def _check_decoded(self, what: str) -> None:
        _check_terminal_size(what, self.cols, self.rows)


def _check_terminal_size(what: str, cols: int, rows: int) -> None:
    if cols > MAX_TERMINAL_CELLS or rows > MAX_TERMINAL_CELLS:
        raise DecodeError(f"{what}: terminal size {cols}x{rows} exceeds {MAX_TERMINAL_CELLS}")


@dataclass(frozen=True, slots=True)
class Signal(TypedData):
    """``signal`` is the name without the "SIG" prefix, e.g. "INT"."""

    NAME: ClassVar[str] = "signal"
    signal: str = field(metadata=ASCII)


@dataclass(frozen=True, slots=True)
class ExitStatus(TypedData):
    NAME: ClassVar[str] = "exit-status"
    status: int = field(metadata=UINT32)


@dataclass(frozen=True, slots=True)
class ExitSignal(TypedData):
    NAME: ClassVar[str] = "exit-signal"
    signal: str = field(metadata=ASCII)
    core_dumped: bool = field(metadata=BOOL)
    error_message: str = field(default="", metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


@dataclass(frozen=True, slots=True)
class XonXoff(TypedData):
    NAME: ClassVar[str] = "xon-xoff"
    client_can_do: bool = field(metadata=BOOL)


@dataclass(frozen=True, slots=True)
class Keepalive(Empty):
    """Sent as a global or channel request only to elicit a reply; the reply is ignored."""

    NAME: ClassVar[str] = "keepalive@openssh.com"


@dataclass(frozen=True, slots=True)
class Eow(Empty):
    """End of write: the peer will read no more, though it may still send."""

    NAME: ClassVar[str] = "eow@openssh.com"


CHANNEL_REQUEST_BODIES = body_registry(
    PtyReq, Shell, Exec, Subsystem, Env, WindowChange, Signal, ExitStatus, ExitSignal, XonXoff,
    Keepalive, Eow,
)
