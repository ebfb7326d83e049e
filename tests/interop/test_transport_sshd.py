"""Our transport against a real OpenSSH sshd: every algorithm, rekeys both ways, strict kex."""

from __future__ import annotations

import shutil
import subprocess
import time
from functools import cache

import pytest

from sshtui.ssh.config import DEFAULT_CIPHERS, DEFAULT_KEX, OPTIONAL_KEX, OPTIONAL_MACS, TransportConfig
from sshtui.ssh.events import Disconnected, KexCompleted, ServiceAccepted
from sshtui.ssh.transport_machine import Phase

from .transport_client import connect

pytestmark = pytest.mark.interop


@cache
def openssh_supports(category: str) -> frozenset[str]:
    ssh = shutil.which("ssh")
    if ssh is None:
        return frozenset()
    out = subprocess.run([ssh, "-Q", category], capture_output=True, text=True, check=False).stdout
    return frozenset(out.split())


def _require(category: str, name: str) -> None:
    if name not in openssh_supports(category):
        pytest.skip(
            f"this OpenSSH does not support {name} (tested against our own server and asyncssh instead)"
        )


def _assert_service_accepted(session) -> None:  # type: ignore[no-untyped-def]
    t = session.transport
    assert t.error is None, f"{t.error!r}"
    assert t.phase is Phase.ESTABLISHED
    assert session.count(ServiceAccepted) == 1


@pytest.mark.parametrize("kex", DEFAULT_KEX + OPTIONAL_KEX)
def test_every_kex_algorithm(sshd_module, sshd_module_factory, kex: str) -> None:  # type: ignore[no-untyped-def]
    _require("kex", kex)
    server = sshd_module_factory(extra_config=[f"KexAlgorithms {kex}"]) if "sha1" in kex else sshd_module
    session = connect(server.host, server.port, TransportConfig(kex_algorithms=(kex,)))
    try:
        _assert_service_accepted(session)
        assert session.transport.snapshot().kex_algorithm == kex
        assert session.transport.strict_kex is True
    finally:
        session.close()


@pytest.mark.parametrize(
    "algorithm",
    ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"],
)
def test_every_host_key_algorithm(sshd_module, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    server = sshd_module
    session = connect(server.host, server.port, TransportConfig(host_key_algorithms=(algorithm,)))
    try:
        _assert_service_accepted(session)
        snap = session.transport.snapshot()
        assert snap.host_key_algorithm == algorithm
        # The fingerprint we computed matches the key sshd actually holds.
        key_type = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa"}.get(algorithm, "rsa")
        expected = subprocess.run(
            ["ssh-keygen", "-lf", str(server.host_key_paths[key_type]) + ".pub"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]
        assert snap.host_key_fingerprint == expected
    finally:
        session.close()


@pytest.mark.parametrize("algorithm", ["ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"])
def test_larger_ecdsa_host_keys(sshd_factory, tmp_path, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    bits = algorithm[-3:]
    key = tmp_path / f"host_{bits}"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ecdsa", "-b", bits, "-f", str(key)], check=True)
    server = sshd_factory(extra_config=[f"HostKey {key}"])
    session = connect(server.host, server.port, TransportConfig(host_key_algorithms=(algorithm,)))
    try:
        _assert_service_accepted(session)
        assert session.transport.snapshot().host_key_algorithm == algorithm
    finally:
        session.close()


@pytest.mark.parametrize("cipher", DEFAULT_CIPHERS)
def test_every_cipher(sshd_module, cipher: str) -> None:  # type: ignore[no-untyped-def]
    server = sshd_module
    session = connect(server.host, server.port, TransportConfig(ciphers=(cipher,)))
    try:
        _assert_service_accepted(session)
        snap = session.transport.snapshot()
        assert snap.cipher_c2s == snap.cipher_s2c == cipher
    finally:
        session.close()


@pytest.mark.parametrize(
    "mac",
    [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        *OPTIONAL_MACS,
    ],
)
def test_every_mac(sshd_module, mac: str) -> None:  # type: ignore[no-untyped-def]
    server = sshd_module
    session = connect(server.host, server.port, TransportConfig(ciphers=("aes128-ctr",), macs=(mac,)))
    try:
        _assert_service_accepted(session)
        snap = session.transport.snapshot()
        assert snap.mac_c2s == snap.mac_s2c == mac
    finally:
        session.close()


def test_strict_kex_is_negotiated_with_sshd(sshd_module) -> None:  # type: ignore[no-untyped-def]
    server = sshd_module
    session = connect(server.host, server.port)
    try:
        _assert_service_accepted(session)
        assert session.transport.snapshot().strict_kex
        # The server's version line is kept for the snapshot.
        assert session.transport.snapshot().peer_version.startswith("SSH-2.0-OpenSSH")
    finally:
        session.close()


def test_negotiation_failure_against_sshd_is_explained(sshd_factory) -> None:  # type: ignore[no-untyped-def]
    server = sshd_factory(extra_config=["Ciphers aes256-ctr"])
    session = connect(server.host, server.port, TransportConfig(ciphers=("aes128-ctr",)))
    try:
        assert session.transport.is_closed
        message = str(session.transport.error)
        assert "aes256-ctr" in message and "aes128-ctr" in message and "Ciphers" in message
        assert session.count(Disconnected) == 1
    finally:
        session.sock.close()


def test_sshd_sees_our_disconnect_with_reason(sshd_module) -> None:  # type: ignore[no-untyped-def]
    server = sshd_module
    session = connect(server.host, server.port)
    _assert_service_accepted(session)
    session.close()
    deadline = time.monotonic() + 5
    while "Received disconnect" not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Received disconnect" in server.log_text()
    assert session.count(KexCompleted) == 1
