"""User authentication (RFC 4252, RFC 4256, RFC 8332 §3): a ClientAuth and a ServerAuth wired
together in memory, the test playing the server's driver, plus malicious servers and clients."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paramiko  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.ssh.config import server_config
from sshtui.ssh.constants import DisconnectReason, MsgType
from sshtui.ssh.crypto.hostkeys import PrivateKey, fingerprint_sha256
from sshtui.ssh.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sshtui.ssh.events import PayloadReceived
from sshtui.ssh.messages.userauth import (
    Prompt,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthPkOk,
    UserauthSuccess,
)
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Role
from sshtui.ssh.userauth_client import MAX_BANNER_BYTES, MAX_BANNERS, ClientAuth, ClientAuthState
from sshtui.ssh.userauth_events import (
    AuthBanner,
    Authenticated,
    AuthFailed,
    AuthSucceeded,
    InfoRequested,
    KeyboardInteractiveResponse,
    KeyboardInteractiveStart,
    NoneAttempt,
    PasswordAttempt,
    PasswordChangeRequested,
    PublicKeyAccepted,
    PublicKeyAttempt,
    PublicKeyQuery,
)
from sshtui.ssh.userauth_server import ServerAuth, ServerAuthState, TooManyAttempts
from sshtui.store.keyfiles import read_private_key

SESSION_ID = bytes(range(32))
_KEYS: dict[str, PrivateKey] = {}


def user_key(kind: str) -> PrivateKey:
    """Key generation is slow for RSA; one key per kind for the whole module."""
    if kind not in _KEYS:
        _KEYS[kind] = PrivateKey.generate(kind, 2048 if kind == "rsa" else None)
    return _KEYS[kind]


class Wire:
    """Each side's ``send`` queues payloads that the test delivers to the other side."""

    def __init__(self, username: str = "alice", *, server_sig_algs: tuple[str, ...] = (), **server: object):
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.client = ClientAuth(username, SESSION_ID, self.to_server.append, server_sig_algs=server_sig_algs)
        self.server = ServerAuth(SESSION_ID, self.to_client.append, **server)  # type: ignore[arg-type]

    def server_receives(self) -> list[object]:
        events: list[object] = []
        while self.to_server:
            events.extend(self.server.handle(self.to_server.pop(0)))
        return events

    def client_receives(self) -> list[object]:
        events: list[object] = []
        while self.to_client:
            events.extend(self.client.handle(self.to_client.pop(0)))
        return events


