"""Key re-exchange against a real sshd, started by us and by sshd, while data flows."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import connect
from sshtui.ssh.config import TransportConfig

pytestmark = pytest.mark.interop


def _options(server, config: TransportConfig | None = None) -> ClientOptions:  # type: ignore[no-untyped-def]
    return ClientOptions(
        host=server.host,
        port=server.port,
        username=server.user,
        transport=config or TransportConfig(),
        auth=AuthOptions(identity_files=[server.client_key], identities_only=True),
        connect_timeout=20,
    )


async def _download(client, size: int) -> bytes:  # type: ignore[no-untyped-def]
    result = await client.run(f"head -c {size} /dev/zero | tr '\\0' 'x'")
    assert result.exit_status == 0
    return result.stdout


def test_rekeys_requested_by_us_while_data_flows(sshd_module) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with await connect(_options(sshd_module)) as client:
            channel = await client.exec("cat")
            sent = hashlib.sha256()
            received = hashlib.sha256()

            async def reader() -> None:
                while chunk := await channel.read():
                    received.update(chunk)

            read_task = asyncio.create_task(reader())
            for i in range(8):
                assert client.request_rekey()
                # Written while the exchange runs: held back, then sent under the new keys.
                block = bytes([i]) * 300_000
                sent.update(block)
                await channel.write(block)
                for _ in range(200):
                    if client.conn.transport.kex_count == i + 2:
                        break
                    await asyncio.sleep(0.01)
            await channel.write_eof()
            await asyncio.wait_for(read_task, 30)
            snap = client.snapshot().transport
            assert snap.kex_count == 9, snap.kex_history
            assert [r.initiated_by for r in snap.kex_history[1:]] == ["local"] * 8
            assert received.hexdigest() == sent.hexdigest()

    asyncio.run(scenario())


def test_rekeys_by_our_byte_limit(sshd_module) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        config = TransportConfig(rekey_bytes=256 * 1024)
        async with await connect(_options(sshd_module, config)) as client:
            data = await _download(client, 8 * 1024 * 1024)
            assert data == b"x" * (8 * 1024 * 1024)
            snap = client.snapshot().transport
            # The server keeps sending while our KEXINIT is in flight, so not every 256 KiB.
            assert snap.rekeys >= 8
            assert snap.rekey.bytes_limit == 256 * 1024

    asyncio.run(scenario())


def test_rekeys_started_by_sshd(sshd_factory) -> None:  # type: ignore[no-untyped-def]
    server = sshd_factory(extra_config=["RekeyLimit 256K"])

    async def scenario() -> None:
        async with await connect(_options(server)) as client:
            data = await _download(client, 8 * 1024 * 1024)
            assert data == b"x" * (8 * 1024 * 1024)
            history = client.snapshot().transport.kex_history
            peer_started = [r for r in history if r.initiated_by == "peer"]
            assert len(peer_started) >= 10, history

    asyncio.run(scenario())


def test_time_based_rekey_by_us(sshd_module) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        config = TransportConfig(rekey_seconds=0.5)
        async with await connect(_options(sshd_module, config)) as client:
            await asyncio.sleep(1.8)
            result = await client.run("echo still here")
            assert result.stdout == b"still here\n"
            assert client.snapshot().transport.rekeys >= 2

    asyncio.run(scenario())
