"""Transport layer messages (RFC 4253 §7, §10, §11; RFC 8308 for EXT_INFO).

Every layout here is declared in field metadata (see ``messages.base``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.messages.base import (
    ASCII,
    BOOL,
    BYTES,
    NAMES,
    TEXT,
    UINT32,
    Message,
    counted,
    fixed,
    record,
)

# Bounds on EXT_INFO so a peer cannot make us hold unbounded extension data.
MAX_EXTENSIONS = 32
MAX_EXTENSION_VALUE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Disconnect(Message):
    MSG: ClassVar[int] = MsgType.DISCONNECT
    reason: int = field(metadata=UINT32)
    description: str = field(metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


@dataclass(frozen=True, slots=True)
class Ignore(Message):
    MSG: ClassVar[int] = MsgType.IGNORE
    data: bytes = field(default=b"", metadata=BYTES)


@dataclass(frozen=True, slots=True)
class Unimplemented(Message):
    MSG: ClassVar[int] = MsgType.UNIMPLEMENTED
    sequence_number: int = field(metadata=UINT32)


@dataclass(frozen=True, slots=True)
class Debug(Message):
    MSG: ClassVar[int] = MsgType.DEBUG
    always_display: bool = field(metadata=BOOL)
    message: str = field(metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


@dataclass(frozen=True, slots=True)
class ServiceRequest(Message):
    MSG: ClassVar[int] = MsgType.SERVICE_REQUEST
    service: str = field(metadata=ASCII)


@dataclass(frozen=True, slots=True)
class ServiceAccept(Message):
    MSG: ClassVar[int] = MsgType.SERVICE_ACCEPT
    service: str = field(metadata=ASCII)


@dataclass(frozen=True, slots=True)
class ExtInfo(Message):
    """RFC 8308 §2.3: a list of (name, value) extensions."""

    MSG: ClassVar[int] = MsgType.EXT_INFO
    extensions: tuple[tuple[str, bytes], ...] = field(
        metadata=counted(MAX_EXTENSIONS, record(("extension name", ASCII), ("extension value", BYTES)))
    )

    def _check_decoded(self, what: str) -> None:
        for name, value in self.extensions:
            if len(value) > MAX_EXTENSION_VALUE:
                raise DecodeError(
                    f"{what}: extension {name!r:.64} value is {len(value)} bytes"
                    f" (limit {MAX_EXTENSION_VALUE})"
                )

    def get(self, name: str) -> bytes | None:
        for key, value in self.extensions:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class KexInit(Message):
    """RFC 4253 §7.1. Name lists are kept in order; ``reserved`` must be zero on send."""

    MSG: ClassVar[int] = MsgType.KEXINIT
    cookie: bytes = field(metadata=fixed(16))
    kex_algorithms: tuple[str, ...] = field(metadata=NAMES)
    server_host_key_algorithms: tuple[str, ...] = field(metadata=NAMES)
    encryption_c2s: tuple[str, ...] = field(metadata=NAMES)
    encryption_s2c: tuple[str, ...] = field(metadata=NAMES)
    mac_c2s: tuple[str, ...] = field(metadata=NAMES)
    mac_s2c: tuple[str, ...] = field(metadata=NAMES)
    compression_c2s: tuple[str, ...] = field(default=("none",), metadata=NAMES)
    compression_s2c: tuple[str, ...] = field(default=("none",), metadata=NAMES)
    languages_c2s: tuple[str, ...] = field(default=(), metadata=NAMES)
    languages_s2c: tuple[str, ...] = field(default=(), metadata=NAMES)
    first_kex_packet_follows: bool = field(default=False, metadata=BOOL)
    reserved: int = field(default=0, metadata=UINT32)


@dataclass(frozen=True, slots=True)
class NewKeys(Message):
    MSG: ClassVar[int] = MsgType.NEWKEYS
