"""Connection protocol messages (RFC 4254 §4-§8; OpenSSH PROTOCOL §2 for the
keepalive, eow, streamlocal and hostkeys extensions).

Most messages and request bodies declare their wire layout through field metadata
(``_UINT32``, ``_TEXT``...), which gives every field a uint32 range check on encode and an
error naming it on decode. The per-packet messages (CHANNEL_DATA, CHANNEL_EXTENDED_DATA,
CHANNEL_WINDOW_ADJUST) are written out by hand with precompiled structs for speed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple, Self, cast

from sshtui.ssh.constants import MsgType, message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages.base import open_reader
from sshtui.ssh.wire import WireReader, boolean, byte, string, uint32

_Buffer = bytes | bytearray | memoryview
UINT32_MAX = 2**32 - 1
# Bounds a peer cannot exceed in a pty-req / window-change (no real terminal comes close).
MAX_TERMINAL_CELLS = 10_000
MAX_HOSTKEYS = 64


class _Codec(NamedTuple):
    encode: Callable[[Any, str], bytes]
    decode: Callable[[WireReader, str], Any]


def _check_range(value: int, name: str, top: int = UINT32_MAX) -> int:
    if not 0 <= value <= top:
        raise LocalProtocolError(f"{name} {value} is outside 0..{top}")
    return value


def _encode_ascii(value: str, name: str) -> bytes:
    if not value.isascii():
        raise LocalProtocolError(f"{name} {value!r:.64} is not ASCII")
    return string(value)


def _decode_port(r: WireReader, name: str) -> int:
    port = r.uint32(name)
    if port > 0xFFFF:
        raise DecodeError(f"{r.what}: {name} {port} is not a TCP port")
    return port


_UINT32 = {"wire": _Codec(lambda v, n: uint32(_check_range(v, n)), WireReader.uint32)}
_PORT = {"wire": _Codec(lambda v, n: uint32(_check_range(v, n, 0xFFFF)), _decode_port)}
_BOOL = {"wire": _Codec(lambda v, _: boolean(v), WireReader.boolean)}
_TEXT = {"wire": _Codec(lambda v, _: string(v), WireReader.text)}
_ASCII = {"wire": _Codec(_encode_ascii, WireReader.ascii)}
_BYTES = {"wire": _Codec(lambda v, _: string(v), WireReader.string)}
# Whatever follows, unframed: type-specific data at the end of a message.
_REST = {"wire": _Codec(lambda v, _: bytes(v), lambda r, _: r.rest())}


_LAYOUTS: dict[type, tuple[tuple[str, _Codec], ...]] = {}


def _layout(cls: type) -> tuple[tuple[str, _Codec], ...]:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple((f.name, f.metadata["wire"]) for f in fields(cast(Any, cls)))
    return layout


class _Fields:
    """Encodes and decodes a dataclass's fields, in order, by their ``wire`` metadata."""

    __slots__ = ()

    def _encode_fields(self) -> bytes:
        return b"".join(codec.encode(getattr(self, name), name) for name, codec in _layout(type(self)))

    @classmethod
    def _decode_fields(cls, r: WireReader) -> Self:
        decoded: Self = cast(Any, cls)(*(codec.decode(r, name) for name, codec in _layout(cls)))
        r.check_end()
        decoded._check_decoded(r.what)
        return decoded

    def _check_decoded(self, what: str) -> None:
        """Semantic bounds beyond the field types; raises ``DecodeError``."""


class _Message(_Fields):
    __slots__ = ()
    MSG: ClassVar[int]

    def encode(self) -> bytes:
        return byte(self.MSG) + self._encode_fields()

    @classmethod
    def decode(cls, payload: _Buffer) -> Self:
        return cls._decode_fields(open_reader(payload, cls.MSG))


class TypedData(_Fields):
    """The type-specific data of a global request, channel open or channel request."""

    __slots__ = ()
    NAME: ClassVar[str]

    def encode_data(self) -> bytes:
        return self._encode_fields()

    @classmethod
    def decode_data(cls, data: _Buffer) -> Self:
        return cls._decode_fields(WireReader(data, cls.NAME))


