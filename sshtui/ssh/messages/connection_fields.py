"""Field codecs shared by the connection-protocol messages (RFC 4254 §4-§7) and their typed bodies.

A message or body declares its wire layout through field metadata (``UINT32``, ``TEXT``...),
which gives every field a uint32 range check on encode and an error naming it on decode.
``TypedData`` is the type-specific data of a global request, channel open or channel request;
each of the three kinds has a registry from type name to body class, made by ``body_registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple, Self, cast

from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages.base import open_reader
from sshtui.ssh.wire import WireReader, boolean, byte, string, uint32

_Buffer = bytes | bytearray | memoryview
UINT32_MAX = 2**32 - 1


class Codec(NamedTuple):
    encode: Callable[[Any, str], bytes]
    decode: Callable[[WireReader, str], Any]


def check_range(value: int, name: str, top: int = UINT32_MAX) -> int:
    if not 0 <= value <= top:
        raise LocalProtocolError(f"{name} {value} is outside 0..{top}")
    return value


def _encode_ascii(value: str, name: str) -> bytes:
    if not value.isascii():
        raise LocalProtocolError(f"{name} {value!r:.64} is not ASCII")
    return string(value)


def decode_port(r: WireReader, name: str) -> int:
    port = r.uint32(name)
    if port > 0xFFFF:
        raise DecodeError(f"{r.what}: {name} {port} is not a TCP port")
    return port


UINT32 = {"wire": Codec(lambda v, n: uint32(check_range(v, n)), WireReader.uint32)}
PORT = {"wire": Codec(lambda v, n: uint32(check_range(v, n, 0xFFFF)), decode_port)}
BOOL = {"wire": Codec(lambda v, _: boolean(v), WireReader.boolean)}
TEXT = {"wire": Codec(lambda v, _: string(v), WireReader.text)}
ASCII = {"wire": Codec(_encode_ascii, WireReader.ascii)}
BYTES = {"wire": Codec(lambda v, _: string(v), WireReader.string)}
# Whatever follows, unframed: type-specific data at the end of a message.
REST = {"wire": Codec(lambda v, _: bytes(v), lambda r, _: r.rest())}


_LAYOUTS: dict[type, tuple[tuple[str, Codec], ...]] = {}


def _layout(cls: type) -> tuple[tuple[str, Codec], ...]:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple((f.name, f.metadata["wire"]) for f in fields(cast(Any, cls)))
    return layout


class Fields:
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


class Message(Fields):
    """A whole message: the message number ``MSG``, then the declared fields."""

    __slots__ = ()
    MSG: ClassVar[int]

    def encode(self) -> bytes:
        return byte(self.MSG) + self._encode_fields()

    @classmethod
    def decode(cls, payload: _Buffer) -> Self:
        return cls._decode_fields(open_reader(payload, cls.MSG))


class TypedData(Fields):
    """The type-specific data of a global request, channel open or channel request."""

    __slots__ = ()
    NAME: ClassVar[str]

    def encode_data(self) -> bytes:
        return self._encode_fields()

    @classmethod
    def decode_data(cls, data: _Buffer) -> Self:
        return cls._decode_fields(WireReader(data, cls.NAME))


@dataclass(frozen=True, slots=True)
class Empty(TypedData):
    pass


def body_registry(*bodies: type[TypedData]) -> Mapping[str, type[TypedData]]:
    return {body.NAME: body for body in bodies}


def decode_body(registry: Mapping[str, type[TypedData]], name: str, data: bytes) -> TypedData | None:
    body = registry.get(name)
    return None if body is None else body.decode_data(data)

