"""SSH data type representations (RFC 4251 §5): byte, boolean, uint32, uint64, string,
mpint and name-list, plus ``WireReader`` whose ``check_end()`` rejects trailing bytes."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from sshtui.ssh.errors import DecodeError

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# Limits that bound what a peer can make us allocate while decoding one field.
MAX_NAME_LIST_ITEMS = 256
MAX_NAME_LENGTH = 64


def byte(value: int) -> bytes:
    return bytes((value,))


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def uint32(value: int) -> bytes:
    return _U32.pack(value)


def uint64(value: int) -> bytes:
    return _U64.pack(value)


def string(value: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _U32.pack(len(value)) + bytes(value)


def mpint(value: int) -> bytes:
    """Two's complement, big-endian, minimal length; zero is the empty string (RFC 4251 §5)."""
    if value == 0:
        return b"\x00\x00\x00\x00"
    length = (value.bit_length() + 8) // 8  # one spare bit keeps the sign right
    raw = value.to_bytes(length, "big", signed=True)
    # to_bytes with the +8 rounding can leave a redundant leading byte; strip it.
    while len(raw) > 1 and ((raw[0] == 0x00 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)):
        raw = raw[1:]
    return _U32.pack(len(raw)) + raw


def name_list(names: Iterable[str]) -> bytes:
    return string(",".join(names).encode("ascii"))


class WireReader:
    """Reads SSH fields from a buffer. Every decoder must finish with ``check_end()``.

    ``what`` names the message being decoded so errors say where the problem was.
    """

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "message"):
        self._data = memoryview(data)
        self._pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, count: int, field: str) -> memoryview:
        end = self._pos + count
        if end > len(self._data):
            raise DecodeError(f"{self.what}: truncated {field} (needs {count} bytes, {self.remaining} left)")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def fixed(self, count: int, field: str) -> bytes:
        """A field of known size, such as the KEXINIT cookie."""
        return bytes(self._take(count, field))

    def byte(self, field: str = "byte") -> int:
        return self._take(1, field)[0]

    def boolean(self, field: str = "boolean") -> bool:
        # RFC 4251: any non-zero value is TRUE.
        return self._take(1, field)[0] != 0

    def uint32(self, field: str = "uint32") -> int:
        value: int = _U32.unpack(self._take(4, field))[0]
        return value

    def uint64(self, field: str = "uint64") -> int:
        value: int = _U64.unpack(self._take(8, field))[0]
        return value

    def string_view(self, field: str = "string") -> memoryview:
        length = self.uint32(field + " length")
        return self._take(length, field)

    def string(self, field: str = "string") -> bytes:
        return bytes(self.string_view(field))

    def text(self, field: str = "text") -> str:
        raw = self.string_view(field)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{self.what}: {field} is not valid UTF-8") from exc

    def ascii(self, field: str = "name") -> str:
        raw = self.string_view(field)
        try:
            return str(raw, "ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{self.what}: {field} is not ASCII") from exc

    def mpint(self, field: str = "mpint") -> int:
        raw = self.string_view(field)
        if (raw and raw[0] == 0x00 and (len(raw) == 1 or raw[1] < 0x80)) or (
            len(raw) > 1 and (raw[0] == 0xFF and raw[1] >= 0x80)
        ):
            raise DecodeError(f"{self.what}: {field} has an unnecessary leading byte")
        return int.from_bytes(raw, "big", signed=True)

    def name_list(self, field: str = "name-list") -> tuple[str, ...]:
        text = self.ascii(field)
        if not text:
            return ()
        names = text.split(",")
        if len(names) > MAX_NAME_LIST_ITEMS:
            raise DecodeError(f"{self.what}: {field} has {len(names)} names (limit {MAX_NAME_LIST_ITEMS})")
        for name in names:
            if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() or " " in name:
                raise DecodeError(f"{self.what}: {field} has an invalid name {name!r:.80}")
        return tuple(names)

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return bytes(chunk)

    def check_end(self) -> None:
        if self._pos != len(self._data):
            raise DecodeError(f"{self.what}: {self.remaining} unexpected trailing bytes")


def join_names(names: Sequence[str]) -> str:
    return ",".join(names)
