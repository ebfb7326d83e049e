"""Opening a client connection: ``connect()`` carries a TCP connection (or an already
connected socket, or a ProxyJump channel) to a new ``SSHClient``, then waits for the key
exchange, the host key check and authentication (RFC 4253 §4-§8, RFC 4252).

The TCP connect and every handshake step up to the end of authentication are bounded by
``connect_timeout``; any failure raises ``ConnectError`` (or another ``SSHError``) with one
clear message, and the half-made connection is closed.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sshtui.net.auth import AuthenticationFailed, Authenticator
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.ssh.errors import ConnectionClosedError, SSHError


class ConnectError(SSHError):
    """The connection could not be set up (TCP, timeout, host key, authentication)."""


class ConnectTimeout(ConnectError):
    pass


class _Protocol(asyncio.Protocol):
    def __init__(self, client: SSHClient):
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._client._connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._client._data_received(data)

    def eof_received(self) -> bool | None:
        self._client._data_received(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._connection_lost(exc)


class _SocketProtocol(_Protocol, asyncio.BufferedProtocol):
    """For sockets: asyncio reads straight into the packet reader's buffer (no copy, no
    allocation per read); ``data_received`` stays for transports that push bytes."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._client.conn.receive_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._client._received_into(nbytes)


async def connect(options: ClientOptions) -> SSHClient:
    """Connect, verify the host key, authenticate; raise ``ConnectError`` (or a subclass of
    ``SSHError``) with one clear message on any failure."""
    loop = asyncio.get_running_loop()
    client = SSHClient(options)
    if options.on_client is not None:
        options.on_client(client)
    try:
        async with asyncio.timeout(options.connect_timeout):
            if options.open_transport is not None:
                await options.open_transport(lambda: _Protocol(client))
            elif options.sock is not None:
                await loop.connect_accepted_socket(lambda: _SocketProtocol(client), options.sock)
            else:
                await loop.create_connection(lambda: _SocketProtocol(client), options.host, options.port)
    except TimeoutError:
        raise ConnectTimeout(
            f"connect to host {options.host} port {options.port}: Connection timed out"
        ) from None
    except OSError as exc:
        # asyncio puts "Connect call failed (addr)" in strerror; the errno's own text is what ssh shows.
        code = exc.errno or 0
        reason = os.strerror(code) if code > 0 else (exc.strerror or str(exc))
        raise ConnectError(f"connect to host {options.host} port {options.port}: {reason}") from None
    try:
        await _handshake(client)
    except BaseException:
        await client.close()
        raise
    return client


async def _handshake(client: SSHClient) -> None:
    timeout = client.options.connect_timeout
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(client._auth_ready)
    except TimeoutError:
        raise ConnectTimeout(
            f"connection to {client.options.host} port {client.options.port} timed out during "
            f"{client.conn.transport.activity}"
        ) from None
    auth = client.conn.require_auth()
    queue: asyncio.Queue[Any] = client._auth_events
    authenticator = Authenticator(auth, queue, client._flush, client.options.auth, timeout)
    try:
        await authenticator.run()
    except (AuthenticationFailed, ConnectionClosedError):
        # A send on a connection that already failed: the failure itself is the news.
        if client.error is not None:
            raise client.error from None
        raise
    except TimeoutError:
        raise ConnectTimeout(
            f"{client.options.host}: the server stopped answering during authentication"
        ) from None
    if client.error is not None:
        raise client.error
    if client.options.server_alive_interval > 0:
        client._keepalive_task = client._loop.create_task(client._keepalive_loop())