@dataclass(frozen=True, slots=True)
class _Empty(TypedData):
    pass


# --- Global request bodies (RFC 4254 §4, §7.1; OpenSSH PROTOCOL §2.2, §2.5) ---------------


@dataclass(frozen=True, slots=True)
class TcpipForward(TypedData):
    """Listen on address:port on the server; port 0 lets the server choose one."""

    NAME: ClassVar[str] = "tcpip-forward"
    address: str = field(metadata=_TEXT)
    port: int = field(metadata=_PORT)


@dataclass(frozen=True, slots=True)
class CancelTcpipForward(TcpipForward):
    NAME: ClassVar[str] = "cancel-tcpip-forward"


@dataclass(frozen=True, slots=True)
class StreamlocalForward(TypedData):
    NAME: ClassVar[str] = "streamlocal-forward@openssh.com"
    socket_path: str = field(metadata=_TEXT)


@dataclass(frozen=True, slots=True)
class CancelStreamlocalForward(StreamlocalForward):
    NAME: ClassVar[str] = "cancel-streamlocal-forward@openssh.com"


@dataclass(frozen=True, slots=True)
class Keepalive(_Empty):
    """Sent as a global or channel request only to elicit a reply; the reply is ignored."""

    NAME: ClassVar[str] = "keepalive@openssh.com"


@dataclass(frozen=True, slots=True)
class Hostkeys(TypedData):
    """Every host key the server has, so the client can learn rotated keys."""

    NAME: ClassVar[str] = "hostkeys-00@openssh.com"
    keys: tuple[bytes, ...]

    def encode_data(self) -> bytes:
        return b"".join(string(key) for key in self.keys)

    @classmethod
    def decode_data(cls, data: _Buffer) -> Self:
        r = WireReader(data, cls.NAME)
        keys: list[bytes] = []
        while r.remaining:
            if len(keys) == MAX_HOSTKEYS:
                raise DecodeError(f"{cls.NAME}: more than {MAX_HOSTKEYS} host keys")
            keys.append(r.string("host key blob"))
        r.check_end()
        return cls(tuple(keys))


@dataclass(frozen=True, slots=True)
class HostkeysProve(Hostkeys):
    """The client asks the server to prove it holds these keys (reply: signatures)."""

    NAME: ClassVar[str] = "hostkeys-prove-00@openssh.com"


# --- Channel open bodies (RFC 4254 §6.1, §7.2; OpenSSH PROTOCOL §2.4) -----------------------


@dataclass(frozen=True, slots=True)
class Session(_Empty):
    NAME: ClassVar[str] = "session"


@dataclass(frozen=True, slots=True)
class DirectTcpip(TypedData):
    """Ask the server to connect to address:port for us."""

    NAME: ClassVar[str] = "direct-tcpip"
    address: str = field(metadata=_TEXT)
    port: int = field(metadata=_PORT)
    originator_address: str = field(metadata=_TEXT)
    originator_port: int = field(metadata=_PORT)


@dataclass(frozen=True, slots=True)
class ForwardedTcpip(DirectTcpip):
    """The server accepted a connection on a listener we asked for; address:port is that listener."""

    NAME: ClassVar[str] = "forwarded-tcpip"


@dataclass(frozen=True, slots=True)
class DirectStreamlocal(TypedData):
    NAME: ClassVar[str] = "direct-streamlocal@openssh.com"
    socket_path: str = field(metadata=_TEXT)
    reserved: str = field(default="", metadata=_TEXT)
    reserved_port: int = field(default=0, metadata=_UINT32)


@dataclass(frozen=True, slots=True)
class ForwardedStreamlocal(TypedData):
    NAME: ClassVar[str] = "forwarded-streamlocal@openssh.com"
    socket_path: str = field(metadata=_TEXT)
    reserved: str = field(default="", metadata=_TEXT)


# --- Channel request bodies (RFC 4254 §6.2-§6.10; OpenSSH PROTOCOL §2.1, §2.3) --------------


