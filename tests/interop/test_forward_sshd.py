"""Port forwarding against a real OpenSSH sshd: ``-L`` (direct-tcpip), ``-R`` (tcpip-forward), ``-D``
(SOCKS4, SOCKS4a, SOCKS5 clients written here), ``-J`` through two sshd instances, reconnection after
the server goes away, half-closes, back-pressure, and the ``sshtui forward`` / ``sshtui exec -L`` commands.

Everything listens on and connects to 127.0.0.1 (and ::1 where the host has it) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sshtui.forward_command import ForwardSession, jump_options
from sshtui.forward_spec import ForwardSpec, parse_forward
from sshtui.net.client import SSHClient
from sshtui.net.client_connect import connect
from sshtui.net.forward_snapshot import ForwardState
from sshtui.net.jump import connect_through
from sshtui.net.reconnect import BackoffPolicy, FixedClient, Reconnector
from sshtui.options import ConnectionSettings, resolve_settings
from sshtui.options_client import build_client_options
from sshtui.prompts import Prompter
from sshtui.ssh.errors import SSHError
from tests.sshd_fixture import SshdFactory, SshdServer, free_port

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


# --- helpers ---------------------------------------------------------------------------------------


def settings_for(
    server: SshdServer, home: Path, known_hosts: Path | None = None, **extra: str
) -> ConnectionSettings:
    options = [
        f"UserKnownHostsFile={known_hosts or server.known_hosts_file}",
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "ConnectTimeout=10",
        *(f"{name}={value}" for name, value in extra.items()),
    ]
    return resolve_settings(
        server.host,
        port=str(server.port),
        identity_files=[str(server.client_key)],
        options=options,
        home=home,
    )


async def connect_to(server: SshdServer, home: Path) -> SSHClient:
    return await connect(build_client_options(settings_for(server, home), Prompter(batch_mode=True)))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@dataclass
class EchoServer:
    """A TCP server on 127.0.0.1 that sends back what it gets and half-closes after the client does."""

    port: int = 0
    peers: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(str(writer.get_extra_info("peername")))
        try:
            while data := await reader.read(256 * 1024):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def echo_server(host: str = "127.0.0.1") -> AsyncIterator[tuple[int, EchoServer]]:
    echo = EchoServer()
    async with serving(echo.handle, host) as port:
        echo.port = port
        yield port, echo


@contextlib.asynccontextmanager
async def forwarding(
    client: SSHClient, *specs: ForwardSpec, reports: list[str] | None = None
) -> AsyncIterator[ForwardSession]:
    session = ForwardSession(specs, FixedClient(client), (reports if reports is not None else []).append)
    await session.start_listeners()
    await session.attach(client)
    try:
        yield session
    finally:
        await session.close()


async def echo_through(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        received = await reader.read(-1)
        await sender
        return received
    finally:
        writer.close()


def listen_port(session: ForwardSession, index: int) -> int:
    return int(session.snapshots()[index].listen.rsplit(":", 1)[1])


async def eventually(check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- -L ----------------------------------------------------------------------------------------------


async def test_local_forward_100_concurrent_connections_of_1_mib(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    async with (
        echo_server() as (port, _),
        forwarding(client, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
    ):
        local = listen_port(s, 0)
        payloads = [os.urandom(MIB) for _ in range(100)]
        async with asyncio.timeout(120):
            results = await asyncio.gather(*(echo_through(local, p) for p in payloads))
        assert [hashlib.sha256(r).digest() for r in results] == [hashlib.sha256(p).digest() for p in payloads]
        await eventually(lambda: s.snapshots()[0].open_connections == 0, what="connections to finish")
        snap = s.snapshots()[0]
        assert (snap.total_connections, snap.failed_connections) == (100, 0)
        assert snap.bytes_sent == snap.bytes_received == 100 * MIB
        assert snap.state is ForwardState.LISTENING
    await client.close()


async def test_local_forward_reports_each_open_connection(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    async with (
        echo_server() as (port, echo),
        forwarding(client, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 0))
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        snap = s.snapshots()[0]
        assert snap.state is ForwardState.ACTIVE and snap.open_connections == 1
        [conn] = snap.connections
        local_host, local_port = writer.get_extra_info("sockname")[:2]
        assert conn.peer == f"{local_host}:{local_port}"  # the originator, as sent in direct-tcpip
        assert conn.channel_id is not None and conn.target == f"127.0.0.1:{port}"
        assert (conn.bytes_sent, conn.bytes_received) == (4, 4)
        assert abs(conn.started_at - time.time()) < 30
        writer.close()
        await eventually(lambda: s.snapshots()[0].open_connections == 0, what="the connection to end")
        # sshd made the connection to the target on our behalf.
        assert echo.peers and "127.0.0.1" in echo.peers[0]
    await client.close()


async def test_refused_target_closes_that_socket_only(sshd_module: SshdServer, home: Path) -> None:
    closed_port = free_port()
    client = await connect_to(sshd_module, home)
    specs = (parse_forward("local", f"0:127.0.0.1:{closed_port}"),)
    async with (
        echo_server() as (port, _),
        forwarding(client, *specs, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
    ):
        for _ in range(2):  # the listener stays up after a failure
            reader, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 0))
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
        snap = s.snapshots()[0]
        assert (snap.state, snap.failed_connections, snap.open_connections) == (ForwardState.LISTENING, 2, 0)
        assert "Connection refused" in snap.last_error and str(closed_port) in snap.last_error
        assert snap.errors == ((snap.last_error, 2),)
        assert await echo_through(listen_port(s, 1), b"still fine") == b"still fine"
    await client.close()


async def test_port_in_use_is_reported_and_the_others_start(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        reports: list[str] = []
        async with (
            echo_server() as (port, _),
            forwarding(
                client,
                parse_forward("local", f"{busy}:127.0.0.1:{port}"),
                parse_forward("local", f"0:127.0.0.1:{port}"),
                reports=reports,
            ) as s,
        ):
            failed, _ = s.snapshots()
            assert failed.state is ForwardState.FAILED
            assert failed.reason == f"cannot listen on 127.0.0.1:{busy}: Address already in use"
            assert reports == [f"-L {busy}:127.0.0.1:{port}: {failed.reason}"]
            assert await echo_through(listen_port(s, 1), b"ok") == b"ok"
    await client.close()


async def test_local_forward_to_a_remote_unix_socket(
    sshd_module: SshdServer, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "echo.sock"
    echo = EchoServer()
    server = await asyncio.start_unix_server(echo.handle, str(path))
    client = await connect_to(sshd_module, home)
    try:
        async with forwarding(client, parse_forward("local", f"0:{path}")) as s:
            assert s.snapshots()[0].target == str(path)
            assert await echo_through(listen_port(s, 0), b"over streamlocal") == b"over streamlocal"
    finally:
        server.close()
        await client.close()


async def test_half_close_travels_both_ways(sshd_module: SshdServer, home: Path) -> None:
    async def replies_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = await reader.read(-1)  # everything, up to the client's half-close
        writer.write(f"got {len(received)} bytes".encode())
        writer.write_eof()
        await writer.drain()
        writer.close()

    async def speaks_first_then_listens(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, then EOF")
        writer.write_eof()  # the target is done talking but still listens
        await writer.drain()
        received = await reader.read(-1)
        writer.close()
        heard.set_result(received)

    heard: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    client = await connect_to(sshd_module, home)
    async with serving(replies_after_eof) as first, serving(speaks_first_then_listens) as second:
        specs = (
            parse_forward("local", f"0:127.0.0.1:{first}"),
            parse_forward("local", f"0:127.0.0.1:{second}"),
        )
        async with forwarding(client, *specs) as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 0))
            writer.write(b"x" * 100_000)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b"got 100000 bytes"
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 1))
            assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b"hello, then EOF"
            writer.write(b"after your EOF")  # our direction is still open
            writer.write_eof()
            assert await asyncio.wait_for(heard, TIMEOUT) == b"after your EOF"
            writer.close()
    await client.close()


async def test_slow_reader_holds_the_target_back(sshd_module: SshdServer, home: Path) -> None:
    """The target could send 256 MiB at once; a reader taking 64 KiB every 20 ms must hold it back
    through the channel window instead of the data piling up in memory here."""
    total = 256 * MIB
    pushed = 0

    async def fire_hose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pushed
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        block = bytes(MIB)
        with contextlib.suppress(OSError):
            while pushed < total:
                writer.write(block)
                await writer.drain()
                pushed += len(block)
        writer.close()

    client = await connect_to(sshd_module, home)
    async with (
        serving(fire_hose) as port,
        forwarding(client, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
    ):
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(slow, ("127.0.0.1", listen_port(s, 0)))
        consumed = 0
        worst_gap = 0
        worst_unwritten = 0
        for _ in range(150):
            consumed += len(await loop.sock_recv(slow, 64 * 1024))
            await asyncio.sleep(0.02)
            worst_gap = max(worst_gap, pushed - consumed)
            [conn] = s.snapshots()[0].connections
            [channel] = [c for c in client.snapshot().channels if c.local_id == conn.channel_id]
            worst_unwritten = max(worst_unwritten, channel.bytes_received - conn.bytes_received)
        slow.close()
    await client.close()
    assert consumed > 0
    # Unwritten channel data never exceeds the window we granted (2 MiB by default).
    assert worst_unwritten <= 2 * MIB
    # End to end: only windows and socket buffers separate the reader from the writer.
    assert worst_gap < 32 * MIB, f"the target got {worst_gap / MIB:.1f} MiB ahead of the reader"


async def test_slow_target_holds_the_local_writer_back(sshd_module: SshdServer, home: Path) -> None:
    taken = 0

    async def slow_sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal taken
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        with contextlib.suppress(OSError):
            while data := await reader.read(64 * 1024):
                taken += len(data)
                await asyncio.sleep(0.02)
        writer.close()

    client = await connect_to(sshd_module, home)
    async with (
        serving(slow_sink) as port,
        forwarding(client, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
    ):
        _, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 0))
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sent = 0
        block = bytes(MIB)

        async def write_forever() -> None:
            nonlocal sent
            while True:
                writer.write(block)
                await writer.drain()
                sent += len(block)

        pusher = asyncio.create_task(write_forever())
        await asyncio.sleep(3)
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await pusher
        gap = sent - taken
        writer.close()
    await client.close()
    assert taken > 0
    assert gap < 32 * MIB, f"the local writer got {gap / MIB:.1f} MiB ahead of the target"


# --- -R ----------------------------------------------------------------------------------------------


async def test_remote_forward_on_a_fixed_port_and_on_port_zero(sshd_module: SshdServer, home: Path) -> None:
    fixed = free_port()
    client = await connect_to(sshd_module, home)
    async with echo_server() as (port, _):
        specs = (
            parse_forward("remote", f"{fixed}:127.0.0.1:{port}"),
            parse_forward("remote", f"0:127.0.0.1:{port}"),
        )
        async with forwarding(client, *specs) as s:
            first, chosen = s.snapshots()
            assert (first.state, first.listen) == (ForwardState.LISTENING, f"127.0.0.1:{fixed}")
            assert chosen.state is ForwardState.LISTENING
            chosen_port = listen_port(s, 1)
            assert chosen_port not in (0, fixed)
            # sshd itself listens on both ports and carries each connection back to our echo server.
            assert await echo_through(fixed, b"via the fixed port") == b"via the fixed port"
            big = os.urandom(3 * MIB)
            assert await echo_through(chosen_port, big) == big
            await eventually(lambda: s.snapshots()[1].open_connections == 0, what="the connection to end")
            snap = s.snapshots()[1]
            assert (snap.total_connections, snap.bytes_sent, snap.bytes_received) == (1, 3 * MIB, 3 * MIB)
        # cancel-tcpip-forward: sshd stops listening once the forward is closed.
        await eventually(lambda: _refused(fixed), timeout=5, what="sshd to stop listening")
    await client.close()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


async def test_remote_forward_refused_by_the_server_is_named(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        reports: list[str] = []
        async with echo_server() as (port, _):
            specs = (
                parse_forward("remote", f"{busy}:127.0.0.1:{port}"),
                parse_forward("remote", f"0:127.0.0.1:{port}"),
            )
            async with forwarding(client, *specs, reports=reports) as s:
                refused, fine = s.snapshots()
                assert refused.state is ForwardState.FAILED
                assert reports == [
                    f"-R {busy}:127.0.0.1:{port}: the server refused to listen on 127.0.0.1:{busy}"
                ]
                assert fine.state is ForwardState.LISTENING
                assert await echo_through(listen_port(s, 1), b"unaffected") == b"unaffected"
    await client.close()


async def test_remote_forward_to_a_closed_local_port(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    closed_port = free_port()
    async with forwarding(client, parse_forward("remote", f"0:127.0.0.1:{closed_port}")) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", listen_port(s, 0))
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # sshd closes it: our open failure
        writer.close()
        await eventually(lambda: s.snapshots()[0].failed_connections == 1, what="the failure to be counted")
        assert "Connection refused" in s.snapshots()[0].last_error
    await client.close()


# --- -D ----------------------------------------------------------------------------------------------


async def socks4_connect(
    port: int, ip: str, target_port: int
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x04\x01" + struct.pack(">H", target_port) + socket.inet_aton(ip) + b"me\x00")
    reply = await asyncio.wait_for(reader.readexactly(8), TIMEOUT)
    return reply[1], reader, writer


async def socks4a_connect(
    port: int, name: str, target_port: int
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"\x04\x01" + struct.pack(">H", target_port) + b"\x00\x00\x00\x01" + b"\x00" + name.encode() + b"\x00"
    )
    reply = await asyncio.wait_for(reader.readexactly(8), TIMEOUT)
    return reply[1], reader, writer


async def socks5_connect(
    port: int, atyp: int, address: bytes, target_port: int
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x05\x02\x00\x02")  # offers "no authentication" and username/password
    assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\x05\x00"
    writer.write(bytes((5, 1, 0, atyp)) + address + struct.pack(">H", target_port))
    head = await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
    assert head[0] == 5 and head[2] == 0
    rest = {1: 4, 4: 16}.get(head[3])
    await reader.readexactly((rest if rest is not None else (await reader.readexactly(1))[0]) + 2)
    return head[1], reader, writer


async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> bytes:
    writer.write(payload)
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(-1), TIMEOUT)
    finally:
        writer.close()


async def test_socks4_socks4a_and_socks5_through_dynamic_forward(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    async with echo_server() as (port, _), forwarding(client, parse_forward("dynamic", "0")) as s:
        proxy = listen_port(s, 0)
        code, r, w = await socks4_connect(proxy, "127.0.0.1", port)
        assert code == 90 and await talk(r, w, b"socks4") == b"socks4"
        code, r, w = await socks4a_connect(proxy, "localhost", port)
        assert code == 90 and await talk(r, w, b"socks4a") == b"socks4a"
        code, r, w = await socks5_connect(proxy, 1, socket.inet_aton("127.0.0.1"), port)
        assert code == 0 and await talk(r, w, b"socks5 ipv4") == b"socks5 ipv4"
        name = b"localhost"
        code, r, w = await socks5_connect(proxy, 3, bytes((len(name),)) + name, port)
        # The name is resolved by sshd, which tries each address of "localhost" in turn.
        assert code == 0 and await talk(r, w, b"by name") == b"by name"
        await eventually(lambda: s.snapshots()[0].open_connections == 0, what="connections to end")
        snap = s.snapshots()[0]
        assert snap.total_connections == 4
        assert snap.bytes_sent >= len(b"socks4socks4asocks5 ipv4")
    await client.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_socks5_to_an_ipv6_target(sshd_module: SshdServer, home: Path) -> None:
    client = await connect_to(sshd_module, home)
    async with echo_server("::1") as (port, _), forwarding(client, parse_forward("dynamic", "0")) as s:
        code, r, w = await socks5_connect(
            listen_port(s, 0), 4, socket.inet_pton(socket.AF_INET6, "::1"), port
        )
        assert code == 0 and await talk(r, w, b"over IPv6") == b"over IPv6"
        assert s.snapshots()[0].total_connections == 1
    await client.close()


async def test_socks_failures_get_error_replies_and_the_proxy_carries_on(
    sshd_module: SshdServer, home: Path
) -> None:
    closed_port = free_port()
    client = await connect_to(sshd_module, home)
    async with echo_server() as (port, _), forwarding(client, parse_forward("dynamic", "0")) as s:
        proxy = listen_port(s, 0)
        code, _, w = await socks5_connect(proxy, 1, socket.inet_aton("127.0.0.1"), closed_port)
        assert code == 5  # connection refused
        w.close()
        code, _, w = await socks4_connect(proxy, "127.0.0.1", closed_port)
        assert code == 91  # request rejected or failed
        w.close()
        unknown = b"no-such-host.invalid"
        code, _, w = await socks5_connect(proxy, 3, bytes((len(unknown),)) + unknown, port)
        assert code not in (0, 5) and code in range(1, 9)
        w.close()

        # A malformed request (SOCKS5 BIND) gets "command not supported" and only that client is closed...
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(
            b"\x05\x01\x00" + bytes((5, 2, 0, 1)) + socket.inet_aton("127.0.0.1") + struct.pack(">H", port)
        )
        assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b"\x05\x00" + bytes(
            (5, 7, 0, 1, 0, 0, 0, 0, 0, 0)
        )
        writer.close()
        # ... as is a client that does not speak SOCKS at all.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b""
        writer.close()

        code, r, w = await socks5_connect(proxy, 1, socket.inet_aton("127.0.0.1"), port)
        assert code == 0 and await talk(r, w, b"still serving") == b"still serving"
        snap = s.snapshots()[0]
        assert snap.failed_connections == 5 and snap.state is ForwardState.LISTENING
        assert any("Connection refused" in reason for reason, _ in snap.errors)
        assert any(reason.startswith("SOCKS:") for reason, _ in snap.errors)
    await client.close()


# --- -J ----------------------------------------------------------------------------------------------


@pytest.fixture
def two_servers(sshd_factory: SshdFactory, tmp_path: Path) -> tuple[SshdServer, SshdServer, Path]:
    first, second = sshd_factory(), sshd_factory()
    known = tmp_path / "known_hosts"
    known.write_text(f"{first.known_hosts_line()}\n{second.known_hosts_line()}\n")
    return first, second, known


async def test_jump_through_two_sshd_instances(
    two_servers: tuple[SshdServer, SshdServer, Path], home: Path
) -> None:
    first, second, known = two_servers
    # Through first, then second, to first again: two jumps, each inside the previous connection.
    settings = settings_for(first, home, known)
    prompter = Prompter(batch_mode=True)
    hops = jump_options(settings, [f"{first.host}:{first.port}", f"{second.host}:{second.port}"], prompter)
    client = await connect_through(hops, build_client_options(settings, prompter))
    try:
        result = await client.run("echo $SSH_CONNECTION")
        assert result.exit_status == 0
        # The destination sees the connection coming from the second hop's sshd, on its own port.
        assert result.stdout.split()[2:] == [b"127.0.0.1", str(first.port).encode()]
        async with (
            echo_server() as (port, _),
            forwarding(client, parse_forward("local", f"0:127.0.0.1:{port}")) as s,
        ):
            data = os.urandom(2 * MIB)
            assert await echo_through(listen_port(s, 0), data) == data
    finally:
        await client.close()
    # The hops close with the destination, each with a DISCONNECT of its own.
    await eventually(lambda: "Received disconnect" in second.log_text(), timeout=5, what="the hop to close")


async def test_every_jump_host_key_is_checked(
    two_servers: tuple[SshdServer, SshdServer, Path], home: Path
) -> None:
    first, second, _ = two_servers
    only_destination = home / "known_destination"
    only_destination.write_text(second.known_hosts_line() + "\n")
    settings = settings_for(second, home, only_destination)
    prompter = Prompter(batch_mode=True)
    hops = jump_options(settings, [f"{first.host}:{first.port}"], prompter)
    with pytest.raises(SSHError) as caught:
        await connect_through(hops, build_client_options(settings, prompter))
    assert str(first.port) in caught.value.message  # the unknown key is the jump host's


# --- reconnecting -------------------------------------------------------------------------------------


def sshd_sessions(server: SshdServer) -> list[int]:
    """The per-connection processes of this sshd (its descendants), by pid."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [server.pid]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def take_server_down(server: SshdServer) -> None:
    """Stop sshd and end its sessions too: sshd -D leaves running sessions alive on SIGTERM."""
    sessions = sshd_sessions(server)
    server.stop()
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


