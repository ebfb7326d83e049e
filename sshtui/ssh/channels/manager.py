"""The connection layer (RFC 4254 §4 global requests, §5 channels and flow control, §6-§7
session and forwarding channels; OpenSSH PROTOCOL §2 keepalive@openssh.com,
eow@openssh.com and direct-streamlocal@openssh.com).

Sans-IO and role neutral: the driver feeds every incoming message numbered 80..100 to
``handle`` and acts on the returned events; everything we send goes out through the
``send`` callable, one payload per call, in protocol order.

Replies, in both directions, are matched to requests purely by order (RFC 4254 §4, §5.4),
so requests the driver never sees (keepalive@openssh.com, unknown types) are answered
with a failure in their place in the queue rather than ahead of earlier ones.

A channel request whose frame decodes but whose type-specific data does not (a pty-req
beyond our size bounds, a window-change with trailing bytes...) is refused the same way
and reported as ``ChannelRequestRejected``; only a malformed frame ends the connection.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush

from sshtui.ssh.channels.channel import PEER_ADDRESSABLE, Channel, ChannelAction, ChannelState
from sshtui.ssh.channels.events import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelEvent,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequested,
    ChannelRequestReceived,
    ChannelRequestRejected,
    ChannelRequestResult,
    ChannelWindowOpened,
    GlobalRequestReceived,
    GlobalRequestResult,
    KeepaliveReply,
)
from sshtui.ssh.channels.snapshot import ChannelSnapshot, snapshot_channel
from sshtui.ssh.channels.window import WINDOW_MAX, ReceiveWindow, SendWindow
from sshtui.ssh.constants import MsgType, OpenFailureReason, message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages import connection as m
from sshtui.ssh.messages.userauth import escape_untrusted_text

_pack_u32 = struct.Struct(">I").pack
_RECIPIENT_ONLY = struct.Struct(">BI")  # CHANNEL_EOF, CLOSE, SUCCESS, FAILURE
_WINDOW_ADJUST = struct.Struct(">BII")
_EXTENDED_PREFIX = struct.Struct(">BII")
_CHANNEL_DATA_HEAD = struct.Struct(">BII")  # message number, recipient channel, data length

_Buffer = bytes | bytearray | memoryview
_Handler = Callable[[bytes, float], list[ChannelEvent]]
# A peer's open-failure text is shown to the user; more than this is noise or an attack.
_MAX_DESCRIPTION = 400

_A = ChannelAction


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
        ReceiveWindow(initial_window, max_packet)  # validates both sizes
        if max_channels < 1:
            raise LocalProtocolError(f"max_channels must be at least 1, got {max_channels}")
        self._send = send
        self._initial_window = initial_window
        self._max_packet = max_packet
        self._max_channels = max_channels
        self._is_client = is_client
        self._channels: dict[int, Channel] = {}
        self._free_ids: list[int] = []  # a heap, so the smallest free id is reused first
        self._next_id = 0
        # Our want_reply global requests, oldest first: (name, send time if it is our keepalive).
        self._global_awaiting: deque[tuple[str, float | None]] = deque()
        # Our replies to the peer's want_reply global requests: None until the driver decides.
        self._global_owed: deque[tuple[bool, bytes] | None] = deque()
        self._handlers: dict[int, _Handler] = {
            MsgType.GLOBAL_REQUEST: self._on_global_request,
            MsgType.REQUEST_SUCCESS: lambda payload, now: self._global_result(payload, True, now),
            MsgType.REQUEST_FAILURE: lambda payload, now: self._global_result(payload, False, now),
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
        ch = self._addressed(msg.recipient_channel, "CHANNEL_WINDOW_ADJUST")
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
        ch = self._known(msg.recipient_channel, "CHANNEL_EOF")
        if not ch.can(_A.RECEIVE_EOF):
            raise ch._misaddressed("CHANNEL_EOF")
        ch.apply(_A.RECEIVE_EOF)
        return [] if ch._discarding else [ChannelEof(ch.local_id)]

    def _on_close(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelClose.decode(payload)
        ch = self._known(msg.recipient_channel, "CHANNEL_CLOSE")
        if not ch.can(_A.RECEIVE_CLOSE):
            raise ch._misaddressed("CHANNEL_CLOSE")
        if ch.apply(_A.RECEIVE_CLOSE) is ChannelState.CLOSE_RECEIVED:
            self._send_close(ch)  # RFC 4254 §5.3: a CLOSE must be answered with one
        self._release(ch)
        return [ChannelClosed(ch.local_id)]

    def _on_open(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpen.decode(payload)
        body = msg.body()
        if body is None:
            return self._refuse(msg, OpenFailureReason.UNKNOWN_CHANNEL_TYPE, "unknown channel type")
        if self._is_client and isinstance(body, m.Session):
            reason = OpenFailureReason.ADMINISTRATIVELY_PROHIBITED
            return self._refuse(msg, reason, "clients accept no session channels")
        local_id = self._allocate_id()
        if local_id is None:
            return self._refuse(msg, OpenFailureReason.RESOURCE_SHORTAGE, "too many channels")
        ch = self._register(local_id, msg.channel_type, ChannelState.OPEN_REQUESTED, now)
        ch._confirm(msg.sender_channel, self._peer_window(msg.initial_window, msg.max_packet))
        return [ChannelOpenRequested(local_id, msg.channel_type, body)]

    def _refuse(self, msg: m.ChannelOpen, reason: OpenFailureReason, description: str) -> list[ChannelEvent]:
        self._send(m.ChannelOpenFailure(msg.sender_channel, reason, description).encode())
        return []

    def _on_open_confirmation(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpenConfirmation.decode(payload)
        ch = self._opening(msg.recipient_channel, "CHANNEL_OPEN_CONFIRMATION")
        ch._confirm(msg.sender_channel, self._peer_window(msg.initial_window, msg.max_packet))
        ch.apply(_A.OPEN_CONFIRMED)
        if ch._close_when_open:
            self._send_close(ch)
            return []
        return [ChannelOpened(ch.local_id, ch.channel_type)]

    def _on_open_failure(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelOpenFailure.decode(payload)
        ch = self._opening(msg.recipient_channel, "CHANNEL_OPEN_FAILURE")
        ch.apply(_A.OPEN_FAILED)
        self._release(ch)
        description = escape_untrusted_text(msg.description, _MAX_DESCRIPTION)
        return [ChannelOpenFailed(ch.local_id, msg.reason, description)]

    def _on_request(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.ChannelRequest.decode(payload)  # a malformed frame is still a protocol error
        ch = self._addressed(msg.recipient_channel, "CHANNEL_REQUEST")
        if ch._discarding:
            return []  # nothing, not even a reply, may follow our CLOSE
        try:
            body = msg.body()
        except DecodeError as exc:
            # The frame told us the channel, the type and whether a reply is due, so one bad
            # body is refused like any request we decline (RFC 4254 §5.4) instead of ending
            # every channel of the connection.
            self._decline_request(ch, msg.want_reply)
            return [ChannelRequestRejected(ch.local_id, msg.request_type, msg.want_reply, exc.message)]
        if isinstance(body, m.ExitStatus):
            ch._exit_status = body.status
        elif isinstance(body, m.ExitSignal):
            ch._exit_signal = body.signal
        if body is None or isinstance(body, m.Keepalive):
            self._decline_request(ch, msg.want_reply)
            return []
        if msg.want_reply:
            ch._owe_reply(None)
        return [ChannelRequestReceived(ch.local_id, msg.request_type, msg.want_reply, body)]

    def _decline_request(self, ch: Channel, want_reply: bool) -> None:
        """A FAILURE in this request's place among the replies owed, if the peer wants one."""
        if want_reply:
            ch._owe_reply(False)
            self._flush_channel_replies(ch)

    def _request_result(self, payload: bytes, success: bool) -> list[ChannelEvent]:
        reply = m.ChannelSuccess.decode(payload) if success else m.ChannelFailure.decode(payload)
        recipient = reply.recipient_channel
        what = "CHANNEL_SUCCESS" if success else "CHANNEL_FAILURE"
        ch = self._addressed(recipient, what)
        if not ch._awaiting_results:
            raise RemoteProtocolError(f"{what} on channel {recipient}, which has no request awaiting a reply")
        return [ChannelRequestResult(recipient, success, ch._awaiting_results.popleft())]

    def _on_global_request(self, payload: bytes, now: float) -> list[ChannelEvent]:
        msg = m.GlobalRequest.decode(payload)
        body = msg.body()
        if body is None or isinstance(body, m.Keepalive):
            if msg.want_reply:
                self._global_owed.append((False, b""))
                self._flush_global_replies()
            return []
        if msg.want_reply:
            self._global_owed.append(None)
        return [GlobalRequestReceived(msg.name, msg.want_reply, msg.data, body)]

    def _global_result(self, payload: bytes, success: bool, now: float) -> list[ChannelEvent]:
        if success:
            data = m.RequestSuccess.decode(payload).data
        else:
            m.RequestFailure.decode(payload)
            data = b""
        if not self._global_awaiting:
            what = "REQUEST_SUCCESS" if success else "REQUEST_FAILURE"
            raise RemoteProtocolError(f"{what} with no global request awaiting a reply")
        name, keepalive_sent_at = self._global_awaiting.popleft()
        if keepalive_sent_at is not None:
            return [KeepaliveReply(max(0.0, now - keepalive_sent_at))]
        return [GlobalRequestResult(success, data, name)]

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

    def _open(self, body: m.TypedData, now: float) -> int:
        return self.open_channel(body.NAME, body.encode_data(), now)

    def open_channel(self, channel_type: str, type_data: bytes, now: float, window: int | None = None) -> int:
        """Open a channel of any type; ``ChannelOpened`` or ``ChannelOpenFailed`` follows."""
        local_id = self._allocate_id()
        if local_id is None:
            raise LocalProtocolError(f"cannot open a {channel_type} channel: {self._max_channels} are open")
        initial, max_packet = self._window_for(window)
        try:
            ReceiveWindow(initial, max_packet)  # validates the override
            message = m.ChannelOpen(channel_type, local_id, initial, max_packet, type_data)
            encoded = message.encode()
        except LocalProtocolError:
            heappush(self._free_ids, local_id)
            raise
        self._register(local_id, channel_type, ChannelState.OPENING, now, initial)
        self._send(encoded)
        return local_id

    def accept_open(self, local_id: int) -> None:
        ch = self._ours(local_id, "accept an open on")
        if not ch.can(_A.ACCEPT):
            raise LocalProtocolError(f"channel {local_id} is {ch.state.name}, not awaiting an accept")
        remote_id = ch._remote_id
        assert remote_id is not None  # set when the peer's CHANNEL_OPEN arrived
        ch.apply(_A.ACCEPT)
        self._send(
            m.ChannelOpenConfirmation(remote_id, local_id, self._initial_window, self._max_packet).encode()
        )

    def reject_open(self, local_id: int, reason: OpenFailureReason, description: str) -> None:
        ch = self._ours(local_id, "reject an open on")
        if not ch.can(_A.REJECT):
            raise LocalProtocolError(f"channel {local_id} is {ch.state.name}, not awaiting a reject")
        remote_id = ch._remote_id
        assert remote_id is not None
        failure = m.ChannelOpenFailure(remote_id, reason, description).encode()
        ch.apply(_A.REJECT)
        self._release(ch)
        self._send(failure)

    # --- data --------------------------------------------------------------------------

    def send_data(self, local_id: int, data: _Buffer) -> int:
        """Send as much of ``data`` as the peer's window allows now, in max-packet pieces;
        returns how many bytes went (0: wait for ``ChannelWindowOpened``)."""
        ch = self._channels.get(local_id)
        if ch is None or not ch._sending:
            raise self._cannot_send(local_id, "data")
        return self._write(ch, data, ch._data_prefix)

    def send_extended_data(self, local_id: int, data: _Buffer, data_type: int = 1) -> int:
        ch = self._channels.get(local_id)
        if ch is None or not ch._sending:
            raise self._cannot_send(local_id, "extended data")
        if not 0 <= data_type <= WINDOW_MAX:
            raise LocalProtocolError(f"extended data type {data_type} is outside uint32")
        remote_id = ch._remote_id
        assert remote_id is not None  # _sending implies confirmed
        prefix = _EXTENDED_PREFIX.pack(MsgType.CHANNEL_EXTENDED_DATA, remote_id, data_type)
        return self._write(ch, data, prefix)

    def _write(self, ch: Channel, data: _Buffer, prefix: bytes) -> int:
        window = ch._send
        size = len(data)
        total = size if size <= window.available else window.available
        if total <= 0:
            return 0
        window.available -= total
        step = window.max_packet
        ch._bytes_sent += total
        if total <= step:  # the common case: one message, no view needed
            body = data if total == size else memoryview(data)[:total]
            self._send(b"".join((prefix, _pack_u32(total), body)))
            ch._packets_sent += 1
            return total
        view = memoryview(data)
        send = self._send
        for start in range(0, total, step):
            chunk = view[start : start + step if start + step < total else total]
            send(b"".join((prefix, _pack_u32(len(chunk)), chunk)))
        ch._packets_sent += -(-total // step)
        return total

    def consumed(self, local_id: int, size: int) -> bool:
        """The application has read ``size`` received bytes; credit returns to the peer in
        WINDOW_ADJUSTs of at least half the window, so unread data holds the peer back.
        True when a WINDOW_ADJUST was queued, which the driver then has to send."""
        ch = self._ours(local_id, "consume data of")
        if ch._discarding:
            return False
        try:
            increment = ch._recv.consumed(size)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"channel {local_id}: {exc.message}") from None
        remote_id = ch._remote_id
        if increment and remote_id is not None and not ch._eof_received:
            self._send(_WINDOW_ADJUST.pack(MsgType.CHANNEL_WINDOW_ADJUST, remote_id, increment))
            return True
        return False

    def send_eof(self, local_id: int) -> None:
        """Half-close our direction; repeated calls and calls after ``close`` do nothing."""
        ch = self._ours(local_id, "send EOF on")
        if ch.eof_sent or ch.close_sent:
            return
        if not ch.can(_A.SEND_EOF):
            raise LocalProtocolError(f"cannot send EOF on channel {local_id} in state {ch.state.name}")
        ch.apply(_A.SEND_EOF)
        self._send(_RECIPIENT_ONLY.pack(MsgType.CHANNEL_EOF, ch._remote_id))

    def close(self, local_id: int) -> None:
        """Start closing; ``ChannelClosed`` follows once the peer's CLOSE arrives. A channel
        still opening is closed as soon as it is confirmed."""
        ch = self._ours(local_id, "close")
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

    def send_request(self, local_id: int, request: m.TypedData, want_reply: bool) -> None:
        """With ``want_reply`` a ``ChannelRequestResult`` follows, in the order requests were sent."""
        ch = self._ours(local_id, f"send a {request.NAME} request on")
        if ch.state not in PEER_ADDRESSABLE or ch.close_sent:
            raise LocalProtocolError(
                f"cannot send a {request.NAME} request on channel {local_id} in state {ch.state.name}"
            )
        remote_id = ch._remote_id
        assert remote_id is not None
        self._send(m.ChannelRequest.of(remote_id, request, want_reply).encode())
        if want_reply:
            ch._awaiting_results.append(request.NAME)

    def reply_request(self, local_id: int, success: bool) -> None:
        """Answer the oldest unanswered want_reply ``ChannelRequestReceived`` of the channel."""
        ch = self._ours(local_id, "reply to a request on")
        if ch._discarding:
            return  # our CLOSE went out: the peer expects no more replies
        ch._decide_reply(success)
        self._flush_channel_replies(ch)

    def _flush_channel_replies(self, ch: Channel) -> None:
        for success in ch._ready_replies():
            kind = MsgType.CHANNEL_SUCCESS if success else MsgType.CHANNEL_FAILURE
            self._send(_RECIPIENT_ONLY.pack(kind, ch._remote_id))

    def global_request(self, name: str, data: bytes, want_reply: bool) -> None:
        """With ``want_reply`` a ``GlobalRequestResult`` follows, in the order requests were sent."""
        self._send(m.GlobalRequest(name, want_reply, data).encode())
        if want_reply:
            self._global_awaiting.append((name, None))

    def reply_global(self, success: bool, data: bytes = b"") -> None:
        """Answer the oldest unanswered want_reply ``GlobalRequestReceived``."""
        if data and not success:
            raise LocalProtocolError("a REQUEST_FAILURE carries no data")
        owed = self._global_owed
        try:
            owed[owed.index(None)] = (success, bytes(data))
        except ValueError:
            raise LocalProtocolError("no global request awaits a reply") from None
        self._flush_global_replies()

    def _flush_global_replies(self) -> None:
        owed = self._global_owed
        while owed and owed[0] is not None:
            reply = owed.popleft()
            assert reply is not None
            success, data = reply
            self._send(m.RequestSuccess(data).encode() if success else m.RequestFailure().encode())

    def send_keepalive(self, now: float) -> None:
        """Ask the peer for any reply; ``KeepaliveReply`` carries the round trip time."""
        self._send(m.GlobalRequest.of(m.Keepalive(), want_reply=True).encode())
        self._global_awaiting.append((m.Keepalive.NAME, now))

    # --- state -------------------------------------------------------------------------

    def channel(self, local_id: int) -> Channel:
        """The live channel, to read only."""
        return self._ours(local_id, "look up")

    def writable(self, local_id: int) -> int:
        """How many bytes ``send_data`` would accept now."""
        return self._ours(local_id, "query").writable

    def snapshot(self, now: float) -> tuple[ChannelSnapshot, ...]:
        return tuple(snapshot_channel(self._channels[i], now) for i in sorted(self._channels))

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    # --- bookkeeping -------------------------------------------------------------------

    def _allocate_id(self) -> int | None:
        if len(self._channels) >= self._max_channels:
            return None
        if self._free_ids:
            return heappop(self._free_ids)
        # Every id below _next_id is in use, so ids stay below max_channels.
        self._next_id += 1
        return self._next_id - 1

    def _register(
        self, local_id: int, channel_type: str, state: ChannelState, now: float, window: int | None = None
    ) -> Channel:
        initial, max_packet = self._window_for(window)
        recv = ReceiveWindow(initial, max_packet)
        ch = self._channels[local_id] = Channel(local_id, channel_type, state, recv, now)
        return ch

    def _window_for(self, window: int | None) -> tuple[int, int]:
        """(initial window, max packet) for a new channel: the defaults unless overridden."""
        if window is None:
            return self._initial_window, self._max_packet
        return window, min(self._max_packet, max(window, 1))

    def _release(self, ch: Channel) -> None:
        del self._channels[ch.local_id]
        heappush(self._free_ids, ch.local_id)

    def _peer_window(self, initial_window: int, max_packet: int) -> SendWindow:
        # A zero max packet would stall the channel forever; above ours we could not send it.
        return SendWindow(initial_window, min(max(max_packet, 1), self._max_packet))

    def _ours(self, local_id: int, action: str) -> Channel:
        ch = self._channels.get(local_id)
        if ch is None:
            raise LocalProtocolError(f"cannot {action} channel {local_id}: no such channel")
        return ch

    def _cannot_send(self, local_id: int, what: str) -> LocalProtocolError:
        ch = self._channels.get(local_id)
        state = "no such channel" if ch is None else f"it is {ch.state.name}"
        return LocalProtocolError(f"cannot send {what} on channel {local_id}: {state}")

    def _known(self, recipient: int, what: str) -> Channel:
        ch = self._channels.get(recipient)
        if ch is None:
            raise RemoteProtocolError(f"{what} for unknown channel {recipient}")
        return ch

    def _addressed(self, recipient: int, what: str) -> Channel:
        """The channel a peer message names, which the peer must know and not have closed."""
        ch = self._known(recipient, what)
        if ch.state not in PEER_ADDRESSABLE:
            raise ch._misaddressed(what)
        return ch

    def _opening(self, recipient: int, what: str) -> Channel:
        ch = self._channels.get(recipient)
        if ch is None or ch.state is not ChannelState.OPENING:
            raise RemoteProtocolError(f"{what} for channel {recipient}, which we are not opening")
        return ch
