"""Routing between the layers of a whole connection (transport, userauth, channels)."""

from __future__ import annotations

import os

from sshtui.ssh.connection import AuthReady, ClientConnection, ServerConnection
from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.events import Disconnected, HostKeyReceived
from sshtui.ssh.messages.userauth import PasswordAuth, UserauthRequest
from sshtui.ssh.userauth_events import AuthFailed, AuthSucceeded, NoneAttempt, PasswordAttempt

from .pair import host_key


class Wire:
    def __init__(self) -> None:
        self.client = ClientConnection("alice", rng=os.urandom)
        self.server = ServerConnection([host_key("ed25519")], rng=os.urandom)
        self.client_events: list[object] = []
        self.server_events: list[object] = []
        self.client.start(0.0)
        self.server.start(0.0)

    def pump(self) -> None:
        for _ in range(50):
            c, s = self.client.data_to_send(), self.server.data_to_send()
            if not c and not s:
                return
            if c:
                self.server_events += self.server.receive_data(c, 0.0)
            if s:
                events = self.client.receive_data(s, 0.0)
                for event in list(events):
                    if isinstance(event, HostKeyReceived):
                        events += self.client.accept_host_key(0.0)
                self.client_events += events


def test_pipelined_auth_requests_are_answered_in_order() -> None:
    wire = Wire()
    wire.pump()
    assert any(isinstance(e, AuthReady) for e in wire.client_events)
    # Two requests at once, as a pipelining client would send them.
    for body in (PasswordAuth("first"), PasswordAuth("second")):
        wire.client.transport.send_payload(UserauthRequest.of("alice", "ssh-connection", body).encode())
    wire.server_events += wire.server.receive_data(wire.client.data_to_send(), 0.0)
    attempts = [e for e in wire.server_events if isinstance(e, NoneAttempt | PasswordAttempt)]
    assert [a.password for a in attempts if isinstance(a, PasswordAttempt)] == ["first"]  # second waits
    wire.server.require_auth().reject()
    held = wire.server.resume(0.0)
    assert [e.password for e in held if isinstance(e, PasswordAttempt)] == ["second"]
    wire.server.accept_auth()
    assert wire.server.channels is not None
    assert wire.server.transport.error is None


def test_channel_message_before_authentication_is_a_protocol_error() -> None:
    wire = Wire()
    wire.pump()
    # A CHANNEL_OPEN from a client that never authenticated.
    wire.client.transport.send_payload(bytes([90]) + b"\x00\x00\x00\x07session" + bytes(12))
    events = wire.server.receive_data(wire.client.data_to_send(), 0.0)
    assert isinstance(events[-1], Disconnected)
    assert isinstance(wire.server.transport.error, RemoteProtocolError)
    assert "before authentication" in str(wire.server.transport.error)


def test_userauth_success_before_any_request_is_refused_by_the_client() -> None:
    wire = Wire()
    wire.pump()
    wire.server.transport.send_payload(bytes([52]))  # USERAUTH_SUCCESS out of the blue
    events = wire.client.receive_data(wire.server.data_to_send(), 0.0)
    assert not any(isinstance(e, AuthSucceeded) for e in events)
    assert isinstance(wire.client.transport.error, RemoteProtocolError)


def test_failed_then_successful_password_flow() -> None:
    wire = Wire()
    wire.pump()
    auth = wire.client.require_auth()
    auth.try_password("wrong")
    wire.pump()
    attempt = next(e for e in wire.server_events if isinstance(e, PasswordAttempt))
    assert attempt.password == "wrong" and "wrong" not in repr(attempt)
    wire.server.require_auth().reject()
    wire.pump()
    assert any(isinstance(e, AuthFailed) for e in wire.client_events)
    auth.try_password("right")
    wire.pump()
    wire.server.accept_auth()
    wire.pump()
    assert any(isinstance(e, AuthSucceeded) for e in wire.client_events)
    assert wire.client.channels is not None
    assert wire.client.snapshot().authenticated


def test_a_channel_can_open_with_a_smaller_window_than_the_default() -> None:
    wire = Wire()
    wire.pump()
    auth = wire.client.require_auth()
    auth.try_password("pw")
    wire.pump()
    wire.server.accept_auth()
    wire.pump()
    layer = wire.client.require_channels()
    small = layer.open_session(0.0, window=128 * 1024)
    default = layer.open_session(0.0)
    wire.pump()
    sizes = {s.local_id: s.local_window for s in layer.snapshot(0.0)}
    assert sizes[small] == 128 * 1024
    assert sizes[default] == 2 * 1024 * 1024
    # The server learned the small window: it may send no more than that before an adjust.
    remote = sorted(s.remote_window for s in wire.server.require_channels().snapshot(0.0))
    assert remote == [128 * 1024, 2 * 1024 * 1024]