def rfc4252_signed_data(user: str, algorithm: str, blob: bytes) -> bytes:
    """RFC 4252 §7, built here field by field, independently of the code under test."""

    def ssh_string(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    return (
        ssh_string(SESSION_ID) + bytes([50]) + ssh_string(user.encode()) + ssh_string(b"ssh-connection")
        + ssh_string(b"publickey") + b"\x01" + ssh_string(algorithm.encode()) + ssh_string(blob)
    )


# --- happy paths -------------------------------------------------------------------------------


def test_none_is_refused_with_the_methods_on_offer_and_costs_no_attempt() -> None:
    wire = Wire()
    wire.client.try_none()
    assert wire.server_receives() == []  # answered without bothering the driver
    assert wire.client_receives() == [AuthFailed(("publickey", "password"), False, "none")]
    assert wire.client.allowed_methods == ("publickey", "password")
    assert wire.server.failures == 0


def test_none_succeeds_when_the_server_allows_it() -> None:
    wire = Wire(methods=("none",))
    wire.client.try_none()
    assert wire.server_receives() == [NoneAttempt("alice")]
    assert wire.server.accept() == Authenticated("alice", "none")
    assert wire.client_receives() == [AuthSucceeded("none")]
    assert wire.client.authenticated and wire.server.authenticated_user == "alice"


@pytest.mark.parametrize(
    ("kind", "server_sig_algs", "algorithm"),
    [
        ("ed25519", (), "ssh-ed25519"),
        ("ecdsa-sha2-nistp256", (), "ecdsa-sha2-nistp256"),
        ("ecdsa-sha2-nistp384", (), "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp521", (), "ecdsa-sha2-nistp521"),
        ("rsa", ("ssh-ed25519", "rsa-sha2-256", "rsa-sha2-512"), "rsa-sha2-512"),
        ("rsa", ("ssh-ed25519", "ssh-rsa", "rsa-sha2-256"), "rsa-sha2-256"),
    ],
)
def test_publickey_query_then_signature(kind: str, server_sig_algs: tuple[str, ...], algorithm: str) -> None:
    key = user_key(kind)
    wire = Wire(server_sig_algs=server_sig_algs)
    assert wire.client.signature_algorithm_for(key.public_blob) == algorithm

    wire.client.query_publickey(algorithm, key.public_blob)
    assert wire.server_receives() == [PublicKeyQuery("alice", algorithm, key.public_blob)]
    wire.server.accept_key_query()
    assert wire.client_receives() == [PublicKeyAccepted(algorithm, key.public_blob)]

    data = wire.client.publickey_signed_data(algorithm, key.public_blob)
    assert data == rfc4252_signed_data("alice", algorithm, key.public_blob)
    wire.client.send_publickey_signature(algorithm, key.public_blob, key.sign(algorithm, data))
    assert wire.server_receives() == [PublicKeyAttempt("alice", algorithm, key.public_blob, True)]
    wire.server.accept()
    assert wire.client_receives() == [AuthSucceeded("publickey")]
    assert [(a.result, a.key_type, a.fingerprint) for a in wire.client.attempts] == [
        ("pk_ok", key.key_type, fingerprint_sha256(key.public_blob)),
        ("success", key.key_type, fingerprint_sha256(key.public_blob)),
    ]


@pytest.mark.parametrize(
    ("server_sig_algs", "allow_ssh_rsa", "expected"),
    [
        ((), False, "rsa-sha2-512"),  # no EXT_INFO: assume OpenSSH 7.2+
        (("rsa-sha2-256",), False, "rsa-sha2-256"),
        (("rsa-sha2-256", "rsa-sha2-512"), False, "rsa-sha2-512"),
        (("ssh-rsa",), False, "rsa-sha2-512"),
        (("ssh-rsa",), True, "ssh-rsa"),
    ],
)
def test_rsa_algorithm_follows_server_sig_algs(
    server_sig_algs: tuple[str, ...], allow_ssh_rsa: bool, expected: str
) -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None, server_sig_algs=server_sig_algs,
                        allow_ssh_rsa=allow_ssh_rsa)
    assert client.rsa_algorithm_for() == expected


def test_sha1_rsa_and_mismatched_algorithms_are_refused_before_sending() -> None:
    sent: list[bytes] = []
    client = ClientAuth("alice", SESSION_ID, sent.append)
    with pytest.raises(LocalProtocolError, match="ssh-rsa"):
        client.query_publickey("ssh-rsa", user_key("rsa").public_blob)
    with pytest.raises(LocalProtocolError, match="cannot make rsa-sha2-512"):
        client.query_publickey("rsa-sha2-512", user_key("ed25519").public_blob)
    key = user_key("rsa")
    data = client.publickey_signed_data("rsa-sha2-256", key.public_blob)
    with pytest.raises(LocalProtocolError, match="rsa-sha2-512"):  # a signature of the wrong kind
        client.send_publickey_signature("rsa-sha2-256", key.public_blob, key.sign("rsa-sha2-512", data))
    assert sent == []


def test_server_flags_a_bad_signature_and_will_not_accept_it() -> None:
    key, impostor = user_key("ed25519"), PrivateKey.generate("ed25519")
    wire = Wire()
    data = wire.client.publickey_signed_data("ssh-ed25519", key.public_blob)
    wire.client.send_publickey_signature("ssh-ed25519", key.public_blob, impostor.sign("ssh-ed25519", data))
    [attempt] = wire.server_receives()
    assert isinstance(attempt, PublicKeyAttempt) and not attempt.signature_valid
    with pytest.raises(LocalProtocolError, match="did not verify"):
        wire.server.accept()
    wire.server.reject()
    assert wire.client_receives() == [AuthFailed(("publickey", "password"), False, "publickey")]
    assert wire.server.failures == 1


def test_server_refuses_sha1_rsa_keys_without_asking_the_driver() -> None:
    wire = Wire()
    wire.client.allow_ssh_rsa = True
    wire.client.query_publickey("ssh-rsa", user_key("rsa").public_blob)
    assert wire.server_receives() == []
    assert wire.client_receives() == [AuthFailed(("publickey", "password"), False, "publickey")]


