"""Every key exchange method, our client against our server in memory, with every host key
algorithm; and the ways a hostile peer's values are refused."""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from sshtui.ssh.crypto.hostkeys import HOST_KEY_ALGORITHMS, HostKeySigner, PrivateKey, verify_signature
from sshtui.ssh.crypto.kex_base import ClientKex, KexContext, KexOutcome, ServerKex
from sshtui.ssh.crypto.kex_dh import GROUP14, GROUP16, GROUP18, choose_gex_group
from sshtui.ssh.crypto.kex_mlkem import mlkem_available
from sshtui.ssh.crypto.kex_registry import DEFAULT_KEX_ALGORITHMS, KEX_METHODS, kex_method
from sshtui.ssh.errors import DecodeError, HostKeyError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages.kex import (
    KexDhGexGroup,
    KexDhGexReply,
    KexdhInit,
    KexdhReply,
    KexEcdhInit,
    KexEcdhReply,
)

CONTEXT = KexContext(
    b"SSH-2.0-test_client", b"SSH-2.0-test_server", b"\x14client kexinit", b"\x14server kexinit"
)
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def mpint(value: int) -> bytes:
    return string(value.to_bytes((value.bit_length() + 8) // 8, "big")) if value else string(b"")


def seeded_rng(seed: bytes) -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda size: hashlib.shake_256(seed + next(counter).to_bytes(8, "big")).digest(size)


@pytest.fixture(scope="module")
def host_keys() -> dict[str, PrivateKey]:
    keys = {
        "ssh-ed25519": PrivateKey.generate("ed25519"),
        "ecdsa-sha2-nistp256": PrivateKey.generate("ecdsa", 256),
        "ecdsa-sha2-nistp384": PrivateKey.generate("ecdsa", 384),
        "ecdsa-sha2-nistp521": PrivateKey.generate("ecdsa", 521),
        "ssh-rsa": PrivateKey.generate("rsa", 2048),
    }
    return {alg: keys[spec.key_type] for alg, spec in HOST_KEY_ALGORITHMS.items()}


def exchange(client: ClientKex, server: ServerKex) -> tuple[KexOutcome, KexOutcome]:
    """Shuttle payloads between the two sides until both report an outcome."""
    to_server, to_client = client.start(), server.start()
    client_outcome = server_outcome = None
    for _ in range(4):
        for payload in to_server:
            assert payload[0] in server.expected
            replies, outcome = server.receive(payload)
            to_client += replies
            server_outcome = server_outcome or outcome
        to_server = []
        for payload in to_client:
            assert payload[0] in client.expected
            replies, outcome = client.receive(payload)
            to_server += replies
            client_outcome = client_outcome or outcome
        to_client = []
        if client_outcome and server_outcome:
            return client_outcome, server_outcome
    raise AssertionError("key exchange did not finish")


@pytest.mark.parametrize("algorithm", list(HOST_KEY_ALGORITHMS))
@pytest.mark.parametrize("name", list(KEX_METHODS))
def test_client_and_server_agree_and_signature_verifies(
    host_keys: dict[str, PrivateKey], name: str, algorithm: str
) -> None:
    method = KEX_METHODS[name]
    signer = host_keys[algorithm].signer(algorithm)
    client_outcome, server_outcome = exchange(
        method.make_client(CONTEXT, os.urandom), method.make_server(CONTEXT, os.urandom, signer)
    )
    assert client_outcome == server_outcome
    assert client_outcome.shared_secret == server_outcome.shared_secret
    assert len(client_outcome.exchange_hash) == DIGEST_SIZES[method.hash_name]
    assert client_outcome.host_key_blob == signer.public_blob
    verify_signature(
        algorithm, client_outcome.host_key_blob, client_outcome.signature, client_outcome.exchange_hash
    )
    if name.startswith("mlkem"):
        assert client_outcome.shared_secret[:4] == b"\x00\x00\x00\x20"  # string(32-byte SHA-256 output)
    else:
        length = int.from_bytes(client_outcome.shared_secret[:4], "big")
        assert length == len(client_outcome.shared_secret) - 4 and client_outcome.shared_secret[4] < 0x80


def test_method_registry_order_and_opt_in() -> None:
    names = list(KEX_METHODS)
    expected_first = ["mlkem768x25519-sha256"] if mlkem_available() else []
    assert names[: len(expected_first) + 2] == [
        *expected_first,
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
    ]
    assert "diffie-hellman-group14-sha1" in KEX_METHODS
    assert "diffie-hellman-group14-sha1" not in DEFAULT_KEX_ALGORITHMS
    assert KEX_METHODS["diffie-hellman-group14-sha1"].opt_in
    assert [n for n, m in KEX_METHODS.items() if m.post_quantum] == expected_first
    assert {m.hash_name for m in KEX_METHODS.values()} <= set(DIGEST_SIZES)
    with pytest.raises(LocalProtocolError, match="not implemented"):
        kex_method("diffie-hellman-group1-sha1")


def test_outcome_repr_hides_the_shared_secret(host_keys: dict[str, PrivateKey]) -> None:
    method = KEX_METHODS["curve25519-sha256"]
    outcome, _ = exchange(
        method.make_client(CONTEXT, os.urandom),
        method.make_server(CONTEXT, os.urandom, host_keys["ssh-ed25519"].signer("ssh-ed25519")),
    )
    assert repr(outcome.shared_secret) not in repr(outcome)
    assert outcome.shared_secret.hex() not in repr(outcome)


def _first_client_value(name: str, seed: bytes) -> bytes:
    client = KEX_METHODS[name].make_client(CONTEXT, seeded_rng(seed))
    sent = client.start()
    if name.startswith("diffie-hellman-group-exchange"):
        sent, _ = client.receive(KexDhGexGroup(GROUP14.p, 2).encode())
    return sent[0]


@pytest.mark.parametrize("name", list(KEX_METHODS))
def test_client_ephemeral_keys_come_from_the_given_rng(name: str) -> None:
    assert _first_client_value(name, b"seed one") == _first_client_value(name, b"seed one")
    assert _first_client_value(name, b"seed one") != _first_client_value(name, b"seed two")


def test_rng_returning_short_output_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="random source"):
        KEX_METHODS["curve25519-sha256"].make_client(CONTEXT, lambda n: b"\x00" * (n - 1)).start()


# --- hostile values ----------------------------------------------------------------------------

LOW_ORDER_X25519 = [bytes(32), (1).to_bytes(32, "little")]


def _server(name: str, host_keys: dict[str, PrivateKey]) -> ServerKex:
    return KEX_METHODS[name].make_server(CONTEXT, os.urandom, host_keys["ssh-ed25519"].signer("ssh-ed25519"))


def _started_client(name: str) -> ClientKex:
    client = KEX_METHODS[name].make_client(CONTEXT, os.urandom)
    client.start()
    return client


@pytest.mark.parametrize("point", LOW_ORDER_X25519)
def test_low_order_x25519_points_are_refused(host_keys: dict[str, PrivateKey], point: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="low-order"):
        _server("curve25519-sha256", host_keys).receive(KexEcdhInit(point).encode())
    with pytest.raises(RemoteProtocolError, match="low-order"):
        _started_client("curve25519-sha256").receive(KexEcdhReply(b"k", point, b"s").encode())


def test_wrong_length_x25519_key_is_refused(host_keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(RemoteProtocolError, match="31 bytes"):
        _server("curve25519-sha256", host_keys).receive(KexEcdhInit(b"\x09" * 31).encode())
    with pytest.raises(RemoteProtocolError, match="33 bytes"):
        _started_client("curve25519-sha256@libssh.org").receive(
            KexEcdhReply(b"k", b"\x09" * 33, b"s").encode()
        )


@pytest.mark.parametrize("name", ["ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"])
def test_invalid_nist_points_are_refused(host_keys: dict[str, PrivateKey], name: str) -> None:
    size = {"ecdh-sha2-nistp256": 65, "ecdh-sha2-nistp384": 97, "ecdh-sha2-nistp521": 133}[name]
    with pytest.raises(RemoteProtocolError, match="not a valid point"):
        _server(name, host_keys).receive(KexEcdhInit(b"\x04" + b"\x01" * (size - 1)).encode())
    compressed = _first_client_value(name, b"x")[5:]
    compressed = bytes((2 + compressed[-1] % 2,)) + compressed[1 : 1 + (size - 1) // 2]
    with pytest.raises(RemoteProtocolError, match="uncompressed"):
        _started_client(name).receive(KexEcdhReply(b"k", compressed, b"s").encode())


@pytest.mark.skipif(not mlkem_available(), reason="ML-KEM not available")
def test_wrong_length_mlkem_values_are_refused(host_keys: dict[str, PrivateKey]) -> None:
    name = "mlkem768x25519-sha256"
    good_init = _first_client_value(name, b"seed")[5:]
    assert len(good_init) == 1216
    for bad in (good_init[:-1], good_init + b"\x00", good_init[:32]):
        with pytest.raises(RemoteProtocolError, match=f"C_INIT is {len(bad)} bytes"):
            _server(name, host_keys).receive(KexEcdhInit(bad).encode())
    for size in (1119, 1121, 32):
        with pytest.raises(RemoteProtocolError, match=f"S_REPLY is {size} bytes"):
            _started_client(name).receive(KexEcdhReply(b"k", b"\x01" * size, b"s").encode())


@pytest.mark.skipif(not mlkem_available(), reason="ML-KEM not available")
def test_mlkem_hybrid_refuses_invalid_parts(host_keys: dict[str, PrivateKey]) -> None:
    name = "mlkem768x25519-sha256"
    good_init = _first_client_value(name, b"seed")[5:]
    # Coefficients of 0xFFF exceed q = 3329: FIPS 203 §7.2 requires rejecting this key.
    with pytest.raises(RemoteProtocolError, match="ML-KEM public key is invalid"):
        _server(name, host_keys).receive(KexEcdhInit(b"\xff" * 1184 + good_init[1184:]).encode())
    with pytest.raises(RemoteProtocolError, match="low-order"):
        _server(name, host_keys).receive(KexEcdhInit(good_init[:1184] + bytes(32)).encode())


@pytest.mark.skipif(not mlkem_available(), reason="ML-KEM not available")
def test_mlkem_hybrid_secret_and_hash_follow_the_draft(host_keys: dict[str, PrivateKey]) -> None:
    """Play the server by hand, from the draft's formulas, against our client."""
    client = KEX_METHODS["mlkem768x25519-sha256"].make_client(CONTEXT, os.urandom)
    c_init = KexEcdhInit.decode(client.start()[0]).client_public
    kem_secret, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(c_init[:1184]).encapsulate()
    server_ec = x25519.X25519PrivateKey.generate()
    ec_secret = server_ec.exchange(x25519.X25519PublicKey.from_public_bytes(c_init[1184:]))
    s_reply = ciphertext + server_ec.public_key().public_bytes_raw()
    k = string(hashlib.sha256(kem_secret + ec_secret).digest())
    key = host_keys["ssh-ed25519"]
    h = hashlib.sha256(
        string(CONTEXT.client_version)
        + string(CONTEXT.server_version)
        + string(CONTEXT.client_kexinit)
        + string(CONTEXT.server_kexinit)
        + string(key.public_blob)
        + string(c_init)
        + string(s_reply)
        + k
    ).digest()
    _, outcome = client.receive(KexEcdhReply(key.public_blob, s_reply, key.sign("ssh-ed25519", h)).encode())
    assert outcome is not None
    assert outcome.shared_secret == k and outcome.exchange_hash == h


def test_dh_group14_secret_and_hash_follow_rfc4253(host_keys: dict[str, PrivateKey]) -> None:
    client = KEX_METHODS["diffie-hellman-group14-sha256"].make_client(CONTEXT, os.urandom)
    e = KexdhInit.decode(client.start()[0]).e
    y = int.from_bytes(os.urandom(32), "big")
    f = pow(2, y, GROUP14.p)
    k = mpint(pow(e, y, GROUP14.p))
    key = host_keys["ssh-ed25519"]
    h = hashlib.sha256(
        string(CONTEXT.client_version)
        + string(CONTEXT.server_version)
        + string(CONTEXT.client_kexinit)
        + string(CONTEXT.server_kexinit)
        + string(key.public_blob)
        + mpint(e)
        + mpint(f)
        + k
    ).digest()
    _, outcome = client.receive(KexdhReply(key.public_blob, f, key.sign("ssh-ed25519", h)).encode())
    assert outcome is not None and outcome.shared_secret == k and outcome.exchange_hash == h


@pytest.mark.parametrize("f", [0, 1, GROUP14.p - 1, GROUP14.p, GROUP14.p + 5])
def test_dh_out_of_range_public_values_are_refused(host_keys: dict[str, PrivateKey], f: int) -> None:
    with pytest.raises(RemoteProtocolError, match="1 < f < p-1"):
        _started_client("diffie-hellman-group14-sha256").receive(KexdhReply(b"k", f, b"s").encode())
    with pytest.raises(RemoteProtocolError, match="1 < e < p-1"):
        _server("diffie-hellman-group14-sha256", host_keys).receive(KexdhInit(f).encode())


def _gex_client() -> ClientKex:
    return _started_client("diffie-hellman-group-exchange-sha256")


def test_gex_client_asks_for_2048_to_8192_bits() -> None:
    client = KEX_METHODS["diffie-hellman-group-exchange-sha256"].make_client(CONTEXT, os.urandom)
    assert client.start() == [b"\x22" + struct.pack(">III", 2048, 3072, 8192)]


@pytest.mark.parametrize(
    ("p", "g", "complaint"),
    [
        ((1 << 1023) | 1, 2, "1024-bit group"),
        ((1 << 8199) | 1, 2, "8200-bit group"),
        (1 << 2047, 2, "even"),
        (GROUP14.p, 1, "generator"),
        (GROUP14.p, GROUP14.p - 1, "generator"),
    ],
)
def test_gex_client_refuses_bad_groups(p: int, g: int, complaint: str) -> None:
    with pytest.raises(RemoteProtocolError, match=complaint):
        _gex_client().receive(KexDhGexGroup(p, g).encode())


def test_gex_client_refuses_reply_before_group() -> None:
    with pytest.raises(RemoteProtocolError, match="unexpected"):
        _gex_client().receive(KexDhGexReply(b"k", 5, b"s").encode())


@pytest.mark.parametrize(
    ("request_bits", "chosen"),
    [
        ((2048, 3072, 8192), GROUP16),
        ((2048, 2048, 8192), GROUP14),
        ((2048, 8192, 8192), GROUP18),
        ((2048, 7680, 8192), GROUP18),
        ((2048, 6144, 6144), GROUP16),
        ((1024, 1024, 1536), GROUP14),
    ],
)
def test_gex_server_picks_the_smallest_group_at_least_the_preferred_size(
    request_bits: tuple[int, int, int], chosen: object
) -> None:
    assert choose_gex_group(*request_bits) == chosen


def test_gex_server_refuses_inconsistent_request(host_keys: dict[str, PrivateKey]) -> None:
    server = _server("diffie-hellman-group-exchange-sha256", host_keys)
    with pytest.raises(RemoteProtocolError, match="min <= n <= max"):
        server.receive(b"\x22" + struct.pack(">III", 4096, 2048, 8192))


def test_truncated_reply_and_wrong_messages_are_typed_errors(host_keys: dict[str, PrivateKey]) -> None:
    reply = KexEcdhReply(b"host key", b"\x09" * 32, b"signature").encode()
    with pytest.raises(DecodeError, match="truncated"):
        _started_client("curve25519-sha256").receive(reply[:-3])
    with pytest.raises(RemoteProtocolError, match="unexpected KEX_ECDH_INIT"):
        _started_client("curve25519-sha256").receive(KexEcdhInit(b"\x09" * 32).encode())
    with pytest.raises(DecodeError, match="empty"):
        _started_client("curve25519-sha256").receive(b"")
    server = _server("curve25519-sha256", host_keys)
    good_init = KexEcdhInit(x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()).encode()
    server.receive(good_init)
    assert server.expected == frozenset()
    with pytest.raises(RemoteProtocolError, match="waiting for nothing"):
        server.receive(good_init)


def test_tampered_server_value_breaks_the_host_key_signature(host_keys: dict[str, PrivateKey]) -> None:
    """A man in the middle who swaps Q_S cannot keep the server's signature valid."""
    method = KEX_METHODS["curve25519-sha256"]
    signer: HostKeySigner = host_keys["ssh-ed25519"].signer("ssh-ed25519")
    client = method.make_client(CONTEXT, os.urandom)
    server = method.make_server(CONTEXT, os.urandom, signer)
    (reply,), _ = server.receive(client.start()[0])
    genuine = KexEcdhReply.decode(reply)
    attacker = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    _, outcome = client.receive(KexEcdhReply(genuine.host_key, attacker, genuine.signature).encode())
    assert outcome is not None
    with pytest.raises(HostKeyError, match="does not verify"):
        verify_signature("ssh-ed25519", outcome.host_key_blob, outcome.signature, outcome.exchange_hash)
