"""Ciphers of the binary packet protocol: AES-CTR (RFC 4344 §4), AES-GCM as OpenSSH uses it
(RFC 5647 §7, with the packet length as associated data in the clear) and
chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305). CBC modes are deliberately
absent.

The classes here hold one direction's keyed cipher state, created once per key change and
reused for every packet; ``sshtui.ssh.packet`` does the framing around them.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

from sshtui.ssh.errors import LocalProtocolError, MacError

Bytes = bytes | bytearray | memoryview

_U64 = struct.Struct(">Q")
_U64_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class CipherSpec:
    name: str
    key_size: int  # bytes
    iv_size: int  # bytes taken from key derivation (12 for GCM, 16 for CTR, 0 for chacha)
    block_size: int  # 8 for chacha, 16 for AES
    is_aead: bool  # True: the negotiated MAC is ignored
    tag_size: int  # 16 for AEAD, 0 otherwise


CHACHA20_POLY1305 = "chacha20-poly1305@openssh.com"


def _specs(*specs: CipherSpec) -> Mapping[str, CipherSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


# Preference order as OpenSSH offers it: AEAD first, chacha before GCM because it is
# constant-time even without AES hardware.
CIPHERS: Mapping[str, CipherSpec] = _specs(
    CipherSpec(CHACHA20_POLY1305, 64, 0, 8, True, 16),
    CipherSpec("aes256-gcm@openssh.com", 32, 12, 16, True, 16),
    CipherSpec("aes128-gcm@openssh.com", 16, 12, 16, True, 16),
    CipherSpec("aes256-ctr", 32, 16, 16, False, 0),
    CipherSpec("aes192-ctr", 24, 16, 16, False, 0),
    CipherSpec("aes128-ctr", 16, 16, 16, False, 0),
)


def cipher_spec(name: str) -> CipherSpec:
    try:
        return CIPHERS[name]
    except KeyError:
        raise LocalProtocolError(f"unsupported cipher {name!r:.80}") from None


def check_key_sizes(spec: CipherSpec, key: bytes, iv: bytes) -> None:
    """Wrong sizes mean our key derivation is broken; say so instead of failing later."""
    if len(key) != spec.key_size:
        raise LocalProtocolError(f"{spec.name} needs a {spec.key_size}-byte key, got {len(key)} bytes")
    if len(iv) != spec.iv_size:
        raise LocalProtocolError(f"{spec.name} needs a {spec.iv_size}-byte IV, got {len(iv)} bytes")


def aes_ctr(key: bytes, iv: bytes) -> Callable[[Bytes], bytes]:
    """The keystream XOR of one direction (RFC 4344 §4).

    The counter runs on across packets, so one context serves the whole key lifetime. CTR is
    its own inverse: the same function encrypts and decrypts.
    """
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update


class AesGcm:
    """AES-GCM as aes*-gcm@openssh.com uses it (RFC 5647 §7.1).

    The 12-byte nonce is a 4-byte fixed field followed by a 64-bit invocation counter, both
    from the derived IV; the counter goes up by one per packet.
    """

    __slots__ = ("_aead", "_fixed", "_invocation")

    def __init__(self, key: bytes, iv: bytes):
        self._aead = AESGCM(key)
        self._fixed = bytes(iv[:4])
        self._invocation = int.from_bytes(iv[4:], "big")

    def _next_nonce(self) -> bytes:
        nonce = self._fixed + _U64.pack(self._invocation)
        self._invocation = (self._invocation + 1) & _U64_MASK
        return nonce

    def seal(self, length_field: Bytes, body: Bytes) -> bytes:
        """Ciphertext followed by the 16-byte tag; ``length_field`` is authenticated, not encrypted."""
        return self._aead.encrypt(self._next_nonce(), body, length_field)

    def open(self, length_field: Bytes, sealed: Bytes) -> bytes:
        invocation = self._invocation  # _next_nonce(), inlined: this runs once per packet
        self._invocation = (invocation + 1) & _U64_MASK
        try:
            return self._aead.decrypt(self._fixed + _U64.pack(invocation), sealed, length_field)
        except InvalidTag:
            raise MacError("AES-GCM authentication tag mismatch") from None


_COUNTER_0 = bytes(8)
_KEYSTREAM_BLOCK = bytes(64)
_POLY1305_KEY_SIZE = 32


class ChaChaPoly:
    """chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305).

    The 64-byte key is K_2 (first half: payload and Poly1305 key) then K_1 (second half:
    packet length only). The nonce is the packet sequence number. cryptography's ChaCha20
    takes a 16-byte nonce laid out as the original 64-bit little-endian block counter then
    the 64-bit nonce, here the big-endian sequence number, which is the layout OpenSSH uses.
    """

    __slots__ = ("_length_stream", "_payload_stream")

    def __init__(self, key: bytes):
        # One context per key, re-pointed at each packet's nonce: no per-packet key setup.
        self._payload_stream = Cipher(algorithms.ChaCha20(key[:32], bytes(16)), None).encryptor()
        self._length_stream = Cipher(algorithms.ChaCha20(key[32:], bytes(16)), None).encryptor()

    def crypt_length(self, sequence: int, length_field: Bytes) -> bytes:
        """Encrypts or decrypts the 4-byte packet length (a keystream XOR either way)."""
        stream = self._length_stream
        stream.reset_nonce(_COUNTER_0 + _U64.pack(sequence))
        return stream.update(length_field)

    def _poly1305_key(self, sequence: int) -> bytes:
        stream = self._payload_stream
        stream.reset_nonce(_COUNTER_0 + _U64.pack(sequence))
        # Consuming all of block 0 leaves the stream at block 1, where the payload starts.
        return stream.update(_KEYSTREAM_BLOCK)[:_POLY1305_KEY_SIZE]

    def seal(self, sequence: int, sealed_length: bytes, body: Bytes) -> tuple[bytes, bytes]:
        """(ciphertext, tag) for a body whose length field is already encrypted."""
        poly = Poly1305(self._poly1305_key(sequence))
        ciphertext = self._payload_stream.update(body)
        poly.update(sealed_length)
        poly.update(ciphertext)
        return ciphertext, poly.finalize()

    def open(self, sequence: int, sealed: Bytes, tag: Bytes) -> bytes:
        """Verifies the tag over ``sealed`` (encrypted length || ciphertext), then decrypts."""
        expected = Poly1305.generate_tag(self._poly1305_key(sequence), sealed)
        if not hmac.compare_digest(expected, tag):
            raise MacError("chacha20-poly1305 authentication tag mismatch")
        return self._payload_stream.update(memoryview(sealed)[4:])