def test_password_failure_then_success_and_no_secret_is_kept() -> None:
    wire = Wire()
    wire.client.try_password("wrong-guess")
    [attempt] = wire.server_receives()
    assert attempt == PasswordAttempt("alice", "wrong-guess")
    assert "wrong-guess" not in repr(attempt)
    wire.server.reject()
    assert wire.client_receives() == [AuthFailed(("publickey", "password"), False, "password")]

    wire.client.try_password("hunter2")
    assert wire.server_receives() == [PasswordAttempt("alice", "hunter2")]
    wire.server.accept()
    assert wire.client_receives() == [AuthSucceeded("password")]
    assert [a.result for a in wire.client.attempts] == ["failure", "success"]
    assert "hunter2" not in repr(wire.client.attempts) and "wrong-guess" not in repr(wire.client.attempts)


def test_password_change_request() -> None:
    wire = Wire()
    wire.client.try_password("old-secret")
    wire.server_receives()
    wire.server.request_password_change("Your password has expired.\x07")
    assert wire.client_receives() == [PasswordChangeRequested("Your password has expired.\\x07")]
    assert wire.client.state is ClientAuthState.PASSWORD_CHANGE_REQUESTED
    wire.client.change_password("old-secret", "new-secret")
    [attempt] = wire.server_receives()
    assert isinstance(attempt, PasswordAttempt)
    assert (attempt.password, attempt.new_password) == ("old-secret", "new-secret")
    assert "new-secret" not in repr(attempt)
    wire.server.accept()
    assert wire.client_receives() == [AuthSucceeded("password")]


def test_keyboard_interactive_two_rounds_and_an_empty_round() -> None:
    wire = Wire(methods=("keyboard-interactive",))
    wire.client.try_keyboard_interactive("pam")
    assert wire.server_receives() == [KeyboardInteractiveStart("alice", "pam")]

    wire.server.send_info_request("Login", "Two factors", [("Password: ", False), ("Code: ", True)])
    prompts = (("Password: ", False), ("Code: ", True))
    assert wire.client_receives() == [InfoRequested("Login", "Two factors", prompts)]
    wire.client.send_info_response(["pw", "123456"])
    [answers] = wire.server_receives()
    assert answers == KeyboardInteractiveResponse("alice", ("pw", "123456"))
    assert "123456" not in repr(answers)

    wire.server.send_info_request("", "", [("Second code: ", True)])
    assert wire.client_receives() == [InfoRequested("", "", (("Second code: ", True),))]
    wire.client.send_info_response(["654321"])
    assert wire.server_receives() == [KeyboardInteractiveResponse("alice", ("654321",))]

    wire.server.send_info_request("", "Welcome back\x1b[31m", [])
    assert wire.client_receives() == [InfoRequested("", "Welcome back\\x1b[31m", ())]
    wire.client.send_info_response([])
    assert wire.server_receives() == [KeyboardInteractiveResponse("alice", ())]
    wire.server.accept()
    assert wire.client_receives() == [AuthSucceeded("keyboard-interactive")]


def test_keyboard_interactive_answer_count_must_match() -> None:
    wire = Wire(methods=("keyboard-interactive",))
    wire.client.try_keyboard_interactive()
    wire.server_receives()
    wire.server.send_info_request("", "", [("a", False), ("b", False)])
    wire.client_receives()
    with pytest.raises(LocalProtocolError, match="1 responses to 2 prompts"):
        wire.client.send_info_response(["only one"])


def test_partial_success_chain_publickey_then_password() -> None:
    key = user_key("ed25519")
    wire = Wire()
    data = wire.client.publickey_signed_data("ssh-ed25519", key.public_blob)
    wire.client.send_publickey_signature("ssh-ed25519", key.public_blob, key.sign("ssh-ed25519", data))
    wire.server_receives()
    wire.server.reject(partial_success=True, remaining_methods=("password",))
    assert wire.client_receives() == [AuthFailed(("password",), True, "publickey")]
    assert wire.client.attempts[-1].result == "partial"
    assert wire.server.failures == 0

    wire.client.try_password("hunter2")
    assert wire.server_receives() == [PasswordAttempt("alice", "hunter2")]
    wire.server.accept()
    assert wire.client_receives() == [AuthSucceeded("password")]


