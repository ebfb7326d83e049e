"""``SSHClient.keepalives_unanswered`` (what the side panel shows as missed replies): it counts the
keepalives (RFC 4254 §4 global requests) sent while the server is silent, and drops back to 0 as
soon as the server is heard from again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.net.server import ServerOptions, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from tests.net.fault_proxy import FaultProxy

pytestmark = pytest.mark.timeout(60)

HOST_KEY, USER_KEY = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
INTERVAL = 0.1  # ServerAliveInterval, short so the test does not wait long
COUNT_MAX = 1000  # never reached here: the connection must stay up while the server is silent


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[SSHClient, FaultProxy]]:
    """A client with keepalives on, connected to our server through a proxy that can go silent."""
    authorized = AuthorizedKeys.parse(openssh_public_line(USER_KEY.public_blob, "tester") + "\n")
    server_options = ServerOptions([HOST_KEY], port=0, authorized_keys=authorized)
    async with await start_server(server_options) as server, FaultProxy(server.port) as proxy:
        options = ClientOptions(
            "127.0.0.1", proxy.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
            connect_timeout=10, server_alive_interval=INTERVAL, server_alive_count_max=COUNT_MAX,
        )
        async with await connect(options) as client:
            yield client, proxy


async def test_counts_keepalives_while_the_server_is_silent_and_resets_on_its_answer(
    proxied: tuple[SSHClient, FaultProxy],
) -> None:
    client, proxy = proxied
    assert client.keepalives_unanswered == 0
    proxy.pause_reading_from_client()  # the server never sees the keepalives, so it never answers
    await until(lambda: client.keepalives_unanswered >= 3, "three keepalives went unanswered")
    assert not client.closed.done()
    proxy.resume_reading_from_client()
    await until(lambda: client.keepalives_unanswered == 0, "the server's answers reset the count")
    assert not client.closed.done()


async def test_is_read_only(proxied: tuple[SSHClient, FaultProxy]) -> None:
    client, _ = proxied
    with pytest.raises(AttributeError):
        client.keepalives_unanswered = 5  # type: ignore[misc]
