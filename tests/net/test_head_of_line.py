"""One connection, several channels: a flood on one channel must not hold up another's data
(RFC 4254 §5.2: flow control is per channel, by window, never by stopping the socket)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.channel import Channel, Outbox
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_channels import INTERACTIVE_WINDOW
from sshtui.net.client_connect import connect
from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.net.server_connection import SEND_HIGH_WATER, ConnectionHandler
from sshtui.net.server_session import READ_CHUNK
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.ssh.messages import channel_requests as m

pytestmark = pytest.mark.timeout(60)

HOST_KEY = PrivateKey.generate("ed25519")
USER_KEY = PrivateKey.generate("ed25519")
WAIT = 20.0


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SSHServer]:
    monkeypatch.setenv("HOME", str(tmp_path))
    options = ServerOptions(
        [HOST_KEY], port=0, shell="/bin/sh",
        authorized_keys=AuthorizedKeys.parse(openssh_public_line(USER_KEY.public_blob, "tester") + "\n"),
    )
    async with await start_server(options) as srv:
        yield srv


async def client_for(server: SSHServer, **changes: Any) -> SSHClient:
    options = ClientOptions(
        "127.0.0.1", server.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    return await connect(replace(options, **changes))


async def until(condition: Callable[[], object], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


async def test_a_stalled_channel_does_not_hold_up_another_on_the_same_connection(server: SSHServer) -> None:
    async with await client_for(server) as client:
        flood = await client.open_session(window=INTERACTIVE_WINDOW)
        assert await flood.request(m.Exec(command=b"yes"))
        # Nobody reads the flood: the server fills its window, then must stop for this channel only.
        await until(lambda: flood.core.local_window == 0, "the flood filled its window")

        result = await asyncio.wait_for(client.run("echo through"), WAIT)

        assert result.stdout == b"through\n" and result.exit_status == 0
        assert flood.stdout.buffered <= INTERACTIVE_WINDOW  # what waits unread is bounded by its window
        assert await flood.read(16) == b"y\ny\ny\ny\ny\ny\ny\ny\n"  # and still flows once read


async def test_the_server_stops_reading_output_while_its_socket_is_backed_up(server: SSHServer) -> None:
    async with await client_for(server) as client:
        # A window far larger than any socket buffer: only the server's own limit can hold the flood back.
        flood = await client.open_session(window=256 * 1024 * 1024)
        assert await flood.request(m.Exec(command=b"yes"))
        await until(lambda: server.connections, "the server saw the connection")
        (handler,) = server.connections
        assert isinstance(handler, ConnectionHandler)

        socket = client._sock  # a client on a slow link: it stops reading its socket
        assert socket is not None
        socket.pause_reading()
        await until(lambda: handler.unsent > SEND_HIGH_WATER, "the server's socket buffer filled")
        sent_when_backed_up = handler.conn.snapshot().channels[0].bytes_sent
        bound = SEND_HIGH_WATER + READ_CHUNK + 1024  # the write that crossed the mark, with packet framing
        for _ in range(50):  # the flood goes on in the program; none of it may pile up in the server
            await asyncio.sleep(0.01)
            assert handler.unsent <= bound

        socket.resume_reading()
        received = 0
        async with asyncio.timeout(WAIT):
            while received <= sent_when_backed_up + READ_CHUNK:  # more than was sent before the stop
                received += len(await flood.read())
        flood.close()


async def test_input_sent_while_the_window_is_shut_follows_in_order(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.exec("sleep 0.2; cat")  # takes nothing until it runs cat
        outbox = Outbox(channel)
        drain = asyncio.get_running_loop().create_task(outbox.drain())
        bulk = bytes(range(256)) * (12 * 1024)  # 3 MiB: more than the server's window, so some must wait
        key = b"and the key typed after it"
        outbox.send(bulk)
        outbox.send(key)
        reader = asyncio.get_running_loop().create_task(read_all(channel))
        await until(lambda: channel.core.bytes_sent == len(bulk) + len(key), "everything went out")
        await channel.write_eof()
        echoed = await asyncio.wait_for(reader, WAIT)
        drain.cancel()
    assert echoed == bulk + key


async def read_all(channel: Channel) -> bytes:
    parts = []
    while chunk := await channel.read():
        parts.append(chunk)
    return b"".join(parts)
