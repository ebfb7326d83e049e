"""Message authentication codes for the binary packet protocol (RFC 4253 §6.4, RFC 6668 for
the SHA-2 variants, OpenSSH PROTOCOL §1.5 for the encrypt-then-MAC ``-etm@openssh.com`` forms).

``mac = HMAC(key, uint32(sequence_number) || data)``: ``data`` is the unencrypted packet for
the classic MACs and ``packet_length || ciphertext`` for the ETM ones.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sshtui.ssh.errors import LocalProtocolError

Bytes = bytes | bytearray | memoryview

_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class MacSpec:
    name: str
    key_size: int  # bytes of key material taken from key derivation
    digest_size: int  # bytes appended to each packet
    etm: bool  # True: MAC over the ciphertext, packet length sent in the clear
    hash_name: str  # hashlib name


def _specs(*specs: MacSpec) -> Mapping[str, MacSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


# Preference order: ETM first (the length is authenticated before anything is decrypted),
# SHA-1 last and only for old peers.
MACS: Mapping[str, MacSpec] = _specs(
    MacSpec("hmac-sha2-256-etm@openssh.com", 32, 32, True, "sha256"),
    MacSpec("hmac-sha2-512-etm@openssh.com", 64, 64, True, "sha512"),
    MacSpec("hmac-sha2-256", 32, 32, False, "sha256"),
    MacSpec("hmac-sha2-512", 64, 64, False, "sha512"),
    MacSpec("hmac-sha1-etm@openssh.com", 20, 20, True, "sha1"),
    MacSpec("hmac-sha1", 20, 20, False, "sha1"),
)


def mac_spec(name: str) -> MacSpec:
    try:
        return MACS[name]
    except KeyError:
        raise LocalProtocolError(f"unsupported MAC algorithm {name!r:.80}") from None


class PacketMac:
    """One direction's MAC, keyed once per key change.

    The keyed HMAC state is computed here once; each packet only copies it, which is both
    cheaper than re-keying and avoids joining the sequence number onto the packet.
    """

    __slots__ = ("_keyed", "spec")

    def __init__(self, spec: MacSpec, key: bytes):
        if len(key) != spec.key_size:
            raise LocalProtocolError(f"{spec.name} needs a {spec.key_size}-byte key, got {len(key)} bytes")
        self.spec = spec
        self._keyed = hmac.new(key, digestmod=spec.hash_name)

    def sign(self, sequence: int, first: Bytes, second: Bytes = b"") -> bytes:
        """MAC of ``uint32(sequence) || first || second``."""
        state = self._keyed.copy()
        state.update(_U32.pack(sequence))
        state.update(first)
        if second:
            state.update(second)
        return state.digest()

    def verify(self, sequence: int, tag: Bytes, first: Bytes, second: Bytes = b"") -> bool:
        # Constant-time comparison: a timing difference would let a forger learn tag bytes.
        return hmac.compare_digest(self.sign(sequence, first, second), tag)
