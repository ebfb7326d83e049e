"""Hypothesis: whatever bytes a peer sends, the transport answers with events or a clean,
typed disconnect, never another exception, and every call returns (no hang)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.errors import ProtocolError
from sshtui.ssh.events import Disconnected
from sshtui.ssh.messages.transport import KexInit
from sshtui.ssh.packet import PacketWriter
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Phase, Role

from .pair import host_key

VERSION = b"SSH-2.0-fuzzpeer\r\n"


def _client() -> Transport:
    client = Transport(Role.CLIENT, TransportConfig(), rng=lambda n: b"\x01" * n)
    client.start(0.0)
    client.data_to_send()
    return client


def _server() -> Transport:
    server = Transport(
        Role.SERVER, server_config(), rng=lambda n: b"\x02" * n, host_keys=[host_key("ed25519")]
    )
    server.start(0.0)
    server.data_to_send()
    return server


def _assert_clean(transport: Transport, events: list[object]) -> None:
    if transport.error is not None:
        assert isinstance(transport.error, ProtocolError)
        assert transport.phase is Phase.CLOSED
        assert any(isinstance(e, Disconnected) for e in events)
        # A human-readable reason, not an empty string.
        assert str(transport.error)


def _packet(payload: bytes) -> bytes:
    return PacketWriter(lambda n: b"\x00" * n).encode(payload)


def _valid_kexinit() -> bytes:
    server = _server()
    return server._local_kexinit_payload


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048), st.sampled_from(["client", "server"]))
def test_random_bytes_after_version(data: bytes, role: str) -> None:
    transport = _client() if role == "client" else _server()
    events = transport.receive_data(VERSION + data, 1.0)
    _assert_clean(transport, events)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["client", "server"]))
def test_random_payload_in_a_valid_packet(payload: bytes, role: str) -> None:
    transport = _client() if role == "client" else _server()
    events = transport.receive_data(VERSION + _packet(payload or b"\x14"), 1.0)
    _assert_clean(transport, events)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_truncated_and_mutated_kexinit(data: st.DataObject) -> None:
    kexinit = bytearray(_valid_kexinit())
    cut = data.draw(st.integers(min_value=1, max_value=len(kexinit)))
    del kexinit[cut:]
    for _ in range(data.draw(st.integers(min_value=0, max_value=4))):
        if kexinit:
            pos = data.draw(st.integers(min_value=0, max_value=len(kexinit) - 1))
            kexinit[pos] = data.draw(st.integers(min_value=0, max_value=255))
    client = _client()
    events = client.receive_data(VERSION + _packet(bytes(kexinit) or b"\x14"), 1.0)
    _assert_clean(client, events)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=20))
def test_chunked_garbage_never_raises(chunks: list[bytes]) -> None:
    client = _client()
    for chunk in [VERSION, *chunks]:
        events = client.receive_data(chunk, 1.0)
        _assert_clean(client, events)
        if client.error is not None:
            # Closed for good: more bytes change nothing.
            assert client.receive_data(b"more", 2.0) == []
            break


def test_kexinit_with_no_common_kex_names_both_sides() -> None:
    theirs = KexInit.decode(_valid_kexinit())
    odd = KexInit(
        cookie=theirs.cookie,
        kex_algorithms=("sntrup761x25519-sha512@openssh.com",),
        server_host_key_algorithms=theirs.server_host_key_algorithms,
        encryption_c2s=theirs.encryption_c2s,
        encryption_s2c=theirs.encryption_s2c,
        mac_c2s=theirs.mac_c2s,
        mac_s2c=theirs.mac_s2c,
    )
    client = _client()
    client.receive_data(VERSION + _packet(odd.encode()), 1.0)
    assert "sntrup761x25519-sha512@openssh.com" in str(client.error)
    assert "KexAlgorithms" in str(client.error)


def test_first_kex_packet_follows_with_wrong_guess_is_ignored() -> None:
    """RFC 4253 §7: a wrongly guessed kex packet is skipped and the exchange goes on."""
    from .pair import make_pair

    pair = make_pair()
    c = pair.client.data_to_send()
    s = pair.server.data_to_send()
    pair.server.receive_data(c, pair.now)
    # Rewrite the server's KEXINIT so it claims a guess, then send a bogus guessed packet.
    version_end = s.index(b"\r\n") + 2
    server_kexinit = KexInit.decode(pair.server._local_kexinit_payload)
    guessing = KexInit(
        cookie=server_kexinit.cookie,
        kex_algorithms=("ecdh-sha2-nistp256", *server_kexinit.kex_algorithms),
        server_host_key_algorithms=server_kexinit.server_host_key_algorithms,
        encryption_c2s=server_kexinit.encryption_c2s,
        encryption_s2c=server_kexinit.encryption_s2c,
        mac_c2s=server_kexinit.mac_c2s,
        mac_s2c=server_kexinit.mac_s2c,
        first_kex_packet_follows=True,
    )
    client = Transport(Role.CLIENT, TransportConfig(strict_kex=False), rng=lambda n: b"\x03" * n)
    client.start(0.0)
    writer = PacketWriter(lambda n: b"\x00" * n)
    events = client.receive_data(
        s[:version_end] + writer.encode(guessing.encode()) + writer.encode(b"\x1e" + b"\x00" * 8), 1.0
    )
    assert client.error is None, client.error
    assert not any(isinstance(e, Disconnected) for e in events)
    assert client.phase is Phase.KEX