async def test_forwards_survive_the_server_going_away(sshd_factory: SshdFactory, home: Path) -> None:
    server = sshd_factory()
    options = build_client_options(settings_for(server, home), Prompter(batch_mode=True))
    reconnector = Reconnector(lambda: connect(options), BackoffPolicy(wait_for_connection=1.0))
    async with echo_server() as (port, _):
        session = ForwardSession(
            [parse_forward("local", f"0:127.0.0.1:{port}"), parse_forward("remote", f"0:127.0.0.1:{port}")],
            reconnector,
            lambda line: None,
        )
        reconnector.on_connect.append(session.attach)
        reconnector.on_state.append(session.connection_state)
        await reconnector.start()
        await session.start_listeners()
        local = listen_port(session, 0)
        assert await echo_through(local, b"before") == b"before"

        take_server_down(server)
        await eventually(lambda: not reconnector.connected, what="the drop to be noticed")
        await eventually(lambda: len(reconnector.snapshot().attempts) >= 1, what="a first reconnect attempt")
        local_snap, remote_snap = session.snapshots()
        assert local_snap.state is remote_snap.state is ForwardState.RECONNECTING
        assert local_snap.reason.startswith(("connection lost", "reconnect failed"))
        # The listener is still up; a new client waits briefly, then is turned away with the reason.
        assert await echo_through(local, b"during") == b""
        assert "no SSH connection" in session.snapshots()[0].last_error

        reconnector.policy = BackoffPolicy(wait_for_connection=TIMEOUT)
        waiting = asyncio.create_task(echo_through(local, b"waited for it"))
        await asyncio.sleep(0.2)
        server.start()  # same port, keys and configuration
        assert await asyncio.wait_for(waiting, TIMEOUT) == b"waited for it"
        await eventually(lambda: session.snapshots()[1].state is ForwardState.LISTENING, what="-R again")
        assert await echo_through(listen_port(session, 1), b"remote again") == b"remote again"
        assert await echo_through(local, b"after") == b"after"

        snap = reconnector.snapshot()
        assert snap.connected and snap.connections == 2 and snap.last_drop.startswith("connection lost")
        assert snap.attempts[-1].outcome == "connected"
        assert all(a.outcome != "connected" for a in snap.attempts[:-1])
        assert any("refused" in a.outcome.lower() for a in snap.attempts[:-1])
        assert snap.attempts[0].cause.startswith("connection lost")
        for attempt in snap.attempts:  # 1 s, 2 s, 4 s ..., each cut by up to 20 % of jitter
            base = min(60.0, 2.0 ** (attempt.number - 1))
            assert 0.8 * base - 0.001 <= attempt.delay <= base
        await session.close()
        await reconnector.close()


