"""The client's channel API: opening channels (RFC 4254 §5.1), session requests (§6.2 pty-req,
§6.4 env, §6.5 shell and exec, §6.10 exit status), direct-tcpip channels (§7.2), channels the
server opens to us, and global requests with a reply (§4).

``SSHClient`` inherits these; the socket, event dispatch and lifecycle they rely on live in
``sshtui.net.client``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sshtui.net.channel import Channel, ChannelOpenError, ExitInfo
from sshtui.ssh.connection import ClientConnection
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.errors import ConnectionClosedError, SSHError
from sshtui.ssh.messages import connection as m

INTERACTIVE_WINDOW = 128 * 1024


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_status: int | None
    exit_signal: str | None
    stdout: bytes
    stderr: bytes


class ClientChannels:
    """Channel and global-request methods of ``SSHClient``, over the state it keeps."""

    conn: ClientConnection
    closed: asyncio.Future[None]
    error: BaseException | None
    _loop: asyncio.AbstractEventLoop
    _channels: dict[int, Channel]
    _global_waiters: list[asyncio.Future[tuple[bool, bytes]]]
    _flush: Callable[[], None]

    async def open_channel(self, opener: Callable[[], int]) -> Channel:
        if self.closed.done():
            raise ConnectionClosedError(f"connection is closed: {self.error}")
        local_id = opener()
        channel = Channel(self.conn.require_channels(), local_id, self._flush)
        self._channels[local_id] = channel
        self._flush()
        await channel.opened
        return channel

    async def open_session(self, window: int | None = None) -> Channel:
        layer = self.conn.require_channels()
        return await self.open_channel(lambda: layer.open_session(self._loop.time(), window))

    async def open_direct_tcpip(
        self, host: str, port: int, orig_host: str = "127.0.0.1", orig_port: int = 0
    ) -> Channel:
        layer = self.conn.require_channels()
        return await self.open_channel(
            lambda: layer.open_direct_tcpip(host, port, orig_host, orig_port, self._loop.time())
        )

    def accept_channel(self, local_id: int) -> Channel:
        """Confirm a channel the peer asked to open (see ``on_channel_open_request``)."""
        if self.closed.done():
            raise ConnectionClosedError(f"connection is closed: {self.error}")
        layer = self.conn.require_channels()
        layer.accept_open(local_id)
        channel = Channel(layer, local_id, self._flush)
        self._channels[local_id] = channel
        channel.opened.set_result(None)
        self._flush()
        return channel

    def reject_channel(self, local_id: int, reason: OpenFailureReason, description: str) -> None:
        """Refuse a channel the peer asked to open; does nothing once the connection is closed."""
        if not self.closed.done():
            self.conn.require_channels().reject_open(local_id, reason, description)
            self._flush()

    async def exec(
        self,
        command: str | bytes,
        *,
        pty: bool = False,
        term: str = "xterm-256color",
        size: tuple[int, int] = (80, 24),
        env: dict[str, str] | None = None,
        modes: bytes = b"\x00",
    ) -> Channel:
        channel = await self.open_session()
        for name, value in (env or {}).items():
            await channel.request(m.Env(variable=name, value=value), want_reply=False)
        if pty:
            cols, rows = size
            if not await channel.request(m.PtyReq(term=term, cols=cols, rows=rows, modes=modes)):
                channel.close()
                raise ChannelOpenError(0, "the server refused a pseudo-terminal")
        cmd = command.encode() if isinstance(command, str) else command
        if not await channel.request(m.Exec(command=cmd)):
            channel.close()
            raise ChannelOpenError(0, "the server refused to run the command")
        return channel

    async def shell(self, *, term: str = "xterm-256color", size: tuple[int, int] = (80, 24)) -> Channel:
        # A small window keeps what a terminal must still parse after Ctrl+C short.
        channel = await self.open_session(window=INTERACTIVE_WINDOW)
        cols, rows = size
        await channel.request(m.PtyReq(term=term, cols=cols, rows=rows))
        if not await channel.request(m.Shell()):
            channel.close()
            raise ChannelOpenError(0, "the server refused a shell")
        return channel

    async def run(self, command: str | bytes, *, stdin: bytes = b"") -> RunResult:
        """Run a command to completion, collecting its output in memory."""
        channel = await self.exec(command)
        if stdin:
            await channel.write(stdin)
        await channel.write_eof()

        async def drain(read: Callable[[], Awaitable[bytes]]) -> bytes:
            parts = []
            while chunk := await read():
                parts.append(chunk)
            return b"".join(parts)

        stdout, stderr = await asyncio.gather(drain(channel.read), drain(channel.read_stderr))
        info = await _exit_info(channel)
        channel.close()
        if info.status is None and info.signal is None and channel.error is not None:
            # The connection failed mid-command: the output is cut short, which must not pass as a result.
            raise channel.error
        return RunResult(info.status, info.signal, stdout, stderr)

    async def global_request(self, name: str, data: bytes = b"") -> tuple[bool, bytes]:
        future: asyncio.Future[tuple[bool, bytes]] = self._loop.create_future()
        self._global_waiters.append(future)
        self.conn.require_channels().global_request(name, data, True)
        self._flush()
        return await future


async def _exit_info(channel: Channel) -> ExitInfo:
    try:
        return await asyncio.wait_for(asyncio.shield(channel.exit), timeout=5.0)
    except (TimeoutError, SSHError):
        return ExitInfo(None, None)
