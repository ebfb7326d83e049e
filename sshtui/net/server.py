"""The embedded SSH server (RFC 4253 transport, RFC 4252 user authentication, RFC 4254
connection protocol) on the sans-IO core: ``start_server(ServerOptions(...))``.

Each TCP connection gets a ``server_connection.ConnectionHandler`` driving a
``ServerConnection``. Credentials are checked against an authorized_keys file and a password
file (``server_auth``); sessions run programs in a pty or on pipes (``server_session``,
``server_process``); TCP forwarding lives in ``server_forward``.

Every session runs as the account that runs the server, whatever user name the client gives.
Limits: failed attempts are answered after a growing delay and capped per connection, a client
must authenticate within the login grace time, sessions per connection are capped, and an idle
timeout is available. Logs go to the ``sshtui.server`` logger and never contain secrets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sshtui.net.server_auth import AuthorizedKeys, PasswordFile
from sshtui.net.server_connection import ConnectionHandler
from sshtui.net.server_session import DEFAULT_ACCEPT_ENV, SessionPolicy
from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.errors import LocalProtocolError

log = logging.getLogger("sshtui.server")

SHUTDOWN_TIMEOUT = 5.0


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
        methods: tuple[str, ...] = ("publickey",) if self.authorized_keys is not None else ()
        if self.passwords is not None:
            methods += ("password",)
        if not methods:
            raise LocalProtocolError("the server needs an authorized_keys file or a password file")
        return methods


def session_policy_for_this_account(shell: str | None, accept_env: Sequence[str]) -> SessionPolicy:
    """Sessions run as us: our user name, home, login shell (else $SHELL, else /bin/sh)."""
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(os.getuid())
    except KeyError:  # no passwd entry, as in some containers
        entry = None
    user = entry.pw_name if entry else os.environ.get("USER", "user")
    home = os.environ.get("HOME") or (entry.pw_dir if entry else "/")
    candidates = [shell, entry.pw_shell if entry else None, os.environ.get("SHELL"), "/bin/sh"]
    usable = next(s for s in candidates if s and (s == "/bin/sh" or _usable_shell(s)))
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
        self.connections: set[ConnectionHandler] = set()
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

    def _new_connection(self) -> ConnectionHandler:
        self._count += 1
        handler = ConnectionHandler(self, self._count)
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


def _usable_shell(path: str) -> bool:
    return os.access(path, os.X_OK) and os.path.basename(path) not in ("nologin", "false")
