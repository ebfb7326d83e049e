"""From a finished key exchange to per-direction packet keys (RFC 4253 §7.2), and the
RFC 4344 §3.2 rekey limits that depend on the negotiated cipher."""

from __future__ import annotations

from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.kex_base import KexOutcome
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.kex import derive_key
from sshtui.ssh.negotiate import Negotiated
from sshtui.ssh.packet import DirectionKeys

AEAD_CIPHERS = frozenset(name for name, spec in CIPHERS.items() if spec.is_aead)

# Signature algorithms a server accepts for publickey auth, announced in EXT_INFO (RFC 8308 §3.1).
SERVER_SIG_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


def _direction(
    cipher: str, mac: str, outcome: KexOutcome, session_id: bytes, letters: bytes
) -> DirectionKeys:
    spec = CIPHERS[cipher]
    k, h = outcome.shared_secret, outcome.exchange_hash
    iv = derive_key(outcome.hash_name, k, h, session_id, letters[0:1], spec.iv_size) if spec.iv_size else b""
    key = derive_key(outcome.hash_name, k, h, session_id, letters[1:2], spec.key_size)
    if spec.is_aead:
        return DirectionKeys(cipher=cipher, mac=None, key=key, iv=iv)
    mac_spec = MACS[mac]
    mac_key = derive_key(outcome.hash_name, k, h, session_id, letters[2:3], mac_spec.key_size)
    return DirectionKeys(cipher=cipher, mac=mac, key=key, iv=iv, mac_key=mac_key)


def build_keys(
    negotiated: Negotiated, outcome: KexOutcome, session_id: bytes
) -> tuple[DirectionKeys, DirectionKeys]:
    """(client-to-server, server-to-client): letters A, C, E and B, D, F."""
    c2s = _direction(negotiated.cipher_c2s, negotiated.mac_c2s, outcome, session_id, b"ACE")
    s2c = _direction(negotiated.cipher_s2c, negotiated.mac_s2c, outcome, session_id, b"BDF")
    return c2s, s2c


def rekey_byte_limit(*ciphers: str) -> int:
    """RFC 4344 §3.2: rekey after 2**(L/4) blocks of L bits; 1 GiB for 64-bit-block ciphers."""
    limits = []
    for name in ciphers:
        block = CIPHERS[name].block_size
        limits.append((1 << (block * 2)) * block if block >= 16 else 1 << 30)
    return min(limits)
