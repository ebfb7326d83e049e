"""TCP forwarding in the embedded server (RFC 4254 §7): direct-tcpip channels for the
client's ``-L``/``-D``, tcpip-forward listeners and forwarded-tcpip channels for ``-R``.

By default both ends stay on this machine: direct-tcpip may only reach a loopback target and
listeners bind only to loopback, unless the server was started with the options that allow
more. Each socket is bridged to its channel with back-pressure both ways: the socket is not
read while the channel window is shut, and channel data is credited back only once the socket
has taken it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sshtui.net.server_channel import ChannelLink
from sshtui.ssh.channels.events import GlobalRequestReceived
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import connection as m

log = logging.getLogger("sshtui.server")

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
CONNECT_TIMEOUT = 10.0
MAX_LISTENERS = 16
_PENDING_LIMIT = 256 * 1024  # socket bytes held while the channel opens or its window is shut


def target_allowed(host: str, allow_any: bool) -> bool:
    return allow_any or host.lower() in LOOPBACK_NAMES


class SocketBridge(asyncio.Protocol):
    """A TCP socket joined to one channel. Works for both directions of opening: the
    socket may exist before the channel is confirmed (forwarded-tcpip) or after (direct)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.link: ChannelLink | None = None
        self._sock: asyncio.Transport | None = None
        self._pending = bytearray()
        self._reading_paused = False
        self._write_paused = False
        self._uncredited = 0  # channel bytes the socket buffered while over its high-water mark
        self._socket_eof = False
        self._socket_gone = False
        self._channel_eof = False
        self._eof_sent = False
        self._channel_gone = False

    # -- socket side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._sock = transport
        if self.link is None:
            self._pause_reading()  # nowhere to send yet

    def data_received(self, data: bytes) -> None:
        if self._pending or self.link is None:
            self._pending += data
            if len(self._pending) >= _PENDING_LIMIT:
                self._pause_reading()
            return
        sent = self.link.send(data)
        if sent < len(data):
            self._pending += data[sent:]
            self._pause_reading()
        self.link.flush()

    def eof_received(self) -> bool:
        self._socket_eof = True
        self._after_pending()
        return True  # keep our direction open: the channel may still carry data to the socket

    def connection_lost(self, exc: Exception | None) -> None:
        self._socket_gone = self._socket_eof = True
        self._after_pending()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        credit, self._uncredited = self._uncredited, 0
        if self.link is not None and credit:
            self.link.consumed(credit)
            self.link.flush()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._sock is not None and not self._sock.is_closing():
            self._reading_paused = True
            self._sock.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._sock is not None and not self._sock.is_closing():
            self._reading_paused = False
            self._sock.resume_reading()

    # -- channel side

    def on_open(self, link: ChannelLink) -> None:
        self.link = link
        if self._pending:
            self.on_window()
        else:
            self._resume_reading()
            self._after_pending()

    def on_open_failed(self, description: str) -> None:
        log.info("%s: the client refused the forwarded connection: %s", self.label, description)
        self._channel_gone = True
        if self._sock is not None:
            self._sock.abort()

    def on_data(self, data: bytes, data_type: int | None) -> None:
        assert self.link is not None
        if self._sock is None or self._sock.is_closing():
            self.link.consumed(len(data))
            return
        self._sock.write(data)
        if self._write_paused:
            self._uncredited += len(data)
        else:
            self.link.consumed(len(data))

    def on_eof(self) -> None:
        self._channel_eof = True
        sock = self._sock
        if sock is None or sock.is_closing():
            return
        if sock.can_write_eof():
            sock.write_eof()
        if self._socket_eof:
            sock.close()

    def on_window(self) -> None:
        link = self.link
        if link is None:
            return
        if self._pending:
            sent = link.send(self._pending)
            del self._pending[:sent]
            link.flush()
        if not self._pending:
            self._resume_reading()
            self._after_pending()

    def on_request(self, body: m.TypedData) -> bool:
        return False

    def on_closed(self) -> None:
        self._channel_gone = True
        if self._sock is not None and not self._sock.is_closing():
            self._sock.close()  # sends what the socket still buffers, then closes

    def _after_pending(self) -> None:
        """Once everything read from the socket went out: pass its EOF or its end on."""
        link = self.link
        if link is None or self._pending or self._channel_gone:
            return
        if self._socket_eof and not self._eof_sent:
            self._eof_sent = True
            link.send_eof()
        if self._socket_gone or (self._socket_eof and self._channel_eof):
            self._channel_gone = True
            link.close()
            if self._sock is not None and not self._sock.is_closing():
                self._sock.close()
        link.flush()


