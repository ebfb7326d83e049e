"""Local listeners carried over SSH channels: ``-L`` (direct-tcpip, RFC 4254 §7.2, or OpenSSH's
direct-streamlocal@openssh.com) and ``-D`` (SOCKS, each client naming its own target).

``bridge`` copies one local socket to one channel and back with back-pressure both ways: the socket
is read only as fast as the channel window lets its data go (asyncio pauses the socket meanwhile),
and the channel only as fast as the socket drains, so unread data holds the peer back through the
window instead of piling up here. Half-closes travel both ways as EOFs.

A refused or unreachable target, or no SSH connection, closes that one local connection and is
counted with its reason; the listener stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from sshtui.forward_spec import ForwardSpec, join_host_port
from sshtui.net.channel import Channel, ChannelOpenError
from sshtui.net.client import SSHClient
from sshtui.net.forward_snapshot import ForwardCounters, ForwardSnapshot, ForwardState, LiveConnection
from sshtui.net.reconnect import ClientSource, Unavailable
from sshtui.net.socks import SocksError, SocksReply, read_request, reply_for_open_failure
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.errors import SSHError

CHUNK = 256 * 1024  # largest socket read; asyncio pauses the socket once twice this is unread


class ForwardError(Exception):
    """A forward could not start (bind failed, server refused); the message names the forward."""


def open_failure_text(exc: ChannelOpenError) -> str:
    try:
        name = OpenFailureReason(exc.open_reason).name.lower().replace("_", " ")
    except ValueError:
        name = f"open failure {exc.open_reason}"
    return exc.description or name


def os_error_text(exc: OSError) -> str:
    # asyncio wraps the reason ("error while attempting to bind on address ..."); the errno says it best.
    code = exc.errno or 0
    return os.strerror(code) if code > 0 else (exc.strerror or str(exc))


def peer_text(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return join_host_port(str(address[0]), int(address[1]))
    return str(address or "unknown")


async def bridge(
    channel: Channel,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    live: LiveConnection,
    initial: bytes = b"",
) -> None:
    """Copy both ways until both sides are done, either side fails, or the channel closes."""

    async def to_channel() -> None:
        if initial:
            await channel.write(initial)
            live.bytes_sent += len(initial)
        while data := await reader.read(CHUNK):
            await channel.write(data)
            live.bytes_sent += len(data)
        await channel.write_eof()

    async def from_channel() -> None:
        while data := await channel.read():
            writer.write(data)
            live.bytes_received += len(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()

    up = asyncio.create_task(to_channel())
    down = asyncio.create_task(from_channel())
    try:
        while True:
            waiting = [f for f in (up, down, channel.closed) if not f.done()]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if _failed(down) or (_failed(up) and not channel.closed.done()):
                break  # a socket error, or the connection under the channel failed
            if channel.closed.done():
                up.cancel()  # the target is gone: nothing more can be sent to it
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await down  # deliver what arrived before the close
                break
            if up.done() and down.done():
                break
    finally:
        for task in (up, down):
            task.cancel()
        for task in (up, down):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        channel.close()
        writer.close()


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


class LocalForward:
    """One ``-L`` or ``-D`` listener; channels are opened on whatever client ``source`` provides."""

    def __init__(self, spec: ForwardSpec, source: ClientSource) -> None:
        if spec.kind == "remote":
            raise ValueError("LocalForward serves -L and -D forwards only")
        self.spec = spec
        self.source = source
        self.counters = ForwardCounters(spec)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The port listened on (the chosen one for port 0)."""
        if self._server is None or not self._server.sockets:
            return self.spec.listen_port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.spec.bind_host, self.spec.listen_port, limit=CHUNK
            )
        except OSError as exc:
            reason = f"cannot listen on {self.spec.listen}: {os_error_text(exc)}"
            self.counters.set_state(ForwardState.FAILED, reason)
            raise ForwardError(f"{self.spec.label}: {reason}") from None
        self.counters.listen = join_host_port(self.spec.listen_host or "*", self.port)
        self.counters.set_state(ForwardState.LISTENING)

    def connection_state(self, connected: bool, reason: str = "") -> None:
        """The SSH connection came or went: the listener stays up either way."""
        if self.counters.state is ForwardState.FAILED:
            return
        self.counters.set_state(ForwardState.LISTENING if connected else ForwardState.RECONNECTING, reason)

    def snapshot(self) -> ForwardSnapshot:
        return self.counters.snapshot()

    def stop_listening(self) -> None:
        """Accept no new connections; the open ones carry on."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop listening and end every forwarded connection."""
        self.stop_listening()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def wait_idle(self) -> None:
        """Until no forwarded connection is open (the listener should be closed first)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- one local client

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        live = self.counters.started(peer_text(peer))
        try:
            if self.spec.kind == "dynamic":
                await self._serve_socks(reader, writer, live, peer)
            else:
                await self._serve_fixed(reader, writer, live, peer)
        except asyncio.CancelledError:
            pass  # the forward is closing
        finally:
            self.counters.finished(live)
            writer.close()
            self._tasks.discard(task)

    async def _serve_fixed(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, live: LiveConnection, peer: Any
    ) -> None:
        spec = self.spec
        opened = await self._open(live, spec.target_host, spec.target_port, peer)
        if isinstance(opened, Channel):
            await bridge(opened, reader, writer, live)

    async def _serve_socks(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, live: LiveConnection, peer: Any
    ) -> None:
        try:
            handshake = await read_request(reader, writer)
        except SocksError as exc:
            self.counters.failed_with(live, f"SOCKS: {exc}")
            with contextlib.suppress(OSError):
                await writer.drain()
            return
        request = handshake.request
        assert request is not None
        live.target = join_host_port(request.host, request.port)
        opened = await self._open(live, request.host, request.port, peer)
        if not isinstance(opened, Channel):
            writer.write(handshake.failure_reply(opened))
            with contextlib.suppress(OSError):
                await writer.drain()
            return
        writer.write(handshake.success_reply())
        await bridge(opened, reader, writer, live, handshake.leftover)

    async def _open(self, live: LiveConnection, host: str, port: int, peer: Any) -> Channel | SocksReply:
        """The channel to the target, or (after counting why there is none) the SOCKS reply to give."""
        try:
            client = await self.source.get_client()
            channel = await self._open_on(client, host, port, peer)
        except ChannelOpenError as exc:
            self.counters.failed_with(live, f"{live.target}: {open_failure_text(exc)}")
            return reply_for_open_failure(exc.open_reason, exc.description)
        except Unavailable as exc:
            self.counters.failed_with(live, exc.message)
            return SocksReply.GENERAL_FAILURE
        except SSHError as exc:
            self.counters.failed_with(live, f"{live.target}: {exc.message}")
            return SocksReply.GENERAL_FAILURE
        live.channel_id = channel.local_id
        return channel

    async def _open_on(self, client: SSHClient, host: str, port: int, peer: Any) -> Channel:
        if self.spec.target_path:
            layer = client.conn.require_channels()
            path = self.spec.target_path
            loop = asyncio.get_running_loop()
            return await client.open_channel(lambda: layer.open_direct_streamlocal(path, loop.time()))
        if isinstance(peer, tuple):
            return await client.open_direct_tcpip(host, port, str(peer[0]), int(peer[1]))
        return await client.open_direct_tcpip(host, port, "127.0.0.1", 0)
