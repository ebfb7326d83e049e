"""Connection protocol messages (RFC 4254 §4-§7; OpenSSH PROTOCOL §2 for the keepalive, eow,
streamlocal and hostkeys extensions): global request and channel open bodies, and the messages.

Most messages and bodies declare their wire layout through field metadata (see
``connection_fields``). The per-packet messages (CHANNEL_DATA, CHANNEL_EXTENDED_DATA,
CHANNEL_WINDOW_ADJUST) are written out by hand with precompiled structs for speed.
Channel request bodies live in ``channel_requests`` and terminal modes in ``terminal_modes``;
both are re-exported here, so that drivers reach every connection-protocol body through this module.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Self

from sshtui.ssh.constants import MsgType, message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages.channel_requests import CHANNEL_REQUEST_BODIES as CHANNEL_REQUEST_BODIES
from sshtui.ssh.messages.channel_requests import MAX_TERMINAL_CELLS as MAX_TERMINAL_CELLS
from sshtui.ssh.messages.channel_requests import Env as Env
from sshtui.ssh.messages.channel_requests import Eow as Eow
from sshtui.ssh.messages.channel_requests import Exec as Exec
from sshtui.ssh.messages.channel_requests import ExitSignal as ExitSignal
from sshtui.ssh.messages.channel_requests import ExitStatus as ExitStatus
from sshtui.ssh.messages.channel_requests import Keepalive as Keepalive
from sshtui.ssh.messages.channel_requests import PtyReq as PtyReq
from sshtui.ssh.messages.channel_requests import Shell as Shell
from sshtui.ssh.messages.channel_requests import Signal as Signal
from sshtui.ssh.messages.channel_requests import Subsystem as Subsystem
from sshtui.ssh.messages.channel_requests import WindowChange as WindowChange
from sshtui.ssh.messages.channel_requests import XonXoff as XonXoff
from sshtui.ssh.messages.connection_fields import (
    ASCII,
    BOOL,
    PORT,
    REST,
    TEXT,
    UINT32,
    Empty,
    Message,
    body_registry,
    decode_body,
    decode_port,
)
from sshtui.ssh.messages.connection_fields import TypedData as TypedData
from sshtui.ssh.messages.terminal_modes import TerminalMode as TerminalMode
from sshtui.ssh.messages.terminal_modes import decode_terminal_modes as decode_terminal_modes
from sshtui.ssh.messages.terminal_modes import encode_terminal_modes as encode_terminal_modes
from sshtui.ssh.wire import WireReader, string

_Buffer = bytes | bytearray | memoryview
MAX_HOSTKEYS = 64


# --- Global request bodies (RFC 4254 §4, §7.1; OpenSSH PROTOCOL §2.2, §2.5) ---------------


@dataclass(frozen=True, slots=True)
class TcpipForward(TypedData):
    """Listen on address:port on the server; port 0 lets the server choose one."""

    NAME: ClassVar[str] = "tcpip-forward"
    address: str = field(metadata=TEXT)
    port: int = field(metadata=PORT)


@dataclass(frozen=True, slots=True)
class CancelTcpipForward(TcpipForward):
    NAME: ClassVar[str] = "cancel-tcpip-forward"


@dataclass(frozen=True, slots=True)
class StreamlocalForward(TypedData):
    NAME: ClassVar[str] = "streamlocal-forward@openssh.com"
    socket_path: str = field(metadata=TEXT)


@dataclass(frozen=True, slots=True)
class CancelStreamlocalForward(StreamlocalForward):
    NAME: ClassVar[str] = "cancel-streamlocal-forward@openssh.com"


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
class Session(Empty):
    NAME: ClassVar[str] = "session"


@dataclass(frozen=True, slots=True)
class DirectTcpip(TypedData):
    """Ask the server to connect to address:port for us."""

    NAME: ClassVar[str] = "direct-tcpip"
    address: str = field(metadata=TEXT)
    port: int = field(metadata=PORT)
    originator_address: str = field(metadata=TEXT)
    originator_port: int = field(metadata=PORT)


@dataclass(frozen=True, slots=True)
class ForwardedTcpip(DirectTcpip):
    """The server accepted a connection on a listener we asked for; address:port is that listener."""

    NAME: ClassVar[str] = "forwarded-tcpip"


@dataclass(frozen=True, slots=True)
class DirectStreamlocal(TypedData):
    NAME: ClassVar[str] = "direct-streamlocal@openssh.com"
    socket_path: str = field(metadata=TEXT)
    reserved: str = field(default="", metadata=TEXT)
    reserved_port: int = field(default=0, metadata=UINT32)


@dataclass(frozen=True, slots=True)
class ForwardedStreamlocal(TypedData):
    NAME: ClassVar[str] = "forwarded-streamlocal@openssh.com"
    socket_path: str = field(metadata=TEXT)
    reserved: str = field(default="", metadata=TEXT)


GLOBAL_REQUEST_BODIES = body_registry(
    TcpipForward, CancelTcpipForward, StreamlocalForward, CancelStreamlocalForward, Keepalive,
    Hostkeys, HostkeysProve,
)
CHANNEL_OPEN_BODIES = body_registry(
    Session, DirectTcpip, ForwardedTcpip, DirectStreamlocal, ForwardedStreamlocal
)


# --- Messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlobalRequest(Message):
    MSG: ClassVar[int] = MsgType.GLOBAL_REQUEST
    name: str = field(metadata=ASCII)
    want_reply: bool = field(metadata=BOOL)
    data: bytes = field(default=b"", metadata=REST)

    @classmethod
    def of(cls, body: TypedData, want_reply: bool) -> GlobalRequest:
        return cls(body.NAME, want_reply, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed request, or None for a request type we do not know."""
        return decode_body(GLOBAL_REQUEST_BODIES, self.name, self.data)


