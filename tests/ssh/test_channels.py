"""The connection layer (RFC 4254) between our own client and server layers, in memory:
channel life cycles, flow control, requests and replies, and a peer that breaks the rules."""

from __future__ import annotations

import struct
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from sshtui.ssh.channels.events import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelEvent,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequested,
    ChannelRequestReceived,
    ChannelRequestResult,
    ChannelWindowOpened,
    GlobalRequestReceived,
    GlobalRequestResult,
    KeepaliveReply,
)
from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.errors import LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages.channel_requests import Eow, Exec, ExitStatus, Keepalive, PtyReq, Shell
from sshtui.ssh.messages.connection import (
    DirectStreamlocal,
    DirectTcpip,
    ForwardedTcpip,
    RequestSuccess,
    Session,
    TcpipForward,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # paramiko warns about deprecated ciphers on import
    from paramiko import common as pc  # type: ignore[import-untyped]
    from paramiko.message import Message  # type: ignore[import-untyped]

E = TypeVar("E")
KIB = 1024
MIB = 1024 * KIB


class Link:
    """A client and a server connection layer joined by two in-memory message queues."""

    def __init__(self, client: dict[str, Any] | None = None, server: dict[str, Any] | None = None) -> None:
        self.to_server: deque[bytes] = deque()
        self.to_client: deque[bytes] = deque()
        self.client = ConnectionLayer(self.to_server.append, is_client=True, **(client or {}))
        self.server = ConnectionLayer(self.to_client.append, is_client=False, **(server or {}))
        self.now = 100.0
        self.client_events: list[ChannelEvent] = []
        self.server_events: list[ChannelEvent] = []

    def pump(self) -> None:
        """Deliver every queued message, both ways, until neither side has anything to say."""
        while self.to_server or self.to_client:
            while self.to_server:
                self.server_events.extend(self.server.handle(self.to_server.popleft(), self.now))
            while self.to_client:
                self.client_events.extend(self.client.handle(self.to_client.popleft(), self.now))

    def take(self, side: str) -> list[ChannelEvent]:
        pool = self.client_events if side == "client" else self.server_events
        taken = list(pool)
        pool.clear()
        return taken

    def open_session(self) -> tuple[int, int]:
        """A confirmed session: (client id, server id)."""
        client_id = self.client.open_session(self.now)
        self.pump()
        [requested] = self.take("server")
        assert isinstance(requested, ChannelOpenRequested)
        self.server.accept_open(requested.local_id)
        self.pump()
        assert self.take("client") == [ChannelOpened(client_id, "session")]
        return client_id, requested.local_id


def of_type(events: list[ChannelEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def received_bytes(events: list[ChannelEvent], local_id: int, data_type: int | None = None) -> bytes:
    return b"".join(
        e.data for e in of_type(events, ChannelData) if e.local_id == local_id and e.data_type == data_type
    )


# --- opening -------------------------------------------------------------------------------


def test_session_opens_and_both_sides_know_each_others_numbers() -> None:
    link = Link()
    link.client.open_session(link.now)  # channel 0 stays pending, so the ids differ
    link.pump()
    link.take("server")
    client_id = link.client.open_session(link.now)
    link.pump()
    [requested] = link.take("server")
    assert requested == ChannelOpenRequested(1, "session", Session())
    link.server.accept_open(1)
    link.pump()
    assert link.take("client") == [ChannelOpened(client_id, "session")]
    assert link.client.channel(client_id).remote_id == 1
    assert link.server.channel(1).remote_id == client_id
    assert link.client.channel(client_id).state.name == "OPEN"


def test_forwarding_channels_carry_their_typed_open_data() -> None:
    link = Link()
    link.client.open_direct_tcpip("db.internal", 5432, "127.0.0.1", 50000, link.now)
    link.client.open_direct_streamlocal("/run/app.sock", link.now)
    link.server.open_forwarded_tcpip("0.0.0.0", 8080, "203.0.113.9", 41000, link.now)
    link.pump()
    assert [(e.channel_type, e.type_data) for e in of_type(link.take("server"), ChannelOpenRequested)] == [
        ("direct-tcpip", DirectTcpip("db.internal", 5432, "127.0.0.1", 50000)),
        ("direct-streamlocal@openssh.com", DirectStreamlocal("/run/app.sock")),
    ]
    [forwarded] = of_type(link.take("client"), ChannelOpenRequested)
    assert forwarded.type_data == ForwardedTcpip("0.0.0.0", 8080, "203.0.113.9", 41000)


def test_refused_open_reports_reason_and_frees_the_id() -> None:
    link = Link()
    client_id = link.client.open_direct_tcpip("nowhere", 1, "127.0.0.1", 2, link.now)
    link.pump()
    [requested] = link.take("server")
    assert isinstance(requested, ChannelOpenRequested)
    link.server.reject_open(requested.local_id, OpenFailureReason.CONNECT_FAILED, "no route\x1b[2J")
    link.pump()
    escaped = "no route\\x1b[2J"  # the peer's text cannot drive the user's terminal
    assert link.take("client") == [ChannelOpenFailed(client_id, OpenFailureReason.CONNECT_FAILED, escaped)]
    assert link.client.channel_count == 0 and link.server.channel_count == 0
    assert link.client.open_session(link.now) == client_id


def test_unknown_channel_types_are_refused_without_bothering_the_driver() -> None:
    link = Link()
    client_id = link.client.open_channel("x11-but-not-really", b"", link.now)
    link.pump()
    assert link.take("server") == []
    [failed] = link.take("client")
    assert failed == ChannelOpenFailed(
        client_id, OpenFailureReason.UNKNOWN_CHANNEL_TYPE, "unknown channel type"
    )


def test_a_client_refuses_session_channels_from_the_server() -> None:
    link = Link()
    server_id = link.server.open_session(link.now)
    link.pump()
    assert link.take("client") == []
    [failed] = link.take("server")
    assert isinstance(failed, ChannelOpenFailed) and failed.local_id == server_id
    assert failed.reason == OpenFailureReason.ADMINISTRATIVELY_PROHIBITED


def test_too_many_channels_are_refused_as_a_resource_shortage() -> None:
    link = Link(server={"max_channels": 2})
    ids = [link.client.open_session(link.now) for _ in range(3)]
    link.pump()
    assert len(of_type(link.take("server"), ChannelOpenRequested)) == 2
    shortage = ChannelOpenFailed(ids[2], OpenFailureReason.RESOURCE_SHORTAGE, "too many channels")
    assert link.take("client") == [shortage]
    small = Link(client={"max_channels": 1})
    small.client.open_session(small.now)
    with pytest.raises(LocalProtocolError, match="1 are open"):
        small.client.open_session(small.now)


def test_a_hundred_channels_at_once_stay_apart() -> None:
    link = Link()
    ids = [link.client.open_session(link.now) for _ in range(100)]
    assert ids == list(range(100))
    link.pump()
    for event in link.take("server"):
        assert isinstance(event, ChannelOpenRequested)
        link.server.accept_open(event.local_id)
    link.pump()
    assert len(of_type(link.take("client"), ChannelOpened)) == 100
    for cid in ids:
        link.client.send_data(cid, f"channel {cid}".encode())
    link.pump()
    server_events = link.take("server")
    for cid in ids:
        sid = link.client.channel(cid).remote_id
        assert sid is not None
        assert received_bytes(server_events, sid) == f"channel {cid}".encode()
        link.client.close(cid)
    link.pump()
    assert sorted(e.local_id for e in of_type(link.take("client"), ChannelClosed)) == ids
    assert link.client.channel_count == 0 and link.server.channel_count == 0


def test_closing_a_channel_still_opening_closes_it_once_confirmed() -> None:
    link = Link()
    client_id = link.client.open_session(link.now)
    link.client.close(client_id)
    link.pump()
    [requested] = link.take("server")
    assert isinstance(requested, ChannelOpenRequested)
    link.server.accept_open(requested.local_id)
    link.pump()
    assert link.take("client") == [ChannelClosed(client_id)]
    assert link.take("server") == [ChannelClosed(requested.local_id)]


# --- data, EOF and close -------------------------------------------------------------------


def test_data_and_stderr_flow_both_ways() -> None:
    link = Link()
    cid, sid = link.open_session()
    assert link.client.send_data(cid, b"ls -l\n") == 6
    assert link.server.send_data(sid, memoryview(b"total 0\n")) == 8
    assert link.server.send_extended_data(sid, b"ls: warning\n", 1) == 12
    link.pump()
    assert received_bytes(link.take("server"), sid) == b"ls -l\n"
    client_events = link.take("client")
    assert received_bytes(client_events, cid) == b"total 0\n"
    assert received_bytes(client_events, cid, data_type=1) == b"ls: warning\n"
    snap = {s.local_id: s for s in link.client.snapshot(link.now)}[cid]
    assert (snap.bytes_sent, snap.bytes_received, snap.packets_received) == (6, 20, 2)


def test_eof_ends_one_direction_while_the_other_keeps_flowing() -> None:
    link = Link()
    cid, sid = link.open_session()
    link.client.send_data(cid, b"input")
    link.client.send_eof(cid)
    link.client.send_eof(cid)  # repeated EOF is harmless and sends nothing
    link.pump()
    assert link.take("server") == [ChannelData(sid, b"input", None), ChannelEof(sid)]
    with pytest.raises(LocalProtocolError, match="cannot send data on channel 0"):
        link.client.send_data(cid, b"more")
    assert link.client.writable(cid) == 0
    link.server.send_data(sid, b"output after the client's EOF")
    link.server.send_request(sid, ExitStatus(0), want_reply=False)
    link.server.send_eof(sid)
    link.server.close(sid)
    link.pump()
    assert link.take("client") == [
        ChannelData(cid, b"output after the client's EOF", None),
        ChannelRequestReceived(cid, "exit-status", False, ExitStatus(0)),
        ChannelEof(cid),
        ChannelClosed(cid),
    ]
    assert link.take("server") == [ChannelClosed(sid)]


@pytest.mark.parametrize("closer", ["client", "server", "both"])
def test_close_handshake_ends_the_channel_once_on_each_side(closer: str) -> None:
    link = Link()
    cid, sid = link.open_session()
    if closer in ("client", "both"):
        link.client.close(cid)
    if closer in ("server", "both"):
        link.server.close(sid)
    link.pump()
    assert link.take("client") == [ChannelClosed(cid)]
    assert link.take("server") == [ChannelClosed(sid)]
    assert link.client.channel_count == 0 and link.server.channel_count == 0
    with pytest.raises(LocalProtocolError, match="no such channel"):
        link.client.send_data(cid, b"x")


def test_closed_ids_are_reused_smallest_first() -> None:
    link = Link()
    ids = [link.open_session()[0] for _ in range(3)]
    assert ids == [0, 1, 2]
    link.client.close(1)
    link.client.close(0)
    link.pump()
    link.take("client")
    assert link.client.open_session(link.now) == 0
    assert link.client.open_session(link.now) == 1
    assert link.client.open_session(link.now) == 3


def test_data_racing_our_close_is_discarded_but_counted() -> None:
    link = Link()
    cid, sid = link.open_session()
    link.client.close(cid)
    link.server.send_data(sid, b"already on the wire")  # the server has not seen the CLOSE yet
    link.server.send_eof(sid)
    link.pump()
    assert link.take("client") == [ChannelClosed(cid)]
    assert link.take("server") == [ChannelClosed(sid)]


def test_counts_after_our_close_include_discarded_data() -> None:
    link = Link()
    cid, sid = link.open_session()
    link.client.close(cid)
    link.server.send_data(sid, b"12345")
    while link.to_client:
        assert link.client.handle(link.to_client.popleft(), link.now) == []
    assert link.client.channel(cid).bytes_received == 5
    assert link.client.channel(cid).state.name == "CLOSE_SENT"


def test_exit_status_shows_in_the_snapshot() -> None:
    link = Link()
    _, sid = link.open_session()
    link.now = 130.0
    link.server.send_request(sid, ExitStatus(3), want_reply=False)
    link.pump()
    [snap] = link.client.snapshot(link.now)
    assert snap.exit_status == 3 and snap.channel_type == "session" and snap.state == "OPEN"
    assert snap.opened_at == 100.0 and snap.age_seconds == 30.0
    assert snap.remote_id == sid and snap.local_window == 2 * MIB


# --- channel requests ----------------------------------------------------------------------


def test_pty_shell_and_exec_requests_get_their_replies_in_order() -> None:
    link = Link()
    cid, sid = link.open_session()
    pty = PtyReq("xterm-256color", 120, 40)
    link.client.send_request(cid, pty, want_reply=True)
    link.client.send_request(cid, Shell(), want_reply=True)
    link.pump()
    assert link.take("server") == [
        ChannelRequestReceived(sid, "pty-req", True, pty),
        ChannelRequestReceived(sid, "shell", True, Shell()),
    ]
    link.server.reply_request(sid, True)
    link.server.reply_request(sid, False)
    with pytest.raises(LocalProtocolError, match="no request on channel"):
        link.server.reply_request(sid, True)
    link.pump()
    assert link.take("client") == [
        ChannelRequestResult(cid, True, "pty-req"),
        ChannelRequestResult(cid, False, "shell"),
    ]
    exec_cid, exec_sid = link.open_session()
    link.client.send_request(exec_cid, Exec(b"uname -a"), want_reply=True)
    link.pump()
    assert link.take("server") == [ChannelRequestReceived(exec_sid, "exec", True, Exec(b"uname -a"))]
    link.server.reply_request(exec_sid, True)
    link.pump()
    assert link.take("client") == [ChannelRequestResult(exec_cid, True, "exec")]


def test_keepalive_channel_requests_are_answered_in_turn_by_the_layer() -> None:
    link = Link()
    cid, sid = link.open_session()
    link.client.send_request(cid, PtyReq("vt100", 80, 24), want_reply=True)
    link.client.send_request(cid, Keepalive(), want_reply=True)
    link.client.send_request(cid, Eow(), want_reply=False)
    link.pump()
    # The keepalive is not the driver's business, but its reply must wait for the pty-req's.
    assert [type(e) for e in link.take("server")] == [ChannelRequestReceived, ChannelRequestReceived]
    assert link.take("client") == []
    link.server.reply_request(sid, True)
    link.pump()
    assert link.take("client") == [
        ChannelRequestResult(cid, True, "pty-req"),
        ChannelRequestResult(cid, False, "keepalive@openssh.com"),
    ]


# --- flow control --------------------------------------------------------------------------


def test_a_large_transfer_waits_for_the_reader_and_never_overfills_it() -> None:
    window, packet = 256 * KIB, 32 * KIB
    link = Link(server={"initial_window": window, "max_packet": packet})
    cid, sid = link.open_session()
    payload = bytes(range(256)) * (10 * MIB // 256)
    sent = 0
    unread = bytearray()
    received = bytearray()
    stalls = 0
    while len(received) < len(payload):
        accepted = link.client.send_data(cid, memoryview(payload)[sent:])
        sent += accepted
        assert all(len(p) - 9 <= packet for p in link.to_server)
        link.pump()
        for event in link.take("server"):
            assert isinstance(event, ChannelData)
            unread += event.data
        assert len(unread) <= window  # the receiver's memory is bounded by its window
        assert link.server.channel(sid).buffered == len(unread)
        if accepted == 0 and sent < len(payload):
            stalls += 1
            assert link.client.writable(cid) == 0
        # A slow reader: takes a quarter of the window at a time.
        chunk = unread[: window // 4]
        received += chunk
        del unread[: len(chunk)]
        link.server.consumed(sid, len(chunk))
        link.pump()
        opened = link.take("client")
        assert all(isinstance(e, ChannelWindowOpened) and e.local_id == cid for e in opened)
    assert sent == len(payload) and bytes(received) == payload
    assert stalls > 10


def test_window_adjust_is_sent_only_for_consumed_data() -> None:
    link = Link(server={"initial_window": 1000, "max_packet": 500})
    cid, sid = link.open_session()
    assert link.client.send_data(cid, b"x" * 1500) == 1000
    link.pump()
    assert link.client.writable(cid) == 0
    assert link.to_client == deque()  # received but unread: no credit returned
    link.server.consumed(sid, 400)  # below half the window: still nothing
    assert link.to_client == deque()
    link.server.consumed(sid, 100)
    assert list(link.to_client) == [struct.pack(">BII", 93, cid, 500)]
    link.pump()
    assert link.take("client") == [ChannelWindowOpened(cid, 500)]
    with pytest.raises(LocalProtocolError, match="channel 0: consumed 600 bytes but only 500"):
        link.server.consumed(sid, 600)


def test_the_peers_max_packet_is_clamped_to_what_we_can_send() -> None:
    for announced, expected in ((0, 1), (2**32 - 1, 4096)):
        sent: list[bytes] = []
        layer = ConnectionLayer(sent.append, max_packet=4096)
        cid = layer.open_session(0.0)
        layer.handle(struct.pack(">BIIII", 91, cid, 7, 10_000, announced), 0.0)
        assert layer.channel(cid).remote_max_packet == expected
        sent.clear()
        assert layer.send_data(cid, b"z" * 5000) == 5000
        assert {len(p) - 9 for p in sent} <= {expected, 5000 % expected}
        assert b"".join(p[9:] for p in sent) == b"z" * 5000


def test_our_wire_format_matches_paramiko() -> None:
    sent: list[bytes] = []
    layer = ConnectionLayer(sent.append)
    cid = layer.open_session(0.0)
    layer.handle(struct.pack(">BIIII", 91, cid, 42, 10_000, 1000), 0.0)
    sent.clear()
    layer.send_data(cid, b"hello")
    layer.send_extended_data(cid, b"oops")
    layer.send_eof(cid)
    layer.close(cid)

    def paramiko_message(*parts: tuple[str, Any]) -> bytes:
        msg = Message()
        for kind, value in parts:
            getattr(msg, "add_" + kind)(value)
        encoded: bytes = msg.asbytes()
        return encoded

    assert sent == [
        paramiko_message(("byte", pc.cMSG_CHANNEL_DATA), ("int", 42), ("string", b"hello")),
        paramiko_message(
            ("byte", pc.cMSG_CHANNEL_EXTENDED_DATA), ("int", 42), ("int", 1), ("string", b"oops")
        ),
        paramiko_message(("byte", pc.cMSG_CHANNEL_EOF), ("int", 42)),
        paramiko_message(("byte", pc.cMSG_CHANNEL_CLOSE), ("int", 42)),
    ]


# --- a peer that breaks the rules ----------------------------------------------------------


def _open_layer(initial_window: int = 1000, max_packet: int = 500) -> tuple[ConnectionLayer, int]:
    """Our client layer with one confirmed channel whose peer number is 42."""
    layer = ConnectionLayer(lambda payload: None, initial_window=initial_window, max_packet=max_packet)
    cid = layer.open_session(0.0)
    layer.handle(struct.pack(">BIIII", 91, cid, 42, 10_000, 1000), 0.0)
    return layer, cid


def _data(channel: int, data: bytes) -> bytes:
    return struct.pack(">BII", 94, channel, len(data)) + data


def _eof(channel: int) -> bytes:
    return struct.pack(">BI", 96, channel)


def _close(channel: int) -> bytes:
    return struct.pack(">BI", 97, channel)


def _confirmation(channel: int) -> bytes:
    return struct.pack(">BIIII", 91, channel, 1, 100, 100)


# Each attack gives the messages a peer sends to a layer with an open channel; the last one is illegal.
MALICIOUS: list[tuple[str, Callable[[ConnectionLayer, int], list[bytes]], str]] = [
    ("unknown channel", lambda layer, c: [_data(7, b"x")], "CHANNEL_DATA for unknown channel 7"),
    (
        "window overflow",
        lambda layer, c: [struct.pack(">BII", 93, c, 2**32 - 10_000)],
        "CHANNEL_WINDOW_ADJUST on channel 0: .*past 2\\*\\*32-1",
    ),
    (
        "data beyond the window",
        lambda layer, c: [_data(c, b"x" * 401)],
        "CHANNEL_DATA on channel 0: .*window allowed only 400",
    ),
    (
        "data larger than max packet",
        lambda layer, c: [_data(c, b"x" * 501)],
        "CHANNEL_DATA on channel 0: .*maximum packet size 500",
    ),
    (
        "data after EOF",
        lambda layer, c: [_eof(c), _data(c, b"x")],
        "CHANNEL_DATA on channel 0 after the peer's EOF",
    ),
    (
        "extended data after EOF",
        lambda layer, c: [_eof(c), struct.pack(">BIII", 95, c, 1, 1) + b"x"],
        "CHANNEL_EXTENDED_DATA on channel 0 after the peer's EOF",
    ),
    ("EOF twice", lambda layer, c: [_eof(c), _eof(c)], "CHANNEL_EOF on channel 0 after the peer's EOF"),
    ("data after CLOSE", lambda layer, c: [_close(c), _data(c, b"x")], "CHANNEL_DATA for unknown channel 0"),
    (
        "confirmation for an unopened channel",
        lambda layer, c: [_confirmation(5)],
        "CHANNEL_OPEN_CONFIRMATION for channel 5, which we are not opening",
    ),
    (
        "second confirmation",
        lambda layer, c: [_confirmation(c)],
        "CHANNEL_OPEN_CONFIRMATION for channel 0, which we are not opening",
    ),
    (
        "failure for an open channel",
        lambda layer, c: [struct.pack(">BIIII", 92, c, 2, 0, 0)],
        "CHANNEL_OPEN_FAILURE for channel 0, which we are not opening",
    ),
    (
        "channel reply without a request",
        lambda layer, c: [struct.pack(">BI", 99, c)],
        "CHANNEL_SUCCESS on channel 0, which has no request awaiting a reply",
    ),
    (
        "global reply without a request",
        lambda layer, c: [bytes([82])],
        "REQUEST_FAILURE with no global request awaiting a reply",
    ),
    (
        "data before confirmation",
        lambda layer, c: [_data(layer.open_session(0.0), b"x")],
        "CHANNEL_DATA on channel 1 before the peer confirmed it",
    ),
    ("not a connection message", lambda layer, c: [bytes([85])], "unexpected MSG_85"),
    ("truncated data", lambda layer, c: [_data(c, b"xy")[:-1]], "data length 2 but 1"),
]


@pytest.mark.parametrize(("case", "attack", "message"), MALICIOUS, ids=[case for case, _, _ in MALICIOUS])
def test_a_misbehaving_peer_is_a_remote_protocol_error(
    case: str, attack: Callable[[ConnectionLayer, int], list[bytes]], message: str
) -> None:
    layer, cid = _open_layer()
    layer.handle(_data(cid, b"x" * 300), 0.0)
    layer.handle(_data(cid, b"x" * 300), 0.0)
    *legal, illegal = attack(layer, cid)
    for payload in legal:
        layer.handle(payload, 0.0)
    with pytest.raises(RemoteProtocolError, match=message):
        layer.handle(illegal, 0.0)


def test_data_for_a_channel_we_have_not_accepted_is_for_an_unknown_channel() -> None:
    link = Link()
    link.client.open_session(link.now)
    link.pump()
    [requested] = link.take("server")
    assert isinstance(requested, ChannelOpenRequested)
    with pytest.raises(RemoteProtocolError, match="CHANNEL_DATA for unknown channel 0"):
        link.server.handle(_data(requested.local_id, b"early"), link.now)


def test_local_misuse_is_a_local_protocol_error_and_sends_nothing() -> None:
    link = Link()
    opening = link.client.open_session(link.now)
    link.pump()
    [requested] = link.take("server")
    assert isinstance(requested, ChannelOpenRequested)
    link.to_client.clear()
    misuse: list[tuple[Callable[[], object], str]] = [
        (lambda: link.client.send_data(opening, b"x"), "cannot send data on channel 0: it is OPENING"),
        (lambda: link.client.send_eof(opening), "cannot send EOF on channel 0 in state OPENING"),
        (lambda: link.client.accept_open(opening), "channel 0 is OPENING, not awaiting an accept"),
        (lambda: link.server.close(requested.local_id), "refuse it with reject_open"),
        (lambda: link.server.send_request(requested.local_id, Shell(), True), "in state OPEN_REQUESTED"),
        (lambda: link.server.reply_request(requested.local_id, True), "no request on channel 0"),
        (lambda: link.client.consumed(opening, 1), "consumed 1 bytes but only 0"),
        (lambda: link.client.writable(9), "no such channel"),
        (lambda: link.client.reply_global(False, b"data"), "carries no data"),
    ]
    for action, message in misuse:
        with pytest.raises(LocalProtocolError, match=message):
            action()
    assert not link.to_server and not link.to_client


# --- global requests and keepalive ---------------------------------------------------------


def test_global_requests_round_trip_in_order() -> None:
    link = Link()
    link.client.global_request("tcpip-forward", TcpipForward("127.0.0.1", 0).encode_data(), want_reply=True)
    link.client.global_request("no-such-request@example.com", b"", want_reply=True)
    link.client.send_keepalive(link.now)
    link.pump()
    [received] = link.take("server")
    assert received == GlobalRequestReceived(
        "tcpip-forward", True, TcpipForward("127.0.0.1", 0).encode_data(), TcpipForward("127.0.0.1", 0)
    )
    assert link.take("client") == []  # the later replies wait for the driver's
    link.server.reply_global(True, struct.pack(">I", 40000))
    link.now += 0.5
    link.pump()
    result, unknown, keepalive = link.take("client")
    assert isinstance(result, GlobalRequestResult) and result.success and result.name == "tcpip-forward"
    assert RequestSuccess(result.data).bound_port() == 40000
    assert unknown == GlobalRequestResult(False, b"", "no-such-request@example.com")
    assert keepalive == KeepaliveReply(0.5)
    with pytest.raises(LocalProtocolError, match="no global request awaits a reply"):
        link.server.reply_global(True)


def test_keepalive_counts_any_reply_as_alive_and_times_it() -> None:
    sent: list[bytes] = []
    layer = ConnectionLayer(sent.append)
    layer.send_keepalive(10.0)
    layer.send_keepalive(11.0)
    assert sent[0] == b"\x50" + struct.pack(">I", 21) + b"keepalive@openssh.com" + b"\x01"
    # OpenSSH answers REQUEST_FAILURE (it does not know the request); others may say SUCCESS.
    assert layer.handle(bytes([82]), 10.25) == [KeepaliveReply(0.25)]
    assert layer.handle(bytes([81]), 11.5) == [KeepaliveReply(0.5)]