def test_a_method_no_longer_allowed_is_refused_by_the_server() -> None:
    wire = Wire()
    wire.client.try_password("x")
    wire.server_receives()
    wire.server.reject(partial_success=True, remaining_methods=("publickey",))
    wire.client_receives()
    wire.client.try_password("x")
    assert wire.server_receives() == []
    assert wire.client_receives() == [AuthFailed(("publickey",), False, "password")]


def test_max_attempts_disconnects_with_no_more_auth_methods() -> None:
    wire = Wire(max_attempts=3)
    for _ in range(2):
        wire.client.try_password("guess")
        wire.server_receives()
        wire.server.reject()
        wire.client_receives()
    wire.client.try_password("guess")
    wire.server_receives()
    with pytest.raises(TooManyAttempts) as caught:
        wire.server.reject()
    assert isinstance(caught.value, LocalProtocolError)
    assert caught.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
    assert wire.to_client == []  # no FAILURE: the connection is closed instead
    assert wire.server.state is ServerAuthState.FAILED


def test_banner_is_shown_once_with_control_characters_made_visible() -> None:
    wire = Wire(banner="Authorized use only\x1b[2J\nsecond line")
    wire.client.try_none()
    wire.server_receives()
    banner, failed = wire.client_receives()
    assert banner == AuthBanner("Authorized use only\\x1b[2J\nsecond line")
    assert isinstance(failed, AuthFailed)
    wire.client.try_none()
    wire.server_receives()
    assert [type(e) for e in wire.client_receives()] == [AuthFailed]


def test_banner_flood_is_refused() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    for _ in range(MAX_BANNERS):
        client.handle(UserauthBanner("hello").encode())
    with pytest.raises(RemoteProtocolError, match="banner flood"):
        client.handle(UserauthBanner("hello").encode())

    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    client.handle(UserauthBanner("x" * (MAX_BANNER_BYTES - 100)).encode())
    with pytest.raises(RemoteProtocolError, match="banner flood"):
        client.handle(UserauthBanner("y" * 200).encode())


# --- out of order and malicious peers ----------------------------------------------------------


def test_success_before_any_request_is_refused() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    with pytest.raises(RemoteProtocolError, match="USERAUTH_SUCCESS"):
        client.handle(UserauthSuccess().encode())
    assert not client.authenticated


def test_failure_with_no_request_in_flight_is_refused() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    with pytest.raises(RemoteProtocolError, match="USERAUTH_FAILURE"):
        client.handle(UserauthFailure(("password",)).encode())


def test_pk_ok_for_another_key_is_refused() -> None:
    asked, other = user_key("ed25519"), PrivateKey.generate("ed25519")
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    client.query_publickey("ssh-ed25519", asked.public_blob)
    with pytest.raises(RemoteProtocolError, match="USERAUTH_PK_OK for a key we did not ask about"):
        client.handle(UserauthPkOk("ssh-ed25519", other.public_blob).encode())


def test_pk_ok_without_a_query_is_refused() -> None:
    key = user_key("ed25519")
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    client.try_password("pw")
    with pytest.raises(RemoteProtocolError, match="USERAUTH_PK_OK"):
        client.handle(UserauthPkOk("ssh-ed25519", key.public_blob).encode())


def test_info_request_during_password_is_refused() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    client.try_password("pw")
    request = UserauthInfoRequest("", "", (Prompt("Password: ", False),)).encode()
    with pytest.raises(RemoteProtocolError, match=r"USERAUTH_INFO_REQUEST.*during password"):
        client.handle(request)


def test_info_request_with_nothing_in_flight_is_refused() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    with pytest.raises(RemoteProtocolError, match="USERAUTH_INFO_REQUEST"):
        client.handle(UserauthInfoRequest("", "", ()).encode())


def test_success_twice_is_refused_but_a_late_banner_is_ignored() -> None:
    wire = Wire(methods=("none",))
    wire.client.try_none()
    wire.server_receives()
    wire.server.accept()
    wire.client_receives()
    assert wire.client.handle(UserauthBanner("late").encode()) == []
    with pytest.raises(RemoteProtocolError, match="USERAUTH_SUCCESS after authentication succeeded"):
        wire.client.handle(UserauthSuccess().encode())


