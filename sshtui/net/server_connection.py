"""One client connection of the embedded server: the asyncio driver of a sans-IO
``ServerConnection`` (RFC 4253 transport, RFC 4252 authentication, RFC 4254 channels).

Socket bytes go in, events are acted on, queued bytes go out, as in ``sshtui.net.client``.
Channel windows bound each channel; the socket's send buffer bounds them all together: over its
high-water mark no channel takes data (``ChannelLink``), so one channel's flood does not queue
megabytes ahead of another's keystroke echo, whatever windows the client grants.
Timers enforce the login grace time, the idle timeout and time-based rekeying; a failed
authentication attempt is answered only after a growing delay, while the socket is not read.
Which channels the client may open, and where channel requests go, is decided in
``server_connection_channels``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from sshtui.net.server_auth import AuthAttemptEvent, CredentialChecker, Verdict
from sshtui.net.server_channel import ChannelHandler
from sshtui.net.server_connection_channels import ConnectionChannels
from sshtui.net.server_forward import ForwardRequests, RemoteForwards, SocketBridge
from sshtui.net.server_session import SessionHandler
from sshtui.ssh.channels import events as ce
from sshtui.ssh.connection import Event, ServerConnection
from sshtui.ssh.constants import DisconnectReason
from sshtui.ssh.errors import LocalProtocolError, SSHError
from sshtui.ssh.events import Disconnected, KexCompleted
from sshtui.ssh.userauth_server import TooManyAttempts

if TYPE_CHECKING:
    from sshtui.net.server import SSHServer

log = logging.getLogger("sshtui.server")

MAX_AUTH_DELAY = 5.0
SEND_HIGH_WATER = 64 * 1024  # bytes in our socket buffer above which channels stop taking data
SEND_LOW_WATER = 16 * 1024
KERNEL_UNSENT_LIMIT = 128 * 1024  # TCP_NOTSENT_LOWAT: unsent bytes the kernel queues before ours


class ConnectionHandler(ConnectionChannels, asyncio.Protocol):
    """Socket, timers, authentication decisions and the channel handlers of one client."""

    def __init__(self, server: SSHServer, number: int) -> None:
        self.server = server
        options = self.options = server.options
        self.label = f"#{number}"
        self.conn = ServerConnection(
            options.host_keys, server.transport_config, rng=os.urandom, auth_methods=options.auth_methods(),
            max_auth_attempts=options.max_auth_attempts, banner=options.banner,
        )
        self._checker = CredentialChecker(options.authorized_keys, options.passwords)
        self._loop = asyncio.get_running_loop()
        self._sock: asyncio.Transport | None = None
        self._policy = server.session_policy
        self._handlers: dict[int, ChannelHandler] = {}
        self._sessions: dict[int, SessionHandler] = {}
        self._unreaped: set[SessionHandler] = set()  # sessions whose program may still run
        self._opening: dict[int, SocketBridge] = {}  # forwarded-tcpip channels awaiting the client
        self._tasks: set[asyncio.Task[Any]] = set()
        self._forwards = RemoteForwards(self._open_forwarded, options.allow_forward_bind_any, self.label)
        self._global = ForwardRequests(self._forwards, self._reply_global, self._spawn, self.label)
        self._held = False
        self._send_paused = False
        self._auth_failures = 0
        self._authenticated = False
        self._last_activity = self._loop.time()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ended = False
        self.finished: asyncio.Future[None] = self._loop.create_future()

    # -- socket side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._sock = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        self.label = f"{self.label} {peer[0]}:{peer[1]}"
        self._forwards = RemoteForwards(self._open_forwarded, self.options.allow_forward_bind_any, self.label)
        self._global = ForwardRequests(self._forwards, self._reply_global, self._spawn, self.label)
        connection_env = {
            "SSH_CONNECTION": f"{peer[0]} {peer[1]} {local[0]} {local[1]}",
            "SSH_CLIENT": f"{peer[0]} {peer[1]} {local[1]}",
        }
        self._policy = dataclasses.replace(self.server.session_policy, connection_env=connection_env)
        log.info("%s: connection accepted", self.label)
        transport.set_write_buffer_limits(SEND_HIGH_WATER, SEND_LOW_WATER)
        _limit_kernel_backlog(transport)
        self.conn.start(self._loop.time())
        self._flush()
        self._set_timer("grace", self.options.login_grace_time, self._grace_expired)
        if self.options.idle_timeout:
            self._set_timer("idle", self.options.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        now = self._last_activity = self._loop.time()
        try:
            events = self.conn.receive_data(data, now)
        except SSHError as exc:  # misuse inside the core: end this connection, never the server
            self._fail(exc)
            return
        self._dispatch(events)
        self._flush()

    def eof_received(self) -> bool | None:
        self.data_received(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.conn.is_closed:
            self._dispatch(self.conn.receive_data(b"", self._loop.time()))
        self._end()

    @property
    def unsent(self) -> int:
        """Bytes written for the client that its socket has not taken yet."""
        return self._sock.get_write_buffer_size() if self._sock is not None else 0

    def pause_writing(self) -> None:
        self._send_paused = True

    def resume_writing(self) -> None:
        self._send_paused = False
        for handler in list(self._handlers.values()):
            handler.on_window()  # output held back at its source may flow again

    def _backed_up(self) -> bool:
        return self._send_paused

    def _flush(self) -> None:
        if self._held or self._sock is None:
            return
        data = self.conn.data_to_send()
        if data and not self._sock.is_closing():
            self._sock.write(data)
            self._last_activity = self._loop.time()
        if self.conn.is_closed:
            self._sock.close()

    # -- events

    def _dispatch(self, events: Sequence[Event]) -> None:
        for event in events:
            try:
                self._dispatch_one(event)
            except SSHError as exc:
                self._fail(exc)
                return
            except Exception:  # a bug in a handler must end one connection, not the server
                log.exception("%s: internal error handling %s", self.label, type(event).__name__)
                self._fail(LocalProtocolError("internal server error"))
                return

    def _dispatch_one(self, event: Event) -> None:
        if isinstance(event, ce.ChannelData):
            handler = self._handlers.get(event.local_id)
            if handler is not None:
                handler.on_data(event.data, event.data_type)
        elif isinstance(event, ce.ChannelWindowOpened):
            handler = self._handlers.get(event.local_id)
            if handler is not None:
                handler.on_window()
        elif isinstance(event, ce.ChannelEof):
            handler = self._handlers.get(event.local_id)
            if handler is not None:
                handler.on_eof()
        elif isinstance(event, ce.ChannelRequestReceived):
            self._on_channel_request(event)
        elif isinstance(event, ce.ChannelRequestRejected):
            log.info("%s ch%d: request refused: %s", self.label, event.local_id, event.reason)
        elif isinstance(event, ce.GlobalRequestRejected):
            log.info("%s: global request refused: %s", self.label, event.reason)
        elif isinstance(event, ce.ChannelOpenRejected):
            log.info("%s: channel open refused: %s", self.label, event.reason)
        elif isinstance(event, ce.ChannelClosed):
            self._sessions.pop(event.local_id, None)
            handler = self._handlers.pop(event.local_id, None)
            if handler is not None:
                handler.on_closed()
        elif isinstance(event, ce.ChannelOpenRequested):
            self._on_open_request(event)
        elif isinstance(event, ce.ChannelOpened | ce.ChannelOpenFailed):
            self._on_our_open_answered(event)
        elif isinstance(event, ce.GlobalRequestReceived):
            self._global.handle(event)
        elif isinstance(event, AuthAttemptEvent):
            self._on_auth_attempt(event)
        elif isinstance(event, Disconnected):
            who = "the client disconnected" if event.by_peer else "disconnecting"
            log.info("%s: %s: %s", self.label, who, event.description or DisconnectReason(event.reason).name)
        elif isinstance(event, KexCompleted):
            if event.kex_count == 1:
                log.info("%s: key exchange %s, cipher %s", self.label, event.kex_algorithm, event.cipher_c2s)
            self._schedule_rekey()

    # -- authentication (RFC 4252)

    def _on_auth_attempt(self, event: AuthAttemptEvent) -> None:
        auth = self.conn.require_auth()
        verdict, what = self._checker.judge(event)
        if verdict is Verdict.ACCEPT:
            self.conn.accept_auth()
            self._authenticated = True
            self._cancel_timer("grace")
            log.info("%s: accepted %s for %.64r", self.label, what, event.user)
            self._resume_held_payloads()
            return
        if verdict is Verdict.KEY_OK:
            auth.accept_key_query()
            self._resume_held_payloads()
            return
        if what:
            log.log(logging.WARNING if verdict is Verdict.FAIL else logging.INFO, "%s: %s", self.label, what)
        try:
            auth.reject()
        except TooManyAttempts as exc:
            log.warning("%s: %s; disconnecting", self.label, exc.message)
            self.conn.transport.disconnect(exc.reason, "too many authentication failures", self._loop.time())
        if verdict is Verdict.FAIL:
            self._auth_failures += 1
            self._hold_output(min(self.options.auth_failure_delay * self._auth_failures, MAX_AUTH_DELAY))
        if not self._held:
            self._resume_held_payloads()

    def _resume_held_payloads(self) -> None:
        """A client may pipeline auth requests; the core held the later ones until we answered."""
        events = self.conn.resume(self._loop.time())
        if events:
            self._dispatch(events)

    def _hold_output(self, delay: float) -> None:
        """Answer nothing, and read nothing, for ``delay`` seconds: guessing gets slow."""
        if delay <= 0 or self._sock is None:
            return
        self._held = True
        self._sock.pause_reading()
        self._set_timer("held", delay, self._release_output)

    def _release_output(self) -> None:
        self._held = False
        self._resume_held_payloads()
        if self._sock is not None and not self._sock.is_closing():
            self._sock.resume_reading()
        self._flush()

    # -- timers

    def _set_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _grace_expired(self) -> None:
        if not self._authenticated and not self.conn.is_closed:
            log.warning("%s: not authenticated within the login grace time (%g s); disconnecting",
                        self.label, self.options.login_grace_time)
            self.shutdown("login grace time exceeded")

    def _check_idle(self) -> None:
        timeout = self.options.idle_timeout
        assert timeout is not None
        idle = self._loop.time() - self._last_activity
        if idle >= timeout:
            log.info("%s: idle for %g s; disconnecting", self.label, timeout)
            self.shutdown("idle timeout")
        else:
            self._set_timer("idle", timeout - idle, self._check_idle)

    def _schedule_rekey(self) -> None:
        deadline = self.conn.transport.next_deadline()
        if deadline is not None:
            self._set_timer("rekey", max(0.0, deadline - self._loop.time()) + 0.001, self._on_rekey_timer)

    def _on_rekey_timer(self) -> None:
        if not self.conn.is_closed:
            self._dispatch(self.conn.tick(self._loop.time()))
            self._flush()
            self._schedule_rekey()

    # -- lifecycle

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fail(self, error: SSHError) -> None:
        if not self.conn.is_closed:
            log.warning("%s: %s", self.label, error.message)
            self.conn.transport.disconnect(error.reason, error.message[:200], self._loop.time())
        self._held = False
        self._flush()

    def shutdown(self, reason: str) -> None:
        """Disconnect now (a pending failure delay is cut short)."""
        self.conn.disconnect(reason, self._loop.time())
        self._held = False
        self._flush()
        if self._sock is not None:
            self._sock.close()

    def kill_programs(self) -> None:
        for session in list(self._unreaped):
            session.kill()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        for name in list(self._timers):
            self._cancel_timer(name)
        self._forwards.close()
        for handler in [*self._handlers.values(), *self._opening.values()]:
            handler.on_closed()
        self._handlers.clear()
        self._opening.clear()
        for task in self._tasks:
            task.cancel()
        snapshot = self.conn.snapshot()
        self.server.finished.append(snapshot)
        t = snapshot.transport
        log.info("%s: connection closed: %d bytes in, %d bytes out, %d key exchange(s)",
                 self.label, t.bytes_received, t.bytes_sent, t.kex_count)
        waits = [s.reaped for s in self._unreaped if not s.reaped.done()]
        if waits:
            asyncio.gather(*waits, return_exceptions=True).add_done_callback(self._finished)
        else:
            self._finished()

    def _finished(self, _: object = None) -> None:
        """Every program this connection ran has been reaped."""
        self.server.connections.discard(self)
        if not self.finished.done():
            self.finished.set_result(None)


def _limit_kernel_backlog(transport: asyncio.Transport) -> None:
    """Keep what the kernel holds unsent small, so a backed-up socket shows in our buffer (Linux)."""
    option = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    sock = transport.get_extra_info("socket")
    if option is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, KERNEL_UNSENT_LIMIT)
