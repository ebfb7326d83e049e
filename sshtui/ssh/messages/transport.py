"""Transport layer messages (RFC 4253 §7, §10, §11; RFC 8308 for EXT_INFO)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.messages.base import open_reader
from sshtui.ssh.wire import boolean, byte, name_list, string, uint32

# Bounds on EXT_INFO so a peer cannot make us hold unbounded extension data.
MAX_EXTENSIONS = 32
MAX_EXTENSION_VALUE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Disconnect:
    MSG: ClassVar[int] = MsgType.DISCONNECT
    reason: int
    description: str
    language: str = ""

    def encode(self) -> bytes:
        return byte(self.MSG) + uint32(self.reason) + string(self.description) + string(self.language)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> Disconnect:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.uint32("reason code"), r.text("description"), r.ascii("language tag"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class Ignore:
    MSG: ClassVar[int] = MsgType.IGNORE
    data: bytes = b""

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.data)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> Ignore:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.string("data"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class Unimplemented:
    MSG: ClassVar[int] = MsgType.UNIMPLEMENTED
    sequence_number: int

    def encode(self) -> bytes:
        return byte(self.MSG) + uint32(self.sequence_number)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> Unimplemented:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.uint32("sequence number"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class Debug:
    MSG: ClassVar[int] = MsgType.DEBUG
    always_display: bool
    message: str
    language: str = ""

    def encode(self) -> bytes:
        return byte(self.MSG) + boolean(self.always_display) + string(self.message) + string(self.language)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> Debug:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.boolean("always_display"), r.text("message"), r.ascii("language tag"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    MSG: ClassVar[int] = MsgType.SERVICE_REQUEST
    service: str

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.service)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> ServiceRequest:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.ascii("service name"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class ServiceAccept:
    MSG: ClassVar[int] = MsgType.SERVICE_ACCEPT
    service: str

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.service)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> ServiceAccept:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.ascii("service name"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class ExtInfo:
    """RFC 8308 §2.3: a list of (name, value) extensions."""

    MSG: ClassVar[int] = MsgType.EXT_INFO
    extensions: tuple[tuple[str, bytes], ...]

    def encode(self) -> bytes:
        out = [byte(self.MSG), uint32(len(self.extensions))]
        for name, value in self.extensions:
            out.append(string(name))
            out.append(string(value))
        return b"".join(out)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> ExtInfo:
        r = open_reader(payload, cls.MSG)
        count = r.uint32("extension count")
        if count > MAX_EXTENSIONS:
            raise DecodeError(f"EXT_INFO: {count} extensions (limit {MAX_EXTENSIONS})")
        items = []
        for _ in range(count):
            name = r.ascii("extension name")
            value = r.string("extension value")
            if len(value) > MAX_EXTENSION_VALUE:
                raise DecodeError(
                    f"EXT_INFO: extension {name!r:.64} value is {len(value)} bytes"
                    f" (limit {MAX_EXTENSION_VALUE})"
                )
            items.append((name, value))
        r.check_end()
        return cls(tuple(items))

    def get(self, name: str) -> bytes | None:
        for key, value in self.extensions:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class KexInit:
    """RFC 4253 §7.1. Name lists are kept in order; ``reserved`` must be zero on send."""

    MSG: ClassVar[int] = MsgType.KEXINIT
    cookie: bytes
    kex_algorithms: tuple[str, ...]
    server_host_key_algorithms: tuple[str, ...]
    encryption_c2s: tuple[str, ...]
    encryption_s2c: tuple[str, ...]
    mac_c2s: tuple[str, ...]
    mac_s2c: tuple[str, ...]
    compression_c2s: tuple[str, ...] = ("none",)
    compression_s2c: tuple[str, ...] = ("none",)
    languages_c2s: tuple[str, ...] = ()
    languages_s2c: tuple[str, ...] = ()
    first_kex_packet_follows: bool = False
    reserved: int = field(default=0)

    def encode(self) -> bytes:
        if len(self.cookie) != 16:
            raise ValueError("KEXINIT cookie must be 16 bytes")
        return b"".join(
            (
                byte(self.MSG),
                self.cookie,
                name_list(self.kex_algorithms),
                name_list(self.server_host_key_algorithms),
                name_list(self.encryption_c2s),
                name_list(self.encryption_s2c),
                name_list(self.mac_c2s),
                name_list(self.mac_s2c),
                name_list(self.compression_c2s),
                name_list(self.compression_s2c),
                name_list(self.languages_c2s),
                name_list(self.languages_s2c),
                boolean(self.first_kex_packet_follows),
                uint32(self.reserved),
            )
        )

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexInit:
        r = open_reader(payload, cls.MSG)
        cookie = r.fixed(16, "cookie")
        msg = cls(
            cookie=cookie,
            kex_algorithms=r.name_list("kex_algorithms"),
            server_host_key_algorithms=r.name_list("server_host_key_algorithms"),
            encryption_c2s=r.name_list("encryption_algorithms_client_to_server"),
            encryption_s2c=r.name_list("encryption_algorithms_server_to_client"),
            mac_c2s=r.name_list("mac_algorithms_client_to_server"),
            mac_s2c=r.name_list("mac_algorithms_server_to_client"),
            compression_c2s=r.name_list("compression_algorithms_client_to_server"),
            compression_s2c=r.name_list("compression_algorithms_server_to_client"),
            languages_c2s=r.name_list("languages_client_to_server"),
            languages_s2c=r.name_list("languages_server_to_client"),
            first_kex_packet_follows=r.boolean("first_kex_packet_follows"),
            reserved=r.uint32("reserved"),
        )
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class NewKeys:
    MSG: ClassVar[int] = MsgType.NEWKEYS

    def encode(self) -> bytes:
        return byte(self.MSG)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> NewKeys:
        r = open_reader(payload, cls.MSG)
        r.check_end()
        return cls()
