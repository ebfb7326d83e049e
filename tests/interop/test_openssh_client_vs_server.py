"""The OpenSSH client (``ssh``, ``ssh-keyscan``) against our embedded server.

The server runs in a background thread's event loop so that the tests can block on ``ssh``.
Every algorithm our server offers and this ``ssh`` knows is exercised by name, and the server's
own connection snapshot confirms what was really negotiated.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import select
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.ssh.config import server_config
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line

SSH = shutil.which("ssh")
SSH_KEYSCAN = shutil.which("ssh-keyscan")
SERVER_CONFIG = server_config(rekey_bytes=1 << 20)
T = TypeVar("T")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(SSH is None, reason="the OpenSSH client is not installed"),
]


def ssh_query(kind: str) -> tuple[str, ...]:
    if SSH is None:
        return ()
    result = subprocess.run([SSH, "-Q", kind], capture_output=True, text=True, check=False, timeout=10)
    return tuple(result.stdout.split())


def common(ours: tuple[str, ...], kind: str) -> list[str]:
    theirs = set(ssh_query(kind))
    return [name for name in ours if name in theirs]


class ThreadedServer:
    """Our server on its own event loop thread, with the files ``ssh`` needs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.host_keys = [
            PrivateKey.generate("ed25519"),
            PrivateKey.generate("ecdsa-sha2-nistp256"),
            PrivateKey.generate("ecdsa-sha2-nistp384"),
            PrivateKey.generate("ecdsa-sha2-nistp521"),
            PrivateKey.generate("rsa", 2048),
        ]
        user_key = PrivateKey.generate("ed25519")
        self.identity = directory / "id_ed25519"
        self.identity.write_bytes(user_key.to_openssh())
        self.identity.chmod(0o600)
        home = directory / "home"
        home.mkdir()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sshtui-test-server", daemon=True)
        self.thread.start()
        options = ServerOptions(
            self.host_keys, port=0, transport=SERVER_CONFIG, shell="/bin/sh",
            authorized_keys=AuthorizedKeys.parse(openssh_public_line(user_key.public_blob)),
        )
        saved_home = os.environ.get("HOME")
        os.environ["HOME"] = str(home)  # sessions start in an empty home: no profile to surprise us
        try:
            self.server: SSHServer = self.call(start_server(options))
        finally:
            if saved_home is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = saved_home
        self.port = self.server.port
        self.known_hosts = directory / "known_hosts"
        self.known_hosts.write_text("".join(f"{line}\n" for line in self.public_lines()))

    def public_lines(self) -> list[str]:
        return [f"[127.0.0.1]:{self.port} {openssh_public_line(k.public_blob)}" for k in self.host_keys]

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def ssh_args(self, *options: str) -> list[str]:
        assert SSH is not None
        args = [SSH]
        for option in options:  # ssh keeps the first value it sees for an option
            args += ["-o", option]
        args += [
            "-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "LogLevel=ERROR",
            "-i", str(self.identity), "-p", str(self.port),
            "-l", "tester",
        ]
        return args

    def finished_after(self, count: int) -> ConnectionSnapshot:
        """The snapshot of the first connection to end after ``count`` had ended."""
        deadline = time.monotonic() + 10
        while len(self.server.finished) <= count:
            if time.monotonic() > deadline:
                pytest.fail("the server never saw the connection end")
            time.sleep(0.02)
        return self.server.finished[count]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    server = ThreadedServer(tmp_path_factory.mktemp("sshtui-server"))
    yield server
    server.close()


