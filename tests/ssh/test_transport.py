"""The transport state machine between our own client and server cores, in memory."""

from __future__ import annotations

import pytest

from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.constants import DisconnectReason, MsgType
from sshtui.ssh.errors import HostKeyRejected, NegotiationError, RemoteProtocolError, VersionError
from sshtui.ssh.events import (
    Disconnected,
    ExtInfoReceived,
    HostKeyReceived,
    KexCompleted,
    PayloadReceived,
    ServiceAccepted,
    ServiceRequested,
    VersionReceived,
)
from sshtui.ssh.messages.transport import Ignore
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Phase, Role

from .pair import Pair, host_key, make_pair


def establish(pair: Pair) -> None:
    pair.pump()
    pair.client.request_service("ssh-userauth", pair.now)
    pair.pump()


def test_handshake_reaches_service_accept_with_modern_defaults() -> None:
    pair = make_pair()
    establish(pair)
    assert pair.client.phase is Phase.ESTABLISHED and pair.server.phase is Phase.ESTABLISHED
    assert pair.events("client", ServiceAccepted) == [ServiceAccepted("ssh-userauth")]
    assert pair.events("server", ServiceRequested) == [ServiceRequested("ssh-userauth")]
    snap = pair.client.snapshot()
    assert snap.kex_algorithm == "mlkem768x25519-sha256"
    assert snap.post_quantum is True
    assert snap.cipher_c2s == "chacha20-poly1305@openssh.com"
    assert snap.mac_c2s == "implicit"
    assert snap.strict_kex is True
    assert snap.kex_count == 1
    assert snap.session_id_fingerprint.startswith("SHA256:")
    # Both sides derived the same session id.
    assert pair.client.session_id == pair.server.session_id


def test_client_learns_server_sig_algs_from_ext_info() -> None:
    pair = make_pair()
    establish(pair)
    infos = pair.events("client", ExtInfoReceived)
    assert len(infos) == 1
    assert "rsa-sha2-512" in infos[0].server_sig_algs
    assert pair.client.snapshot().server_sig_algs == infos[0].server_sig_algs


def test_host_key_event_carries_sha256_fingerprint_and_waits_for_decision() -> None:
    pair = make_pair()
    pair.auto_accept = False
    pair.pump()
    received = pair.events("client", HostKeyReceived)
    assert len(received) == 1
    assert received[0].fingerprint.startswith("SHA256:")
    assert received[0].key_blob == host_key("ed25519").public_blob
    # Nothing proceeds until the driver decides.
    assert pair.client.phase is Phase.KEX
    events = pair.client.accept_host_key(pair.now)
    pair.client_events.extend(events)
    pair.pump()
    assert pair.client.phase is Phase.ESTABLISHED


def test_rejected_host_key_closes_before_anything_else_is_sent() -> None:
    pair = make_pair()
    pair.auto_accept = False
    pair.pump()
    pair.client.data_to_send()
    events = pair.client.reject_host_key("host key changed")
    assert isinstance(events[0], Disconnected)
    assert isinstance(pair.client.error, HostKeyRejected)
    assert events[0].reason == DisconnectReason.HOST_KEY_NOT_VERIFIABLE
    assert pair.client.phase is Phase.CLOSED
    with pytest.raises(Exception, match="closed"):
        pair.client.request_service("ssh-userauth")


def test_service_payloads_flow_both_ways() -> None:
    pair = make_pair()
    establish(pair)
    pair.client.send_payload(bytes([MsgType.USERAUTH_REQUEST]) + b"hello", pair.now)
    pair.pump()
    got = [(e.msg_type, e.payload) for e in pair.events("server", PayloadReceived)]
    assert got == [(MsgType.USERAUTH_REQUEST, bytes([50]) + b"hello")]