def test_messages_of_other_layers_are_misuse() -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    server = ServerAuth(SESSION_ID, lambda _: None)
    for handler in (client.handle, server.handle):
        with pytest.raises(LocalProtocolError, match="CHANNEL_DATA"):
            handler(bytes([MsgType.CHANNEL_DATA]) + b"\x00" * 8)


def test_client_sends_one_request_at_a_time() -> None:
    wire = Wire()
    wire.client.try_password("pw")
    with pytest.raises(LocalProtocolError, match="password request is in flight"):
        wire.client.try_none()
    with pytest.raises(LocalProtocolError):
        wire.client.change_password("a", "b")


def test_server_refuses_services_other_than_ssh_connection() -> None:
    to_server: list[bytes] = []
    client = ClientAuth("alice", SESSION_ID, to_server.append, service="ssh-games")
    server = ServerAuth(SESSION_ID, lambda _: None)
    client.try_none()
    with pytest.raises(LocalProtocolError, match="ssh-games") as caught:
        server.handle(to_server[0])
    assert caught.value.reason is DisconnectReason.SERVICE_NOT_AVAILABLE


def test_user_name_change_is_recorded_and_flushes_partial_success() -> None:
    wire = Wire()
    wire.client.try_password("pw")
    wire.server_receives()
    wire.server.reject(partial_success=True, remaining_methods=("publickey",))
    to_server: list[bytes] = []
    mallory = ClientAuth("mallory", SESSION_ID, to_server.append)
    mallory.try_password("pw")
    assert wire.server.handle(to_server[0]) == [PasswordAttempt("mallory", "pw")]
    assert wire.server.user_names == ("alice", "mallory")
    wire.server.reject()
    assert wire.server.allowed_methods == ("publickey", "password")


def test_server_decisions_must_come_before_the_next_message_and_only_when_asked() -> None:
    wire = Wire()
    with pytest.raises(LocalProtocolError, match="no attempt is pending"):
        wire.server.reject()
    with pytest.raises(LocalProtocolError):
        wire.server.accept()
    wire.client.try_password("pw")
    wire.server_receives()
    with pytest.raises(LocalProtocolError, match="answer the attempt first"):
        wire.server.handle(UserauthSuccess().encode())
    with pytest.raises(LocalProtocolError):
        wire.server.accept_key_query()


def test_server_refuses_server_messages_and_stray_info_responses() -> None:
    server = ServerAuth(SESSION_ID, lambda _: None)
    with pytest.raises(RemoteProtocolError, match="USERAUTH_SUCCESS"):
        server.handle(UserauthSuccess().encode())
    with pytest.raises(RemoteProtocolError, match="USERAUTH_INFO_RESPONSE"):
        server.handle(bytes([MsgType.USERAUTH_INFO_RESPONSE]) + b"\x00\x00\x00\x00")


# --- fuzzing -----------------------------------------------------------------------------------

auth_payloads = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda t, rest: bytes([t]) + rest, st.integers(50, 79), st.binary(max_size=96)),
)

ALL_METHODS = ("none", "publickey", "password", "keyboard-interactive")
CLIENT_SETUPS: list[Callable[[ClientAuth], None]] = [
    lambda c: None,
    lambda c: c.try_none(),
    lambda c: c.try_password("pw"),
    lambda c: c.query_publickey("ssh-ed25519", user_key("ed25519").public_blob),
    lambda c: c.try_keyboard_interactive(),
]


