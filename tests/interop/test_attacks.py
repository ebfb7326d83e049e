"""Attacks on our client: a man in the middle (tests/net/fault_proxy.py in front of a real sshd) and
scripted malicious servers built on our own sans-IO server core, which can break rules no real
server breaks. Mirrors the PA-* and MF-* rows of the reliability goals: Terrapin prefix truncation,
out-of-order and wrong-phase messages, bad channel ids, window overflow, bad packet lengths,
EXT_INFO and banner floods, hostile text, and host names that must never reach a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.ssh import events as te
from sshtui.ssh.channels import events as ce
from sshtui.ssh.connection import ServerConnection
from sshtui.ssh.constants import DisconnectReason
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import connection as mc
from sshtui.ssh.messages import transport as mt
from sshtui.ssh.messages import userauth as mu
from sshtui.ssh.userauth_events import NoneAttempt
from tests.net.fault_proxy import FaultProxy, Plan
from tests.sshd_fixture import SshdServer

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
_KEY: list[PrivateKey] = []

# What a script does when the server sees an event: may return raw bytes to write after the reply.
Script = Callable[[ServerConnection, object], bytes | None]


def host_key() -> PrivateKey:
    if not _KEY:
        _KEY.append(PrivateKey.generate("ed25519"))
    return _KEY[0]


class EvilServer:
    """A server on 127.0.0.1 that follows the protocol (``none`` auth always succeeds) until its script
    says otherwise. ``raw`` replaces the SSH server entirely with a coroutine writing bytes."""

    def __init__(self, script: Script | None = None,
                 raw: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None):
        self.script = script
        self.raw = raw
        self.port = 0
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EvilServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.raw is not None:
            with contextlib.suppress(OSError):
                await self.raw(writer)
                await reader.read()  # until the client gives up
            writer.close()
            return
        loop = asyncio.get_running_loop()
        conn = ServerConnection([host_key()], rng=os.urandom, auth_methods=("none",))
        conn.start(loop.time())
        writer.write(conn.data_to_send())
        with contextlib.suppress(OSError):
            while not conn.is_closed:
                data = await reader.read(65536)
                events = conn.receive_data(data, loop.time())
                extra = b""
                for event in events:
                    if isinstance(event, NoneAttempt):
                        conn.accept_auth()
                    elif isinstance(event, ce.ChannelOpenRequested) and conn.channels is not None:
                        conn.channels.accept_open(event.local_id)
                    elif isinstance(event, te.Disconnected) and event.error is not None:
                        self.errors.append(str(event.error))
                    if self.script is not None:
                        extra += self.script(conn, event) or b""
                writer.write(conn.data_to_send() + extra)
                await writer.drain()
                if not data:
                    break
        writer.close()


def client_options(port: int, timeout: float = 5.0) -> ClientOptions:
    return ClientOptions(host=HOST, port=port, username="probe", auth=AuthOptions(), connect_timeout=timeout)


async def expect_refusal(port: int, *words: str, command: str | None = None) -> SSHError:
    """Connect (and run ``command``) expecting a typed failure whose message has all ``words``."""
    client: SSHClient | None = None
    with pytest.raises(SSHError) as failure:
        async with asyncio.timeout(10):
            client = await connect(client_options(port))
            if command is not None:
                await client.run(command)
    if client is not None:
        await client.close()
    text = str(failure.value)
    for word in words:
        assert word in text, text
    return failure.value


def inject(payload: bytes) -> Callable[[ServerConnection], None]:
    """Send any message, transport ones included, bypassing the server's own rules."""
    return lambda conn: conn.transport._send(payload)


# --- Terrapin (CVE-2023-48795): prefix truncation needs the sequence numbers shifted ----------------


@pytest.mark.parametrize("cipher", ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"])
@pytest.mark.parametrize("where", ["after_version", "before_newkeys"])
async def test_terrapin_ignore_injection_is_refused_with_strict_kex(
    sshd_module: SshdServer, cipher: str, where: str
) -> None:
    from sshtui.ssh.config import TransportConfig

    plan = Plan(inject_ignore=where, drop_first_encrypted=True, encrypted_tag_size=16)  # type: ignore[arg-type]
    async with FaultProxy(sshd_module.port, plan) as proxy:
        with pytest.raises(SSHError) as failure:
            await connect(ClientOptions(
                host=HOST, port=proxy.port, username=sshd_module.user,
                transport=TransportConfig(ciphers=(cipher,)),
                auth=AuthOptions(identity_files=[sshd_module.client_key], identities_only=True),
                connect_timeout=5,
            ))
    assert f"inject:{where}" in proxy.stats.faults
    assert "strict key exchange" in str(failure.value)


# --- state-machine injection -----------------------------------------------------------------------


async def test_userauth_success_before_any_request_is_refused() -> None:
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            inject(mu.UserauthSuccess().encode())(conn)

    async with EvilServer(script) as server:
        await expect_refusal(server.port)


@pytest.mark.parametrize("payload", [
    mc.ChannelOpen("session", 0, 1 << 20, 32768).encode(),
    mc.encode_channel_data(0, b"rogue"),
    mc.GlobalRequest("tcpip-forward", True, mc.TcpipForward("127.0.0.1", 0).encode_data()).encode(),
], ids=["open", "data", "global"])
async def test_connection_messages_before_authentication_are_refused(payload: bytes) -> None:
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            inject(payload)(conn)

    async with EvilServer(script) as server:
        await expect_refusal(server.port)


def after_open(payload: Callable[[int], bytes]) -> Script:
    """Once the client's session channel is open, send ``payload(client's channel id)``."""
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, ce.ChannelOpenRequested) and conn.channels is not None:
            remote_id = conn.channels.channel(event.local_id).remote_id
            assert remote_id is not None
            inject(payload(remote_id))(conn)
    return script


