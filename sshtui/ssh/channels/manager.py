"""The connection layer (RFC 4254 §4 global requests, §5 channels and flow control, §6-§7
session and forwarding channels; OpenSSH PROTOCOL §2 keepalive@openssh.com,
eow@openssh.com and direct-streamlocal@openssh.com).

A CHANNEL_OPEN whose frame decodes but whose type-specific data does not is refused with
CHANNEL_OPEN_FAILURE, before any channel is allocated, and reported as ``ChannelOpenRejected``;
only a malformed frame ends the connection.

Sans-IO and role neutral: the driver feeds every incoming message numbered 80..100 to
``handle`` and acts on the returned events; everything we send goes out through the
``send`` callable, one payload per call, in protocol order.

This module opens, feeds and closes channels and routes each message. The channel table lives
in ``table``, the data windows in ``flow``, channel requests and the order of their replies in
``requests``, global requests in ``global_requests``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sshtui.ssh.channels import flow, requests
from sshtui.ssh.channels.channel import Channel, ChannelAction, ChannelState
from sshtui.ssh.channels.events import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelEvent,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRejected,
    ChannelOpenRequested,
    ChannelWindowOpened,
)
from sshtui.ssh.channels.global_requests import GlobalRequests
from sshtui.ssh.channels.snapshot import ChannelSnapshot, snapshot_channel
from sshtui.ssh.channels.table import ChannelTable
from sshtui.ssh.channels.window import WINDOW_MAX, ReceiveWindow
from sshtui.ssh.constants import MsgType, OpenFailureReason, message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages import connection as m
from sshtui.ssh.messages.connection_fields import TypedData
from sshtui.ssh.messages.userauth import escape_untrusted_text

_RECIPIENT_ONLY = struct.Struct(">BI")  # CHANNEL_EOF, CLOSE
_EXTENDED_PREFIX = struct.Struct(">BII")
_CHANNEL_DATA_HEAD = struct.Struct(">BII")  # message number, recipient channel, data length

_Buffer = bytes | bytearray | memoryview
_Handler = Callable[[bytes, float], list[ChannelEvent]]
# A peer's open-failure text is shown to the user; more than this is noise or an attack.
_MAX_DESCRIPTION = 400

_A = ChannelAction
# The refusal of an open whose type-specific data does not decode: types whose data names an
# endpoint to connect to could not be connected; for the others ("session" carries no data at
# all) it is not a variant of the type we know.
_UNREADABLE_OPEN_REASONS = {
    body.NAME: OpenFailureReason.CONNECT_FAILED
    for body in (m.DirectTcpip, m.ForwardedTcpip, m.DirectStreamlocal, m.ForwardedStreamlocal)
}


class ConnectionLayer:
    """All channels and global requests of one SSH connection, in either role.

    ``is_client`` only decides whether the peer may open "session" channels (RFC 4254 §6.1:
    a client must not accept them). ``max_packet`` is both what we accept per data message
    and the most we send in one, whatever larger size the peer allows.
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        initial_window: int = 2 * 1024 * 1024,
        max_packet: int = 256 * 1024 - 1024,
        max_channels: int = 1024,
        is_client: bool = True,
    ) -> None:
        self._table = ChannelTable(initial_window, max_packet, max_channels)
        self._channels = self._table.channels  # read directly on the per-packet paths
        self._send = send
        self._is_client = is_client
        self._globals = GlobalRequests(send)
        self._handlers: dict[int, _Handler] = {
            MsgType.GLOBAL_REQUEST: self._globals.on_request,
            MsgType.REQUEST_SUCCESS: lambda payload, now: self._globals.on_result(payload, True, now),
            MsgType.REQUEST_FAILURE: lambda payload, now: self._globals.on_result(payload, False, now),
            MsgType.CHANNEL_OPEN: self._on_open,
            MsgType.CHANNEL_OPEN_CONFIRMATION: self._on_open_confirmation,
            MsgType.CHANNEL_OPEN_FAILURE: self._on_open_failure,
            MsgType.CHANNEL_WINDOW_ADJUST: self._on_window_adjust,
            MsgType.CHANNEL_EXTENDED_DATA: self._on_extended_data,
            MsgType.CHANNEL_EOF: self._on_eof,
            MsgType.CHANNEL_CLOSE: self._on_close,
            MsgType.CHANNEL_REQUEST: self._on_request,
            MsgType.CHANNEL_SUCCESS: lambda payload, now: self._request_result(payload, True),
            MsgType.CHANNEL_FAILURE: lambda payload, now: self._request_result(payload, False),
        }

    # --- incoming ----------------------------------------------------------------------

    def handle(self, payload: bytes, now: float) -> list[ChannelEvent]:
        """Process one message numbered 80..100; raises ``RemoteProtocolError`` on a violation."""
        if not payload:
            raise DecodeError("empty payload where a connection message was expected")
        if payload[0] == MsgType.CHANNEL_DATA:
            return self.on_channel_data(payload)
        handler = self._handlers.get(payload[0])
        if handler is None:
            raise RemoteProtocolError(f"unexpected {message_name(payload[0])} in the connection layer")
        return handler(payload, now)

    def on_channel_data(self, payload: bytes | memoryview) -> list[ChannelEvent]:
        """``handle`` for a CHANNEL_DATA payload."""
        recipient = self.accept_channel_data(payload)
        if recipient < 0:
            return []
        return [ChannelData(recipient, bytes(payload[9:]), None)]

    def accept_channel_data(self, payload: bytes | memoryview) -> int:
        """The bulk data path's ``on_channel_data``: checks and accounts for one CHANNEL_DATA
        payload without making an event, so that the caller can merge consecutive ones. Returns
        the channel whose data ``payload[9:]`` is, or -1 when there is nothing to deliver (no
        data, or a channel being discarded); raises as ``handle`` does."""
        size = len(payload) - 9
        if size < 0:
            m.decode_channel_data(payload)  # raises the DecodeError saying what is wrong
        kind, recipient, length = _CHANNEL_DATA_HEAD.unpack_from(payload)
        if kind != MsgType.CHANNEL_DATA or length != size:
            m.decode_channel_data(payload)
        ch = self._channels.get(recipient)
        if ch is None:
            raise RemoteProtocolError(f"CHANNEL_DATA for unknown channel {recipient}")
        if ch._on_data(size, "CHANNEL_DATA") and size:
            return int(recipient)
        return -1

    def _on_extended_data(self, payload: bytes, now: float) -> list[ChannelEvent]:
        recipient, data_type, data = m.decode_channel_extended_data(payload)
        ch = self._channels.get(recipient)
        if ch is None:
            raise RemoteProtocolError(f"CHANNEL_EXTENDED_DATA for unknown channel {recipient}")
        if ch._on_data(len(data), "CHANNEL_EXTENDED_DATA") and data:
            return [ChannelData(recipient, bytes(data), data_type)]
        return []

    def _on_window_adjust(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelWindowAdjust.decode(payload)
        ch = self._table.addressed(msg.recipient_channel, "CHANNEL_WINDOW_ADJUST")
        try:
            ch._send.adjust(msg.increment)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(
                f"CHANNEL_WINDOW_ADJUST on channel {ch.local_id}: {exc.message}"
            ) from None
        if ch._sending and msg.increment:
            return [ChannelWindowOpened(ch.local_id, ch._send.available)]
        return []

    def _on_eof(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelEof.decode(payload)
        ch = self._table.known(msg.recipient_channel, "CHANNEL_EOF")
        if not ch.can(_A.RECEIVE_EOF):
            raise ch._misaddressed("CHANNEL_EOF")
        ch.apply(_A.RECEIVE_EOF)
        return [] if ch._discarding else [ChannelEof(ch.local_id)]

    def _on_close(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelClose.decode(payload)
        ch = self._table.known(msg.recipient_channel, "CHANNEL_CLOSE")
        if not ch.can(_A.RECEIVE_CLOSE):
            raise ch._misaddressed("CHANNEL_CLOSE")
        if ch.apply(_A.RECEIVE_CLOSE) is ChannelState.CLOSE_RECEIVED:
            self._send_close(ch)  # RFC 4254 §5.3: a CLOSE must be answered with one
        self._table.release(ch)
        return [ChannelClosed(ch.local_id)]

    def _on_open(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpen.decode(payload)  # a malformed frame is still a protocol error
        if self._is_client and msg.channel_type == m.Session.NAME:
            reason = OpenFailureReason.ADMINISTRATIVELY_PROHIBITED
            return self._refuse(msg, reason, "clients accept no session channels")
        try:
            body = msg.body()
        except DecodeError as exc:
            # The frame names the peer's channel, all a refusal needs: no number of ours is spent.
            code = _UNREADABLE_OPEN_REASONS.get(msg.channel_type, OpenFailureReason.UNKNOWN_CHANNEL_TYPE)
            self._refuse(msg, code, exc.message)
            return [ChannelOpenRejected(msg.sender_channel, msg.channel_type, code, exc.message)]
        if body is None:
            return self._refuse(msg, OpenFailureReason.UNKNOWN_CHANNEL_TYPE, "unknown channel type")
        local_id = self._table.allocate_id()
        if local_id is None:
            return self._refuse(msg, OpenFailureReason.RESOURCE_SHORTAGE, "too many channels")
        ch = self._table.register(local_id, msg.channel_type, ChannelState.OPEN_REQUESTED, now)
        ch._confirm(msg.sender_channel, self._table.peer_window(msg.initial_window, msg.max_packet))
        return [ChannelOpenRequested(local_id, msg.channel_type, body)]

    def _refuse(self, msg: m.ChannelOpen, reason: OpenFailureReason, description: str) -> list[ChannelEvent]:
        self._send(m.ChannelOpenFailure(msg.sender_channel, reason, description).encode())
        return []

    def _on_open_confirmation(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpenConfirmation.decode(payload)
        ch = self._table.opening(msg.recipient_channel, "CHANNEL_OPEN_CONFIRMATION")
        ch._confirm(msg.sender_channel, self._table.peer_window(msg.initial_window, msg.max_packet))
        ch.apply(_A.OPEN_CONFIRMED)
        if ch._close_when_open:
            self._send_close(ch)
            return []
        return [ChannelOpened(ch.local_id, ch.channel_type)]

    def _on_open_failure(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpenFailure.decode(payload)
        ch = self._table.opening(msg.recipient_channel, "CHANNEL_OPEN_FAILURE")
        ch.apply(_A.OPEN_FAILED)
        self._table.release(ch)
        description = escape_untrusted_text(msg.description, _MAX_DESCRIPTION)
        return [ChannelOpenFailed(ch.local_id, msg.reason, description)]

    def _on_request(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelRequest.decode(payload)  # a malformed frame is still a protocol error
        ch = self._table.addressed(msg.recipient_channel, "CHANNEL_REQUEST")
        return requests.receive_request(ch, msg, self._send)

    def _request_result(self, payload: bytes, success: bool) -> list[ChannelEvent]:
        reply = m.ChannelSuccess.decode(payload) if success else m.ChannelFailure.decode(payload)
        what = "CHANNEL_SUCCESS" if success else "CHANNEL_FAILURE"
        ch = self._table.addressed(reply.recipient_channel, what)
        return requests.receive_result(ch, success)

    # --- opening -----------------------------------------------------------------------

    def open_session(self, now: float, window: int | None = None) -> int:
        """``window`` overrides the initial receive window for this channel (smaller for
        interactive shells, so a flood the user interrupts is not megabytes deep)."""
        return self.open_channel(m.Session.NAME, m.Session().encode_data(), now, window)

    def open_direct_tcpip(
        self, host: str, port: int, originator: str, originator_port: int, now: float
    ) -> int:
        return self._open(m.DirectTcpip(host, port, originator, originator_port), now)

    def open_forwarded_tcpip(
        self, address: str, port: int, originator: str, originator_port: int, now: float
    ) -> int:
        """Server role: a connection arrived on a listener the client asked for (``-R``)."""
        return self._open(m.ForwardedTcpip(address, port, originator, originator_port), now)

    def open_direct_streamlocal(self, path: str, now: float) -> int:
        return self._open(m.DirectStreamlocal(path), now)

    def _open(self, body: TypedData, now: float) -> int:
        return self.open_channel(body.NAME, body.encode_data(), now)

    def open_channel(self, channel_type: str, type_data: bytes, now: float, window: int | None = None) -> int:
        """Open a channel of any type; ``ChannelOpened`` or ``ChannelOpenFailed`` follows."""
        local_id = self._table.allocate_id()
        if local_id is None:
            raise LocalProtocolError(
                f"cannot open a {channel_type} channel: {self._table.max_channels} are open"
            )
        initial, max_packet = self._table.window_for(window)
        try:
            ReceiveWindow(initial, max_packet)  # validates the override
            message = m.ChannelOpen(channel_type, local_id, initial, max_packet, type_data)
            encoded = message.encode()
        except LocalProtocolError:
            self._table.free_id(local_id)
            raise
        self._table.register(local_id, channel_type, ChannelState.OPENING, now, initial)
        self._send(encoded)
        return local_id

    def accept_open(self, local_id: int) -> None:
        ch = self._table.ours(local_id, "accept an open on")
        if not ch.can(_A.ACCEPT):
            raise LocalProtocolError(f"channel {local_id} is {ch.state.name}, not awaiting an accept")
        remote_id = ch._remote_id
        assert remote_id is not None  # set when the peer's CHANNEL_OPEN arrived
        ch.apply(_A.ACCEPT)
        table = self._table
        confirmation = m.ChannelOpenConfirmation(remote_id, local_id, table.initial_window, table.max_packet)
        self._send(confirmation.encode())

    def reject_open(self, local_id: int, reason: OpenFailureReason, description: str) -> None:
        ch = self._table.ours(local_id, "reject an open on")
        if not ch.can(_A.REJECT):
            raise LocalProtocolError(f"channel {local_id} is {ch.state.name}, not awaiting a reject")
        remote_id = ch._remote_id
        assert remote_id is not None
        failure = m.ChannelOpenFailure(remote_id, reason, description).encode()
        ch.apply(_A.REJECT)
        self._table.release(ch)
        self._send(failure)

    # --- data --------------------------------------------------------------------------

    def send_data(self, local_id: int, data: _Buffer) -> int:
        """Send as much of ``data`` as the peer's window allows now, in max-packet pieces;
        returns how many bytes went (0: wait for ``ChannelWindowOpened``)."""
        ch = self._channels.get(local_id)
        if ch is None or not ch._sending:
            raise self._table.cannot_send(local_id, "data")
        return flow.write(ch, data, ch._data_prefix, self._send)

    def send_extended_data(self, local_id: int, data: _Buffer, data_type: int = 1) -> int:
        ch = self._channels.get(local_id)
        if ch is None or not ch._sending:
            raise self._table.cannot_send(local_id, "extended data")
        if not 0 <= data_type <= WINDOW_MAX:
            raise LocalProtocolError(f"extended data type {data_type} is outside uint32")
        remote_id = ch._remote_id
        assert remote_id is not None  # _sending implies confirmed
        prefix = _EXTENDED_PREFIX.pack(MsgType.CHANNEL_EXTENDED_DATA, remote_id, data_type)
        return flow.write(ch, data, prefix, self._send)

    def consumed(self, local_id: int, size: int) -> bool:
        """The application has read ``size`` received bytes; credit returns to the peer in
        WINDOW_ADJUSTs of at least half the window, so unread data holds the peer back.
        True when a WINDOW_ADJUST was queued, which the driver then has to send."""
        ch = self._table.ours(local_id, "consume data of")
        return flow.return_credit(ch, size, self._send)

    def send_eof(self, local_id: int) -> None:
        """Half-close our direction; repeated calls and calls after ``close`` do nothing."""
        ch = self._table.ours(local_id, "send EOF on")
        if ch.eof_sent or ch.close_sent:
            return
        if not ch.can(_A.SEND_EOF):
            raise LocalProtocolError(f"cannot send EOF on channel {local_id} in state {ch.state.name}")
        ch.apply(_A.SEND_EOF)
        self._send(_RECIPIENT_ONLY.pack(MsgType.CHANNEL_EOF, ch._remote_id))

    def close(self, local_id: int) -> None:
        """Start closing; ``ChannelClosed`` follows once the peer's CLOSE arrives. A channel
        still opening is closed as soon as it is confirmed."""
        ch = self._table.ours(local_id, "close")
        if ch.state is ChannelState.OPENING:
            ch._close_when_open = True
        elif ch.state is ChannelState.OPEN_REQUESTED:
            raise LocalProtocolError(f"channel {local_id} is not open yet: refuse it with reject_open")
        elif not ch.close_sent:
            self._send_close(ch)

    def _send_close(self, ch: Channel) -> None:
        ch.apply(_A.SEND_CLOSE)
        ch._replies_owed.clear()
        self._send(_RECIPIENT_ONLY.pack(MsgType.CHANNEL_CLOSE, ch._remote_id))

    # --- requests ----------------------------------------------------------------------

    def send_request(self, local_id: int, request: TypedData, want_reply: bool) -> None:
        """With ``want_reply`` a ``ChannelRequestResult`` follows, in the order requests were sent."""
        ch = self._table.ours(local_id, f"send a {request.NAME} request on")
        requests.send_request(ch, request, want_reply, self._send)

    def reply_request(self, local_id: int, success: bool) -> None:
        """Answer the oldest unanswered want_reply ``ChannelRequestReceived`` of the channel."""
        ch = self._table.ours(local_id, "reply to a request on")
        requests.reply_request(ch, success, self._send)

    def global_request(self, name: str, data: bytes, want_reply: bool) -> None:
        """With ``want_reply`` a ``GlobalRequestResult`` follows, in the order requests were sent."""
        self._globals.request(name, data, want_reply)

    def reply_global(self, success: bool, data: bytes = b"") -> None:
        """Answer the oldest unanswered want_reply ``GlobalRequestReceived``."""
        self._globals.reply(success, data)

    def send_keepalive(self, now: float) -> None:
        """Ask the peer for any reply; ``KeepaliveReply`` carries the round trip time."""
        self._globals.send_keepalive(now)

    # --- state -------------------------------------------------------------------------

    def channel(self, local_id: int) -> Channel:
        """The live channel, to read only."""
        return self._table.ours(local_id, "look up")

    def writable(self, local_id: int) -> int:
        """How many bytes ``send_data`` would accept now."""
        return self._table.ours(local_id, "query").writable

    def snapshot(self, now: float) -> tuple[ChannelSnapshot, ...]:
        return tuple(snapshot_channel(self._channels[i], now) for i in sorted(self._channels))

    @property
    def channel_count(self) -> int:
        return len(self._channels)
