"""Shared machinery of the message dataclasses (RFC 4251 §5 field types).

A message declares its wire layout once, in the metadata of its dataclass fields:
``reason: int = field(metadata=UINT32)``. ``Message.encode`` and ``Message.decode`` walk
the fields in declaration order, so a field's position in the class is its position on
the wire. Each ``Codec`` is told the field's name, so encoding refuses out-of-range values
by name and every decode error names the message (the reader's ``what``) and the field.
Decoding always ends with ``check_end()``: no trailing bytes pass unnoticed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import fields
from functools import cache
from typing import Any, ClassVar, NamedTuple, Self, cast

from sshtui.ssh.constants import message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.wire import WireReader, mpint, uint32

_Buffer = bytes | bytearray | memoryview
UINT32_MAX = 2**32 - 1
_U32 = struct.Struct(">I")


class Codec(NamedTuple):
    """How one field goes on the wire; both callables get the field's name for their errors.

    ``kind`` and ``args`` say what the codec was made from, so a reader (or a test that
    generates values) can tell a uint32 from an mpint without running it.
    """

    encode: Callable[[Any, str], bytes]
    decode: Callable[[WireReader, str], Any]
    kind: str = ""
    args: tuple[Any, ...] = ()


def check_range(value: int, name: str, top: int = UINT32_MAX) -> int:
    if not 0 <= value <= top:
        raise LocalProtocolError(f"{name} {value} is outside 0..{top}")
    return value


# The leaf encoders below pack with ``struct`` directly rather than call through ``wire``:
# every field of every message passes through one, and those extra calls measured about a
# third of their time.


def _encode_uint32(value: int, name: str) -> bytes:
    try:
        return _U32.pack(value)
    except struct.error:
        raise LocalProtocolError(f"{name} {value!r:.64} is outside 0..{UINT32_MAX}") from None


def _encode_string(value: _Buffer | str, _: str) -> bytes:
    data = value.encode() if isinstance(value, str) else bytes(value)
    return _U32.pack(len(data)) + data


def _encode_ascii(value: str, name: str) -> bytes:
    if not value.isascii():
        raise LocalProtocolError(f"{name} {value!r:.64} is not ASCII")
    data = value.encode()
    return _U32.pack(len(data)) + data


def _encode_names(value: Sequence[str], name: str) -> bytes:
    try:
        data = ",".join(value).encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{name} {value!r:.64} is not ASCII") from None
    return _U32.pack(len(data)) + data


UINT32 = {"wire": Codec(_encode_uint32, WireReader.uint32, "uint32")}
BOOL = {"wire": Codec(lambda v, _: b"\x01" if v else b"\x00", WireReader.boolean, "boolean")}
TEXT = {"wire": Codec(_encode_string, WireReader.text, "text")}
ASCII = {"wire": Codec(_encode_ascii, WireReader.ascii, "ascii")}
BYTES = {"wire": Codec(_encode_string, WireReader.string, "string")}
MPINT = {"wire": Codec(lambda v, _: mpint(v), WireReader.mpint, "mpint")}
NAMES = {"wire": Codec(_encode_names, WireReader.name_list, "name-list")}
# Whatever follows, unframed: type-specific data at the end of a message.
REST = {"wire": Codec(lambda v, _: bytes(v), lambda r, _: r.rest(), "rest")}


def fixed(size: int) -> dict[str, Codec]:
    """Exactly ``size`` raw bytes, unframed (the KEXINIT cookie)."""

    def encode(value: bytes, name: str) -> bytes:
        if len(value) != size:
            raise LocalProtocolError(f"{name} is {len(value)} bytes, not {size}")
        return bytes(value)

    return {"wire": Codec(encode, lambda r, name: r.fixed(size, name), "fixed", (size,))}


def record(*parts: tuple[str, dict[str, Codec]], make: Callable[..., Any] | None = None) -> dict[str, Codec]:
    """Several named fields that travel together as one item of a ``counted`` list, decoded
    as ``make(*values)``, or as a plain tuple without ``make``."""
    codecs = tuple((label, part["wire"]) for label, part in parts)

    def encode(value: Sequence[Any], _: str) -> bytes:
        return b"".join([codec.encode(v, label) for (label, codec), v in zip(codecs, value, strict=True)])

    def decode(r: WireReader, _: str) -> Any:
        values = [codec.decode(r, label) for label, codec in codecs]
        return tuple(values) if make is None else make(*values)

    return {"wire": Codec(encode, decode, "record", (make, *codecs))}


def counted(limit: int, item: dict[str, Codec]) -> dict[str, Codec]:
    """A uint32 count, then that many items, as a tuple. A peer may send at most ``limit``
    items, which is checked before any is read (RFC 4256 §3.2, RFC 8308 §2.3)."""
    codec: Codec = item["wire"]

    def encode(values: Sequence[Any], name: str) -> bytes:
        return uint32(len(values)) + b"".join([codec.encode(value, name) for value in values])

    def decode(r: WireReader, name: str) -> tuple[Any, ...]:
        count = r.uint32(f"number of {name}")
        if count > limit:
            raise DecodeError(f"{r.what}: {count} {name} (limit {limit})")
        return tuple([codec.decode(r, name) for _ in range(count)])

    return {"wire": Codec(encode, decode, "counted", (limit, codec))}


class Layout(NamedTuple):
    """A dataclass's fields in wire order, by name, with what encodes and decodes each.

    Encoders get "Class.field" for their errors, since nothing else there names the message;
    decoders get the bare field name, as their reader's ``what`` already names it.
    """

    encoders: tuple[tuple[str, str, Callable[[Any, str], bytes]], ...]
    decoders: tuple[tuple[str, Callable[[WireReader, str], Any]], ...]
    checks_decoded: bool  # whether the class adds semantic checks after decoding


_LAYOUTS: dict[type, Layout] = {}


def layout(cls: type[Fields]) -> Layout:
    """Built on first use, once the dataclass decorator has made the fields final."""
    found = _LAYOUTS.get(cls)
    if found is None:
        declared = [(f.name, f.metadata["wire"]) for f in fields(cast(Any, cls))]
        found = _LAYOUTS[cls] = Layout(
            tuple((name, f"{cls.__name__}.{name}", codec.encode) for name, codec in declared),
            tuple((name, codec.decode) for name, codec in declared),
            cls._check_decoded is not Fields._check_decoded,
        )
    return found


class Fields:
    """Encodes and decodes a dataclass's fields, in order, by their ``wire`` metadata."""

    __slots__ = ()

    def _encode_fields(self, out: bytes = b"") -> bytes:
        """``out``, then the declared fields in order."""
        # Appending in a plain loop measured faster than joining a comprehension for the
        # one to thirteen fields that messages have.
        for name, label, encode in (_LAYOUTS.get(type(self)) or layout(type(self))).encoders:
            out += encode(getattr(self, name), label)
        return out

    @classmethod
    def _decode_fields(cls, r: WireReader) -> Self:
        wire = _LAYOUTS.get(cls) or layout(cls)
        make: Callable[..., Self] = cls
        decoded = make(*[decode(r, name) for name, decode in wire.decoders])
        r.check_end()
        if wire.checks_decoded:
            decoded._check_decoded(r.what)
        return decoded

    def _check_decoded(self, what: str) -> None:
        """Semantic bounds beyond the field types; raises ``DecodeError`` naming ``what``."""


_MESSAGE_NUMBERS = [bytes((number,)) for number in range(256)]


class Message(Fields):
    """A whole message: the message number ``MSG``, then the declared fields."""

    __slots__ = ()
    MSG: ClassVar[int]

    def encode(self) -> bytes:
        return self._encode_fields(_MESSAGE_NUMBERS[self.MSG])

    @classmethod
    def decode(cls, payload: _Buffer) -> Self:
        return cls._decode_fields(open_reader(payload, cls.MSG))


# Looked up once per message number: the enum lookup would otherwise cost every decode.
_message_name = cache(message_name)


def open_reader(payload: _Buffer, msg_type: int) -> WireReader:
    """A reader positioned after the message number, which must be ``msg_type``."""
    reader = WireReader(payload, _message_name(msg_type))
    if not payload:
        raise DecodeError("empty payload where a message was expected")
    got = reader.byte("message number")
    if got != msg_type:
        raise DecodeError(f"expected {_message_name(msg_type)}, got {_message_name(got)}")
    return reader
