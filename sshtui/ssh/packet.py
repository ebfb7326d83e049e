"""The binary packet protocol (RFC 4253 §6): framing, padding, encryption and MAC of packets,
one object per direction.

Packet layout: ``uint32 packet_length || byte padding_length || payload || padding || mac``.
The padded packet is a multiple of max(8, cipher block size) bytes; with ETM MACs and AEAD
ciphers the length field travels outside the encryption and is left out of that count, as
OpenSSH does (OpenSSH PROTOCOL §1.5, PROTOCOL.chacha20poly1305, RFC 5647 §7.3).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from sshtui.ssh.constants import MsgType
from sshtui.ssh.crypto.ciphers import (
    CHACHA20_POLY1305,
    AesGcm,
    ChaChaPoly,
    aes_ctr,
    check_key_sizes,
    cipher_spec,
)
from sshtui.ssh.crypto.macs import PacketMac, mac_spec
from sshtui.ssh.errors import LocalProtocolError, MacError, ProtocolError, RemoteProtocolError

Bytes = bytes | bytearray | memoryview

DEFAULT_MAX_PACKET_LENGTH = 256 * 1024  # what OpenSSH accepts (PACKET_MAX_SIZE)
# What one socket read may fill. Bigger reads measured worse: a read returns more data at once,
# and the larger transient allocations downstream make malloc hand memory back and fault it in again.
RECEIVE_BUFFER_SIZE = 256 * 1024
_SEQUENCE_MASK = 0xFFFFFFFF
_MIN_PADDING = 4
_PADDING_POOL_SIZE = 4096
_NEWKEYS = int(MsgType.NEWKEYS)

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IB")  # packet_length, padding_length


@dataclass(frozen=True)
class DirectionKeys:
    """What NEWKEYS switches one direction to."""

    cipher: str  # a CIPHERS name
    mac: str | None  # a MACS name; ignored (and normally None) for AEAD ciphers
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)
    mac_key: bytes = field(repr=False, default=b"")


class _Framing:
    """How one direction turns a plaintext packet into wire bytes and back.

    This base is the unencrypted state before the first NEWKEYS; subclasses keep their keyed
    state across packets. ``open`` gets the whole wire packet (``end`` is where the MAC or
    tag starts), authenticates it and returns the plaintext with the padding length byte at
    ``body_offset``.
    """

    __slots__ = ()
    block_size = 8  # padding alignment unit: max(8, cipher block size)
    length_is_aligned = True  # False when the length field is outside the encryption
    length_in_clear = True  # read_length() is a plain uint32 read, which the reader inlines
    head_size = 4  # bytes needed to learn the packet length
    tag_size = 0
    body_offset = 4

    def seal(self, sequence: int, packet: bytes) -> bytes:
        return packet

    def read_length(self, sequence: int, head: memoryview) -> int:
        length: int = _U32.unpack_from(head)[0]
        return length

    def open(self, sequence: int, wire: memoryview, end: int) -> Bytes:
        return wire


class _CtrWithMac(_Framing):
    """AES-CTR with a classic MAC over the plaintext packet (RFC 4253 §6.3-6.4, RFC 4344)."""

    __slots__ = ("_crypt", "_head", "_mac", "tag_size")
    length_in_clear = False
    block_size = 16
    head_size = 16

    def __init__(self, crypt: Callable[[Bytes], bytes], mac: PacketMac):
        self._crypt = crypt
        self._mac = mac
        self.tag_size = mac.spec.digest_size
        self._head = b""

    def seal(self, sequence: int, packet: bytes) -> bytes:
        return self._crypt(packet) + self._mac.sign(sequence, packet)

    def read_length(self, sequence: int, head: memoryview) -> int:
        # The keystream moves on, so the decrypted first block is kept for open().
        self._head = self._crypt(head)
        length: int = _U32.unpack_from(self._head)[0]
        return length

    def open(self, sequence: int, wire: memoryview, end: int) -> Bytes:
        rest = self._crypt(wire[16:end])
        if not self._mac.verify(sequence, wire[end:], self._head, rest):
            raise MacError(f"{self._mac.spec.name} mismatch")
        return self._head + rest


class _CtrEncryptThenMac(_Framing):
    """AES-CTR with an ``-etm@openssh.com`` MAC over length || ciphertext (OpenSSH PROTOCOL §1.5)."""

    __slots__ = ("_crypt", "_mac", "tag_size")
    block_size = 16
    length_is_aligned = False
    body_offset = 0

    def __init__(self, crypt: Callable[[Bytes], bytes], mac: PacketMac):
        self._crypt = crypt
        self._mac = mac
        self.tag_size = mac.spec.digest_size

    def seal(self, sequence: int, packet: bytes) -> bytes:
        view = memoryview(packet)
        ciphertext = self._crypt(view[4:])
        return b"".join((view[:4], ciphertext, self._mac.sign(sequence, view[:4], ciphertext)))

    def open(self, sequence: int, wire: memoryview, end: int) -> Bytes:
        # Authenticate first: nothing unauthenticated reaches the cipher.
        if not self._mac.verify(sequence, wire[end:], wire[:end]):
            raise MacError(f"{self._mac.spec.name} mismatch")
        return self._crypt(wire[4:end])


class _Gcm(_Framing):
    """aes*-gcm@openssh.com: the length is associated data in the clear (RFC 5647 §7.3)."""

    __slots__ = ("_gcm",)
    block_size = 16
    length_is_aligned = False
    tag_size = 16
    body_offset = 0

    def __init__(self, gcm: AesGcm):
        self._gcm = gcm

    def seal(self, sequence: int, packet: bytes) -> bytes:
        view = memoryview(packet)
        return b"".join((view[:4], self._gcm.seal(view[:4], view[4:])))

    def open(self, sequence: int, wire: memoryview, end: int) -> Bytes:
        return self._gcm.open(wire[:4], wire[4:])


class _ChaCha(_Framing):
    """chacha20-poly1305@openssh.com: the length has a key of its own (PROTOCOL.chacha20poly1305)."""

    __slots__ = ("_chacha",)
    length_in_clear = False
    length_is_aligned = False
    tag_size = 16
    body_offset = 0

    def __init__(self, chacha: ChaChaPoly):
        self._chacha = chacha

    def seal(self, sequence: int, packet: bytes) -> bytes:
        view = memoryview(packet)
        sealed_length = self._chacha.crypt_length(sequence, view[:4])
        ciphertext, tag = self._chacha.seal(sequence, sealed_length, view[4:])
        return b"".join((sealed_length, ciphertext, tag))

    def read_length(self, sequence: int, head: memoryview) -> int:
        length: int = _U32.unpack(self._chacha.crypt_length(sequence, head))[0]
        return length

    def open(self, sequence: int, wire: memoryview, end: int) -> Bytes:
        return self._chacha.open(sequence, wire[:end], wire[end:])


_UNENCRYPTED = _Framing()


def _framing_for(keys: DirectionKeys | None) -> _Framing:
    if keys is None:
        return _UNENCRYPTED
    spec = cipher_spec(keys.cipher)
    check_key_sizes(spec, keys.key, keys.iv)
    if spec.name == CHACHA20_POLY1305:
        return _ChaCha(ChaChaPoly(keys.key))
    if spec.is_aead:
        return _Gcm(AesGcm(keys.key, keys.iv))
    if keys.mac is None:
        raise LocalProtocolError(f"{spec.name} needs a MAC algorithm")
    mac = PacketMac(mac_spec(keys.mac), keys.mac_key)
    crypt = aes_ctr(keys.key, keys.iv)
    return _CtrEncryptThenMac(crypt, mac) if mac.spec.etm else _CtrWithMac(crypt, mac)


class PacketWriter:
    """Turns payloads into wire packets for one direction.

    ``packets`` and ``bytes`` count everything encoded since creation (wire bytes, MAC
    included), for rekey decisions (RFC 4344 §3).
    """

    def __init__(self, rng: Callable[[int], bytes], *, max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH):
        self._rng = rng
        self._max_packet_length = max_packet_length
        self._framing = _UNENCRYPTED
        self._sequence = 0
        self._padding_pool = b""
        self._padding_used = 0
        self.packets = 0
        self.bytes = 0

    @property
    def sequence(self) -> int:
        """Sequence number of the next packet to be encoded."""
        return self._sequence

    @property
    def block_size(self) -> int:
        return self._framing.block_size

    def set_keys(self, keys: DirectionKeys | None) -> None:
        """Switches keys for the next packet encoded (call right after encoding NEWKEYS)."""
        self._framing = _framing_for(keys)

    def reset_sequence(self) -> None:
        """Strict key exchange: the sequence number restarts at 0 after NEWKEYS."""
        self._sequence = 0

    def _padding(self, count: int) -> bytes:
        # Slicing a pool costs less than an rng call per packet; no byte is used twice.
        start = self._padding_used
        end = start + count
        if end > len(self._padding_pool):
            pool = self._rng(_PADDING_POOL_SIZE)
            if len(pool) != _PADDING_POOL_SIZE:
                raise LocalProtocolError(f"rng returned {len(pool)} bytes, {_PADDING_POOL_SIZE} requested")
            self._padding_pool = pool
            start, end = 0, count
        self._padding_used = end
        return self._padding_pool[start:end]

    def encode(self, payload: Bytes) -> bytes:
        """One complete wire packet carrying ``payload``."""
        framing = self._framing
        block_size = framing.block_size
        aligned_header = 5 if framing.length_is_aligned else 1
        padding_length = -(len(payload) + aligned_header) % block_size
        if padding_length < _MIN_PADDING:
            padding_length += block_size
        packet_length = len(payload) + 1 + padding_length
        if packet_length > self._max_packet_length:
            raise LocalProtocolError(
                f"payload of {len(payload)} bytes exceeds the packet limit of {self._max_packet_length}"
            )
        packet = b"".join(
            (_HEADER.pack(packet_length, padding_length), payload, self._padding(padding_length))
        )
        sequence = self._sequence
        wire = framing.seal(sequence, packet)
        self._sequence = (sequence + 1) & _SEQUENCE_MASK
        self.packets += 1
        self.bytes += len(wire)
        return wire


class PacketReader:
    """Turns received bytes back into payloads for one direction.

    Feed bytes as they arrive, then call ``next_payload()`` until it returns None. After a
    payload that is NEWKEYS, ``set_keys()`` must be called before reading on: the packets
    behind it are under the new keys.

    Instead of ``feed``, a driver may have the socket write straight into the reader:
    ``receive_buffer()`` hands out the free space and ``received(n)`` accounts for what was
    written, which saves a copy and an allocation per socket read.
    """

    def __init__(self, max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH):
        self._max_packet_length = max_packet_length
        # Unread bytes are _storage[_start:_end]. The storage is never resized in place, since
        # the driver may still hold a view of it; growing replaces it.
        self._storage = bytearray()
        self._view = memoryview(self._storage)
        self._start = 0
        self._end = 0
        self._framing = _UNENCRYPTED
        self._sequence = 0
        # Sequence number of the packet last returned (-1 before any), for UNIMPLEMENTED. A
        # plain attribute, not a property: the transport reads it for every packet.
        self.last_sequence = -1
        self._packet_length = -1  # of the packet being assembled; -1 until its head is read
        self._awaiting_keys = False
        self._failure: ProtocolError | None = None
        self.packets = 0
        self.bytes = 0

    @property
    def sequence(self) -> int:
        """Sequence number of the next packet to be read."""
        return self._sequence

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as payloads, for back-pressure."""
        return self._end - self._start

    @property
    def block_size(self) -> int:
        return self._framing.block_size

    def set_keys(self, keys: DirectionKeys | None) -> None:
        """Switches keys for the packet after the one last returned."""
        self._framing = _framing_for(keys)
        self._packet_length = -1
        self._awaiting_keys = False

    def reset_sequence(self) -> None:
        """Strict key exchange: the sequence number restarts at 0 after NEWKEYS."""
        self._sequence = 0

    def feed(self, data: Bytes) -> None:
        if self._failure is not None:  # after a failure nothing more is read
            return
        size = len(data)
        if self._end + size > len(self._storage):
            self._make_room(size)
        end = self._end
        self._storage[end : end + size] = data
        self._end = end + size

    def receive_buffer(self, min_size: int = RECEIVE_BUFFER_SIZE // 4) -> memoryview:
        """Free space at least ``min_size`` bytes long to write received bytes into; call
        ``received`` with the count written before any other method."""
        if len(self._storage) - self._end < min_size:
            self._make_room(max(min_size, RECEIVE_BUFFER_SIZE - self.buffered))
        return self._view[self._end :]

    def received(self, size: int) -> None:
        """``size`` bytes were written at the start of the last ``receive_buffer()``."""
        if not 0 <= size <= len(self._storage) - self._end:
            free = len(self._storage) - self._end
            raise LocalProtocolError(f"received {size} bytes into a buffer of {free}")
        if self._failure is None:
            self._end += size

    def _make_room(self, size: int) -> None:
        """At least ``size`` free bytes after the unread ones, moving them to the front."""
        unread = self._end - self._start
        if unread + size <= len(self._storage):
            if unread:
                # Through the view, which may not be resized; it copies with memmove, so
                # overlapping ranges are safe.
                self._view[:unread] = self._view[self._start : self._end]
        else:
            storage = bytearray(max(unread + size, 2 * len(self._storage)))
            storage[:unread] = self._view[self._start : self._end]
            self._storage = storage
            self._view = memoryview(storage)
        self._start, self._end = 0, unread

    def next_payload(self) -> bytes | memoryview | None:
        """The next complete packet's payload, or None when more bytes are needed.

        Under encryption the payload is a memoryview of the packet's own decrypted bytes (no
        copy; nothing else refers to them); before the first NEWKEYS it is ``bytes``, a copy
        out of the receive buffer, which gets reused.

        Raises RemoteProtocolError (MacError for failed authentication) for a broken packet;
        the reader then stays failed.
        """
        # One function for the whole packet: this runs for every packet of a bulk transfer.
        if self._failure is not None:
            raise self._failure
        if self._awaiting_keys:
            raise LocalProtocolError("NEWKEYS was read: call set_keys() before reading further packets")
        framing = self._framing
        start = self._start
        available = self._end - start
        length = self._packet_length
        try:
            if length < 0:
                head_size = framing.head_size
                if available < head_size:
                    return None
                if framing.length_in_clear:
                    length = _U32.unpack_from(self._view, start)[0]
                else:
                    length = framing.read_length(self._sequence, self._view[start : start + head_size])
                if (
                    length > self._max_packet_length
                    or length < 1 + _MIN_PADDING
                    or (length + 4 if framing.length_is_aligned else length) % framing.block_size
                ):
                    self._refuse_length(length, framing)
                self._packet_length = length
            total = 4 + length + framing.tag_size
            if available < total:
                return None
            plain = framing.open(self._sequence, self._view[start : start + total], 4 + length)
            offset = framing.body_offset
            padding_length = plain[offset]
            if padding_length < _MIN_PADDING or padding_length >= length:
                raise RemoteProtocolError(
                    f"padding length {padding_length} is invalid for packet length {length}"
                )
        except ProtocolError as error:
            self._failure = error
            raise
        if type(plain) is bytes:
            payload: bytes | memoryview = memoryview(plain)[offset + 1 : offset + length - padding_length]
        else:  # unencrypted: a view of the receive buffer, which gets reused
            payload = bytes(plain[offset + 1 : offset + length - padding_length])
        start += total
        if start == self._end:
            start = self._end = 0  # nothing unread: the next bytes go to the front, no move needed
        self._start = start
        self._packet_length = -1
        self.last_sequence = sequence = self._sequence
        self._sequence = (sequence + 1) & _SEQUENCE_MASK
        self.packets += 1
        self.bytes += total
        if payload and payload[0] == _NEWKEYS:
            self._awaiting_keys = True
        return payload

    def _refuse_length(self, length: int, framing: _Framing) -> NoReturn:
        # Checked before the body is buffered, so a hostile length cannot make us wait or allocate.
        if length > self._max_packet_length:
            raise RemoteProtocolError(
                f"packet length {length} exceeds the limit of {self._max_packet_length} bytes"
            )
        if length < 1 + _MIN_PADDING:
            raise RemoteProtocolError(f"packet length {length} is too short")
        raise RemoteProtocolError(
            f"packet length {length} is not aligned to the {framing.block_size}-byte block size"
        )
