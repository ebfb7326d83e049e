"""Key exchange method messages: ECDH and hybrid post-quantum (RFC 5656 §4, RFC 8731 §3,
draft-ietf-sshm-mlkem-hybrid-kex), fixed-group Diffie-Hellman (RFC 4253 §8) and
Diffie-Hellman group exchange (RFC 4419 §3).

Numbers 30..34 are reused by each method with its own meaning, so the decoder to use
depends on the negotiated method, never on the number alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sshtui.ssh.constants import DisconnectReason, MsgType
from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.messages.base import open_reader
from sshtui.ssh.wire import byte, mpint, string, uint32

KEXDH_INIT = 30
KEXDH_REPLY = 31
KEX_DH_GEX_GROUP = 31


def check_dh_public_value(value: int, prime: int, field: str) -> None:
    """RFC 4253 §8 and RFC 8268 §4: a peer's e or f must satisfy 1 < value < p-1.

    1 and p-1 would force a shared secret the attacker knows; anything outside the range
    is not a group element at all.
    """
    if not 1 < value < prime - 1:
        if value <= 1:
            where = "is 1 or less"
        elif value == prime - 1:
            where = "equals p-1"
        else:
            where = "is not below p-1"
        raise RemoteProtocolError(
            f"Diffie-Hellman {field} {where}; it must satisfy 1 < {field} < p-1",
            DisconnectReason.KEY_EXCHANGE_FAILED,
        )


@dataclass(frozen=True, slots=True)
class KexEcdhInit:
    """SSH_MSG_KEX_ECDH_INIT: Q_C, also C_INIT of the hybrid ML-KEM method."""

    MSG: ClassVar[int] = MsgType.KEX_ECDH_INIT
    client_public: bytes

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.client_public)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexEcdhInit:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.string("client ephemeral public key"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexEcdhReply:
    """SSH_MSG_KEX_ECDH_REPLY: K_S, Q_S (or S_REPLY of the hybrid method) and the signature."""

    MSG: ClassVar[int] = MsgType.KEX_ECDH_REPLY
    host_key: bytes
    server_public: bytes
    signature: bytes

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.host_key) + string(self.server_public) + string(self.signature)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexEcdhReply:
        r = open_reader(payload, cls.MSG)
        msg = cls(
            r.string("server public host key"),
            r.string("server ephemeral public key"),
            r.string("signature"),
        )
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexdhInit:
    """SSH_MSG_KEXDH_INIT (RFC 4253 §8): the client's e."""

    MSG: ClassVar[int] = KEXDH_INIT
    e: int

    def encode(self) -> bytes:
        return byte(self.MSG) + mpint(self.e)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexdhInit:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.mpint("e"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexdhReply:
    """SSH_MSG_KEXDH_REPLY (RFC 4253 §8): K_S, f and the signature of H."""

    MSG: ClassVar[int] = KEXDH_REPLY
    host_key: bytes
    f: int
    signature: bytes

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.host_key) + mpint(self.f) + string(self.signature)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexdhReply:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.string("server public host key"), r.mpint("f"), r.string("signature"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexDhGexRequest:
    """SSH_MSG_KEX_DH_GEX_REQUEST (RFC 4419 §3): acceptable and preferred group sizes in bits."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_REQUEST
    min_bits: int
    preferred_bits: int
    max_bits: int

    def encode(self) -> bytes:
        return byte(self.MSG) + uint32(self.min_bits) + uint32(self.preferred_bits) + uint32(self.max_bits)

    def hash_fields(self) -> bytes:
        """The three sizes exactly as they enter the exchange hash."""
        return uint32(self.min_bits) + uint32(self.preferred_bits) + uint32(self.max_bits)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexDhGexRequest:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.uint32("min"), r.uint32("n"), r.uint32("max"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexDhGexGroup:
    """SSH_MSG_KEX_DH_GEX_GROUP (RFC 4419 §3): the safe prime p and generator g."""

    MSG: ClassVar[int] = KEX_DH_GEX_GROUP
    p: int
    g: int

    def encode(self) -> bytes:
        return byte(self.MSG) + mpint(self.p) + mpint(self.g)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexDhGexGroup:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.mpint("p"), r.mpint("g"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexDhGexInit:
    """SSH_MSG_KEX_DH_GEX_INIT (RFC 4419 §3): the client's e."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_INIT
    e: int

    def encode(self) -> bytes:
        return byte(self.MSG) + mpint(self.e)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexDhGexInit:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.mpint("e"))
        r.check_end()
        return msg


@dataclass(frozen=True, slots=True)
class KexDhGexReply:
    """SSH_MSG_KEX_DH_GEX_REPLY (RFC 4419 §3): K_S, f and the signature of H."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_REPLY
    host_key: bytes
    f: int
    signature: bytes

    def encode(self) -> bytes:
        return byte(self.MSG) + string(self.host_key) + mpint(self.f) + string(self.signature)

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> KexDhGexReply:
        r = open_reader(payload, cls.MSG)
        msg = cls(r.string("server public host key"), r.mpint("f"), r.string("signature"))
        r.check_end()
        return msg
