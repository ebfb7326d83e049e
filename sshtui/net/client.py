"""The asyncio client driver: ``SSHClient`` feeds socket bytes into the sans-IO
``ClientConnection`` and writes what it wants sent (RFC 4253 §4 over TCP).

``sshtui.net.client_connect.connect()`` makes one and sees it through the handshake; the channel
methods come from ``sshtui.net.client_channels``. Once connected, keepalives (ServerAliveInterval)
and the rekey timer run on the loop clock. Snapshots are published at a bounded rate.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from sshtui.net.auth import AuthOptions
from sshtui.net.channel import Channel, ChannelOpenError
from sshtui.net.client_channels import ClientChannels
from sshtui.ssh.channels import events as ce
from sshtui.ssh.config import TransportConfig
from sshtui.ssh.connection import AuthReady, ClientConnection, ConnectionSnapshot, Event
from sshtui.ssh.constants import DisconnectReason, OpenFailureReason
from sshtui.ssh.errors import ConnectionClosedError, HostKeyRejected, SSHError
from sshtui.ssh.events import Disconnected, HostKeyReceived, KexCompleted
from sshtui.ssh.messages import connection as m
from sshtui.ssh.userauth_events import (
    AuthBanner,
    AuthFailed,
    AuthSucceeded,
    InfoRequested,
    PasswordChangeRequested,
    PublicKeyAccepted,
)

HostKeyVerifier = Callable[[str, int, str, bytes], Awaitable[object]]
HOST_KEYS_GRACE_SECONDS = 5.0
SnapshotCallback = Callable[[ConnectionSnapshot], None]
_AUTH_EVENTS = (
    AuthBanner,
    AuthFailed,
    AuthSucceeded,
    PublicKeyAccepted,
    PasswordChangeRequested,
    InfoRequested,
)


@dataclass
class ClientOptions:
    host: str
    port: int = 22
    username: str = ""
    transport: TransportConfig = field(default_factory=TransportConfig)
    auth: AuthOptions = field(default_factory=AuthOptions)
    verify_host_key: HostKeyVerifier | None = None  # None accepts any key: tests and demos only
    connect_timeout: float | None = 30.0
    server_alive_interval: float = 0.0
    server_alive_count_max: int = 3
    on_snapshot: SnapshotCallback | None = None
    snapshot_interval: float = 0.25
    sock: Any = None  # an already connected socket-like transport target (jump hosts)
    # Instead of TCP: given the protocol factory, connect it to some transport (ProxyJump channels).
    open_transport: Callable[[Callable[[], asyncio.Protocol]], Awaitable[object]] | None = None
    # hostkeys-00@openssh.com from the server (UpdateHostKeys): see net/hostkey_rotation.py.
    on_host_keys: Callable[[SSHClient, m.Hostkeys], Coroutine[Any, Any, object]] | None = None
    # Handed the client as soon as it exists, before the TCP connect: when connect() raises, what it
    # had learnt (timeline, negotiated algorithms, auth attempts) stays readable (``--stats-json``).
    on_client: Callable[[SSHClient], None] | None = None


class SSHClient(ClientChannels):
    """A connected, authenticated client. Create with ``await client_connect.connect(options)``."""

    def __init__(self, options: ClientOptions):
        self.options = options
        username = options.username or _local_user()
        self.conn = ClientConnection(username, options.transport, rng=os.urandom)
        self._loop = asyncio.get_running_loop()
        self._sock: asyncio.Transport | None = None
        self._channels: dict[int, Channel] = {}
        self._auth_events: asyncio.Queue[Any] = asyncio.Queue()
        self._auth_ready: asyncio.Future[None] = self._loop.create_future()
        self._host_key_task: asyncio.Task[None] | None = None
        self._host_keys_task: asyncio.Task[object] | None = None
        self.server_host_key: bytes | None = None  # the key (or certificate) blob the server proved
        self.host_key_outcome: object = None  # what verify_host_key returned for it
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.error: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._dirty = True
        self._last_receive = self._loop.time()
        self._keepalive_missed = 0
        self.keepalive_rtt: float | None = None
        self._global_waiters: list[asyncio.Future[tuple[bool, bytes]]] = []
        self.on_channel_open_request: Callable[[ce.ChannelOpenRequested], None] | None = None

    @property
    def keepalives_unanswered(self) -> int:
        """Keepalives sent since the server last sent anything; at ``server_alive_count_max`` the
        connection is dropped (ServerAliveCountMax). Any bytes from the server reset it to 0."""
        return self._keepalive_missed

    # -- socket side

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._sock = transport
        self.conn.start(self._loop.time())
        self._flush()
        if self.options.on_snapshot is not None and self._snapshot_task is None:
            # From the start, so that a UI sees each handshake phase as it happens.
            self._snapshot_task = self._loop.create_task(self._snapshot_loop())

    def _data_received(self, data: bytes) -> None:
        self._received(data, 0)

    def _received_into(self, size: int) -> None:
        self._received(None, size)

    def _received(self, data: bytes | None, size: int) -> None:
        """Bytes pushed to us (``data``), or ``size`` bytes read into the receive buffer."""
        now = self._loop.time()
        self._last_receive = now
        self._keepalive_missed = 0
        conn = self.conn
        try:
            events = conn.received_into(size, now) if data is None else conn.receive_data(data, now)
        except SSHError as exc:  # misuse inside the core: treat as fatal, never a traceback
            self._fail(exc)
            return
        self._dispatch(events)
        self._flush()

    def _connection_lost(self, exc: Exception | None) -> None:
        if not self.conn.is_closed:
            self._dispatch(self.conn.receive_data(b"", self._loop.time()))
        self._finish(self.error or ConnectionClosedError(f"connection lost{': ' + str(exc) if exc else ''}"))

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._sock is not None and not self._sock.is_closing():
            self._sock.write(data)
        if self.conn.is_closed and self._sock is not None:
            self._sock.close()

    # -- events

    def _dispatch(self, events: Sequence[Event]) -> None:
        if events:
            self._dirty = True
        for event in events:
            if isinstance(event, ce.ChannelData):
                channel = self._channels.get(event.local_id)
                if channel is not None:
                    channel.on_data(event.data, event.data_type)
            elif isinstance(event, ce.ChannelWindowOpened):
                channel = self._channels.get(event.local_id)
                if channel is not None:
                    channel.on_window()
            elif isinstance(event, _AUTH_EVENTS):
                self._auth_events.put_nowait(event)
            else:
                self._dispatch_other(event)

    def _dispatch_other(self, event: Event) -> None:
        if isinstance(event, HostKeyReceived):
            self._host_key_task = self._loop.create_task(self._check_host_key(event))
        elif isinstance(event, AuthReady):
            if not self._auth_ready.done():
                self._auth_ready.set_result(None)
        elif isinstance(event, KexCompleted):
            self._schedule_rekey_timer()
        elif isinstance(event, Disconnected):
            error = event.error or ConnectionClosedError(
                f"disconnected by the server: {event.description or 'no reason given'}"
            )
            self._finish(error)
        elif isinstance(event, ce.ChannelOpened):
            channel = self._channels.get(event.local_id)
            if channel is not None and not channel.opened.done():
                channel.opened.set_result(None)
        elif isinstance(event, ce.ChannelOpenFailed):
            channel = self._channels.pop(event.local_id, None)
            if channel is not None:
                channel.on_closed(ChannelOpenError(event.reason, event.description))
        elif isinstance(event, ce.ChannelEof):
            channel = self._channels.get(event.local_id)
            if channel is not None:
                channel.on_eof()
        elif isinstance(event, ce.ChannelClosed):
            channel = self._channels.pop(event.local_id, None)
            if channel is not None:
                channel.on_closed()
        elif isinstance(event, ce.ChannelRequestReceived):
            self._on_channel_request(event)
        elif isinstance(event, ce.ChannelRequestResult):
            channel = self._channels.get(event.local_id)
            if channel is not None:
                channel.on_request_result(event.success)
        elif isinstance(event, ce.KeepaliveReply):
            self.keepalive_rtt = event.rtt_seconds
        elif isinstance(event, ce.GlobalRequestResult):
            if self._global_waiters:
                waiter = self._global_waiters.pop(0)
                if not waiter.done():
                    waiter.set_result((event.success, event.data))
        elif isinstance(event, ce.GlobalRequestReceived):
            if event.want_reply:
                self.conn.require_channels().reply_global(False)
            elif type(event.request) is m.Hostkeys and self._host_keys_task is None:
                handler = self.options.on_host_keys
                if handler is not None:
                    self._host_keys_task = self._loop.create_task(handler(self, event.request))
        elif isinstance(event, ce.ChannelOpenRequested):
            if self.on_channel_open_request is not None:
                self.on_channel_open_request(event)
            else:
                self.conn.require_channels().reject_open(
                    event.local_id,
                    OpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
                    "not expected by this client",
                )

    def _on_channel_request(self, event: ce.ChannelRequestReceived) -> None:
        channel = self._channels.get(event.local_id)
        body = event.request
        if channel is not None:
            if isinstance(body, m.ExitStatus):
                channel.on_exit_status(body.status)
            elif isinstance(body, m.ExitSignal):
                channel.on_exit_signal(body.signal, body.core_dumped, body.error_message)
        if event.want_reply:
            self.conn.require_channels().reply_request(event.local_id, False)

    async def _check_host_key(self, event: HostKeyReceived) -> None:
        verifier = self.options.verify_host_key
        try:
            if verifier is not None:
                host, port = self.options.host, self.options.port
                self.host_key_outcome = await verifier(host, port, event.algorithm, event.key_blob)
            self.server_host_key = event.key_blob
        except HostKeyRejected as exc:
            self._dispatch(self.conn.reject_host_key(exc.message, self._loop.time()))
            self._flush()
            self._finish(exc)
            return
        except Exception as exc:
            rejected = HostKeyRejected(f"host key check failed: {exc}")
            self._dispatch(self.conn.reject_host_key(rejected.message, self._loop.time()))
            self._flush()
            self._finish(rejected)
            return
        self._dispatch(self.conn.accept_host_key(self._loop.time()))
        self._flush()

    # -- timers

    def _schedule_rekey_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.conn.transport.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        if self.conn.is_closed:
            return
        self._dispatch(self.conn.tick(self._loop.time()))
        self._flush()
        self._schedule_rekey_timer()

    async def _keepalive_loop(self) -> None:
        interval = self.options.server_alive_interval
        while not self.closed.done():
            await asyncio.sleep(interval)
            if self._loop.time() - self._last_receive < interval:
                continue
            if self._keepalive_missed >= self.options.server_alive_count_max:
                self._fail(ConnectionClosedError(f"Timeout, server {self.options.host} not responding."))
                return
            self._keepalive_missed += 1
            try:
                self.conn.require_channels().send_keepalive(self._loop.time())
            except SSHError:
                return
            self._flush()

    async def _snapshot_loop(self) -> None:
        callback = self.options.on_snapshot
        assert callback is not None
        while not self.closed.done():
            if self._dirty:
                self._dirty = False
                callback(self.snapshot())
            await asyncio.sleep(self.options.snapshot_interval)
        callback(self.snapshot())

    # -- lifecycle

    def _fail(self, error: BaseException) -> None:
        if not self.conn.is_closed:
            reason = getattr(error, "reason", DisconnectReason.BY_APPLICATION)
            self.conn.transport.disconnect(reason, str(error)[:200], self._loop.time())
            self._flush()
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if self.closed.done():
            return
        self.error = self.error or error
        for channel in list(self._channels.values()):
            channel.on_closed(ConnectionClosedError(str(error)) if error else None)
        self._channels.clear()
        for waiter in self._global_waiters:
            if not waiter.done():
                waiter.set_result((False, b""))
        if not self._auth_ready.done():
            self._auth_ready.set_exception(error or ConnectionClosedError("connection closed"))
            self._auth_ready.exception()
        self._auth_events.put_nowait(None)
        if self._timer is not None:
            self._timer.cancel()
        self.closed.set_result(None)
        if self._sock is not None:
            self._flush()  # the DISCONNECT a protocol error queued goes out before the socket closes
            self._sock.close()

    def snapshot(self) -> ConnectionSnapshot:
        return self.conn.snapshot()

    async def close(self) -> None:
        rotation = self._host_keys_task
        if rotation is not None and not rotation.done() and not self.closed.done():
            # Let a host key update that is under way finish: it is one round trip.
            await asyncio.wait({rotation}, timeout=HOST_KEYS_GRACE_SECONDS)
        if not self.closed.done():
            self.conn.disconnect("closed by user", self._loop.time())
            self._flush()
            self._finish(None)
        for task in (self._keepalive_task, self._snapshot_task, self._host_key_task, self._host_keys_task):
            if task is not None and not task.done():
                task.cancel()

    async def __aenter__(self) -> SSHClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def request_rekey(self) -> bool:
        started = self.conn.transport.request_rekey(self._loop.time())
        self._flush()
        return started


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "user"
