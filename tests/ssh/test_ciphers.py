"""The cipher and MAC registries and the per-direction cipher engines, checked against
independent computations: a pure-Python ChaCha20/Poly1305 validated on the RFC 8439 test
vectors, AES-ECB counter blocks, and the standard library's HMAC."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sshtui.ssh.constants import DisconnectReason
from sshtui.ssh.crypto.ciphers import (
    CHACHA20_POLY1305,
    CIPHERS,
    AesGcm,
    ChaChaPoly,
    aes_ctr,
    check_key_sizes,
    cipher_spec,
)
from sshtui.ssh.crypto.macs import MACS, PacketMac, mac_spec
from sshtui.ssh.errors import LocalProtocolError, MacError

# ---------------------------------------------------------------- reference ChaCha20 / Poly1305
# The original (D. J. Bernstein) ChaCha20 with a 64-bit block counter in words 12-13 and a
# 64-bit nonce in words 14-15, as OpenSSH uses it; written from the algorithm description.

_MASK32 = 0xFFFFFFFF


def _rotl(value: int, count: int) -> int:
    return ((value << count) & _MASK32) | (value >> (32 - count))


def _quarter_round(state: list[int], a: int, b: int, c: int, d: int) -> None:
    state[a] = (state[a] + state[b]) & _MASK32
    state[d] = _rotl(state[d] ^ state[a], 16)
    state[c] = (state[c] + state[d]) & _MASK32
    state[b] = _rotl(state[b] ^ state[c], 12)
    state[a] = (state[a] + state[b]) & _MASK32
    state[d] = _rotl(state[d] ^ state[a], 8)
    state[c] = (state[c] + state[d]) & _MASK32
    state[b] = _rotl(state[b] ^ state[c], 7)


def _chacha_block(key: bytes, words_12_to_15: tuple[int, int, int, int]) -> bytes:
    initial = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    initial += list(struct.unpack("<8I", key)) + list(words_12_to_15)
    state = list(initial)
    for _ in range(10):
        _quarter_round(state, 0, 4, 8, 12)
        _quarter_round(state, 1, 5, 9, 13)
        _quarter_round(state, 2, 6, 10, 14)
        _quarter_round(state, 3, 7, 11, 15)
        _quarter_round(state, 0, 5, 10, 15)
        _quarter_round(state, 1, 6, 11, 12)
        _quarter_round(state, 2, 7, 8, 13)
        _quarter_round(state, 3, 4, 9, 14)
    return struct.pack("<16I", *((s + i) & _MASK32 for s, i in zip(state, initial, strict=True)))


def reference_chacha20(key: bytes, nonce8: bytes, counter: int, data: bytes) -> bytes:
    nonce_words = struct.unpack("<2I", nonce8)
    out = bytearray()
    for offset in range(0, len(data), 64):
        block_counter = counter + offset // 64
        keystream = _chacha_block(key, (block_counter & _MASK32, block_counter >> 32, *nonce_words))
        chunk = data[offset : offset + 64]
        out += bytes(x ^ y for x, y in zip(chunk, keystream, strict=False))
    return bytes(out)


def reference_poly1305(key: bytes, message: bytes) -> bytes:
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    accumulator = 0
    for offset in range(0, len(message), 16):
        chunk = message[offset : offset + 16] + b"\x01"
        accumulator = (accumulator + int.from_bytes(chunk, "little")) * r % p
    return ((accumulator + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def test_reference_chacha20_matches_rfc8439_block_vector() -> None:
    # RFC 8439 §2.3.2: key 00..1f, counter 1, nonce 00000009 0000004a 00000000.
    key = bytes(range(32))
    words = (1, *struct.unpack("<3I", bytes.fromhex("000000090000004a00000000")))
    expected = bytes.fromhex(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )
    assert _chacha_block(key, words) == expected


def test_reference_poly1305_matches_rfc8439_vector() -> None:
    # RFC 8439 §2.5.2.
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    tag = reference_poly1305(key, b"Cryptographic Forum Research Group")
    assert tag == bytes.fromhex("a8061dc1305136c6c22b8baf0c0127a9")


# ---------------------------------------------------------------- registries


def test_cipher_registry_lists_exactly_the_supported_ciphers_in_preference_order() -> None:
    assert list(CIPHERS) == [
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ]
    assert not any("cbc" in name for name in CIPHERS)


@pytest.mark.parametrize("name", [n for n in CIPHERS if n.startswith("aes")])
def test_aes_spec_sizes_follow_the_name(name: str) -> None:
    spec = CIPHERS[name]
    assert spec.key_size * 8 == int(name[3:6])
    assert spec.block_size == 16
    if name.endswith("-gcm@openssh.com"):
        assert (spec.iv_size, spec.is_aead, spec.tag_size) == (12, True, 16)
    else:
        assert (spec.iv_size, spec.is_aead, spec.tag_size) == (16, False, 0)


def test_chacha_spec() -> None:
    spec = CIPHERS[CHACHA20_POLY1305]
    assert (spec.key_size, spec.iv_size, spec.block_size, spec.is_aead, spec.tag_size) == (64, 0, 8, True, 16)


def test_mac_registry_sizes_match_the_hash() -> None:
    assert list(MACS) == [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha1",
    ]
    for name, spec in MACS.items():
        digest = hashlib.new(spec.hash_name).digest_size
        assert spec.digest_size == spec.key_size == digest
        assert spec.etm == name.endswith("-etm@openssh.com")


def test_registries_are_read_only() -> None:
    with pytest.raises(TypeError):
        CIPHERS["aes128-cbc"] = CIPHERS["aes128-ctr"]  # type: ignore[index]
    with pytest.raises(TypeError):
        MACS["hmac-md5"] = MACS["hmac-sha1"]  # type: ignore[index]


def test_unknown_algorithms_are_refused_by_name() -> None:
    with pytest.raises(LocalProtocolError, match="aes128-cbc"):
        cipher_spec("aes128-cbc")
    with pytest.raises(LocalProtocolError, match="hmac-md5"):
        mac_spec("hmac-md5")


def test_wrong_key_sizes_are_refused_without_showing_the_key() -> None:
    key = bytes.fromhex("ab" * 15)
    with pytest.raises(LocalProtocolError) as caught:
        check_key_sizes(CIPHERS["aes128-ctr"], key, bytes(16))
    assert "16-byte key" in str(caught.value) and "ab" * 4 not in str(caught.value)
    with pytest.raises(LocalProtocolError, match="IV"):
        check_key_sizes(CIPHERS["aes128-gcm@openssh.com"], bytes(16), bytes(16))
    with pytest.raises(LocalProtocolError, match="32-byte key"):
        PacketMac(MACS["hmac-sha2-256"], bytes(20))


# ---------------------------------------------------------------- MAC


@pytest.mark.parametrize("name", list(MACS))
def test_mac_is_hmac_over_sequence_then_data(name: str) -> None:
    spec = MACS[name]
    key = os.urandom(spec.key_size)
    mac = PacketMac(spec, key)
    data = os.urandom(100)
    for sequence in (0, 1, 0x01020304, 0xFFFFFFFF):
        expected = hmac.new(key, struct.pack(">I", sequence) + data, spec.hash_name).digest()
        assert mac.sign(sequence, data) == expected
        assert mac.sign(sequence, data[:30], memoryview(data)[30:]) == expected
        assert mac.verify(sequence, expected, data)
        assert not mac.verify(sequence, bytes(len(expected)), data)
        assert not mac.verify((sequence + 1) & 0xFFFFFFFF, expected, data)


# ---------------------------------------------------------------- AES-CTR


def test_ctr_counter_runs_on_across_calls_as_one_keystream() -> None:
    key, iv = os.urandom(32), bytes.fromhex("ff" * 15 + "fe")  # the counter wraps past 2**128 - 1
    crypt = aes_ctr(key, iv)
    pieces = [os.urandom(n) for n in (16, 5, 27, 64)]
    out = b"".join(crypt(piece) for piece in pieces)
    # Independently: E(K, counter) for counter = IV, IV+1, ... mod 2**128, XORed with the data.
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(iv, "big")
    blocks = b"".join(((start + i) % (1 << 128)).to_bytes(16, "big") for i in range(8))
    keystream = ecb.update(blocks)
    plain = b"".join(pieces)
    assert out == bytes(a ^ b for a, b in zip(plain, keystream, strict=False))


# ---------------------------------------------------------------- AES-GCM


def test_gcm_nonce_is_fixed_field_and_invocation_counter_wrapping_at_2_64() -> None:
    key = os.urandom(16)
    iv = bytes.fromhex("01020304") + bytes.fromhex("ff" * 7 + "fe")
    sender, receiver = AesGcm(key, iv), AesGcm(key, iv)
    reference = AESGCM(key)
    length_field = struct.pack(">I", 32)
    for invocation in (0xFFFFFFFFFFFFFFFE, 0xFFFFFFFFFFFFFFFF, 0, 1):
        body = os.urandom(32)
        sealed = sender.seal(length_field, body)
        nonce = iv[:4] + invocation.to_bytes(8, "big")
        assert sealed == reference.encrypt(nonce, body, length_field)
        assert receiver.open(length_field, sealed) == body


def test_gcm_refuses_a_changed_length_or_ciphertext() -> None:
    key, iv = os.urandom(32), os.urandom(12)
    sealed = AesGcm(key, iv).seal(b"\x00\x00\x00\x20", bytes(32))
    with pytest.raises(MacError) as caught:
        AesGcm(key, iv).open(b"\x00\x00\x00\x30", sealed)
    assert caught.value.reason is DisconnectReason.MAC_ERROR
    tampered = bytearray(sealed)
    tampered[3] ^= 1
    with pytest.raises(MacError):
        AesGcm(key, iv).open(b"\x00\x00\x00\x20", bytes(tampered))


# ---------------------------------------------------------------- chacha20-poly1305


@pytest.mark.parametrize("sequence", [0, 1, 7, 0x12345678, 0xFFFFFFFF])
def test_chacha_matches_the_openssh_construction(sequence: int) -> None:
    key = os.urandom(64)
    main_key, header_key = key[:32], key[32:]
    nonce = struct.pack(">Q", sequence)
    length_field = struct.pack(">I", 72)
    body = os.urandom(72)
    engine = ChaChaPoly(key)

    sealed_length = engine.crypt_length(sequence, length_field)
    assert sealed_length == reference_chacha20(header_key, nonce, 0, length_field)
    ciphertext, tag = engine.seal(sequence, sealed_length, body)
    assert ciphertext == reference_chacha20(main_key, nonce, 1, body)
    poly_key = reference_chacha20(main_key, nonce, 0, bytes(32))
    assert tag == reference_poly1305(poly_key, sealed_length + ciphertext)

    receiver = ChaChaPoly(key)
    assert receiver.crypt_length(sequence, sealed_length) == length_field
    assert receiver.open(sequence, sealed_length + ciphertext, tag) == body


def test_chacha_refuses_wrong_tag_sequence_or_length() -> None:
    key = os.urandom(64)
    engine = ChaChaPoly(key)
    sealed_length = engine.crypt_length(5, struct.pack(">I", 8))
    ciphertext, tag = engine.seal(5, sealed_length, bytes(8))
    sealed = sealed_length + ciphertext
    with pytest.raises(MacError):
        ChaChaPoly(key).open(6, sealed, tag)
    with pytest.raises(MacError):
        ChaChaPoly(key).open(5, bytes([sealed[0] ^ 0x80]) + sealed[1:], tag)
    with pytest.raises(MacError):
        ChaChaPoly(key).open(5, sealed, tag[:15] + bytes([tag[15] ^ 1]))
    assert ChaChaPoly(key).open(5, sealed, tag) == bytes(8)