@pytest.mark.parametrize("initiator", ["client", "server"])
def test_rekey_on_request_keeps_data_flowing_and_changes_nothing_visible(initiator: str) -> None:
    pair = make_pair()
    establish(pair)
    side = pair.client if initiator == "client" else pair.server
    first_session = pair.client.session_id
    for i in range(3):
        assert side.request_rekey(pair.now)
        # Service payloads sent mid-rekey are held and then delivered in order.
        pair.client.send_payload(bytes([MsgType.USERAUTH_REQUEST]) + bytes([i]), pair.now)
        pair.pump()
    assert pair.client.kex_count == 4 and pair.server.kex_count == 4
    assert pair.client.session_id == first_session  # the session id never changes
    data = [e.payload for e in pair.events("server", PayloadReceived)]
    assert data == [bytes([50, 0]), bytes([50, 1]), bytes([50, 2])]
    snap = pair.client.snapshot()
    assert snap.rekeys == 3
    assert [r.initiated_by for r in snap.kex_history[1:]] == (
        ["local"] * 3 if initiator == "client" else ["peer"] * 3
    )


def test_rekey_by_bytes_starts_automatically() -> None:
    cfg = TransportConfig(rekey_bytes=4096)
    pair = make_pair(client_config=cfg)
    establish(pair)
    for _ in range(40):
        pair.client.send_payload(bytes([94]) + b"x" * 1000, pair.now)
        pair.pump()
    assert pair.client.kex_count >= 5
    assert len(pair.events("server", PayloadReceived)) == 40


def test_rekey_by_time_uses_the_clock_passed_in() -> None:
    cfg = TransportConfig(rekey_seconds=10.0)
    pair = make_pair(client_config=cfg)
    establish(pair)
    assert pair.client.next_deadline() == pytest.approx(pair.now + 10.0)
    pair.now += 5
    pair.client.tick(pair.now)
    pair.pump()
    assert pair.client.kex_count == 1
    pair.now += 6
    pair.client.tick(pair.now)
    pair.pump()
    assert pair.client.kex_count == 2
    completed = pair.events("client", KexCompleted)
    assert completed[-1].initiated_by == "local"


def test_both_sides_start_rekey_at_once() -> None:
    pair = make_pair()
    establish(pair)
    pair.client.request_rekey(pair.now)
    pair.server.request_rekey(pair.now)
    pair.pump()
    assert pair.client.kex_count == pair.server.kex_count == 2
    assert pair.client.phase is Phase.ESTABLISHED


def test_negotiation_failure_names_both_offers_and_the_option() -> None:
    pair = make_pair(
        client_config=TransportConfig(ciphers=("aes128-ctr",)),
        server_config=server_config(ciphers=("aes256-gcm@openssh.com",)),
    )
    pair.pump()
    error = pair.client.error
    assert isinstance(error, NegotiationError)
    assert "aes128-ctr" in str(error) and "aes256-gcm@openssh.com" in str(error)
    assert "Ciphers" in str(error)
    assert pair.client.phase is Phase.CLOSED


def test_strict_kex_rejects_ignore_before_first_newkeys() -> None:
    """Terrapin: an injected IGNORE before NEWKEYS must end the connection on both sides."""
    pair = make_pair()
    # Let version lines and KEXINITs cross, then inject an IGNORE from the "server".
    c = pair.client.data_to_send()
    s = pair.server.data_to_send()
    pair.server.receive_data(c, pair.now)
    pair.client.receive_data(s, pair.now)
    injected = pair.server._writer.encode(Ignore(b"").encode())  # a well-formed packet in sequence
    events = pair.client.receive_data(injected, pair.now)
    assert isinstance(events[-1], Disconnected)
    assert isinstance(pair.client.error, RemoteProtocolError)
    assert "strict" in str(pair.client.error)


def test_without_strict_kex_ignore_during_handshake_is_fine() -> None:
    cfg = TransportConfig(strict_kex=False)
    pair = make_pair(client_config=cfg)
    c = pair.client.data_to_send()
    s = pair.server.data_to_send()
    pair.server.receive_data(c, pair.now)
    pair.client.receive_data(s, pair.now)
    pair.client.receive_data(pair.server._writer.encode(Ignore(b"pad").encode()), pair.now)
    pair.pump()
    assert pair.client.phase is Phase.ESTABLISHED
    assert pair.client.snapshot().strict_kex is False


def test_handshake_fed_one_byte_at_a_time() -> None:
    pair = make_pair()
    pair.chunk = 1
    establish(pair)
    assert pair.events("client", ServiceAccepted)


