"""ProxyJump (``-J host1[,host2...]``): each next SSH connection runs inside a direct-tcpip channel
(RFC 4254 §7.2) of the previous one, as OpenSSH's ``ssh -J`` does with ``-W``.

``ChannelTransport`` makes a channel look like an asyncio transport, so the ordinary client driver
runs over it unchanged: the inner connection's packets are the channel's data, the channel's EOF and
CLOSE are the transport's end. Back-pressure holds both ways: reading pauses leave the channel
window shut, and writes wait for the window. Every hop is a full connection of its own, with its
host key checked by the same trust policy as the destination's.

A hop is named as ssh(1) names it: a saved host (with its address, user, port, keys and algorithm
settings, and its own jump hosts, which come before it), else an ssh_config ``Host`` (likewise),
else ``[user@]host[:port]`` as written. A chain that leads back to a hop it started from is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sshtui.net.channel import Channel, ChannelOpenError
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import ConnectError, connect
from sshtui.ssh.errors import SSHError

if TYPE_CHECKING:
    from sshtui.options import ConnectionSettings, JumpHost

READ_CHUNK = 256 * 1024
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
CLOSE_GRACE = 2.0  # seconds a hop waits for the connection inside it to say goodbye
MAX_JUMP_HOPS = 16  # far beyond real use; a mistake in nested jump lists stops here
_CLOSING: set[asyncio.Future[None]] = set()  # hop shutdowns in flight, kept from the garbage collector


class ChannelTransport(asyncio.Transport):
    """An asyncio transport whose bytes travel as the data of one open channel."""

    def __init__(self, channel: Channel, protocol: asyncio.Protocol, peer: tuple[str, int]) -> None:
        super().__init__({"peername": peer, "channel": channel})
        self._channel = channel
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._writes_paused = False
        self._wake: asyncio.Future[None] | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self._eof_wanted = False
        self._closing = False
        self._lost = False
        protocol.connection_made(self)
        self._reader = self._loop.create_task(self._read_loop())
        self._writer = self._loop.create_task(self._write_loop())

    # -- asyncio.Transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof_wanted or not data:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        self._poke()
        if not self._writes_paused and self._pending_size > HIGH_WATER:
            self._writes_paused = True
            self._protocol.pause_writing()

    def write_eof(self) -> None:
        self._eof_wanted = True
        self._poke()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return LOW_WATER, HIGH_WATER

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Send what is buffered, then close the channel."""
        self._closing = True
        self._poke()

    def abort(self) -> None:
        self._lose(None)

    # -- the two copy loops

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _read_loop(self) -> None:
        channel = self._channel
        while True:
            await self._reading.wait()
            data = await channel.read(READ_CHUNK)
            if not data:
                break
            self._protocol.data_received(data)
        if self._lost:
            return
        if not self._protocol.eof_received():
            self.close()

    async def _write_loop(self) -> None:
        channel = self._channel
        try:
            while True:
                if self._pending:
                    data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
                    self._pending.clear()
                    self._pending_size = 0
                    if self._writes_paused:
                        self._writes_paused = False
                        self._protocol.resume_writing()
                    await channel.write(data)
                    continue
                if self._eof_wanted or self._closing:
                    await channel.write_eof()
                if self._closing:
                    break
                self._wake = self._loop.create_future()
                await self._wake
                self._wake = None
        except SSHError as exc:
            self._lose(exc)
            return
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        current = asyncio.current_task()
        for task in (self._reader, self._writer):
            if task is not current:
                task.cancel()
        self._channel.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def _channel_closed(self, _: object) -> None:
        if not self._lost:
            self._lose(self._channel.error if isinstance(self._channel.error, Exception) else None)


def channel_transport_opener(
    channel: Channel, peer: tuple[str, int]
) -> Callable[[Callable[[], asyncio.Protocol]], Any]:
    """For ``ClientOptions.open_transport``: run the new connection over ``channel``."""

    async def attach(factory: Callable[[], asyncio.Protocol]) -> ChannelTransport:
        transport = ChannelTransport(channel, factory(), peer)
        channel.closed.add_done_callback(transport._channel_closed)
        return transport

    return attach


