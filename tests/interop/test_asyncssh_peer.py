"""Our client against asyncssh's server: a second independent implementation, and the
only peer here that speaks mlkem768x25519-sha256 (OpenSSH 9.2's sshd predates it)."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import connect
from sshtui.ssh.config import DEFAULT_CIPHERS, DEFAULT_KEX, TransportConfig
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    asyncssh = pytest.importorskip("asyncssh")

pytestmark = pytest.mark.interop


class _Server(asyncssh.SSHServer):  # type: ignore[misc]
    def begin_auth(self, username: str) -> bool:
        return True


async def _handle(process) -> None:  # type: ignore[no-untyped-def]
    data = await process.stdin.read()
    process.stdout.write(f"{process.command}:{len(data)}\n")
    process.exit(7)


async def _start_server(client_key: PrivateKey, kex: tuple[str, ...], ciphers: tuple[str, ...]):  # type: ignore[no-untyped-def]
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(openssh_public_line(client_key.public_blob, "test") + "\n")
    return await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        server_factory=_Server,
        process_factory=_handle,
        kex_algs=list(kex),
        encryption_algs=list(ciphers),
    )


async def _roundtrip(kex: str, cipher: str) -> tuple[str, str, bytes, int | None]:
    user_key = PrivateKey.generate("ed25519")
    server = await _start_server(user_key, (kex,), (cipher,))
    port = server.sockets[0].getsockname()[1]
    try:
        options = ClientOptions(
            host="127.0.0.1",
            port=port,
            username="tester",
            transport=TransportConfig(kex_algorithms=(kex,), ciphers=(cipher,)),
            auth=AuthOptions(keys=[user_key], identities_only=True),
            connect_timeout=20,
        )
        async with await connect(options) as client:
            result = await client.run("count", stdin=b"z" * 100_000)
            snap = client.snapshot().transport
            return snap.kex_algorithm, snap.cipher_c2s, result.stdout, result.exit_status
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kex", DEFAULT_KEX)
def test_every_default_kex_against_asyncssh(kex: str) -> None:
    got_kex, _, stdout, status = asyncio.run(_roundtrip(kex, "aes128-gcm@openssh.com"))
    assert got_kex == kex
    assert stdout == b"count:100000\n"
    assert status == 7


@pytest.mark.parametrize("cipher", DEFAULT_CIPHERS)
def test_every_cipher_against_asyncssh(cipher: str) -> None:
    _, got_cipher, stdout, status = asyncio.run(_roundtrip("curve25519-sha256", cipher))
    assert got_cipher == cipher
    assert stdout == b"count:100000\n" and status == 7
