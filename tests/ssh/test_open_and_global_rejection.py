"""Global requests (RFC 4254 §4) and channel opens (§5.1) whose type-specific data does not
decode: the request is refused, with REQUEST_FAILURE when the peer wants a reply, the open with
CHANNEL_OPEN_FAILURE and no channel allocated, and the connection lives on. Only a malformed
outer frame is still a protocol error."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.channels.events import (
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRejected,
    ChannelOpenRequested,
    GlobalRequestReceived,
    GlobalRequestRejected,
    GlobalRequestResult,
)
from sshtui.ssh.constants import MsgType, OpenFailureReason
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.events import Disconnected
from sshtui.ssh.messages import connection as m
from sshtui.ssh.wire import boolean, string, uint32

from .test_channel_request_rejection import authenticated_wire
from .test_channels import Link, of_type

LOOPBACK = string("127.0.0.1")

# (request name, type-specific data our decoders refuse, words of the reason)
BAD_GLOBAL_REQUESTS = [
    ("tcpip-forward", LOOPBACK + uint32(70_000), "port 70000 is not a TCP port"),
    ("tcpip-forward", uint32(50) + b"127.0", "truncated address"),
    ("tcpip-forward", LOOPBACK, "truncated port"),
    ("tcpip-forward", LOOPBACK + uint32(0) + b"\x00", "1 unexpected trailing bytes"),
    ("cancel-tcpip-forward", LOOPBACK + uint32(1 << 31), "is not a TCP port"),
    ("streamlocal-forward@openssh.com", string(b"/run/\xff.sock"), "not valid UTF-8"),
    ("hostkeys-00@openssh.com", b"garbage!", "truncated host key blob"),
    ("hostkeys-prove-00@openssh.com", string(b"key") + b"\x00\x00", "truncated"),
]


def forward(port: int) -> bytes:
    return m.TcpipForward("127.0.0.1", port).encode_data()


@pytest.mark.parametrize(("name", "data", "why"), BAD_GLOBAL_REQUESTS)
def test_an_undecodable_global_request_gets_one_failure_and_the_next_one_is_served(
    name: str, data: bytes, why: str
) -> None:
    link = Link()
    link.client.global_request(name, data, want_reply=True)
    link.pump()
    [rejected] = link.take("server")
    assert isinstance(rejected, GlobalRequestRejected)
    assert (rejected.name, rejected.want_reply) == (name, True)
    assert name in rejected.reason and why in rejected.reason
    assert link.take("client") == [GlobalRequestResult(False, b"", name)]
    # A good request after it reaches the server's driver, and its answer reaches the client.
    link.client.global_request("tcpip-forward", forward(0), want_reply=True)
    link.pump()
    [received] = link.take("server")
    assert isinstance(received, GlobalRequestReceived) and received.request == m.TcpipForward("127.0.0.1", 0)
    link.server.reply_global(True, uint32(40_000))
    link.pump()
    assert link.take("client") == [GlobalRequestResult(True, uint32(40_000), "tcpip-forward")]


def test_without_want_reply_a_bad_global_request_is_reported_and_nothing_is_sent() -> None:
    link = Link()
    # Servers announce their host keys this way, never asking for a reply.
    link.server.global_request("hostkeys-00@openssh.com", b"\x00\x00\x01\x00short", want_reply=False)
    sent_to_client = list(link.to_client)
    [rejected] = link.client.handle(sent_to_client[0], link.now)
    assert isinstance(rejected, GlobalRequestRejected) and not rejected.want_reply
    assert not link.to_server


def test_the_refusal_waits_its_turn_behind_an_unanswered_global_request() -> None:
    link = Link()
    link.client.global_request("tcpip-forward", forward(2222), want_reply=True)
    link.client.global_request("tcpip-forward", LOOPBACK + uint32(99_999), want_reply=True)
    link.client.global_request("cancel-tcpip-forward", forward(2222), want_reply=True)
    link.pump()
    events = link.take("server")
    assert [type(e) for e in events] == [GlobalRequestReceived, GlobalRequestRejected, GlobalRequestReceived]
    assert link.take("client") == []  # the FAILURE may not overtake the first request's reply
    link.server.reply_global(True)
    link.server.reply_global(True)
    link.pump()
    assert link.take("client") == [
        GlobalRequestResult(True, b"", "tcpip-forward"),
        GlobalRequestResult(False, b"", "tcpip-forward"),
        GlobalRequestResult(True, b"", "cancel-tcpip-forward"),
    ]


# --- channel opens -------------------------------------------------------------------------

CONNECT_FAILED = OpenFailureReason.CONNECT_FAILED
UNKNOWN_TYPE = OpenFailureReason.UNKNOWN_CHANNEL_TYPE
# (channel type, data our decoders refuse, the refusal's reason code, words of the description)
BAD_OPENS_TO_SERVER = [
    ("direct-tcpip", LOOPBACK + uint32(70_000) + LOOPBACK + uint32(1), CONNECT_FAILED, "port 70000"),
    ("direct-tcpip", LOOPBACK + uint32(22) + LOOPBACK + uint32(1 << 20), CONNECT_FAILED, "originator_port"),
    ("direct-tcpip", LOOPBACK + uint32(22) + uint32(9) + b"127", CONNECT_FAILED, "truncated"),
    ("direct-tcpip", LOOPBACK[:-3], CONNECT_FAILED, "truncated address"),
    ("direct-streamlocal@openssh.com", string(b"\xfe.sock"), CONNECT_FAILED, "not valid UTF-8"),
    ("session", b"\x00\x00\x00", UNKNOWN_TYPE, "3 unexpected trailing bytes"),
]


@pytest.mark.parametrize(("channel_type", "data", "code", "why"), BAD_OPENS_TO_SERVER)
def test_an_undecodable_open_is_refused_without_a_channel_and_the_next_open_succeeds(
    channel_type: str, data: bytes, code: OpenFailureReason, why: str
) -> None:
    link = Link()
    refused = link.client.open_channel(channel_type, data, link.now)
    link.pump()
    [rejected] = link.take("server")
    assert isinstance(rejected, ChannelOpenRejected)
    assert (rejected.sender_channel, rejected.channel_type) == (refused, channel_type)
    assert rejected.reason_code is code
    assert channel_type in rejected.reason and why in rejected.reason
    assert link.server.channel_count == 0
    # The opener learns why, in the reason code and the description.
    assert link.take("client") == [ChannelOpenFailed(refused, code, rejected.reason)]
    assert link.client.channel_count == 0
    client_id = link.client.open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 50_000, link.now)
    link.pump()
    [requested] = link.take("server")
    assert isinstance(requested, ChannelOpenRequested)
    assert requested.type_data == m.DirectTcpip("127.0.0.1", 22, "127.0.0.1", 50_000)
    link.server.accept_open(requested.local_id)
    link.pump()
    assert link.take("client") == [ChannelOpened(client_id, "direct-tcpip")]


@pytest.mark.parametrize(
    "data",
    [LOOPBACK + uint32(0x1_0000) + LOOPBACK + uint32(1), LOOPBACK + uint32(8022) + string("127.0.0.1")[:5]],
)
def test_our_client_refuses_an_undecodable_forwarded_tcpip_open(data: bytes) -> None:
    link = Link()
    refused = link.server.open_channel("forwarded-tcpip", data, link.now)
    link.pump()
    [rejected] = link.take("client")
    assert isinstance(rejected, ChannelOpenRejected) and rejected.reason_code is CONNECT_FAILED
    assert rejected.reason.startswith("forwarded-tcpip: ")
    assert link.take("server") == [ChannelOpenFailed(refused, CONNECT_FAILED, rejected.reason)]
    assert link.client.channel_count == 0 and link.server.channel_count == 0


def test_a_client_refuses_a_session_open_by_policy_whatever_its_data() -> None:
    link = Link()
    refused = link.server.open_channel("session", b"junk", link.now)
    link.pump()
    assert link.take("client") == []
    [failed] = link.take("server")
    assert isinstance(failed, ChannelOpenFailed) and failed.local_id == refused
    assert failed.reason == OpenFailureReason.ADMINISTRATIVELY_PROHIBITED


# --- malformed frames ----------------------------------------------------------------------

GLOBAL = bytes([MsgType.GLOBAL_REQUEST])
OPEN = bytes([MsgType.CHANNEL_OPEN])


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (GLOBAL + string("tcpip-forward"), "want_reply"),
        (GLOBAL + uint32(40) + b"tcpip-forward", "truncated name"),
        (GLOBAL + string("tcpip-forwardé") + boolean(True) + forward(0), "not ASCII"),
        (OPEN + string("direct-tcpip"), "sender_channel"),
        (OPEN + string("direct-tcpip") + uint32(0), "initial_window"),
        (OPEN + string("direct-tcpip") + uint32(0) + uint32(1 << 16) + b"\x00\x00", "max_packet"),
        (OPEN + string("séssion") + uint32(0) + uint32(1 << 16) + uint32(1 << 15), "not ASCII"),
    ],
)
def test_a_malformed_frame_is_still_a_protocol_error(payload: bytes, problem: str) -> None:
    link = Link()
    with pytest.raises(DecodeError, match=problem):
        link.server.handle(payload, link.now)
    assert not link.to_client


# --- a whole connection --------------------------------------------------------------------


def test_the_connection_lives_and_its_timeline_says_what_was_refused() -> None:
    wire = authenticated_wire()
    client = wire.client.require_channels()
    client.global_request("tcpip-forward", LOOPBACK + uint32(65_536), want_reply=True)
    wire.pump()  # one at a time: a batch of packets is recorded as received before any is handled
    refused = client.open_channel("direct-tcpip", LOOPBACK + uint32(70_000) + LOOPBACK + uint32(1), 0.0)
    wire.pump()
    assert not any(isinstance(e, Disconnected) for e in wire.server_events + wire.client_events)
    assert wire.server.transport.error is None and not wire.server.is_closed
    [global_rejected] = of_type(wire.server_events, GlobalRequestRejected)  # type: ignore[arg-type]
    [open_rejected] = of_type(wire.server_events, ChannelOpenRejected)  # type: ignore[arg-type]
    assert of_type(wire.client_events, GlobalRequestResult) == [  # type: ignore[arg-type]
        GlobalRequestResult(False, b"", "tcpip-forward")
    ]
    assert of_type(wire.client_events, ChannelOpenFailed) == [  # type: ignore[arg-type]
        ChannelOpenFailed(refused, CONNECT_FAILED, open_rejected.reason)
    ]
    timeline = [(e.direction, e.event) for e in wire.server.snapshot().transport.timeline]
    global_note = ("local", f"GLOBAL_REQUEST refused: {global_rejected.reason}")
    open_note = ("local", f"CHANNEL_OPEN refused (peer channel {refused}): {open_rejected.reason}")
    position = timeline.index(global_note)
    assert timeline[position - 2 : position] == [("received", "GLOBAL_REQUEST"), ("sent", "REQUEST_FAILURE")]
    position = timeline.index(open_note)
    assert timeline[position - 2 : position] == [
        ("received", "CHANNEL_OPEN"), ("sent", "CHANNEL_OPEN_FAILURE")
    ]
    # A session opened afterwards works.
    cid = client.open_session(0.0)
    wire.pump()
    [requested] = of_type(wire.server_events, ChannelOpenRequested)  # type: ignore[arg-type]
    wire.server.require_channels().accept_open(requested.local_id)
    wire.pump()
    assert ChannelOpened(cid, "session") in wire.client_events


def test_a_global_request_without_its_want_reply_byte_ends_the_connection() -> None:
    wire = authenticated_wire()
    wire.client.transport.send_payload(GLOBAL + string("tcpip-forward"))
    wire.pump()
    assert any(isinstance(e, Disconnected) for e in wire.server_events)
    assert "want_reply" in str(wire.server.transport.error)


# --- any bytes at all ----------------------------------------------------------------------


def names(registry: Mapping[str, object]) -> st.SearchStrategy[str]:
    """Our types, whose data we decode, and any others."""
    printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    return st.sampled_from(sorted(registry)) | st.text(printable, min_size=1, max_size=20)


@given(name=names(m.GLOBAL_REQUEST_BODIES), data=st.binary(max_size=64), want_reply=st.booleans(),
       to_server=st.booleans())
def test_any_global_request_tail_is_handled_without_raising_and_gets_at_most_one_failure(
    name: str, data: bytes, want_reply: bool, to_server: bool
) -> None:
    link = Link()
    receiver, outbox = (link.server, link.to_client) if to_server else (link.client, link.to_server)
    events = receiver.handle(m.GlobalRequest(name, want_reply, data).encode(), link.now)
    sent = list(outbox)
    assert len(events) <= 1 and len(sent) <= 1
    assert all(isinstance(e, GlobalRequestReceived | GlobalRequestRejected) for e in events)
    if sent:
        assert want_reply and sent == [m.RequestFailure().encode()]
    if events and isinstance(events[0], GlobalRequestRejected):
        assert sent == ([m.RequestFailure().encode()] if want_reply else [])
        assert events[0].name in m.GLOBAL_REQUEST_BODIES


@given(channel_type=names(m.CHANNEL_OPEN_BODIES), data=st.binary(max_size=64),
       sender=st.integers(0, 0xFFFF_FFFF), to_server=st.booleans())
def test_any_channel_open_tail_is_handled_without_raising_and_at_most_refused_once(
    channel_type: str, data: bytes, sender: int, to_server: bool
) -> None:
    link = Link()
    receiver, outbox = (link.server, link.to_client) if to_server else (link.client, link.to_server)
    events = receiver.handle(m.ChannelOpen(channel_type, sender, 1 << 20, 1 << 15, data).encode(), link.now)
    sent = list(outbox)
    assert len(events) <= 1 and len(sent) <= 1
    if events and isinstance(events[0], ChannelOpenRequested):
        assert not sent and receiver.channel_count == 1
        return
    assert receiver.channel_count == 0 and len(sent) == 1
    failure = m.ChannelOpenFailure.decode(sent[0])
    assert failure.recipient_channel == sender
    if events:
        [rejected] = events
        assert isinstance(rejected, ChannelOpenRejected)
        assert rejected.channel_type in m.CHANNEL_OPEN_BODIES
        assert failure.reason == rejected.reason_code and failure.description == rejected.reason
