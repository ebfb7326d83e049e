"""The bulk receive path of a whole connection (RFC 4254 §5.2): CHANNEL_DATA packets that
arrive together reach the driver as one ChannelData event per channel and run, in order, with
the window accounted per packet."""

from __future__ import annotations

import dataclasses
import os

import pytest

from sshtui.ssh.channels.events import ChannelData, ChannelEof, ChannelOpenRequested
from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.connection import ClientConnection, ServerConnection
from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.events import Disconnected, HostKeyReceived

from .pair import host_key

CIPHERS = ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr")


class Session:
    """A client and a server connection with one open session channel, talking in memory."""

    def __init__(self, cipher: str = CIPHERS[0]):
        macs = ("hmac-sha2-256-etm@openssh.com",)
        self.client = ClientConnection("alice", TransportConfig(ciphers=(cipher,), macs=macs), rng=os.urandom)
        config = dataclasses.replace(server_config(), ciphers=(cipher,), macs=macs)
        self.server = ServerConnection([host_key("ed25519")], config, rng=os.urandom, auth_methods=("none",))
        self.server_events: list[object] = []
        self.client.start(0.0)
        self.server.start(0.0)
        self.pump()
        self.client.require_auth().try_none()
        self.pump()
        self.server.accept_auth()
        self.pump()
        self.client_id = self.client.require_channels().open_session(0.0)
        self.pump()
        (request,) = [e for e in self.server_events if isinstance(e, ChannelOpenRequested)]
        self.server_id = request.local_id
        self.server.require_channels().accept_open(self.server_id)
        self.pump()

    def pump(self) -> None:
        for _ in range(50):
            to_server, to_client = self.client.data_to_send(), self.server.data_to_send()
            if not to_server and not to_client:
                return
            if to_server:
                self.server_events += self.server.receive_data(to_server, 0.0)
            if to_client:
                for event in self.client.receive_data(to_client, 0.0):
                    if isinstance(event, HostKeyReceived):
                        self.client.accept_host_key(0.0)

    def deliver(self, wire: bytes) -> list[object]:
        """What the client reports for ``wire``, read in one go through its receive buffer."""
        buffer = self.client.receive_buffer()
        assert len(buffer) >= len(wire)
        buffer[: len(wire)] = wire
        return list(self.client.received_into(len(wire), 0.0))


@pytest.mark.parametrize("cipher", CIPHERS)
def test_packets_read_together_arrive_as_one_event_with_all_their_bytes(cipher: str) -> None:
    session = Session(cipher)
    chunks = [os.urandom(size) for size in (32 * 1024, 1, 32 * 1024, 5000)]
    for chunk in chunks:
        assert session.server.require_channels().send_data(session.server_id, chunk) == len(chunk)

    events = session.deliver(session.server.data_to_send())

    data = [e for e in events if isinstance(e, ChannelData)]
    assert len(data) == 1
    assert data[0].local_id == session.client_id and data[0].data_type is None
    assert data[0].data == b"".join(chunks) and type(data[0].data) is bytes
    unread = session.client.require_channels().channel(session.client_id)._recv.buffered
    assert unread == sum(map(len, chunks))  # every packet was counted against the window


def test_stderr_and_eof_between_data_keep_their_place() -> None:
    session = Session()
    layer = session.server.require_channels()
    layer.send_data(session.server_id, b"out1")
    layer.send_data(session.server_id, b"out2")
    layer.send_extended_data(session.server_id, b"err")
    layer.send_data(session.server_id, b"out3")
    layer.send_eof(session.server_id)

    events = session.deliver(session.server.data_to_send())

    seen = [(e.data, e.data_type) if isinstance(e, ChannelData) else type(e) for e in events]
    assert seen == [(b"out1out2", None), (b"err", 1), (b"out3", None), ChannelEof]


def test_data_before_a_window_violation_is_delivered_before_the_disconnect() -> None:
    session = Session()
    layer = session.server.require_channels()
    window = session.client.require_channels().channel(session.client_id)._recv.available
    layer.send_data(session.server_id, bytes(window - 4))  # unread: 4 bytes of window are left
    session.client.receive_data(session.server.data_to_send(), 0.0)
    layer.send_data(session.server_id, b"fin")
    # A peer that ignores our window: 2 bytes where 1 is left.
    header = bytes([MsgType.CHANNEL_DATA]) + session.client_id.to_bytes(4, "big") + (2).to_bytes(4, "big")
    session.server.transport.send_payload(header + b"xx")

    events = session.deliver(session.server.data_to_send())

    assert isinstance(events[0], ChannelData) and events[0].data == b"fin"
    assert isinstance(events[1], Disconnected)
    assert isinstance(events[1].error, RemoteProtocolError) and "window" in str(events[1].error)
