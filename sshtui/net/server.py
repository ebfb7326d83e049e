"""The embedded SSH server: an asyncio driver around the sans-IO ``ServerConnection``
(RFC 4253 transport, RFC 4252 user authentication, RFC 4254 connection protocol).

One ``asyncio.Protocol`` per TCP connection feeds socket bytes in and writes what the core
wants sent, as ``sshtui.net.client`` does for the client. Credentials are checked against an
authorized_keys file and a password file (``server_auth``); sessions run programs in a pty or
on pipes (``server_session``); TCP forwarding lives in ``server_forward``.

Every session runs as the account that runs the server, whatever user name the client gives.
Limits: failed attempts are answered after a growing delay and capped per connection, a client
must authenticate within the login grace time, sessions per connection are capped, and an idle
timeout is available. Logs go to the ``sshtui.server`` logger and never contain secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pwd
import signal
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, describe_key
from sshtui.net.server_forward import RemoteForwards, SocketBridge, connect_direct, target_allowed
from sshtui.net.server_session import DEFAULT_ACCEPT_ENV, ChannelLink, SessionHandler, SessionPolicy
from sshtui.ssh.channels import events as ce
from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.connection import ConnectionSnapshot, Event, ServerConnection
from sshtui.ssh.constants import DisconnectReason, OpenFailureReason
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.errors import LocalProtocolError, SSHError
from sshtui.ssh.events import Disconnected, KexCompleted
from sshtui.ssh.messages import connection as m
from sshtui.ssh.userauth import (
    KeyboardInteractiveResponse,
    KeyboardInteractiveStart,
    NoneAttempt,
    PasswordAttempt,
    PublicKeyAttempt,
    PublicKeyQuery,
    TooManyAttempts,
)

log = logging.getLogger("sshtui.server")

MAX_AUTH_DELAY = 5.0
SHUTDOWN_TIMEOUT = 5.0
_AUTH_EVENTS = (NoneAttempt, PublicKeyQuery, PublicKeyAttempt, PasswordAttempt,
                KeyboardInteractiveStart, KeyboardInteractiveResponse)


@dataclass
class ServerOptions:
    host_keys: Sequence[PrivateKey]
    host: str = "127.0.0.1"
    port: int = 2222
    authorized_keys: AuthorizedKeys | None = None
    passwords: PasswordFile | None = None
    transport: TransportConfig | None = None  # None: server_config()
    accept_env: tuple[str, ...] = ()  # patterns, on top of LANG, LC_* and TERM
    allow_forward_to_any: bool = False  # direct-tcpip targets beyond loopback
    allow_forward_bind_any: bool = False  # tcpip-forward listeners beyond loopback
    max_sessions: int = 10
    max_auth_attempts: int = 6
    login_grace_time: float = 120.0
    idle_timeout: float | None = None
    auth_failure_delay: float = 0.5  # the n-th failure is answered after n times this
    shell: str | None = None  # None: the account's login shell
    banner: str | None = None

    def auth_methods(self) -> tuple[str, ...]:
        methods = ("publickey",) * (self.authorized_keys is not None) + ("password",) * (self.passwords is not None)
        if not methods:
            raise LocalProtocolError("the server needs an authorized_keys file or a password file")
        return methods


class _Handler(Protocol):
    def on_data(self, data: bytes, data_type: int | None) -> None: ...
    def on_eof(self) -> None: ...
    def on_window(self) -> None: ...
    def on_request(self, body: m.TypedData) -> bool: ...
    def on_closed(self) -> None: ...


def session_policy_for_this_account(shell: str | None, accept_env: Sequence[str]) -> SessionPolicy:
    """Sessions run as us: our user name, home, login shell (else $SHELL, else /bin/sh)."""
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(os.getuid())
    except KeyError:  # no passwd entry, as in some containers
        entry = None
    user = entry.pw_name if entry else os.environ.get("USER", "user")
    home = os.environ.get("HOME") or (entry.pw_dir if entry else "/")
    candidates = [shell, entry.pw_shell if entry else None, os.environ.get("SHELL"), "/bin/sh"]
    usable = next(
        s for s in candidates
        if s and (s == "/bin/sh" or (os.access(s, os.X_OK) and os.path.basename(s) not in ("nologin", "false")))
    )
    path = os.environ.get("PATH") or SessionPolicy.path
    return SessionPolicy(usable, home, user, (*DEFAULT_ACCEPT_ENV, *accept_env), path)


class SSHServer:
    """A listening server. ``await start_server(options)``; ``close()`` then ``wait_closed()``."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        options.auth_methods()  # fail early without credentials to check
        if not options.host_keys:
            raise LocalProtocolError("the server needs at least one host key")
        self.transport_config = options.transport or server_config()
        self.session_policy = session_policy_for_this_account(options.shell, options.accept_env)
        self.connections: set[_ConnectionHandler] = set()
        self.finished: deque[ConnectionSnapshot] = deque(maxlen=64)  # snapshots of ended connections
        self._server: asyncio.Server | None = None
        self._count = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self.options.host, self.options.port, reuse_address=True
        )
        host, port = self.address
        log.info("listening on %s port %d", host, port)

    def _new_connection(self) -> _ConnectionHandler:
        self._count += 1
        handler = _ConnectionHandler(self, self._count)
        self.connections.add(handler)
        return handler

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None and self._server.sockets, "the server is not listening"
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def port(self) -> int:
        return self.address[1]

    def close(self) -> None:
        """Stop listening and disconnect every client (their programs are hung up)."""
        if self._server is not None:
            self._server.close()
        for handler in list(self.connections):
            handler.shutdown("server shutting down")

    async def wait_closed(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Wait until every connection ended and every program it ran was reaped."""
        pending = [h.finished for h in self.connections if not h.finished.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for handler in list(self.connections):
            handler.kill_programs()

    async def __aenter__(self) -> SSHServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def start_server(options: ServerOptions) -> SSHServer:
    server = SSHServer(options)
    await server.start()
    return server


class _ConnectionHandler(asyncio.Protocol):
    """One client connection: socket, timers, authentication decisions and channel handlers."""

    def __init__(self, server: SSHServer, number: int) -> None:
        self.server = server
        options = self.options = server.options
        self.label = f"#{number}"
        self.conn = ServerConnection(
            options.host_keys, server.transport_config, rng=os.urandom, auth_methods=options.auth_methods(),
            max_auth_attempts=options.max_auth_attempts, banner=options.banner,
        )
        self._loop = asyncio.get_running_loop()
        self._sock: asyncio.Transport | None = None
        self._policy = server.session_policy
        self._handlers: dict[int, _Handler] = {}
        self._sessions: dict[int, SessionHandler] = {}
        self._all_sessions: list[SessionHandler] = []
        self._opening: dict[int, SocketBridge] = {}  # forwarded-tcpip channels awaiting the client
        self._tasks: set[asyncio.Task[Any]] = set()
        self._global_tail: asyncio.Task[Any] | None = None
        self._forwards = RemoteForwards(self._open_forwarded, options.allow_forward_bind_any, self.label)
        self._held = False
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
        connection_env = {
            "SSH_CONNECTION": f"{peer[0]} {peer[1]} {local[0]} {local[1]}",
            "SSH_CLIENT": f"{peer[0]} {peer[1]} {local[1]}",
        }
        self._policy = dataclasses.replace(self.server.session_policy, connection_env=connection_env)
        log.info("%s: connection accepted", self.label)
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
            self._on_global_request(event)
        elif isinstance(event, _AUTH_EVENTS):
            self._on_auth_event(event)
        elif isinstance(event, Disconnected):
            who = "the client disconnected" if event.by_peer else "disconnecting"
            log.info("%s: %s: %s", self.label, who, event.description or DisconnectReason(event.reason).name)
        elif isinstance(event, KexCompleted):
            if event.kex_count == 1:
                log.info("%s: key exchange %s, cipher %s", self.label, event.kex_algorithm, event.cipher_c2s)
            self._schedule_rekey()

    # -- authentication (RFC 4252)

    def _on_auth_event(self, event: Event) -> None:
        auth = self.conn.require_auth()
        if isinstance(event, NoneAttempt):
            auth.reject()  # not counted: clients ask "none" to learn the methods
        elif isinstance(event, PublicKeyQuery):
            if self._key_allowed(event.public_blob):
                auth.accept_key_query()
            else:
                log.info("%s: key %s for %.64r is not authorized", self.label, describe_key(event.public_blob), event.user)
                self._failed(quiet=True)
        elif isinstance(event, PublicKeyAttempt):
            key = describe_key(event.public_blob)
            if event.signature_valid and self._key_allowed(event.public_blob):
                self._accepted(event.user, f"publickey {key}")
            else:
                why = "is not authorized" if event.signature_valid else "made an invalid signature"
                log.warning("%s: publickey for %.64r refused: %s %s", self.label, event.user, key, why)
                self._failed()
        elif isinstance(event, PasswordAttempt):
            passwords = self.options.passwords
            ok = passwords is not None and event.new_password is None and passwords.verify(event.user, event.password)
            if ok:
                self._accepted(event.user, "password")
            else:
                log.warning("%s: failed password for %.64r", self.label, event.user)
                self._failed()
        else:  # keyboard-interactive is never offered, so the core refuses it before us
            auth.reject()

    def _key_allowed(self, blob: bytes) -> bool:
        keys = self.options.authorized_keys
        return keys is not None and keys.allows(blob)

    def _accepted(self, user: str, how: str) -> None:
        self.conn.accept_auth()
        self._authenticated = True
        self._cancel_timer("grace")
        log.info("%s: accepted %s for %.64r", self.label, how, user)

    def _failed(self, quiet: bool = False) -> None:
        """Refuse the pending attempt; a real failure is answered only after a growing delay."""
        try:
            self.conn.require_auth().reject()
        except TooManyAttempts as exc:
            log.warning("%s: %s; disconnecting", self.label, exc.message)
            self.conn.transport.disconnect(exc.reason, "too many authentication failures", self._loop.time())
        if quiet:
            return
        self._auth_failures += 1
        self._hold_output(min(self.options.auth_failure_delay * self._auth_failures, MAX_AUTH_DELAY))

    def _hold_output(self, delay: float) -> None:
        if delay <= 0 or self._sock is None:
            return
        self._held = True
        self._sock.pause_reading()
        self._set_timer("held", delay, self._release_output)

    def _release_output(self) -> None:
        self._held = False
        if self._sock is not None and not self._sock.is_closing():
            self._sock.resume_reading()
        self._flush()

    # -- channels (RFC 4254 §5-§7)

    def _link(self, local_id: int, what: str) -> ChannelLink:
        return ChannelLink(self.conn.require_channels(), local_id, self._flush, f"{self.label} ch{local_id} {what}")

    def _on_open_request(self, event: ce.ChannelOpenRequested) -> None:
        layer = self.conn.require_channels()
        body, local_id = event.type_data, event.local_id
        if isinstance(body, m.Session):
            if len(self._sessions) >= self.options.max_sessions:
                log.warning("%s: session refused: %d sessions already open", self.label, len(self._sessions))
                layer.reject_open(local_id, OpenFailureReason.RESOURCE_SHORTAGE,
                                  f"too many sessions (limit {self.options.max_sessions})")
                return
            session = SessionHandler(self._link(local_id, "session"), self._policy)
            self._sessions[local_id] = session
            self._all_sessions.append(session)
            self._handlers[local_id] = session
            layer.accept_open(local_id)
        elif type(body) is m.DirectTcpip:
            if not target_allowed(body.address, self.options.allow_forward_to_any):
                log.warning("%s: direct-tcpip to %.64r port %d refused: not a loopback address "
                            "(start the server with --allow-forward-to-any to allow it)",
                            self.label, body.address, body.port)
                layer.reject_open(local_id, OpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
                                  "forwarding is allowed to this machine's loopback addresses only")
                return
            self._spawn(self._connect_direct(local_id, body))
        else:
            log.info("%s: %.64s channel refused: not supported", self.label, event.channel_type)
            layer.reject_open(local_id, OpenFailureReason.UNKNOWN_CHANNEL_TYPE,
                              f"{event.channel_type[:64]} channels are not supported")

    async def _connect_direct(self, local_id: int, body: m.DirectTcpip) -> None:
        target = f"{body.address}:{body.port}"
        bridge = SocketBridge(f"{self.label} ch{local_id} -> {target}")
        try:
            await connect_direct(body.address, body.port, bridge)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            log.info("%s: direct-tcpip to %s failed: %s", self.label, target, reason)
            if not self.conn.is_closed:
                self.conn.require_channels().reject_open(
                    local_id, OpenFailureReason.CONNECT_FAILED, f"connect to {target} failed: {reason}"
                )
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
        ok = False
        if handler is not None:
            ok = handler.on_request(event.request)
        if event.want_reply:
            with contextlib.suppress(LocalProtocolError):
                self.conn.require_channels().reply_request(event.local_id, ok)

    # -- global requests: replies must go out in arrival order, though binding is asynchronous

    def _on_global_request(self, event: ce.GlobalRequestReceived) -> None:
        body = event.request
        if isinstance(body, m.CancelTcpipForward):
            ok = self._forwards.cancel(body.address, body.port)
            self._reply_global_in_order(event.want_reply, _done((ok, b"")))
        elif isinstance(body, m.TcpipForward):
            self._reply_global_in_order(event.want_reply, self._listen(body))
        else:
            log.info("%s: global request %.64r refused: not supported", self.label, event.name)
            self._reply_global_in_order(event.want_reply, _done((False, b"")))

    async def _listen(self, body: m.TcpipForward) -> tuple[bool, bytes]:
        bound = await self._forwards.listen(body.address, body.port)
        if bound is None:
            return False, b""
        # RFC 4254 §7.1: the reply carries the port only when the client let us choose it.
        return True, (bound.to_bytes(4, "big") if body.port == 0 else b"")

    def _reply_global_in_order(self, want_reply: bool, work: Coroutine[Any, Any, tuple[bool, bytes]]) -> None:
        previous = self._global_tail

        async def answer() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            ok, data = await work
            if want_reply and not self.conn.is_closed:
                self.conn.require_channels().reply_global(ok, data)
                self._flush()

        self._global_tail = self._spawn(answer())

    # -- timers

    def _set_timer(self, name: str, delay: float, callback: Any) -> None:
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
        self.conn.disconnect(reason, self._loop.time())
        self._held = False
        self._flush()
        if self._sock is not None:
            self._sock.close()

    def kill_programs(self) -> None:
        for session in self._all_sessions:
            if session.proc is not None and not session.reaped.done():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(session.proc.pid, signal.SIGKILL)

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        for name in list(self._timers):
            self._cancel_timer(name)
        self._forwards.close()
        for handler in list(self._handlers.values()) + list(self._opening.values()):
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
        self._spawn_reaper()

    def _spawn_reaper(self) -> None:
        waits = [s.reaped for s in self._all_sessions if not s.reaped.done()]

        def done(_: object = None) -> None:
            self.server.connections.discard(self)
            if not self.finished.done():
                self.finished.set_result(None)

        if not waits:
            done()
            return
        gathered = asyncio.gather(*waits, return_exceptions=True)
        gathered.add_done_callback(done)


async def _done(value: tuple[bool, bytes]) -> tuple[bool, bytes]:
    return value