@pytest.mark.parametrize(("payload", "words"), [
    (lambda cid: mc.encode_channel_data(cid + 77, b"to nowhere"), ("channel",)),
    (lambda cid: mc.encode_channel_data(0x7FFFFFFF + 5, b"huge id"), ("channel",)),
    (lambda cid: mc.ChannelWindowAdjust(cid, 0xFFFFFFFF).encode(), ("window",)),
    (lambda cid: mc.ChannelOpenConfirmation(cid, 9, 100, 100).encode(), ("confirm",)),
], ids=["unknown-id", "id-above-int-max", "window-overflow", "confirmed-twice"])
async def test_channel_abuse_disconnects(payload: Callable[[int], bytes], words: tuple[str, ...]) -> None:
    async with EvilServer(after_open(payload)) as server:
        error = await expect_refusal(server.port, command="true")
    assert any(word in str(error).lower() for word in words), str(error)


# --- bad packet lengths ------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "words"), [
    (0, "too short"), (4, "too short"), (262_145, "exceeds"), (0xFFFFFFFF, "exceeds"), (13, "aligned"),
])
async def test_bad_packet_lengths_are_refused_at_once(length: int, words: str) -> None:
    async def raw(writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-evil\r\n" + length.to_bytes(4, "big") + b"\x04" + b"\x00" * 8)

    async with EvilServer(raw=raw) as server:
        await expect_refusal(server.port, words)


async def test_oversized_packet_after_newkeys_is_refused() -> None:
    def script(conn: ServerConnection, event: object) -> bytes | None:
        # With AES-GCM the length travels in clear, so a raw 4 GiB claim is what the client reads.
        if isinstance(event, te.ServiceRequested):
            return b"\xff\xff\xff\xff" + b"\x00" * 64
        return None

    from sshtui.ssh.config import TransportConfig

    async with EvilServer(script) as server:
        with pytest.raises(SSHError, match="exceeds"):
            async with asyncio.timeout(10):
                await connect(ClientOptions(host=HOST, port=server.port, username="probe",
                                            transport=TransportConfig(ciphers=("aes128-gcm@openssh.com",)),
                                            connect_timeout=5))


# --- floods -------------------------------------------------------------------------------------------


async def test_a_third_ext_info_is_refused() -> None:
    ext = mt.ExtInfo((("server-sig-algs", b"ssh-ed25519"),)).encode()

    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            for _ in range(3):
                inject(ext)(conn)

    async with EvilServer(script) as server:
        await expect_refusal(server.port, "EXT_INFO")


async def test_an_ext_info_claiming_four_billion_entries_fails_fast() -> None:
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            inject(b"\x07\xff\xff\xff\xff" + b"\x00\x00\x00\x01a" * 4)(conn)

    async with EvilServer(script) as server:
        await expect_refusal(server.port)


@pytest.mark.parametrize("flood", ["many-lines", "long-line", "endless-line"])
async def test_banner_floods_are_cut_off(flood: str) -> None:
    async def raw(writer: asyncio.StreamWriter) -> None:
        if flood == "many-lines":
            writer.write(b"hello\r\n" * 1025)
        elif flood == "long-line":
            writer.write(b"x" * 8193 + b"\r\n")
        else:
            for _ in range(64):  # 4 MiB without a newline, unless the client hangs up first
                writer.write(b"y" * 65536)
                await writer.drain()
        writer.write(b"SSH-2.0-late\r\n")

    async with EvilServer(raw=raw) as server:
        error = await expect_refusal(server.port)
    assert "1024" in str(error) or "8192" in str(error), str(error)


# --- hostile text and names, through the CLI ----------------------------------------------------------


async def run_cli(*args: str, home: Path) -> tuple[int, bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sshtui", "exec", "-o", "StrictHostKeyChecking=no",
        "-o", f"UserKnownHostsFile={home / 'known_hosts'}", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=str(home), start_new_session=True,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stderr


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\r"


async def test_control_characters_from_the_server_are_escaped(tmp_path: Path) -> None:
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            inject(mu.UserauthBanner(f"banner {HOSTILE}\n").encode())(conn)
        if isinstance(event, ce.ChannelOpenRequested):
            conn.transport.disconnect(DisconnectReason.BY_APPLICATION, f"bye {HOSTILE}")

    async with EvilServer(script) as server:
        code, stderr = await run_cli("-p", str(server.port), HOST, "true", home=tmp_path)
    assert code == 255
    assert b"banner" in stderr and b"bye" in stderr  # shown, with the escapes made visible
    assert b"\x1b" not in stderr and b"\x07" not in stderr and b"\x9b" not in stderr, stderr


@pytest.mark.parametrize("name", [
    "evil\x1b[2Jhost", "a;touch PWNED", "$(touch PWNED)", "`touch PWNED`", "x|touch PWNED",
    "-oProxyCommand=touch PWNED",
])
async def test_hostile_host_names_never_reach_a_shell_or_the_terminal(tmp_path: Path, name: str) -> None:
    code, stderr = await run_cli(name, "true", home=tmp_path)
    code_j, stderr_j = await run_cli("-J", name, "127.0.0.1", "true", home=tmp_path)
    assert code != 0 and code_j != 0
    assert not (tmp_path / "PWNED").exists()
    assert b"\x1b" not in stderr + stderr_j


async def test_the_client_never_ends_up_authenticated_after_a_refusal() -> None:
    def script(conn: ServerConnection, event: object) -> None:
        if isinstance(event, te.ServiceRequested):
            inject(mu.UserauthSuccess().encode())(conn)

    seen: list[object] = []

    async with EvilServer(script) as server:
        opts = client_options(server.port)
        opts.on_snapshot = seen.append
        with pytest.raises(SSHError):
            await connect(opts)
    assert seen and not any(getattr(snapshot, "authenticated", False) for snapshot in seen)


# --- planted secrets never leak (DS-07) ------------------------------------------------------------

CANARY_PASSWORD = "canary-password-5f2a9c71"
CANARY_PASSPHRASE = "canary-passphrase-81d3e7b0"


async def test_planted_secrets_appear_in_no_log_error_or_snapshot(
    sshd_factory: Callable[..., SshdServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import shutil
    import subprocess
    import traceback

    from sshtui.ssh.snapshot import to_jsonable

    caplog.set_level(logging.DEBUG)
    server = sshd_factory(["PasswordAuthentication yes", "KbdInteractiveAuthentication no"])
    locked = tmp_path / "id_locked"
    shutil.copy(server.client_key, locked)
    shutil.copy(f"{server.client_key}.pub", f"{locked}.pub")
    locked.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", CANARY_PASSPHRASE, "-f", str(locked)], check=True,
                   capture_output=True)
    seen: list[str] = []

    asked: list[str] = []

    async def passphrase(prompt: str) -> str:
        asked.append("passphrase")
        return CANARY_PASSPHRASE

    async def password(prompt: str) -> str:
        asked.append("password")
        return CANARY_PASSWORD

    # 1. The passphrase unlocks an authorised key; the session works.
    opts = ClientOptions(host=HOST, port=server.port, username=server.user, connect_timeout=10,
                         auth=AuthOptions(identity_files=[locked], identities_only=True,
                                          passphrase_prompt=passphrase),
                         on_snapshot=lambda snapshot: seen.append(repr(snapshot)))
    client = await connect(opts)
    assert (await client.run("echo ok")).stdout == b"ok\n"
    seen.append(repr(client.snapshot()) + repr(to_jsonable(client.snapshot())) + repr(client.conn.transport))
    await client.close()

    # 2. A wrong password is refused: the error and its traceback must not carry it.
    opts = ClientOptions(host=HOST, port=server.port, username=server.user, connect_timeout=10,
                         auth=AuthOptions(identities_only=True, password_prompt=password,
                                          preferred=("password",)))
    with pytest.raises(SSHError) as failure:
        await connect(opts)
    seen.append(str(failure.value) + repr(failure.value))
    seen.append("".join(traceback.format_exception(failure.value)))

    # 3. The CLI with --stats-json: stderr and the statistics file.
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho {CANARY_PASSWORD}\n")
    askpass.chmod(0o755)
    stats = tmp_path / "stats.json"
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT), "SSHTUI_ASKPASS": str(askpass)}
    env.pop("SSH_AUTH_SOCK", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sshtui", "exec", "-p", str(server.port),
        "-o", f"UserKnownHostsFile={server.known_hosts_file}", "-o", "PubkeyAuthentication=no",
        "--stats-json", str(stats), server.host, "true",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, start_new_session=True,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 255
    seen += [out.decode(), err.decode(), stats.read_text() if stats.exists() else ""]

    seen.append(caplog.text)
    assert asked[:1] == ["passphrase"] and "password" in asked  # both canaries were handed over
    everything = "\n".join(seen)
    assert "password" in everything.lower()  # the attempts are recorded, only not their secrets
    assert CANARY_PASSWORD not in everything
    assert CANARY_PASSPHRASE not in everything
