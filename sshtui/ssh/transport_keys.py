"""From a finished key exchange to per-direction packet keys (RFC 4253 §7.2)."""

from __future__ import annotations

from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.kex_base import KexOutcome
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.kex import derive_key
from sshtui.ssh.negotiate import Negotiated
from sshtui.ssh.packet import DirectionKeys

AEAD_CIPHERS = frozenset(name for name, spec in CIPHERS.items() if spec.is_aead)


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
