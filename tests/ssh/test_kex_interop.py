"""Our key exchange against asyncssh's independent implementation of every method, in both
roles, without sockets: asyncssh's kex handler is driven through a stand-in connection.

Both sides must reach the same K and H, and each verifies the other's host key signature.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from typing import Any

import pytest

from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line, verify_signature
from sshtui.ssh.crypto.kex_base import ClientKex, KexContext, KexOutcome, ServerKex
from sshtui.ssh.crypto.kex_registry import KEX_METHODS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import asyncssh
    from asyncssh.kex import get_kex, get_kex_algs
    from asyncssh.logging import logger as asyncssh_logger
    from asyncssh.packet import SSHPacket, String

CONTEXT = KexContext(
    b"SSH-2.0-OpenSSH_9.9", b"SSH-2.0-sshtui_test", b"\x14" + bytes(range(60)), b"\x14" + b"\xaa" * 70
)
METHODS = [name for name in KEX_METHODS if name.encode() in get_kex_algs()]

# asyncssh's finite-field DH goes through an API cryptography has deprecated; ours does not.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


class _AsyncsshHostKey:
    """What asyncssh's server-side kex needs from its host key."""

    def __init__(self, key: Any, algorithm: bytes):
        self.public_data = key.public_data
        self._key = key
        self._algorithm = algorithm

    def sign(self, data: bytes) -> bytes:
        signature: bytes = self._key.sign(data, self._algorithm)
        return signature


class StandInConnection:
    """The few SSHConnection methods asyncssh's kex handlers call."""

    logger = asyncssh_logger

    def __init__(self, client: bool, host_key: _AsyncsshHostKey | None = None):
        self._client = client
        self._host_key = host_key
        self.outbox: list[bytes] = []
        self.newkeys: tuple[bytes, bytes] | None = None

    def is_client(self) -> bool:
        return self._client

    def is_server(self) -> bool:
        return not self._client

    def get_hash_prefix(self) -> bytes:
        return b"".join(
            String(part)
            for part in (
                CONTEXT.client_version,
                CONTEXT.server_version,
                CONTEXT.client_kexinit,
                CONTEXT.server_kexinit,
            )
        )

    def send_packet(self, pkttype: int, *args: bytes, handler: object = None) -> None:
        self.outbox.append(bytes((pkttype,)) + b"".join(args))

    def send_newkeys(self, k: bytes, h: bytes) -> None:
        self.newkeys = (k, h)

    def get_server_host_key(self) -> _AsyncsshHostKey | None:
        return self._host_key

    def validate_server_host_key(self, key_data: bytes) -> Any:
        return asyncssh.import_public_key(openssh_public_line(key_data))


def _feed(handler: Any, payload: bytes) -> None:
    assert handler.process_packet(payload[0], 0, SSHPacket(payload[1:]))


def _drain(conn: StandInConnection) -> list[bytes]:
    out, conn.outbox = conn.outbox, []
    return out


@pytest.fixture(scope="module")
def asyncssh_host_key() -> Any:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def host_keys() -> dict[str, PrivateKey]:
    return {
        "ssh-ed25519": PrivateKey.generate("ed25519"),
        "rsa-sha2-512": PrivateKey.generate("rsa", 2048),
        "ecdsa-sha2-nistp384": PrivateKey.generate("ecdsa", 384),
    }


@pytest.mark.parametrize("name", METHODS)
def test_our_client_against_asyncssh_server(name: str, asyncssh_host_key: Any) -> None:
    conn = StandInConnection(client=False, host_key=_AsyncsshHostKey(asyncssh_host_key, b"ssh-ed25519"))
    theirs = get_kex(conn, name.encode())  # type: ignore[arg-type]
    ours: ClientKex = KEX_METHODS[name].make_client(CONTEXT, os.urandom)
    outcome: KexOutcome | None = None
    to_them = ours.start()
    for _ in range(3):
        for payload in to_them:
            _feed(theirs, payload)
        to_them = []
        for payload in _drain(conn):
            replies, outcome = ours.receive(payload)
            to_them += replies
        if outcome is not None:
            break
    assert outcome is not None and conn.newkeys is not None
    assert outcome.shared_secret == conn.newkeys[0]
    assert outcome.exchange_hash == conn.newkeys[1]
    verify_signature("ssh-ed25519", outcome.host_key_blob, outcome.signature, outcome.exchange_hash)


@pytest.mark.parametrize("algorithm", ["ssh-ed25519", "rsa-sha2-512", "ecdsa-sha2-nistp384"])
@pytest.mark.parametrize("name", METHODS)
def test_asyncssh_client_against_our_server(
    name: str, algorithm: str, host_keys: dict[str, PrivateKey]
) -> None:
    conn = StandInConnection(client=True)
    theirs = get_kex(conn, name.encode())  # type: ignore[arg-type]
    ours: ServerKex = KEX_METHODS[name].make_server(
        CONTEXT, os.urandom, host_keys[algorithm].signer(algorithm)
    )
    outcome: KexOutcome | None = None
    asyncio.run(theirs.start())
    for _ in range(3):
        for payload in _drain(conn):
            replies, result = ours.receive(payload)
            outcome = outcome or result
            for reply in replies:
                # asyncssh verifies our host key signature here and fails the exchange if it is wrong.
                _feed(theirs, reply)
        if conn.newkeys is not None:
            break
    assert outcome is not None and conn.newkeys is not None
    assert outcome.shared_secret == conn.newkeys[0]
    assert outcome.exchange_hash == conn.newkeys[1]


def test_asyncssh_implements_every_method_we_offer() -> None:
    assert set(METHODS) == set(KEX_METHODS)