@settings(max_examples=300, deadline=None)
@given(setup=st.sampled_from(CLIENT_SETUPS), payloads=st.lists(auth_payloads, max_size=4))
def test_client_survives_random_payloads(setup: Callable[[ClientAuth], None], payloads: list[bytes]) -> None:
    client = ClientAuth("alice", SESSION_ID, lambda _: None)
    setup(client)
    for payload in payloads:
        try:
            client.handle(payload)
        except ProtocolError:
            return


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(auth_payloads, max_size=4))
def test_server_survives_random_payloads(payloads: list[bytes]) -> None:
    server = ServerAuth(SESSION_ID, lambda _: None, methods=ALL_METHODS)
    for payload in payloads:
        try:
            server.handle(payload)
        except ProtocolError:
            return
        if server.state is not ServerAuthState.WAITING:
            server.reject()


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["none", "publickey", "password", "keyboard-interactive", "hostbased"]),
    body=st.binary(max_size=80),
)
def test_server_survives_random_request_bodies(method: str, body: bytes) -> None:
    def ssh_string(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    payload = bytes([50]) + ssh_string(b"alice") + ssh_string(b"ssh-connection") + ssh_string(method.encode())
    server = ServerAuth(SESSION_ID, lambda _: None, methods=ALL_METHODS)
    with contextlib.suppress(ProtocolError):
        server.handle(payload + body)


# --- against a real OpenSSH sshd ---------------------------------------------------------------


class SshdAuth:
    """ClientAuth on top of our transport, connected to a real sshd (the reference server)."""

    def __init__(self, host: str, port: int, user: str) -> None:
        from tests.interop.transport_client import connect

        self.session = connect(host, port)
        transport = self.session.transport
        assert transport.session_id is not None, f"{transport.error!r}"
        self.client = ClientAuth(user, transport.session_id, transport.send_payload,
                                 server_sig_algs=transport.server_sig_algs)
        self._seen = 0
        self.events: list[object] = []

    def until(self, done: Callable[[list[object]], bool]) -> list[object]:
        start = len(self.events)

        def progressed() -> bool:
            for event in self.session.events[self._seen :]:
                if isinstance(event, PayloadReceived):
                    self.events.extend(self.client.handle(event.payload))
            self._seen = len(self.session.events)
            return done(self.events[start:]) or self.session.transport.is_closed

        self.session.pump_until(progressed)
        return self.events[start:]


def _finished(events: list[object]) -> bool:
    return any(isinstance(e, AuthFailed | AuthSucceeded | PublicKeyAccepted) for e in events)


@pytest.mark.parametrize(("key_type", "algorithm"), [
    ("ed25519", "ssh-ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("rsa", "rsa-sha2-512"),
    ("rsa", "rsa-sha2-256"),
])
def test_publickey_authentication_against_openssh(sshd, key_type: str, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    key = read_private_key(sshd.client_keys[key_type])  # written by ssh-keygen
    auth = SshdAuth(sshd.host, sshd.port, sshd.user)
    try:
        assert "rsa-sha2-512" in auth.client.server_sig_algs
        auth.client.try_none()
        [failed] = [e for e in auth.until(_finished) if isinstance(e, AuthFailed)]
        assert "publickey" in failed.allowed and failed.method == "none"

        auth.client.query_publickey(algorithm, key.public_blob)
        assert auth.until(_finished) == [PublicKeyAccepted(algorithm, key.public_blob)]
        data = auth.client.publickey_signed_data(algorithm, key.public_blob)
        auth.client.send_publickey_signature(algorithm, key.public_blob, key.sign(algorithm, data))
        assert auth.until(_finished) == [AuthSucceeded("publickey")]
        assert auth.client.authenticated
    finally:
        auth.session.close()


def test_openssh_rejects_an_unknown_key_and_a_forged_signature(sshd) -> None:  # type: ignore[no-untyped-def]
    stranger = PrivateKey.generate("ed25519")
    known = read_private_key(sshd.client_keys["ed25519"])
    auth = SshdAuth(sshd.host, sshd.port, sshd.user)
    try:
        auth.client.query_publickey("ssh-ed25519", stranger.public_blob)
        [failed] = auth.until(_finished)
        assert isinstance(failed, AuthFailed) and failed.method == "publickey"
        data = auth.client.publickey_signed_data("ssh-ed25519", known.public_blob)
        forged = stranger.sign("ssh-ed25519", data)
        auth.client.send_publickey_signature("ssh-ed25519", known.public_blob, forged)
        [failed] = auth.until(_finished)
        assert isinstance(failed, AuthFailed) and not auth.client.authenticated
    finally:
        auth.session.close()


def test_openssh_banner_arrives_escaped(sshd_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    banner = tmp_path / "banner"
    banner.write_bytes(b"Authorized use only\x1b[2J\n")
    server = sshd_factory(extra_config=[f"Banner {banner}"])
    auth = SshdAuth(server.host, server.port, server.user)
    try:
        auth.client.try_none()
        events = auth.until(_finished)
        assert AuthBanner("Authorized use only\\x1b[2J\n") in events
    finally:
        auth.session.close()


# --- ServerAuth against paramiko's client ------------------------------------------------------


class ServerThread(threading.Thread):
    """Our server transport and ServerAuth on a 127.0.0.1 socket, with a fixed policy."""

    PASSWORD = "hunter2"

    def __init__(self, authorized: set[bytes]) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.authorized = authorized
        self.auth: ServerAuth | None = None
        self.seen: list[object] = []

    def run(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        transport = Transport(Role.SERVER, server_config(), rng=os.urandom, host_keys=[user_key("ed25519")])
        transport.start(time.monotonic())
        try:
            while not transport.is_closed:
                conn.sendall(transport.data_to_send())
                data = conn.recv(65536)
                if not data:
                    return
                for event in transport.receive_data(data, time.monotonic()):
                    if isinstance(event, PayloadReceived):
                        self._on_payload(transport, event.payload)
        except OSError:
            return
        finally:
            conn.close()
            self.listener.close()

    def _on_payload(self, transport: Transport, payload: bytes) -> None:
        if self.auth is None:
            assert transport.session_id is not None
            self.auth = ServerAuth(transport.session_id, transport.send_payload,
                                   methods=("publickey", "password", "keyboard-interactive"))
        if self.auth.authenticated_user is not None:
            return
        for event in self.auth.handle(payload):
            self.seen.append(event)
            if isinstance(event, PublicKeyQuery):
                self.auth.accept_key_query() if event.public_blob in self.authorized else self.auth.reject()
            elif isinstance(event, PublicKeyAttempt):
                ok = event.signature_valid and event.public_blob in self.authorized
                self.auth.accept() if ok else self.auth.reject()
            elif isinstance(event, PasswordAttempt):
                self.auth.accept() if event.password == self.PASSWORD else self.auth.reject()
            elif isinstance(event, KeyboardInteractiveStart):
                self.auth.send_info_request("", "", [("Password: ", False)])
            elif isinstance(event, KeyboardInteractiveResponse):
                ok = event.responses == (self.PASSWORD,)
                self.auth.accept() if ok else self.auth.reject()


def _paramiko_client(port: int) -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.start_client(timeout=10)
    return transport


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsa"])
def test_paramiko_publickey_login(kind: str, tmp_path: Path) -> None:
    key = user_key(kind)
    path = tmp_path / "id"
    path.write_bytes(key.to_openssh())
    server = ServerThread({key.public_blob})
    server.start()
    client = _paramiko_client(server.port)
    try:
        client.auth_publickey("alice", paramiko.PKey.from_path(path))
        assert client.is_authenticated()
    finally:
        client.close()
        server.join(10)
    assert server.auth is not None and server.auth.authenticated_user == "alice"
    assert any(isinstance(e, PublicKeyAttempt) and e.signature_valid for e in server.seen)


@pytest.mark.parametrize(
    ("login", "secret", "succeeds"),
    [
        ("password", ServerThread.PASSWORD, True),
        ("password", "wrong", False),
        ("keyboard-interactive", ServerThread.PASSWORD, True),
        ("keyboard-interactive", "wrong", False),
    ],
)
def test_paramiko_password_and_keyboard_interactive_logins(login: str, secret: str, succeeds: bool) -> None:
    # One attempt per connection: paramiko repeats SERVICE_REQUEST before every auth_* call.
    server = ServerThread(set())
    server.start()
    client = _paramiko_client(server.port)
    try:
        with contextlib.nullcontext() if succeeds else pytest.raises(paramiko.AuthenticationException):
            if login == "password":
                client.auth_password("alice", secret)
            else:
                client.auth_interactive("alice", lambda title, instructions, prompts: [secret] * len(prompts))
        assert client.is_authenticated() is succeeds
    finally:
        client.close()
        server.join(10)
    assert server.auth is not None
    assert server.auth.authenticated_method == (login if succeeds else None)
    assert server.auth.failures == (0 if succeeds else 1)


def test_paramiko_with_an_unauthorized_key_is_refused(tmp_path: Path) -> None:
    key = PrivateKey.generate("ed25519")
    path = tmp_path / "id"
    path.write_bytes(key.to_openssh())
    server = ServerThread(set())
    server.start()
    client = _paramiko_client(server.port)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.auth_publickey("alice", paramiko.PKey.from_path(path))
        assert not client.is_authenticated()
    finally:
        client.close()
        server.join(10)
    assert server.auth is not None and server.auth.failures == 1