@dataclass(frozen=True, slots=True)
class PtyReq(TypedData):
    """``modes`` is the encoded terminal modes string (see ``encode_terminal_modes``)."""

    NAME: ClassVar[str] = "pty-req"
    term: str = field(metadata=_TEXT)
    cols: int = field(metadata=_UINT32)
    rows: int = field(metadata=_UINT32)
    width_px: int = field(default=0, metadata=_UINT32)
    height_px: int = field(default=0, metadata=_UINT32)
    modes: bytes = field(default=b"\x00", metadata=_BYTES)

    def _check_decoded(self, what: str) -> None:
        _check_terminal_size(what, self.cols, self.rows)


@dataclass(frozen=True, slots=True)
class Shell(_Empty):
    NAME: ClassVar[str] = "shell"


@dataclass(frozen=True, slots=True)
class Exec(TypedData):
    """The command is bytes: it need not be UTF-8, the remote shell interprets it."""

    NAME: ClassVar[str] = "exec"
    command: bytes = field(metadata=_BYTES)


@dataclass(frozen=True, slots=True)
class Subsystem(TypedData):
    NAME: ClassVar[str] = "subsystem"
    subsystem: str = field(metadata=_TEXT)


@dataclass(frozen=True, slots=True)
class Env(TypedData):
    NAME: ClassVar[str] = "env"
    variable: str = field(metadata=_TEXT)
    value: str = field(metadata=_TEXT)


@dataclass(frozen=True, slots=True)
class WindowChange(TypedData):
    NAME: ClassVar[str] = "window-change"
    cols: int = field(metadata=_UINT32)
    rows: int = field(metadata=_UINT32)
    width_px: int = field(default=0, metadata=_UINT32)
    height_px: int = field(default=0, metadata=_UINT32)

    def _check_decoded(self, what: str) -> None:
        _check_terminal_size(what, self.cols, self.rows)


def _check_terminal_size(what: str, cols: int, rows: int) -> None:
    if cols > MAX_TERMINAL_CELLS or rows > MAX_TERMINAL_CELLS:
        raise DecodeError(f"{what}: terminal size {cols}x{rows} exceeds {MAX_TERMINAL_CELLS}")


@dataclass(frozen=True, slots=True)
class Signal(TypedData):
    """``signal`` is the name without the "SIG" prefix, e.g. "INT"."""

    NAME: ClassVar[str] = "signal"
    signal: str = field(metadata=_ASCII)


@dataclass(frozen=True, slots=True)
class ExitStatus(TypedData):
    NAME: ClassVar[str] = "exit-status"
    status: int = field(metadata=_UINT32)


@dataclass(frozen=True, slots=True)
class ExitSignal(TypedData):
    NAME: ClassVar[str] = "exit-signal"
    signal: str = field(metadata=_ASCII)
    core_dumped: bool = field(metadata=_BOOL)
    error_message: str = field(default="", metadata=_TEXT)
    language: str = field(default="", metadata=_ASCII)


@dataclass(frozen=True, slots=True)
class XonXoff(TypedData):
    NAME: ClassVar[str] = "xon-xoff"
    client_can_do: bool = field(metadata=_BOOL)


@dataclass(frozen=True, slots=True)
class Eow(_Empty):
    """End of write: the peer will read no more, though it may still send."""

    NAME: ClassVar[str] = "eow@openssh.com"


def _registry(*bodies: type[TypedData]) -> Mapping[str, type[TypedData]]:
    return {body.NAME: body for body in bodies}


GLOBAL_REQUEST_BODIES = _registry(
    TcpipForward, CancelTcpipForward, StreamlocalForward, CancelStreamlocalForward, Keepalive,
    Hostkeys, HostkeysProve,
)
CHANNEL_OPEN_BODIES = _registry(Session, DirectTcpip, ForwardedTcpip, DirectStreamlocal, ForwardedStreamlocal)
CHANNEL_REQUEST_BODIES = _registry(
    PtyReq, Shell, Exec, Subsystem, Env, WindowChange, Signal, ExitStatus, ExitSignal, XonXoff,
    Keepalive, Eow,
)


