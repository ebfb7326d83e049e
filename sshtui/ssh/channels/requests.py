"""Channel requests and their replies, in both directions (RFC 4254 §5.4).

Replies are matched to requests purely by order, so a request the driver never sees
(keepalive@openssh.com, an unknown type) is answered with a failure in its place among the
replies owed rather than ahead of earlier ones.

A request whose frame decodes but whose type-specific data does not (a pty-req beyond our
size bounds, a window-change with trailing bytes...) is refused the same way and reported as
``ChannelRequestRejected``; only a malformed frame, which the caller decodes, ends the connection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sshtui.ssh.channels.channel import PEER_ADDRESSABLE, Channel
from sshtui.ssh.channels.events import (
    ChannelEvent,
    ChannelRequestReceived,
    ChannelRequestRejected,
    ChannelRequestResult,
)
from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages.channel_requests import ExitSignal, ExitStatus, Keepalive
from sshtui.ssh.messages.connection import ChannelRequest
from sshtui.ssh.messages.connection_fields import TypedData

Send = Callable[[bytes], None]

_RECIPIENT_ONLY = struct.Struct(">BI")  # CHANNEL_SUCCESS, CHANNEL_FAILURE


def receive_request(ch: Channel, msg: ChannelRequest, send: Send) -> list[ChannelEvent]:
    """The peer's request on ``ch``, a channel it may address: what the driver gets to see."""
    if ch._discarding:
        return []  # nothing, not even a reply, may follow our CLOSE
    try:
        body = msg.body()
    except DecodeError as exc:
        # The frame told us the channel, the type and whether a reply is due, so one bad
        # body is refused like any request we decline instead of ending every channel of
        # the connection.
        _decline(ch, msg.want_reply, send)
        return [ChannelRequestRejected(ch.local_id, msg.request_type, msg.want_reply, exc.message)]
    if isinstance(body, ExitStatus):
        ch._exit_status = body.status
    elif isinstance(body, ExitSignal):
        ch._exit_signal = body.signal
    if body is None or isinstance(body, Keepalive):
        _decline(ch, msg.want_reply, send)
        return []
    if msg.want_reply:
        ch._owe_reply(None)
    return [ChannelRequestReceived(ch.local_id, msg.request_type, msg.want_reply, body)]


def receive_result(ch: Channel, success: bool) -> list[ChannelEvent]:
    """The peer's CHANNEL_SUCCESS or CHANNEL_FAILURE on ``ch``: the oldest request awaiting one."""
    if not ch._awaiting_results:
        what = "CHANNEL_SUCCESS" if success else "CHANNEL_FAILURE"
        raise RemoteProtocolError(f"{what} on channel {ch.local_id}, which has no request awaiting a reply")
    return [ChannelRequestResult(ch.local_id, success, ch._awaiting_results.popleft())]


def send_request(ch: Channel, request: TypedData, want_reply: bool, send: Send) -> None:
    if ch.state not in PEER_ADDRESSABLE or ch.close_sent:
        raise LocalProtocolError(
            f"cannot send a {request.NAME} request on channel {ch.local_id} in state {ch.state.name}"
        )
    remote_id = ch._remote_id
    assert remote_id is not None
    send(ChannelRequest.of(remote_id, request, want_reply).encode())
    if want_reply:
        ch._awaiting_results.append(request.NAME)


def reply_request(ch: Channel, success: bool, send: Send) -> None:
    if ch._discarding:
        return  # our CLOSE went out: the peer expects no more replies
    ch._decide_reply(success)
    _flush_replies(ch, send)


def _decline(ch: Channel, want_reply: bool, send: Send) -> None:
    """A FAILURE in this request's place among the replies owed, if the peer wants one."""
    if want_reply:
        ch._owe_reply(False)
        _flush_replies(ch, send)


def _flush_replies(ch: Channel, send: Send) -> None:
    for success in ch._ready_replies():
        kind = MsgType.CHANNEL_SUCCESS if success else MsgType.CHANNEL_FAILURE
        send(_RECIPIENT_ONLY.pack(kind, ch._remote_id))
