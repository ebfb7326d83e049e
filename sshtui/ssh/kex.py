"""The exchange hash H (RFC 4253 §8, RFC 5656 §4, RFC 4419 §3) and the derivation of
initial IVs, encryption keys and MAC keys from K, H and the session id (RFC 4253 §7.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sshtui.ssh.errors import LocalProtocolError
from sshtui.ssh.wire import string

if TYPE_CHECKING:
    from sshtui.ssh.crypto.kex_base import KexContext

HASH_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

_LETTERS = frozenset(b"ABCDEF")


def _hash_function(hash_name: str) -> Callable[..., Any]:
    function = HASH_FUNCTIONS.get(hash_name)
    if function is None:
        raise LocalProtocolError(f"unknown key exchange hash {hash_name!r:.32}")
    return function


def exchange_hash(
    hash_name: str,
    context: KexContext,
    host_key_blob: bytes,
    method_fields: bytes,
    shared_secret: bytes,
) -> bytes:
    """H = HASH(string V_C || string V_S || string I_C || string I_S || string K_S
    || method_fields || K), where ``method_fields`` is already encoded by the method
    (e.g. string Q_C || string Q_S) and ``shared_secret`` is K already encoded."""
    digest = _hash_function(hash_name)()
    digest.update(string(context.client_version))
    digest.update(string(context.server_version))
    digest.update(string(context.client_kexinit))
    digest.update(string(context.server_kexinit))
    digest.update(string(host_key_blob))
    digest.update(method_fields)
    digest.update(shared_secret)
    result: bytes = digest.digest()
    return result


def derive_key(
    hash_name: str,
    shared_secret: bytes,
    exchange_hash: bytes,
    session_id: bytes,
    letter: bytes,
    size: int,
) -> bytes:
    """HASH(K || H || letter || session_id), extended by HASH(K || H || K1 || ... ) until
    ``size`` bytes are available. ``shared_secret`` is K already encoded."""
    if len(letter) != 1 or letter[0] not in _LETTERS:
        raise LocalProtocolError("key derivation letter must be one of A..F")
    if size < 0:
        raise LocalProtocolError("key derivation size must not be negative")
    if size == 0:
        return b""
    function = _hash_function(hash_name)
    # K || H is the common prefix of every round; hash it once and copy the state.
    prefix = function(shared_secret)
    prefix.update(exchange_hash)
    first = prefix.copy()
    first.update(letter)
    first.update(session_id)
    key: bytes = first.digest()
    if len(key) >= size:
        return key[:size]
    pieces = [key]
    total = len(key)
    while total < size:
        round_state = prefix.copy()
        for piece in pieces:
            round_state.update(piece)
        piece = round_state.digest()
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces)[:size]


@dataclass(frozen=True, slots=True)
class DirectionKeys:
    """The initial IV, encryption key and integrity key for one direction."""

    iv: bytes = field(repr=False)
    key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)

    def __iter__(self) -> Iterator[bytes]:
        return iter((self.iv, self.key, self.mac_key))


def derive_direction_keys(
    hash_name: str,
    shared_secret: bytes,
    exchange_hash: bytes,
    session_id: bytes,
    *,
    client_to_server: bool,
    iv_size: int,
    key_size: int,
    mac_size: int,
) -> DirectionKeys:
    """Letters A, C, E (client to server) or B, D, F (server to client)."""
    iv_letter, key_letter, mac_letter = (b"A", b"C", b"E") if client_to_server else (b"B", b"D", b"F")
    return DirectionKeys(
        derive_key(hash_name, shared_secret, exchange_hash, session_id, iv_letter, iv_size),
        derive_key(hash_name, shared_secret, exchange_hash, session_id, key_letter, key_size),
        derive_key(hash_name, shared_secret, exchange_hash, session_id, mac_letter, mac_size),
    )
