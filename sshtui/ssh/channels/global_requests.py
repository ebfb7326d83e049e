"""Global requests of one connection, in both directions (RFC 4254 §4; OpenSSH PROTOCOL §2
keepalive@openssh.com).

Replies carry no request name: they are matched to requests purely by order. So a request
the driver never sees (keepalive@openssh.com, an unknown type) is answered with a failure in
its place in the queue rather than ahead of earlier ones, and a reply the driver gives is held
back until every earlier request has been answered.

A request whose frame decodes but whose type-specific data does not (a tcpip-forward port
above 65535, a truncated hostkeys-00@openssh.com blob...) is refused the same way and reported
as ``GlobalRequestRejected``; only a malformed frame, without its want-reply byte say, ends
the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sshtui.ssh.channels.events import (
    ChannelEvent,
    GlobalRequestReceived,
    GlobalRequestRejected,
    GlobalRequestResult,
    KeepaliveReply,
)
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages import connection as m
from sshtui.ssh.messages.channel_requests import Keepalive


class GlobalRequests:
    """Our global requests awaiting replies, and our replies owed to the peer's."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        # Our want_reply requests, oldest first: (name, send time if it is our keepalive).
        self._awaiting: deque[tuple[str, float | None]] = deque()
        # Our replies to the peer's want_reply requests: None until the driver decides.
        self._owed: deque[tuple[bool, bytes] | None] = deque()

    # --- incoming ----------------------------------------------------------------------

    def on_request(self, payload: bytes, now: float) -> list[ChannelEvent]:
        """A GLOBAL_REQUEST from the peer."""
        msg = m.GlobalRequest.decode(payload)  # a malformed frame is still a protocol error
        try:
            body = msg.body()
        except DecodeError as exc:
            # The frame said whether a reply is due, which is all the reply order needs.
            self._decline(msg.want_reply)
            return [GlobalRequestRejected(msg.name, msg.want_reply, exc.message)]
        if body is None or isinstance(body, Keepalive):
            self._decline(msg.want_reply)
            return []
        if msg.want_reply:
            self._owed.append(None)
        return [GlobalRequestReceived(msg.name, msg.want_reply, msg.data, body)]

    def on_result(self, payload: bytes, success: bool, now: float) -> list[ChannelEvent]:
        """A REQUEST_SUCCESS or REQUEST_FAILURE from the peer."""
        if success:
            data = m.RequestSuccess.decode(payload).data
        else:
            m.RequestFailure.decode(payload)
            data = b""
        if not self._awaiting:
            what = "REQUEST_SUCCESS" if success else "REQUEST_FAILURE"
            raise RemoteProtocolError(f"{what} with no global request awaiting a reply")
        name, keepalive_sent_at = self._awaiting.popleft()
        if keepalive_sent_at is not None:
            return [KeepaliveReply(max(0.0, now - keepalive_sent_at))]
        return [GlobalRequestResult(success, data, name)]

    # --- outgoing ----------------------------------------------------------------------

    def request(self, name: str, data: bytes, want_reply: bool) -> None:
        self._send(m.GlobalRequest(name, want_reply, data).encode())
        if want_reply:
            self._awaiting.append((name, None))

    def reply(self, success: bool, data: bytes) -> None:
        if data and not success:
            raise LocalProtocolError("a REQUEST_FAILURE carries no data")
        owed = self._owed
        try:
            owed[owed.index(None)] = (success, bytes(data))
        except ValueError:
            raise LocalProtocolError("no global request awaits a reply") from None
        self._flush()

    def send_keepalive(self, now: float) -> None:
        self._send(m.GlobalRequest.of(Keepalive(), want_reply=True).encode())
        self._awaiting.append((Keepalive.NAME, now))

    def _decline(self, want_reply: bool) -> None:
        """A REQUEST_FAILURE in this request's place among the replies owed, if one is wanted."""
        if want_reply:
            self._owed.append((False, b""))
            self._flush()

    def _flush(self) -> None:
        owed = self._owed
        while owed and owed[0] is not None:
            reply = owed.popleft()
            assert reply is not None
            success, data = reply
            self._send(m.RequestSuccess(data).encode() if success else m.RequestFailure().encode())