def _typed(registry: Mapping[str, type[TypedData]], name: str, data: bytes) -> TypedData | None:
    body = registry.get(name)
    return None if body is None else body.decode_data(data)


# --- Messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlobalRequest(_Message):
    MSG: ClassVar[int] = MsgType.GLOBAL_REQUEST
    name: str = field(metadata=_ASCII)
    want_reply: bool = field(metadata=_BOOL)
    data: bytes = field(default=b"", metadata=_REST)

    @classmethod
    def of(cls, body: TypedData, want_reply: bool) -> GlobalRequest:
        return cls(body.NAME, want_reply, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed request, or None for a request type we do not know."""
        return _typed(GLOBAL_REQUEST_BODIES, self.name, self.data)


@dataclass(frozen=True, slots=True)
class RequestSuccess(_Message):
    """``data`` is request specific: the bound port for tcpip-forward with port 0."""

    MSG: ClassVar[int] = MsgType.REQUEST_SUCCESS
    data: bytes = field(default=b"", metadata=_REST)

    def bound_port(self) -> int:
        r = WireReader(self.data, "REQUEST_SUCCESS for tcpip-forward")
        port = _decode_port(r, "bound port")
        r.check_end()
        return port


@dataclass(frozen=True, slots=True)
class RequestFailure(_Message):
    MSG: ClassVar[int] = MsgType.REQUEST_FAILURE


@dataclass(frozen=True, slots=True)
class ChannelOpen(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN
    channel_type: str = field(metadata=_ASCII)
    sender_channel: int = field(metadata=_UINT32)
    initial_window: int = field(metadata=_UINT32)
    max_packet: int = field(metadata=_UINT32)
    data: bytes = field(default=b"", metadata=_REST)

    @classmethod
    def of(cls, body: TypedData, sender_channel: int, initial_window: int, max_packet: int) -> ChannelOpen:
        return cls(body.NAME, sender_channel, initial_window, max_packet, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed open request, or None for a channel type we do not know."""
        return _typed(CHANNEL_OPEN_BODIES, self.channel_type, self.data)


@dataclass(frozen=True, slots=True)
class ChannelOpenConfirmation(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN_CONFIRMATION
    recipient_channel: int = field(metadata=_UINT32)
    sender_channel: int = field(metadata=_UINT32)
    initial_window: int = field(metadata=_UINT32)
    max_packet: int = field(metadata=_UINT32)
    data: bytes = field(default=b"", metadata=_REST)


@dataclass(frozen=True, slots=True)
class ChannelOpenFailure(_Message):
    """``reason`` is usually an ``OpenFailureReason``; ``description`` is untrusted text."""

    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN_FAILURE
    recipient_channel: int = field(metadata=_UINT32)
    reason: int = field(metadata=_UINT32)
    description: str = field(default="", metadata=_TEXT)
    language: str = field(default="", metadata=_ASCII)


_HEAD_U32_U32 = struct.Struct(">BII")
_HEAD_U32_U32_U32 = struct.Struct(">BIII")


def _header_error(payload: _Buffer, msg: int, size: int) -> DecodeError:
    """Why ``payload`` is not a ``msg`` message whose fixed part is ``size`` bytes."""
    if not payload:
        return DecodeError("empty payload where a message was expected")
    if payload[0] != msg:
        return DecodeError(f"expected {message_name(msg)}, got {message_name(payload[0])}")
    if len(payload) < size:
        return DecodeError(f"{message_name(msg)}: truncated ({len(payload)} bytes, at least {size} needed)")
    return DecodeError(f"{message_name(msg)}: {len(payload) - size} unexpected trailing bytes")


def _pack_error(error: struct.error, what: str) -> LocalProtocolError:
    return LocalProtocolError(f"{what}: a field is outside uint32 ({error})")


def decode_channel_data(payload: _Buffer) -> tuple[int, memoryview]:
    """(recipient channel, data) of a CHANNEL_DATA payload; the data is a view, not a copy."""
    if len(payload) < 9 or payload[0] != MsgType.CHANNEL_DATA:
        raise _header_error(payload, MsgType.CHANNEL_DATA, 9)
    _, recipient, length = _HEAD_U32_U32.unpack_from(payload)
    if length != len(payload) - 9:
        raise DecodeError(f"CHANNEL_DATA: data length {length} but {len(payload) - 9} bytes follow")
    return recipient, memoryview(payload)[9:]


def decode_channel_extended_data(payload: _Buffer) -> tuple[int, int, memoryview]:
    """(recipient channel, data type code, data) of a CHANNEL_EXTENDED_DATA payload, without copying."""
    if len(payload) < 13 or payload[0] != MsgType.CHANNEL_EXTENDED_DATA:
        raise _header_error(payload, MsgType.CHANNEL_EXTENDED_DATA, 13)
    _, recipient, data_type, length = _HEAD_U32_U32_U32.unpack_from(payload)
    if length != len(payload) - 13:
        raise DecodeError(f"CHANNEL_EXTENDED_DATA: data length {length} but {len(payload) - 13} bytes follow")
    return recipient, data_type, memoryview(payload)[13:]


def encode_channel_data(recipient_channel: int, data: _Buffer) -> bytes:
    try:
        return _HEAD_U32_U32.pack(MsgType.CHANNEL_DATA, recipient_channel, len(data)) + data
    except struct.error as exc:
        raise _pack_error(exc, "CHANNEL_DATA") from None


def encode_channel_extended_data(recipient_channel: int, data_type: int, data: _Buffer) -> bytes:
    try:
        head = _HEAD_U32_U32_U32.pack(MsgType.CHANNEL_EXTENDED_DATA, recipient_channel, data_type, len(data))
    except struct.error as exc:
        raise _pack_error(exc, "CHANNEL_EXTENDED_DATA") from None
    return head + data


@dataclass(frozen=True, slots=True)
class ChannelData:
    """For bulk data prefer ``encode_channel_data`` / ``decode_channel_data``, which do not copy."""

    MSG: ClassVar[int] = MsgType.CHANNEL_DATA
    recipient_channel: int
    data: bytes

    def encode(self) -> bytes:
        return encode_channel_data(self.recipient_channel, self.data)

    @classmethod
    def decode(cls, payload: _Buffer) -> ChannelData:
        recipient, data = decode_channel_data(payload)
        return cls(recipient, bytes(data))


@dataclass(frozen=True, slots=True)
class ChannelExtendedData:
    """``data_type`` 1 is stderr (``ExtendedDataType.STDERR``)."""

    MSG: ClassVar[int] = MsgType.CHANNEL_EXTENDED_DATA
    recipient_channel: int
    data_type: int
    data: bytes

    def encode(self) -> bytes:
        return encode_channel_extended_data(self.recipient_channel, self.data_type, self.data)

    @classmethod
    def decode(cls, payload: _Buffer) -> ChannelExtendedData:
        recipient, data_type, data = decode_channel_extended_data(payload)
        return cls(recipient, data_type, bytes(data))


@dataclass(frozen=True, slots=True)
class ChannelWindowAdjust:
    MSG: ClassVar[int] = MsgType.CHANNEL_WINDOW_ADJUST
    recipient_channel: int
    increment: int

    def encode(self) -> bytes:
        try:
            return _HEAD_U32_U32.pack(self.MSG, self.recipient_channel, self.increment)
        except struct.error as exc:
            raise _pack_error(exc, "CHANNEL_WINDOW_ADJUST") from None

    @classmethod
    def decode(cls, payload: _Buffer) -> ChannelWindowAdjust:
        if len(payload) != _HEAD_U32_U32.size or payload[0] != cls.MSG:
            raise _header_error(payload, cls.MSG, _HEAD_U32_U32.size)
        _, recipient, increment = _HEAD_U32_U32.unpack_from(payload)
        return cls(recipient, increment)


@dataclass(frozen=True, slots=True)
class ChannelEof(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_EOF
    recipient_channel: int = field(metadata=_UINT32)


@dataclass(frozen=True, slots=True)
class ChannelClose(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_CLOSE
    recipient_channel: int = field(metadata=_UINT32)


@dataclass(frozen=True, slots=True)
class ChannelRequest(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_REQUEST
    recipient_channel: int = field(metadata=_UINT32)
    request_type: str = field(metadata=_ASCII)
    want_reply: bool = field(metadata=_BOOL)
    data: bytes = field(default=b"", metadata=_REST)

    @classmethod
    def of(cls, recipient_channel: int, body: TypedData, want_reply: bool) -> ChannelRequest:
        return cls(recipient_channel, body.NAME, want_reply, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed request, or None for a request type we do not know."""
        return _typed(CHANNEL_REQUEST_BODIES, self.request_type, self.data)


@dataclass(frozen=True, slots=True)
class ChannelSuccess(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_SUCCESS
    recipient_channel: int = field(metadata=_UINT32)


@dataclass(frozen=True, slots=True)
class ChannelFailure(_Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_FAILURE
    recipient_channel: int = field(metadata=_UINT32)


# --- Terminal modes (RFC 4254 §8; IUTF8 from RFC 8160) ----------------------------------


class TerminalMode(IntEnum):
    TTY_OP_END = 0
    VINTR = 1
    VQUIT = 2
    VERASE = 3
    VKILL = 4
    VEOF = 5
    VEOL = 6
    VEOL2 = 7
    VSTART = 8
    VSTOP = 9
    VSUSP = 10
    VDSUSP = 11
    VREPRINT = 12
    VWERASE = 13
    VLNEXT = 14
    VFLUSH = 15
    VSWTCH = 16
    VSTATUS = 17
    VDISCARD = 18
    IGNPAR = 30
    PARMRK = 31
    INPCK = 32
    ISTRIP = 33
    INLCR = 34
    IGNCR = 35
    ICRNL = 36
    IUCLC = 37
    IXON = 38
    IXANY = 39
    IXOFF = 40
    IMAXBEL = 41
    IUTF8 = 42
    ISIG = 50
    ICANON = 51
    XCASE = 52
    ECHO = 53
    ECHOE = 54
    ECHOK = 55
    ECHONL = 56
    NOFLSH = 57
    TOSTOP = 58
    IEXTEN = 59
    ECHOCTL = 60
    ECHOKE = 61
    PENDIN = 62
    OPOST = 70
    OLCUC = 71
    ONLCR = 72
    OCRNL = 73
    ONOCR = 74
    ONLRET = 75
    CS7 = 90
    CS8 = 91
    PARENB = 92
    PARODD = 93
    TTY_OP_ISPEED = 128
    TTY_OP_OSPEED = 129


# Opcodes from here on are undefined and, per RFC 4254 §8, stop parsing.
_FIRST_UNDEFINED_OPCODE = 160
_MODE = struct.Struct(">BI")


def encode_terminal_modes(modes: Mapping[int, int]) -> bytes:
    out = bytearray()
    for opcode, value in modes.items():
        if not 0 < opcode < _FIRST_UNDEFINED_OPCODE:
            raise LocalProtocolError(f"terminal mode opcode {opcode} is outside 1..159")
        out += _MODE.pack(opcode, _check_range(value, f"terminal mode {opcode} value"))
    out.append(TerminalMode.TTY_OP_END)
    return bytes(out)


def decode_terminal_modes(encoded: _Buffer) -> dict[int, int]:
    """Opcode to value. Parsing stops at TTY_OP_END, at an undefined opcode (160 and up),
    or at the end of the string; whatever follows is ignored as RFC 4254 §8 prescribes,
    so this decoder deliberately does not call ``check_end``."""
    r = WireReader(encoded, "pty-req terminal modes")
    modes: dict[int, int] = {}
    while r.remaining:
        opcode = r.byte("opcode")
        if opcode == TerminalMode.TTY_OP_END or opcode >= _FIRST_UNDEFINED_OPCODE:
            break
        modes[opcode] = r.uint32(f"value of mode {opcode}")
    return modes
