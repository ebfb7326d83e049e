"""Key exchange method messages: ECDH and hybrid post-quantum (RFC 5656 §4, RFC 8731 §3,
draft-ietf-sshm-mlkem-hybrid-kex), fixed-group Diffie-Hellman (RFC 4253 §8) and
Diffie-Hellman group exchange (RFC 4419 §3).

Numbers 30..34 are reused by each method with its own meaning, so the decoder to use
depends on the negotiated method, never on the number alone. Every layout here is
declared in field metadata (see ``messages.base``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sshtui.ssh.constants import DisconnectReason, MsgType
from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.messages.base import BYTES, MPINT, UINT32, Message

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
class KexEcdhInit(Message):
    """SSH_MSG_KEX_ECDH_INIT: Q_C, also C_INIT of the hybrid ML-KEM method."""

    MSG: ClassVar[int] = MsgType.KEX_ECDH_INIT
    client_public: bytes = field(metadata=BYTES)


@dataclass(frozen=True, slots=True)
class KexEcdhReply(Message):
    """SSH_MSG_KEX_ECDH_REPLY: K_S, Q_S (or S_REPLY of the hybrid method) and the signature."""

    MSG: ClassVar[int] = MsgType.KEX_ECDH_REPLY
    host_key: bytes = field(metadata=BYTES)
    server_public: bytes = field(metadata=BYTES)
    signature: bytes = field(metadata=BYTES)


@dataclass(frozen=True, slots=True)
class KexdhInit(Message):
    """SSH_MSG_KEXDH_INIT (RFC 4253 §8): the client's e."""

    MSG: ClassVar[int] = KEXDH_INIT
    e: int = field(metadata=MPINT)


@dataclass(frozen=True, slots=True)
class KexdhReply(Message):
    """SSH_MSG_KEXDH_REPLY (RFC 4253 §8): K_S, f and the signature of H."""

    MSG: ClassVar[int] = KEXDH_REPLY
    host_key: bytes = field(metadata=BYTES)
    f: int = field(metadata=MPINT)
    signature: bytes = field(metadata=BYTES)


@dataclass(frozen=True, slots=True)
class KexDhGexRequest(Message):
    """SSH_MSG_KEX_DH_GEX_REQUEST (RFC 4419 §3): acceptable and preferred group sizes in bits."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_REQUEST
    min_bits: int = field(metadata=UINT32)
    preferred_bits: int = field(metadata=UINT32)
    max_bits: int = field(metadata=UINT32)

    def hash_fields(self) -> bytes:
        """The three sizes exactly as they enter the exchange hash: the message minus its number."""
        return self._encode_fields()


@dataclass(frozen=True, slots=True)
class KexDhGexGroup(Message):
    """SSH_MSG_KEX_DH_GEX_GROUP (RFC 4419 §3): the safe prime p and generator g."""

    MSG: ClassVar[int] = KEX_DH_GEX_GROUP
    p: int = field(metadata=MPINT)
    g: int = field(metadata=MPINT)


@dataclass(frozen=True, slots=True)
class KexDhGexInit(Message):
    """SSH_MSG_KEX_DH_GEX_INIT (RFC 4419 §3): the client's e."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_INIT
    e: int = field(metadata=MPINT)


@dataclass(frozen=True, slots=True)
class KexDhGexReply(Message):
    """SSH_MSG_KEX_DH_GEX_REPLY (RFC 4419 §3): K_S, f and the signature of H."""

    MSG: ClassVar[int] = MsgType.KEX_DH_GEX_REPLY
    host_key: bytes = field(metadata=BYTES)
    f: int = field(metadata=MPINT)
    signature: bytes = field(metadata=BYTES)
