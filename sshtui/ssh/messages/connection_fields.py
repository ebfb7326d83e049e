"""Field codecs shared by the connection-protocol messages (RFC 4254 §4-§7) and their typed bodies.

A message or body declares its wire layout through field metadata (``UINT32``, ``TEXT``...),
which gives every field a uint32 range check on encode and an error naming it on decode.
``TypedData`` is the type-specific data of a global request, channel open or channel request;
each of the three kinds has a registry from type name to body class, made by ``body_registry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from sshtui.ssh.errors import DecodeError
from sshtui.ssh.messages.base import ASCII as ASCII
from sshtui.ssh.messages.base import BOOL as BOOL
from sshtui.ssh.messages.base import BYTES as BYTES
from sshtui.ssh.messages.base import REST as REST
from sshtui.ssh.messages.base import TEXT as TEXT
from sshtui.ssh.messages.base import UINT32 as UINT32
from sshtui.ssh.messages.base import Codec
from sshtui.ssh.messages.base import Fields as Fields
from sshtui.ssh.messages.base import Message as Message
from sshtui.ssh.messages.base import check_range as check_range
from sshtui.ssh.wire import WireReader, uint32

_Buffer = bytes | bytearray | memoryview


def decode_port(r: WireReader, name: str) -> int:
    port = r.uint32(name)
    if port > 0xFFFF:
        raise DecodeError(f"{r.what}: {name} {port} is not a TCP port")
    return port


PORT = {"wire": Codec(lambda v, n: uint32(check_range(v, n, 0xFFFF)), decode_port, "port")}


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

