"""Key derivation (RFC 4253 §7.2) and the exchange hash (RFC 4253 §8), checked against
paramiko's and asyncssh's derivation code and against the RFC formulas written out here."""

from __future__ import annotations

import hashlib
import struct
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.crypto.kex_base import KexContext
from sshtui.ssh.errors import LocalProtocolError
from sshtui.ssh.kex import derive_direction_keys, derive_key, exchange_hash

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import asyncssh.kex
    from paramiko.transport import Transport  # type: ignore[import-untyped]

HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def mpint(value: int) -> bytes:
    return string(value.to_bytes((value.bit_length() + 8) // 8, "big")) if value else string(b"")


def rfc_derive(hash_name: str, k: bytes, h: bytes, session_id: bytes, letter: bytes, size: int) -> bytes:
    """RFC 4253 §7.2 read literally: K1 = HASH(K || H || X || session_id),
    Kn = HASH(K || H || K1 || ... || Kn-1)."""
    function = HASHES[hash_name]
    key = function(k + h + letter + session_id).digest()
    while len(key) < size:
        key += function(k + h + key).digest()
    return key[:size]


def asyncssh_derive(hash_name: str, k: bytes, h: bytes, session_id: bytes, letter: bytes, size: int) -> bytes:
    fake_kex: Any = SimpleNamespace(_hash_alg=HASHES[hash_name])
    result: bytes = asyncssh.kex.Kex.compute_key(fake_kex, k, h, letter, session_id, size)
    return result


def paramiko_derive(
    hash_name: str, k_int: int, h: bytes, session_id: bytes, letter: bytes, size: int
) -> bytes:
    fake_transport: Any = SimpleNamespace(
        H=h,
        session_id=session_id,
        kex_engine=SimpleNamespace(hash_algo=HASHES[hash_name]),
        _add_K=lambda message: message.add_mpint(k_int),
        _log=lambda *args: None,
    )
    result: bytes = Transport._compute_key(fake_transport, letter.decode(), size)
    return result


@pytest.mark.parametrize("hash_name", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("size", [0, 12, 16, 20, 32, 48, 64, 65, 100, 200])
def test_derivation_matches_paramiko_and_asyncssh(hash_name: str, size: int) -> None:
    k_int = int.from_bytes(hashlib.sha512(b"shared").digest(), "big")  # top bit set: mpint gets a 0 byte
    k = mpint(k_int)
    h = HASHES[hash_name](b"exchange").digest()
    session_id = HASHES[hash_name](b"first exchange").digest()
    for letter in b"ABCDEF":
        x = bytes((letter,))
        ours = derive_key(hash_name, k, h, session_id, x, size)
        assert len(ours) == size
        assert ours == asyncssh_derive(hash_name, k, h, session_id, x, size)
        assert ours == paramiko_derive(hash_name, k_int, h, session_id, x, size)


@given(
    st.sampled_from(sorted(HASHES)),
    st.binary(min_size=1, max_size=80),
    st.binary(min_size=20, max_size=64),
    st.binary(min_size=20, max_size=64),
    st.sampled_from([b"A", b"B", b"C", b"D", b"E", b"F"]),
    st.integers(0, 300),
)
def test_derivation_matches_the_rfc_formula(
    hash_name: str, k: bytes, h: bytes, session_id: bytes, letter: bytes, size: int
) -> None:
    assert derive_key(hash_name, k, h, session_id, letter, size) == rfc_derive(
        hash_name, k, h, session_id, letter, size
    )


def test_direction_keys_use_letters_a_c_e_and_b_d_f() -> None:
    k, h, sid = mpint(12345678901234567890), b"h" * 32, b"s" * 32
    c2s = derive_direction_keys(
        "sha256", k, h, sid, client_to_server=True, iv_size=12, key_size=32, mac_size=0
    )
    s2c = derive_direction_keys(
        "sha256", k, h, sid, client_to_server=False, iv_size=16, key_size=16, mac_size=32
    )
    assert tuple(c2s) == (
        rfc_derive("sha256", k, h, sid, b"A", 12),
        rfc_derive("sha256", k, h, sid, b"C", 32),
        b"",
    )
    iv, key, mac_key = s2c
    assert (iv, key, mac_key) == (
        rfc_derive("sha256", k, h, sid, b"B", 16),
        rfc_derive("sha256", k, h, sid, b"D", 16),
        rfc_derive("sha256", k, h, sid, b"F", 32),
    )
    assert key.hex() not in repr(s2c) and mac_key.hex() not in repr(s2c)


def test_invalid_derivation_requests_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError, match="letter"):
        derive_key("sha256", b"k", b"h", b"s", b"G", 16)
    with pytest.raises(LocalProtocolError, match="hash"):
        derive_key("md5", b"k", b"h", b"s", b"A", 16)


@pytest.mark.parametrize("hash_name", ["sha256", "sha512"])
def test_exchange_hash_is_the_rfc_concatenation(hash_name: str) -> None:
    context = KexContext(b"SSH-2.0-client", b"SSH-2.0-server_1.0", b"\x14" + b"c" * 40, b"\x14" + b"s" * 50)
    host_key, q_c, q_s, k = b"host key blob", b"\x01" * 32, b"\x02" * 32, mpint(2**255 + 19)
    expected = HASHES[hash_name](
        string(b"SSH-2.0-client")
        + string(b"SSH-2.0-server_1.0")
        + string(b"\x14" + b"c" * 40)
        + string(b"\x14" + b"s" * 50)
        + string(host_key)
        + string(q_c)
        + string(q_s)
        + k
    ).digest()
    assert exchange_hash(hash_name, context, host_key, string(q_c) + string(q_s), k) == expected