def run_ssh(server: ThreadedServer, *options: str, command: str = "echo ok-$((1+1))") -> str:
    result = subprocess.run(
        [*server.ssh_args(*options), "127.0.0.1", command], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


# --- every algorithm, by name ---------------------------------------------------------------------


@pytest.mark.parametrize("kex", common(SERVER_CONFIG.kex_algorithms, "kex"))
def test_key_exchange(ours: ThreadedServer, kex: str) -> None:
    before = len(ours.server.finished)
    assert run_ssh(ours, f"KexAlgorithms={kex}") == "ok-2\n"
    assert ours.finished_after(before).transport.kex_algorithm == kex


@pytest.mark.parametrize("algorithm", common(SERVER_CONFIG.host_key_algorithms, "key-sig"))
def test_host_key_algorithm(ours: ThreadedServer, algorithm: str) -> None:
    before = len(ours.server.finished)
    assert run_ssh(ours, f"HostKeyAlgorithms={algorithm}") == "ok-2\n"
    assert ours.finished_after(before).transport.host_key_algorithm == algorithm


@pytest.mark.parametrize("cipher", common(SERVER_CONFIG.ciphers, "cipher"))
def test_cipher(ours: ThreadedServer, cipher: str) -> None:
    before = len(ours.server.finished)
    assert run_ssh(ours, f"Ciphers={cipher}") == "ok-2\n"
    snapshot = ours.finished_after(before).transport
    assert (snapshot.cipher_c2s, snapshot.cipher_s2c) == (cipher, cipher)


@pytest.mark.parametrize("mac", common(SERVER_CONFIG.macs, "mac"))
def test_mac(ours: ThreadedServer, mac: str) -> None:
    before = len(ours.server.finished)
    assert run_ssh(ours, "Ciphers=aes128-ctr", f"MACs={mac}") == "ok-2\n"
    snapshot = ours.finished_after(before).transport
    assert (snapshot.mac_c2s, snapshot.mac_s2c) == (mac, mac)


def test_exit_status_stdin_and_stderr(ours: ThreadedServer) -> None:
    result = subprocess.run(
        [*ours.ssh_args(), "127.0.0.1", "wc -c; echo to-stderr >&2; exit 3"],
        input=b"x" * 5000, capture_output=True, timeout=60,
    )
    assert result.returncode == 3
    assert result.stdout.strip() == b"5000"
    assert result.stderr == b"to-stderr\n"


def test_keyscan_reads_our_host_keys(ours: ThreadedServer) -> None:
    if SSH_KEYSCAN is None:
        pytest.skip("ssh-keyscan is not installed")
    result = subprocess.run(
        [SSH_KEYSCAN, "-p", str(ours.port), "-t", "ed25519,ecdsa,rsa", "127.0.0.1"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    scanned = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    ours_lines = set(ours.public_lines())
    assert scanned, result.stderr
    assert set(scanned) <= ours_lines
    types = {line.split()[1] for line in scanned}
    assert {"ssh-ed25519", "ssh-rsa"} <= types
    assert any(t.startswith("ecdsa-sha2-") for t in types)


# --- an interactive terminal ----------------------------------------------------------------------


def test_pty_shell_typing_resizing_and_exit(ours: ThreadedServer) -> None:
    pexpect = pytest.importorskip("pexpect")
    args = ours.ssh_args()
    child = pexpect.spawn(args[0], [*args[1:], "-tt", "127.0.0.1"], dimensions=(24, 80), timeout=20)
    try:
        child.sendline("stty size; echo typed-$((6*7))")
        child.expect("24 80")
        child.expect("typed-42")
        child.setwinsize(50, 132)  # ssh gets SIGWINCH and sends window-change
        time.sleep(0.3)
        child.sendline("stty size")
        child.expect("50 132")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5


# --- forwarding -----------------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def echo_through(port: int, payload: bytes) -> bytes:
    deadline = time.monotonic() + 15
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_local_forward(ours: ThreadedServer, echo_port: int) -> None:
    port = free_port()
    forward = f"{port}:127.0.0.1:{echo_port}"
    process = subprocess.Popen([*ours.ssh_args("ExitOnForwardFailure=yes"), "-N", "-L", forward, "127.0.0.1"])
    try:
        payload = os.urandom(1 << 20)
        assert echo_through(port, payload) == payload
    finally:
        _stop(process)


def test_remote_forward(ours: ThreadedServer, echo_port: int) -> None:
    args = ours.ssh_args("ExitOnForwardFailure=yes", "LogLevel=INFO")
    process = subprocess.Popen(
        [*args, "-N", "-R", f"0:127.0.0.1:{echo_port}", "127.0.0.1"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 15)
        line = process.stderr.readline() if ready else "(nothing within 15 s)"
        found = re.search(r"Allocated port (\d+) for remote forward", line)
        assert found, line
        payload = os.urandom(1 << 20)
        assert echo_through(int(found.group(1)), payload) == payload
    finally:
        _stop(process)


# --- rekeying under load --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ssh_limit", "initiator"),
    [("RekeyLimit=1M", "peer"), ("RekeyLimit=default", "local")],
    ids=["ssh-rekeys", "server-rekeys"],
)
def test_64_mib_each_way_with_rekeys(
    ours: ThreadedServer, tmp_path: Path, ssh_limit: str, initiator: str
) -> None:
    source, echoed = tmp_path / "source", tmp_path / "echoed"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for _ in range(64):
            block = os.urandom(1 << 20)
            digest.update(block)
            handle.write(block)
    before = len(ours.server.finished)
    with source.open("rb") as stdin, echoed.open("wb") as stdout:
        result = subprocess.run(
            [*ours.ssh_args(ssh_limit), "127.0.0.1", "cat"], stdin=stdin, stdout=stdout,
            stderr=subprocess.PIPE, timeout=240,
        )
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(echoed.read_bytes()).digest() == digest.digest()
    transport = ours.finished_after(before).transport
    assert transport.bytes_received > 64 << 20 and transport.bytes_sent > 64 << 20
    # Our server rekeys after 1 MiB (and ssh too, in the first case): dozens of exchanges.
    assert transport.rekeys >= 32
    assert initiator in {record.initiated_by for record in transport.kex_history[1:]}
