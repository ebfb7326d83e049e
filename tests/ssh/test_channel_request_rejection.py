"""Channel requests whose type-specific data does not decode (RFC 4254 §5.4): the request is
refused, with CHANNEL_FAILURE when the peer wants a reply, and the channel and the connection
live on. Only a malformed CHANNEL_REQUEST frame is still a protocol error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.channels.events import (
    ChannelOpenRequested,
    ChannelRequestReceived,
    ChannelRequestRejected,
    ChannelRequestResult,
)
from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import DecodeError, RemoteProtocolError
from sshtui.ssh.events import Disconnected
from sshtui.ssh.messages import connection as m
from sshtui.ssh.wire import boolean, string, uint32

from .test_channels import Link, of_type
from .test_connection_routing import Wire


def request(recipient: int, request_type: str, want_reply: bool, data: bytes) -> bytes:
    return m.ChannelRequest(recipient, request_type, want_reply, data).encode()


def failure(recipient: int) -> bytes:
    return m.ChannelFailure(recipient).encode()


# Bodies a client could send our server that our decoders refuse, and the words saying why.
BAD_CLIENT_REQUESTS = [
    ("pty-req", m.PtyReq("xterm", 99_999, 24).encode_data(), "terminal size 99999x24 exceeds 10000"),
    ("pty-req", string(b"xterm"), "truncated"),  # stops after the terminal name
    ("window-change", m.WindowChange(80, 24).encode_data() + b"junk", "4 unexpected trailing bytes"),
    ("window-change", m.WindowChange(80, 20_000).encode_data(), "terminal size 80x20000"),
    ("env", string(b"LANG\xff") + string(b"C"), "not valid UTF-8"),
    ("exec", uint32(1000) + b"ls", "truncated"),
    ("subsystem", b"", "truncated"),
    ("shell", b"\x00", "trailing"),
    ("signal", string("INTé"), "not ASCII"),
]


@pytest.mark.parametrize(("request_type", "data", "why"), BAD_CLIENT_REQUESTS)
def test_server_refuses_an_undecodable_request_and_the_channel_lives(
    request_type: str, data: bytes, why: str
) -> None:
    link = Link()
    cid, sid = link.open_session()
    events = link.server.handle(request(sid, request_type, True, data), link.now)
    [rejected] = events
    assert isinstance(rejected, ChannelRequestRejected)
    assert (rejected.local_id, rejected.request_type, rejected.want_reply) == (sid, request_type, True)
    assert why in rejected.reason and request_type in rejected.reason
    assert list(link.to_client) == [failure(cid)]
    link.to_client.clear()  # our client layer sent no such request: it would call the reply a violation
    # The same channel still takes a good request, and the driver sees that one as usual.
    link.client.send_request(cid, m.Exec(b"echo alive"), want_reply=True)
    link.pump()
    assert link.take("server") == [ChannelRequestReceived(sid, "exec", True, m.Exec(b"echo alive"))]
    assert link.server.channel(sid).state.name == "OPEN"


def test_without_want_reply_nothing_is_sent_but_the_rejection_is_reported() -> None:
    link = Link()
    _, sid = link.open_session()
    events = link.server.handle(request(sid, "window-change", False, b"\x00\x00"), link.now)
    assert [type(e) for e in events] == [ChannelRequestRejected]
    assert not link.to_client


def test_the_refusal_waits_its_turn_behind_an_earlier_request() -> None:
    link = Link()
    cid, sid = link.open_session()
    link.client.send_request(cid, m.PtyReq("xterm", 80, 24), want_reply=True)
    # Our own client would never send this, but a buggy peer might: the encoder checks only uint32.
    link.client.send_request(cid, m.PtyReq("xterm", 80, 50_000), want_reply=True)
    link.client.send_request(cid, m.Shell(), want_reply=True)
    link.pump()
    events = link.take("server")
    assert [type(e) for e in events] == [
        ChannelRequestReceived, ChannelRequestRejected, ChannelRequestReceived
    ]
    assert link.take("client") == []  # the rejected one's FAILURE may not overtake the pty-req's reply
    link.server.reply_request(sid, True)
    link.server.reply_request(sid, True)
    link.pump()
    assert link.take("client") == [
        ChannelRequestResult(cid, True, "pty-req"),
        ChannelRequestResult(cid, False, "pty-req"),
        ChannelRequestResult(cid, True, "shell"),
    ]


def test_client_survives_a_malformed_exit_status_and_still_records_a_good_one() -> None:
    link = Link()
    cid, sid = link.open_session()
    events = link.client.handle(request(cid, "exit-status", False, uint32(3) + b"\x00"), link.now)
    [rejected] = events
    assert isinstance(rejected, ChannelRequestRejected) and "trailing" in rejected.reason
    assert link.client.channel(cid).exit_status is None
    events = link.client.handle(request(cid, "exit-signal", True, string("KILLé") + boolean(False)), link.now)
    assert [type(e) for e in events] == [ChannelRequestRejected]
    assert list(link.to_server) == [failure(sid)]
    link.to_server.clear()
    link.server.send_request(sid, m.ExitStatus(3), want_reply=False)
    link.pump()
    assert link.client.channel(cid).exit_status == 3


def test_a_request_to_a_channel_we_are_closing_is_still_ignored_silently() -> None:
    link = Link()
    _, sid = link.open_session()
    link.server.close(sid)
    link.to_client.clear()
    assert link.server.handle(request(sid, "pty-req", True, b"\x00"), link.now) == []
    assert not link.to_client


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (bytes([MsgType.CHANNEL_REQUEST]) + uint32(0) + string(b"pty-req"), "want_reply"),
        (bytes([MsgType.CHANNEL_REQUEST]) + uint32(0) + uint32(50) + b"pty-req", "request_type"),
        (bytes([MsgType.CHANNEL_REQUEST]) + uint32(0) + string("pty-reqé") + boolean(True), "not ASCII"),
        (bytes([MsgType.CHANNEL_REQUEST]) + b"\x00\x00", "recipient_channel"),
    ],
)
def test_a_malformed_frame_is_still_a_protocol_error(payload: bytes, problem: str) -> None:
    link = Link()
    link.open_session()
    with pytest.raises(DecodeError, match=problem):
        link.server.handle(payload, link.now)


def test_an_unknown_channel_is_still_a_protocol_error_whatever_the_body() -> None:
    link = Link()
    link.open_session()
    with pytest.raises(RemoteProtocolError, match="unknown channel 7"):
        link.server.handle(request(7, "pty-req", True, b"\x00"), link.now)


# --- a whole connection --------------------------------------------------------------------


def authenticated_wire() -> Wire:
    wire = Wire()
    wire.pump()
    wire.client.require_auth().try_password("pw")
    wire.pump()
    wire.server.accept_auth()
    wire.pump()
    return wire


def test_the_connection_stays_up_and_the_timeline_says_why_the_request_was_refused() -> None:
    wire = authenticated_wire()
    client = wire.client.require_channels()
    cid = client.open_session(0.0)
    other = client.open_session(0.0)
    wire.pump()
    for event in of_type(wire.server_events, ChannelOpenRequested):  # type: ignore[arg-type]
        wire.server.require_channels().accept_open(event.local_id)
    wire.pump()
    client.send_request(cid, m.PtyReq("xterm", 100_000, 100_000), want_reply=True)
    wire.pump()
    assert not any(isinstance(e, Disconnected) for e in wire.server_events + wire.client_events)
    assert wire.server.transport.error is None and not wire.server.is_closed
    [rejected] = of_type(wire.server_events, ChannelRequestRejected)  # type: ignore[arg-type]
    assert "100000x100000" in rejected.reason
    assert of_type(wire.client_events, ChannelRequestResult) == [  # type: ignore[arg-type]
        ChannelRequestResult(cid, False, "pty-req")
    ]
    timeline = [(e.direction, e.event) for e in wire.server.snapshot().transport.timeline]
    note = ("local", f"CHANNEL_REQUEST refused on channel {rejected.local_id}: {rejected.reason}")
    assert note in timeline
    position = timeline.index(note)
    assert timeline[position - 2 : position] == [("received", "CHANNEL_REQUEST"), ("sent", "CHANNEL_FAILURE")]
    # Both channels still work.
    client.send_request(other, m.Exec(b"true"), want_reply=True)
    client.send_request(cid, m.Shell(), want_reply=True)
    wire.pump()
    received = of_type(wire.server_events, ChannelRequestReceived)  # type: ignore[arg-type]
    assert [e.request_type for e in received] == ["exec", "shell"]


# --- any bytes at all ----------------------------------------------------------------------

REQUEST_TYPES = st.sampled_from(sorted(m.CHANNEL_REQUEST_BODIES)) | st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@given(
    request_type=REQUEST_TYPES,
    data=st.binary(max_size=64),
    want_reply=st.booleans(),
    to_server=st.booleans(),
)
def test_any_request_body_is_handled_without_raising_and_gets_at_most_one_failure(
    request_type: str, data: bytes, want_reply: bool, to_server: bool
) -> None:
    link = Link()
    cid, sid = link.open_session()
    receiver, local_id, outbox = (
        (link.server, sid, link.to_client) if to_server else (link.client, cid, link.to_server)
    )
    peer_id = cid if to_server else sid
    events = receiver.handle(request(local_id, request_type, want_reply, data), link.now)
    sent = list(outbox)
    assert len(events) <= 1
    assert all(isinstance(e, ChannelRequestReceived | ChannelRequestRejected) for e in events)
    assert len(sent) <= 1
    if sent:
        assert want_reply and sent == [failure(peer_id)]
    if events and isinstance(events[0], ChannelRequestRejected):
        assert sent == ([failure(peer_id)] if want_reply else [])
        assert events[0].request_type in m.CHANNEL_REQUEST_BODIES
    assert receiver.channel(local_id).state.name == "OPEN"