def test_client_accepts_banner_lines_before_version() -> None:
    client = Transport(Role.CLIENT, rng=lambda n: bytes(n))
    client.start(0.0)
    events = client.receive_data(b"hello there\r\nsecond line\r\nSSH-2.0-OpenSSH_9.2\r\n", 0.0)
    assert events == [VersionReceived("SSH-2.0-OpenSSH_9.2", ("hello there", "second line"))]


@pytest.mark.parametrize(
    "line,needle",
    [
        (b"SSH-1.5-old\r\n", "1.5"),
        (b"SSH-3.0-future\r\n", "3.0"),
        (b"SSH-2.0\r\n", "malformed"),
    ],
)
def test_unsupported_versions_are_refused_clearly(line: bytes, needle: str) -> None:
    client = Transport(Role.CLIENT, rng=lambda n: bytes(n))
    client.start(0.0)
    events = client.receive_data(line, 0.0)
    assert isinstance(events[-1], Disconnected)
    assert isinstance(client.error, VersionError)
    assert needle in str(client.error)


def test_too_many_preamble_lines_are_refused() -> None:
    client = Transport(Role.CLIENT, rng=lambda n: bytes(n))
    client.start(0.0)
    events = client.receive_data(b"x\r\n" * 1025, 0.0)
    assert isinstance(client.error, VersionError)
    assert isinstance(events[-1], Disconnected)


def test_server_requires_version_as_first_line() -> None:
    server = Transport(Role.SERVER, server_config(), rng=lambda n: bytes(n), host_keys=[host_key("ed25519")])
    server.start(0.0)
    server.receive_data(b"GET / HTTP/1.1\r\n", 0.0)
    assert isinstance(server.error, VersionError)


def test_service_payload_before_service_is_a_protocol_error() -> None:
    pair = make_pair()
    pair.pump()
    pair.server._service = None
    # The server sends a userauth message although no service was accepted.
    pair.server._out.append(pair.server._writer.encode(bytes([MsgType.USERAUTH_SUCCESS])))
    pair.pump()
    assert isinstance(pair.client.error, RemoteProtocolError)
    assert "before any service" in str(pair.client.error)


def test_peer_disconnect_is_reported_with_reason() -> None:
    pair = make_pair()
    establish(pair)
    pair.server.disconnect(DisconnectReason.BY_APPLICATION, "bye now", pair.now)
    pair.pump()
    gone = pair.events("client", Disconnected)
    assert gone and gone[0].by_peer and gone[0].description == "bye now"
    assert pair.client.phase is Phase.CLOSED


def test_snapshot_timeline_lists_the_handshake_in_order() -> None:
    pair = make_pair()
    establish(pair)
    names = [(e.direction, e.event) for e in pair.client.snapshot().timeline]
    assert names[0] == ("sent", "version")
    for expected in [
        ("sent", "KEXINIT"),
        ("received", "KEXINIT"),
        ("sent", "KEX_ECDH_INIT"),
        ("received", "KEX_ECDH_REPLY"),
        ("local", "host key accepted"),
        ("sent", "NEWKEYS"),
        ("received", "NEWKEYS"),
        ("sent", "SERVICE_REQUEST"),
        ("received", "SERVICE_ACCEPT"),
    ]:
        assert expected in names
    assert names.index(("sent", "NEWKEYS")) < names.index(("sent", "SERVICE_REQUEST"))


def test_snapshot_never_contains_key_material() -> None:
    from sshtui.ssh.snapshot import to_jsonable

    pair = make_pair()
    establish(pair)
    text = repr(to_jsonable(pair.client.snapshot()))
    assert pair.client.session_id is not None
    assert pair.client.session_id.hex() not in text
    keys = pair.client._writer._keys if hasattr(pair.client._writer, "_keys") else None
    if keys is not None:
        assert keys.key.hex() not in text


def test_unknown_message_number_gets_unimplemented() -> None:
    pair = make_pair()
    establish(pair)
    pair.server._out.append(pair.server._writer.encode(bytes([15])))  # unassigned transport number
    pair.pump()
    from sshtui.ssh.events import UnimplementedReceived

    assert pair.client.phase is Phase.ESTABLISHED
    assert pair.events("server", UnimplementedReceived)