def test_backoff_doubles_from_one_second_to_a_minute_with_jitter() -> None:
    policy = BackoffPolicy()
    assert [policy.delay(n, lambda: 0.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(1, lambda: 1.0) == pytest.approx(0.8)
    assert policy.delay(100, lambda: 0.5) == pytest.approx(54.0)


# --- the commands ------------------------------------------------------------------------------------


def command_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS")}
    env.update(
        HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    )
    return env


def connection_args(server: SshdServer, known_hosts: Path | None = None) -> list[str]:
    return [
        "-p",
        str(server.port),
        "-i",
        str(server.client_key),
        "-o",
        f"UserKnownHostsFile={known_hosts or server.known_hosts_file}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
    ]


@pytest.fixture
def echo_thread() -> Iterator[int]:
    """An echo server in its own thread, for tests that drive sshtui as a separate process."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield port
    listener.close()


def blocking_echo(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks)



def spawn_command(argv: list[str], home: Path) -> subprocess.Popen[bytes]:
    """``sshtui forward`` in its own session, with piped output, as a user would run it."""
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=command_env(home),
        cwd=REPO_ROOT,
        start_new_session=True,
    )


def test_forward_command_runs_until_sigterm(
    sshd_module: SshdServer, home: Path, tmp_path: Path, echo_thread: int
) -> None:
    stats = tmp_path / "stats.json"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        argv = [
            sys.executable,
            "-m",
            "sshtui",
            "forward",
            sshd_module.host,
            *connection_args(sshd_module),
            "-L",
            f"0:127.0.0.1:{echo_thread}",
            "-R",
            f"0:127.0.0.1:{echo_thread}",
            "-D",
            "0",
            "-L",
            f"{busy}:127.0.0.1:{echo_thread}",
            "-L",
            "not-a-spec",
            "--json",
            "--status-interval",
            "0.5",
            "--stats-json",
            str(stats),
        ]
        proc = spawn_command(argv, home)
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            states = [f["state"] for f in first["forwards"]]
            assert states == ["listening", "failed", "listening", "listening"], first
            ports = [int(f["listen"].rsplit(":", 1)[1]) for f in first["forwards"]]
            assert blocking_echo(ports[0], b"through -L") == b"through -L"
            assert blocking_echo(ports[2], b"through -R") == b"through -R"
            second = json.loads(proc.stdout.readline())
            assert second["connected"] is True and second["forwards"][0]["total_connections"] == 1
            assert json.loads(stats.read_text())["forwards"][0]["spec"] == f"-L 0:127.0.0.1:{echo_thread}"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    final = [json.loads(line) for line in out.decode().splitlines()][-1]
    assert final["final"] is True
    stderr = err.decode()
    assert "'-L not-a-spec'" in stderr
    assert f"-L {busy}:127.0.0.1:{echo_thread}: cannot listen on 127.0.0.1:{busy}" in stderr
    assert all(line.startswith("sshtui: ") for line in stderr.splitlines()) and "Traceback" not in stderr
    assert _refused(ports[0])  # the listeners are closed
    time.sleep(0.3)
    assert "Received disconnect from 127.0.0.1" in sshd_module.log_text()


def test_forward_command_status_lines_for_people(
    sshd_module: SshdServer, home: Path, echo_thread: int
) -> None:
    argv = [
        sys.executable,
        "-m",
        "sshtui",
        "forward",
        sshd_module.host,
        *connection_args(sshd_module),
        "-L",
        f"0:127.0.0.1:{echo_thread}",
        "--status-interval",
        "0",
    ]
    proc = spawn_command(argv, home)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith(f"-L 0:127.0.0.1:{echo_thread}  127.0.0.1:") and " listening " in line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == b""


def test_forward_command_with_only_bad_specs_exits_with_the_reasons(
    sshd_module: SshdServer, home: Path
) -> None:
    argv = [
        sys.executable,
        "-m",
        "sshtui",
        "forward",
        sshd_module.host,
        *connection_args(sshd_module),
        "-D",
        "x:y:z",
    ]
    result = subprocess.run(argv, capture_output=True, env=command_env(home), cwd=REPO_ROOT, timeout=TIMEOUT)
    assert result.returncode != 0
    assert "'-D x:y:z'" in result.stderr.decode() and "Traceback" not in result.stderr.decode()


def test_exec_with_local_and_remote_forwards(sshd_module: SshdServer, home: Path, echo_thread: int) -> None:
    local, remote = free_port(), free_port()
    # The remote command runs on this machine too: it reaches our echo server through -L
    # (its connection enters our listener) and through -R (sshd's listener, carried back to us).
    script = (
        "import socket, sys\n"
        "for port in map(int, sys.argv[1:]):\n"
        "    c = socket.create_connection(('127.0.0.1', port)); c.sendall(b'hi %d' % port)\n"
        "    c.shutdown(socket.SHUT_WR); print(c.recv(100).decode()); c.close()\n"
    )
    command = f'{sys.executable} -c "{script}" {local} {remote}'
    argv = [
        sys.executable,
        "-m",
        "sshtui",
        "exec",
        *connection_args(sshd_module),
        "-L",
        f"{local}:127.0.0.1:{echo_thread}",
        "-R",
        f"{remote}:127.0.0.1:{echo_thread}",
        sshd_module.host,
        command,
    ]
    result = subprocess.run(argv, capture_output=True, env=command_env(home), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split("\n")[:2] == [f"hi {local}", f"hi {remote}"]


def test_exec_reports_the_port_the_server_chose(
    sshd_module: SshdServer, home: Path, echo_thread: int
) -> None:
    argv = [
        *(sys.executable, "-m", "sshtui", "exec", *connection_args(sshd_module)),
        *("-R", f"0:127.0.0.1:{echo_thread}", sshd_module.host, "true"),
    ]
    result = subprocess.run(argv, capture_output=True, env=command_env(home), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    [line] = result.stderr.decode().splitlines()
    prefix = f"sshtui: -R 0:127.0.0.1:{echo_thread}: the server allocated port "
    assert line.startswith(prefix) and line[len(prefix) :].split()[0].isdigit()


def test_exec_through_a_jump_host(two_servers: tuple[SshdServer, SshdServer, Path], home: Path) -> None:
    first, second, known = two_servers
    argv = [
        sys.executable,
        "-m",
        "sshtui",
        "exec",
        *connection_args(second, known),
        "-J",
        f"{first.host}:{first.port}",
        second.host,
        "echo",
        "$SSH_CONNECTION",
    ]
    result = subprocess.run(argv, capture_output=True, env=command_env(home), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.split()[2:] == [b"127.0.0.1", str(second.port).encode()]
    assert "Accepted publickey" in first.log_text()