async def connect_through(hops: Sequence[ClientOptions], destination: ClientOptions) -> SSHClient:
    """Connect to ``destination`` through each hop in order. The hops close when the destination's
    connection ends, however it ends; a failure names the hop where it happened."""
    clients: list[SSHClient] = []
    carriers: list[Channel] = []  # carriers[i] is the channel of clients[i] that carries clients[i + 1]
    try:
        for options in [*hops, destination]:
            if clients:
                channel, options = await _through(clients[-1], options)
                carriers.append(channel)
            clients.append(await connect(options))
    except BaseException:
        await _close_chain(clients, carriers)
        raise
    final = clients[-1]
    if carriers:

        def close_hops(_: object) -> None:
            task = asyncio.ensure_future(_close_chain(clients, carriers))
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

        final.closed.add_done_callback(close_hops)
    return final


async def _through(previous: SSHClient, options: ClientOptions) -> tuple[Channel, ClientOptions]:
    via = f"{previous.options.host} port {previous.options.port}"
    try:
        channel = await previous.open_direct_tcpip(options.host, options.port, "127.0.0.1", 0)
    except ChannelOpenError as exc:
        raise ConnectError(
            f"jump host {via} cannot connect to {options.host} port {options.port}: "
            f"{exc.description or 'refused'}"
        ) from None
    except SSHError as exc:
        raise ConnectError(f"jump host {via}: {exc.message}") from None
    opener = channel_transport_opener(channel, (options.host, options.port))
    return channel, dataclasses.replace(options, open_transport=opener, sock=None)


async def _close_chain(clients: Sequence[SSHClient], carriers: Sequence[Channel]) -> None:
    """Innermost first, and each only once the connection inside it has flushed its DISCONNECT
    and closed its channel, so every server hears a clean goodbye."""
    for index in reversed(range(len(clients))):
        with contextlib.suppress(Exception):
            await clients[index].close()
        if index > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(carriers[index - 1].wait_closed(), CLOSE_GRACE)


# --- naming the hops ------------------------------------------------------------------------------


def hop_overrides(text: str, destination: ConnectionSettings | None = None) -> Mapping[str, Any]:
    """The settings fields one hop replaces in the destination's: the address, port, user, keys,
    trust and algorithm settings of the saved host or ssh_config ``Host`` it names, or just
    ``[user@]host[:port]`` (port 22 by default). Looked up in the files ``destination`` was resolved
    with; without it, in the user's own. Raises ``OptionError``."""
    from sshtui.options import ConnectionSettings, resolve_jump_host

    return resolve_jump_host(text, destination or ConnectionSettings(host="")).overrides


def hop_settings(destination: ConnectionSettings, text: str) -> ConnectionSettings:
    """The settings to connect to one hop with; ``OptionError`` names the hop."""
    from sshtui.options import OptionError

    try:
        return dataclasses.replace(destination, **hop_overrides(text, destination))
    except OptionError as exc:
        raise OptionError(f"jump host {text!r}: {exc}") from None


def jump_chain(destination: ConnectionSettings, names: Sequence[str]) -> list[JumpHost]:
    """Every hop to go through, in connection order: each named hop after the jump hosts it is itself
    reached through, recursively. ``OptionError`` for a loop or more than ``MAX_JUMP_HOPS`` hops."""
    from sshtui.options import OptionError, resolve_jump_host

    chain: list[JumpHost] = []

    def visit(text: str, via: tuple[str, ...]) -> None:
        if text in via:
            raise OptionError(_loop_message((*via[via.index(text) :], text)))
        try:
            hop = resolve_jump_host(text, destination)
        except OptionError as exc:
            raise OptionError(f"jump host {text!r}: {exc}") from None
        for inner in hop.jumps:
            visit(inner, (*via, text))
        chain.append(hop)
        if len(chain) > MAX_JUMP_HOPS:
            raise OptionError(f"more than {MAX_JUMP_HOPS} jump hosts in a row; check their own jump hosts")

    for text in names:
        visit(text, ())
    return chain


def _loop_message(loop: tuple[str, ...]) -> str:
    # A ProxyJump under a Host pattern that also matches the jump host is the usual way in.
    where = "its saved jump hosts, or a ProxyJump from an ssh_config Host pattern that matches it too"
    if len(loop) == 2:
        return f"jump host {loop[0]!r} is to be reached through itself (check {where})"
    return f"jump hosts form a loop: {' -> '.join(loop)}, each reached through the next (check their jumps)"
