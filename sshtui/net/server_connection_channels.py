"""The channels of one embedded-server connection (RFC 4254): which channel opens the client
may make (§6.1 sessions, up to ``max_sessions``; §7.2 direct-tcpip, to loopback targets unless
``allow_forward_to_any``), the forwarded-tcpip channels we open to it (§7.2), routing channel
requests to their handlers (§5.4) and replying to global requests (§4).

``ConnectionHandler`` inherits these; its socket, event dispatch and lifecycle live in
``sshtui.net.server_connection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sshtui.net.server_channel import ChannelHandler, ChannelLink
from sshtui.net.server_forward import SocketBridge, connect_direct, target_allowed
from sshtui.net.server_session import SessionHandler, SessionPolicy
from sshtui.ssh.channels import events as ce
from sshtui.ssh.connection import ServerConnection
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.errors import LocalProtocolError
from sshtui.ssh.messages import connection as m

if TYPE_CHECKING:
    from sshtui.net.server import ServerOptions

log = logging.getLogger("sshtui.server")


class ConnectionChannels:
    """Channel methods of ``ConnectionHandler``, over the state it keeps."""

    conn: ServerConnection
    options: ServerOptions
    label: str
    _loop: asyncio.AbstractEventLoop
    _policy: SessionPolicy
    _handlers: dict[int, ChannelHandler]
    _sessions: dict[int, SessionHandler]
    _unreaped: set[SessionHandler]  # sessions whose program may still run
    _opening: dict[int, SocketBridge]  # forwarded-tcpip channels awaiting the client
    _flush: Callable[[], None]
    _backed_up: Callable[[], bool]
    _spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]

    def _link(self, local_id: int, what: str) -> ChannelLink:
        layer = self.conn.require_channels()
        return ChannelLink(layer, local_id, self._flush, f"{self.label} ch{local_id} {what}", self._backed_up)

    def _on_open_request(self, event: ce.ChannelOpenRequested) -> None:
        layer = self.conn.require_channels()
        body, local_id = event.type_data, event.local_id
        if isinstance(body, m.Session):
            limit = self.options.max_sessions
            if len(self._sessions) >= limit:
                log.warning("%s: session refused: %d sessions open already", self.label, len(self._sessions))
                shortage = OpenFailureReason.RESOURCE_SHORTAGE
                layer.reject_open(local_id, shortage, f"too many sessions (limit {limit})")
                return
            session = SessionHandler(self._link(local_id, "session"), self._policy)
            self._sessions[local_id] = session
            self._unreaped.add(session)
            session.reaped.add_done_callback(lambda _: self._unreaped.discard(session))
            self._handlers[local_id] = session
            layer.accept_open(local_id)
        elif type(body) is m.DirectTcpip:  # not its subclass ForwardedTcpip, which only servers open
            if not target_allowed(body.address, self.options.allow_forward_to_any):
                log.warning("%s: direct-tcpip to %.64r port %d refused: not a loopback address "
                            "(start the server with --allow-forward-to-any to allow it)",
                            self.label, body.address, body.port)
                layer.reject_open(local_id, OpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
                                  "forwarding is allowed to this machine's loopback addresses only")
                return
            self._spawn(self._connect_direct(local_id, body))
        else:
            log.info("%s: %.64r channel refused: not supported", self.label, event.channel_type)
            layer.reject_open(local_id, OpenFailureReason.UNKNOWN_CHANNEL_TYPE,
                              f"{event.channel_type[:64]} channels are not supported")

    async def _connect_direct(self, local_id: int, body: m.DirectTcpip) -> None:
        target = f"{body.address!r:.66}:{body.port}"
        bridge = SocketBridge(f"{self.label} ch{local_id} -> {target}")
        try:
            await connect_direct(body.address, body.port, bridge)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            log.info("%s: direct-tcpip to %s failed: %s", self.label, target, reason)
            if not self.conn.is_closed:
                failed, description = OpenFailureReason.CONNECT_FAILED, f"connect to {target}: {reason}"
                self.conn.require_channels().reject_open(local_id, failed, description)
                self._flush()
            return
        if self.conn.is_closed:
            bridge.on_closed()
            return
        self.conn.require_channels().accept_open(local_id)
        link = self._link(local_id, f"direct-tcpip {target}")
        self._handlers[local_id] = bridge
        log.info("%s: forwarding to %s", link.label, target)
        bridge.on_open(link)
        self._flush()

    def _open_forwarded(self, body: m.ForwardedTcpip, bridge: SocketBridge) -> None:
        if self.conn.is_closed:
            raise LocalProtocolError("the connection is closing")
        layer = self.conn.require_channels()
        local_id = layer.open_forwarded_tcpip(
            body.address, body.port, body.originator_address, body.originator_port, self._loop.time()
        )
        self._opening[local_id] = bridge
        self._flush()

    def _on_our_open_answered(self, event: ce.ChannelOpened | ce.ChannelOpenFailed) -> None:
        bridge = self._opening.pop(event.local_id, None)
        if bridge is None:
            return
        if isinstance(event, ce.ChannelOpenFailed):
            bridge.on_open_failed(event.description)
            return
        self._handlers[event.local_id] = bridge
        bridge.on_open(self._link(event.local_id, "forwarded-tcpip"))

    def _on_channel_request(self, event: ce.ChannelRequestReceived) -> None:
        handler = self._handlers.get(event.local_id)
        ok = handler.on_request(event.request) if handler is not None else False
        if event.want_reply:
            with contextlib.suppress(LocalProtocolError):
                self.conn.require_channels().reply_request(event.local_id, ok)

    def _reply_global(self, ok: bool, data: bytes) -> None:
        if not self.conn.is_closed:
            self.conn.require_channels().reply_global(ok, data)
            self._flush()