async def connect_direct(host: str, port: int, bridge: SocketBridge) -> None:
    """Connect ``bridge`` to the target; OSError or TimeoutError when that fails."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(CONNECT_TIMEOUT):
        await loop.create_connection(lambda: bridge, host, port)


OpenForwarded = Callable[[m.ForwardedTcpip, SocketBridge], None]


class RemoteForwards:
    """The tcpip-forward listeners of one connection (RFC 4254 §7.1)."""

    def __init__(self, open_forwarded: OpenForwarded, allow_any_bind: bool, label: str) -> None:
        self._open_forwarded = open_forwarded
        self._allow_any_bind = allow_any_bind
        self._label = label
        self._listeners: dict[tuple[str, int], asyncio.Server] = {}

    async def listen(self, address: str, port: int) -> int | None:
        """Start listening as asked; the bound port, or None (refused or failed, and logged)."""
        label = self._label
        if address.lower() not in LOOPBACK_NAMES and not self._allow_any_bind:
            log.warning(
                "%s: tcpip-forward on %.64r refused: only loopback addresses may be bound "
                "(start the server with --allow-forward-bind-any to allow more)", label, address,
            )
            return None
        if len(self._listeners) >= MAX_LISTENERS:
            log.warning("%s: tcpip-forward refused: %d listeners already", label, MAX_LISTENERS)
            return None
        if (address, port) in self._listeners:
            log.info("%s: tcpip-forward refused: %.64r port %d is forwarded already", label, address, port)
            return None
        bind: str | None = "127.0.0.1" if address.lower() == "localhost" else address
        if bind in ("", "*"):
            bind = None  # every interface, as the client asked (allowed above)
        loop = asyncio.get_running_loop()

        def factory() -> SocketBridge:
            return _IncomingBridge(self, address)

        try:
            server = await loop.create_server(factory, bind, port, reuse_address=True)
        except OSError as exc:
            log.info("%s: tcpip-forward %.64r port %d failed: %s", label, address, port, exc.strerror or exc)
            return None
        bound = server.sockets[0].getsockname()[1]
        self._listeners[(address, port if port else bound)] = server
        log.info("%s: listening on %.64r port %d for the client (-R)", label, address, bound)
        return int(bound)

    def cancel(self, address: str, port: int) -> bool:
        server = self._listeners.pop((address, port), None)
        if server is None:
            log.info("%s: cancel-tcpip-forward %.64r port %d: no such forward", self._label, address, port)
            return False
        server.close()
        log.info("%s: stopped listening on %.64r port %d", self._label, address, port)
        return True

    def incoming(self, address: str, bridge: SocketBridge, sock: asyncio.Transport) -> None:
        local = sock.get_extra_info("sockname") or ("", 0)
        peer = sock.get_extra_info("peername") or ("", 0)
        body = m.ForwardedTcpip(address, int(local[1]), str(peer[0]), int(peer[1]))
        self._open_forwarded(body, bridge)

    def close(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()


class _IncomingBridge(SocketBridge):
    """A connection accepted on a tcpip-forward listener: it asks for its channel at once."""

    def __init__(self, forwards: RemoteForwards, address: str) -> None:
        super().__init__(f"{forwards._label} forwarded")
        self._forwards = forwards
        self._address = address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        try:
            self._forwards.incoming(self._address, self, transport)
        except SSHError as exc:  # the connection is closing or has too many channels
            log.info("%s: cannot forward a new connection: %s", self.label, exc.message)
            transport.abort()


class ForwardRequests:
    """tcpip-forward and cancel-tcpip-forward (RFC 4254 §7.1) and refusals of other global
    requests. Replies must go out in arrival order though binding a listener takes a moment,
    so each answer waits for the previous one."""

    def __init__(
        self,
        forwards: RemoteForwards,
        reply: Callable[[bool, bytes], None],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        label: str,
    ) -> None:
        self._forwards = forwards
        self._reply = reply
        self._spawn = spawn
        self._label = label
        self._last: asyncio.Task[None] | None = None

    def handle(self, event: GlobalRequestReceived) -> None:
        body = event.request
        if isinstance(body, m.CancelTcpipForward):
            self._answer(event.want_reply, _ready(self._forwards.cancel(body.address, body.port), b""))
        elif isinstance(body, m.TcpipForward):
            self._answer(event.want_reply, self._listen(body))
        else:
            log.info("%s: global request %.64r refused: not supported", self._label, event.name)
            self._answer(event.want_reply, _ready(False, b""))

    async def _listen(self, body: m.TcpipForward) -> tuple[bool, bytes]:
        bound = await self._forwards.listen(body.address, body.port)
        if bound is None:
            return False, b""
        # The reply carries the port only when the client let us choose it.
        return True, (bound.to_bytes(4, "big") if body.port == 0 else b"")

    def _answer(self, want_reply: bool, work: Coroutine[Any, Any, tuple[bool, bytes]]) -> None:
        previous = self._last

        async def answer() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            ok, data = await work
            if want_reply:
                self._reply(ok, data)

        self._last = self._spawn(answer())


async def _ready(ok: bool, data: bytes) -> tuple[bool, bytes]:
    return ok, data