@dataclass(frozen=True, slots=True)
class RequestSuccess(Message):
    """``data`` is request specific: the bound port for tcpip-forward with port 0."""

    MSG: ClassVar[int] = MsgType.REQUEST_SUCCESS
    data: bytes = field(default=b"", metadata=REST)

    def bound_port(self) -> int:
        r = WireReader(self.data, "REQUEST_SUCCESS for tcpip-forward")
        port = decode_port(r, "bound port")
        r.check_end()
        return port


@dataclass(frozen=True, slots=True)
class RequestFailure(Message):
    MSG: ClassVar[int] = MsgType.REQUEST_FAILURE


@dataclass(frozen=True, slots=True)
class ChannelOpen(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN
    channel_type: str = field(metadata=ASCII)
    sender_channel: int = field(metadata=UINT32)
    initial_window: int = field(metadata=UINT32)
    max_packet: int = field(metadata=UINT32)
    data: bytes = field(default=b"", metadata=REST)

    @classmethod
    def of(cls, body: TypedData, sender_channel: int, initial_window: int, max_packet: int) -> ChannelOpen:
        return cls(body.NAME, sender_channel, initial_window, max_packet, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed open request, or None for a channel type we do not know."""
        return decode_body(CHANNEL_OPEN_BODIES, self.channel_type, self.data)


@dataclass(frozen=True, slots=True)
class ChannelOpenConfirmation(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN_CONFIRMATION
    recipient_channel: int = field(metadata=UINT32)
    sender_channel: int = field(metadata=UINT32)
    initial_window: int = field(metadata=UINT32)
    max_packet: int = field(metadata=UINT32)
    data: bytes = field(default=b"", metadata=REST)


@dataclass(frozen=True, slots=True)
class ChannelOpenFailure(Message):
    """``reason`` is usually an ``OpenFailureReason``; ``description`` is untrusted text."""

    MSG: ClassVar[int] = MsgType.CHANNEL_OPEN_FAILURE
    recipient_channel: int = field(metadata=UINT32)
    reason: int = field(metadata=UINT32)
    description: str = field(default="", metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


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
class ChannelEof(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_EOF
    recipient_channel: int = field(metadata=UINT32)


@dataclass(frozen=True, slots=True)
class ChannelClose(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_CLOSE
    recipient_channel: int = field(metadata=UINT32)


@dataclass(frozen=True, slots=True)
class ChannelRequest(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_REQUEST
    recipient_channel: int = field(metadata=UINT32)
    request_type: str = field(metadata=ASCII)
    want_reply: bool = field(metadata=BOOL)
    data: bytes = field(default=b"", metadata=REST)

    @classmethod
    def of(cls, recipient_channel: int, body: TypedData, want_reply: bool) -> ChannelRequest:
        return cls(recipient_channel, body.NAME, want_reply, body.encode_data())

    def body(self) -> TypedData | None:
        """The typed request, or None for a request type we do not know."""
        return decode_body(CHANNEL_REQUEST_BODIES, self.request_type, self.data)


@dataclass(frozen=True, slots=True)
class ChannelSuccess(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_SUCCESS
    recipient_channel: int = field(metadata=UINT32)


@dataclass(frozen=True, slots=True)
class ChannelFailure(Message):
    MSG: ClassVar[int] = MsgType.CHANNEL_FAILURE
    recipient_channel: int = field(metadata=UINT32)

