"""The ssh-agent client against OpenSSH's real ssh-agent (keys added with ssh-add), and against
fake agents that stall, lie or send garbage."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sshtui.net.agent import AgentClient, AgentError, AgentRefused, AgentUnavailable
from sshtui.ssh.crypto.hostkeys import PrivateKey, verify_signature

SSH_AGENT = shutil.which("ssh-agent")
SSH_ADD = shutil.which("ssh-add")
SSH_KEYGEN = shutil.which("ssh-keygen")
KEY_SPECS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "2048"],
}


@dataclass
class RunningAgent:
    socket: str
    keys: dict[str, Path]  # spec -> private key file; the .pub sits next to it


def short_socket_dir() -> str:
    # Unix socket paths are limited to about 100 bytes; pytest's tmp paths can be longer.
    return tempfile.mkdtemp(prefix="agent")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    if not (SSH_AGENT and SSH_ADD and SSH_KEYGEN):
        pytest.skip("OpenSSH ssh-agent, ssh-add and ssh-keygen are needed")
    key_dir = tmp_path_factory.mktemp("agent-keys")
    keys: dict[str, Path] = {}
    for spec, args in KEY_SPECS.items():
        path = key_dir / f"id_{spec}"
        subprocess.run([SSH_KEYGEN, "-q", *args, "-N", "", "-C", f"{spec} comment", "-f", str(path)],
                       check=True, capture_output=True, timeout=60)
        keys[spec] = path
    socket_dir = short_socket_dir()
    socket_path = os.path.join(socket_dir, "s")
    process = subprocess.Popen([SSH_AGENT, "-D", "-a", socket_path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("ssh-agent did not create its socket")
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": socket_path}
        for path in keys.values():
            subprocess.run([SSH_ADD, "-q", str(path)], check=True, capture_output=True, env=env, timeout=30)
        yield RunningAgent(socket_path, keys)
    finally:
        os.kill(process.pid, 15)  # SIGTERM to the agent we started, by its pid
        process.wait(10)
        shutil.rmtree(socket_dir, ignore_errors=True)


def pub_file(path: Path) -> tuple[bytes, str]:
    """Blob and comment of a ``.pub`` file, read without the code under test."""
    _, data, comment = Path(f"{path}.pub").read_text().strip().split(None, 2)
    return base64.b64decode(data), comment


def keygen_fingerprint(path: Path) -> str:
    assert SSH_KEYGEN is not None
    out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", f"{path}.pub"], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


# --- the real ssh-agent ------------------------------------------------------------------------


async def test_lists_every_key_with_its_comment(agent: RunningAgent) -> None:
    async with AgentClient(agent.socket) as client:
        identities = await client.list_identities()
    assert sorted((i.blob, i.comment) for i in identities) == sorted(pub_file(p) for p in agent.keys.values())
    by_blob = {i.blob: i for i in identities}
    for path in agent.keys.values():
        assert by_blob[pub_file(path)[0]].fingerprint == keygen_fingerprint(path)


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("ed25519", "ssh-ed25519"),
        ("ecdsa256", "ecdsa-sha2-nistp256"),
        ("ecdsa384", "ecdsa-sha2-nistp384"),
        ("ecdsa521", "ecdsa-sha2-nistp521"),
        ("rsa", "rsa-sha2-256"),
        ("rsa", "rsa-sha2-512"),
    ],
)
async def test_signatures_verify(agent: RunningAgent, spec: str, algorithm: str) -> None:
    blob, _ = pub_file(agent.keys[spec])
    data = b"session identifier and userauth request" * 3
    async with AgentClient(agent.socket) as client:
        signature = await client.sign(blob, data, algorithm)
    verify_signature(algorithm, blob, signature, data)


async def test_several_requests_share_one_connection(agent: RunningAgent) -> None:
    blob, _ = pub_file(agent.keys["ed25519"])
    async with AgentClient(agent.socket) as client:
        requests = (client.sign(blob, bytes([n]) * 10, "ssh-ed25519") for n in range(5))
        signatures = await asyncio.gather(*requests)
        assert len(await client.list_identities()) == len(KEY_SPECS)
    for n, signature in enumerate(signatures):
        verify_signature("ssh-ed25519", blob, signature, bytes([n]) * 10)


async def test_signing_with_a_key_the_agent_lacks_is_refused(agent: RunningAgent) -> None:
    stranger = PrivateKey.generate("ed25519")
    async with AgentClient(agent.socket) as client:
        with pytest.raises(AgentRefused, match="refused to sign"):
            await client.sign(stranger.public_blob, b"data", "ssh-ed25519")
        assert len(await client.list_identities()) == len(KEY_SPECS)  # still usable afterwards


async def test_uses_ssh_auth_sock(agent: RunningAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    client = AgentClient()
    try:
        assert len(await client.list_identities()) == len(KEY_SPECS)  # connects on first use
    finally:
        client.close()


# --- no agent, and fake agents -----------------------------------------------------------------


async def test_no_agent_configured_or_listening(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AgentUnavailable, match="SSH_AUTH_SOCK"):
        await AgentClient().connect()
    with pytest.raises(AgentUnavailable, match="cannot connect"):
        await AgentClient(tmp_path / "nothing-here").connect()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def with_fake_agent(handler: Handler, call: Callable[[AgentClient], Awaitable[object]]) -> None:
    socket_dir = short_socket_dir()
    path = os.path.join(socket_dir, "s")
    server = await asyncio.start_unix_server(handler, path)
    try:
        client = AgentClient(path, timeout=0.5)
        try:
            await call(client)
        finally:
            client.close()
    finally:
        server.close()
        await server.wait_closed()
        shutil.rmtree(socket_dir, ignore_errors=True)


def replying(*frames: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = struct.unpack(">I", await reader.readexactly(4))[0]
        await reader.readexactly(length)
        for frame in frames:
            writer.write(frame)
        await writer.drain()
        await reader.read()  # stay until the client hangs up; it decides when to stop waiting
        writer.close()

    return handler


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


async def expect_agent_error(handler: Handler, match: str, call: str = "list") -> None:
    key = PrivateKey.generate("ed25519")

    async def run(client: AgentClient) -> None:
        with pytest.raises(AgentError, match=match):
            if call == "list":
                await client.list_identities()
            else:
                await client.sign(key.public_blob, b"data", call)
        assert not client.connected  # a confused stream is never reused

    await with_fake_agent(handler, run)


async def test_a_silent_agent_times_out() -> None:
    await expect_agent_error(replying(), "did not list keys within 0.5 s")


async def test_an_oversized_reply_is_refused() -> None:
    await expect_agent_error(replying(struct.pack(">I", 10 * 1024 * 1024)), "limit")


async def test_an_agent_hanging_up_is_an_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        writer.close()

    await expect_agent_error(hang_up, "closed the connection")


async def test_malformed_replies_are_errors() -> None:
    await expect_agent_error(replying(frame(bytes([12]) + struct.pack(">I", 3))), "malformed identities")
    await expect_agent_error(replying(frame(bytes([99]))), "answered message 99")


async def test_an_agent_that_ignores_the_rsa_sha2_flag_is_caught() -> None:
    sha1_signature = ssh_string(b"ssh-rsa") + ssh_string(b"\x00" * 256)
    reply = frame(bytes([14]) + ssh_string(sha1_signature))

    async def run(client: AgentClient) -> None:
        key = PrivateKey.generate("rsa", 2048)
        with pytest.raises(AgentError, match="asked the agent for rsa-sha2-512 but it signed with 'ssh-rsa'"):
            await client.sign(key.public_blob, b"data", "rsa-sha2-512")

    await with_fake_agent(replying(reply), run)


@pytest.mark.parametrize(
    ("algorithm", "flags"), [("rsa-sha2-256", 2), ("rsa-sha2-512", 4), ("ssh-ed25519", 0)]
)
async def test_sign_request_carries_the_rsa_sha2_flags(algorithm: str, flags: int) -> None:
    seen: list[int] = []

    async def recorder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await reader.readexactly(struct.unpack(">I", await reader.readexactly(4))[0])
        seen.append(struct.unpack(">I", body[-4:])[0])
        writer.write(frame(bytes([5])))  # SSH_AGENT_FAILURE
        await writer.drain()

    async def run(client: AgentClient) -> None:
        with pytest.raises(AgentRefused):
            await client.sign(PrivateKey.generate("ed25519").public_blob, b"data", algorithm)

    await with_fake_agent(recorder, run)
    assert seen == [flags]  # draft-miller-ssh-agent §4.5.1: SSH_AGENT_RSA_SHA2_256 = 2, _512 = 4
