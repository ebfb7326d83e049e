"""Our client against our embedded server over loopback: sessions, flow control, auth, limits."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # paramiko warns about deprecated ciphers on import
    import paramiko  # type: ignore[import-untyped]

from sshtui.net.auth import AuthenticationFailed, AuthOptions
from sshtui.net.channel import Channel, ChannelOpenError
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, ServerConfigError, hash_password
from sshtui.ssh.config import TransportConfig
from sshtui.ssh.constants import MsgType, OpenFailureReason
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import connection as m
from sshtui.ssh.wire import string, uint32

pytestmark = pytest.mark.timeout(60)

HOST_KEY = PrivateKey.generate("ed25519")
USER_KEY = PrivateKey.generate("ed25519")
PASSWORD = "correct horse battery staple"
PASSWORD_LINE = f"alice:{hash_password(PASSWORD)}"


def base_options(**changes: Any) -> ServerOptions:
    options = ServerOptions(
        [HOST_KEY],
        port=0,
        authorized_keys=AuthorizedKeys.parse(openssh_public_line(USER_KEY.public_blob, "tester") + "\n"),
        passwords=PasswordFile.parse(PASSWORD_LINE),
        auth_failure_delay=0.01,
        shell="/bin/sh",
    )
    return replace(options, **changes)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sessions start in $HOME and a login shell reads its profile there: keep both empty."""
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
async def server(home: Path) -> AsyncIterator[SSHServer]:
    async with await start_server(base_options()) as srv:
        yield srv


async def client_for(server: SSHServer, **changes: Any) -> SSHClient:
    options = ClientOptions(
        "127.0.0.1", server.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    return await connect(replace(options, **changes))


async def read_all(channel: Channel) -> bytes:
    parts = []
    while chunk := await channel.read():
        parts.append(chunk)
    return b"".join(parts)


# --- sessions -------------------------------------------------------------------------------------


async def test_exec_reports_exit_status_and_keeps_stderr_apart(server: SSHServer) -> None:
    async with await client_for(server) as client:
        result = await client.run("echo to-stdout; echo to-stderr >&2; exit 7")
    assert result.exit_status == 7
    assert result.stdout == b"to-stdout\n"
    assert result.stderr == b"to-stderr\n"


async def test_stdin_reaches_the_program_and_eof_ends_it(server: SSHServer) -> None:
    async with await client_for(server) as client:
        result = await client.run("wc -c", stdin=b"x" * 100_000)
    assert result.stdout.strip() == b"100000"
    assert result.exit_status == 0


@pytest.mark.slow
async def test_16_mib_each_way_with_rekeys_arrives_intact(server: SSHServer) -> None:
    payload = os.urandom(16 << 20)
    client = await client_for(server, transport=TransportConfig(rekey_bytes=1 << 20))
    async with client:
        channel = await client.exec("cat")

        async def upload() -> None:
            view = memoryview(payload)
            for start in range(0, len(payload), 1 << 20):
                await channel.write(view[start : start + (1 << 20)])
            await channel.write_eof()

        _, echoed = await asyncio.gather(upload(), read_all(channel))
        info = await channel.exit
        snapshot = client.snapshot()
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
    assert info.status == 0
    # 32 MiB crossed the connection with a 1 MiB rekey limit on our side.
    assert snapshot.transport.rekeys >= 16


async def test_pty_shell_runs_typed_commands(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.shell(size=(100, 30))
        await channel.write(b"echo hi-$((40+2)); exit\n")
        output = await read_all(channel)
        info = await channel.exit
    assert b"hi-42\r\n" in output  # the terminal turned \n into \r\n: a real pty
    assert info.status == 0


async def test_window_change_resizes_the_terminal(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.exec("stty size; read line; stty size", pty=True, size=(80, 24))
        first = await channel.read()
        while b"\n" not in first:
            first += await channel.read()
        await channel.resize(132, 43)
        await channel.write(b"\n")
        rest = await read_all(channel)
    assert b"24 80" in first
    assert b"43 132" in rest


async def test_env_allow_list(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"LANG": "C.UTF-8", "LC_TIME": "C", "SECRET_TOKEN": "hunter2", "DEMO_COLOR": "blue"}
    command = 'printf "%s|%s|%s|%s" "$LANG" "$LC_TIME" "$SECRET_TOKEN" "$DEMO_COLOR"'
    caplog.set_level(logging.INFO, "sshtui.server")
    srv = await start_server(base_options(accept_env=("DEMO_*",)))
    async with srv, await client_for(srv) as client:
        channel = await client.exec(command, env=env)
        output = await read_all(channel)
    assert output == b"C.UTF-8|C||blue"
    assert "'SECRET_TOKEN' refused" in caplog.text
    assert "hunter2" not in caplog.text  # values never reach the log


async def test_signal_is_delivered_and_reported_as_exit_signal(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.exec("echo started; sleep 30")
        assert await channel.read() == b"started\n"
        await channel.signal("TERM")
        info = await asyncio.wait_for(channel.exit, 10)
    assert info.signal == "TERM"
    assert info.status is None


async def test_closing_the_channel_kills_and_reaps_the_program(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.exec("echo $$; exec sleep 30")
        pid = int((await channel.read()).strip())
        channel.close()
        await channel.wait_closed()
        await _until_gone(pid)


async def test_stopping_the_server_ends_running_shells(home: Path) -> None:
    srv = await start_server(base_options())
    client = await client_for(srv)
    channel = await client.shell()
    await channel.write(b"echo pid=$$\n")
    output = b""
    while (found := re.search(rb"pid=(\d+)\r\n", output)) is None:
        output += await channel.read()  # the terminal echoes "pid=$$" first, then the number
    pid = int(found.group(1))
    srv.close()
    await srv.wait_closed()
    await _until_gone(pid)
    await client.close()


async def _until_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"process {pid} is still there")


# --- bad requests and limits ----------------------------------------------------------------------


async def test_bad_session_requests_are_refused_but_the_channel_lives(server: SSHServer) -> None:
    async with await client_for(server) as client:
        channel = await client.open_session()
        assert not await channel.request(m.PtyReq(term="xterm", cols=5000, rows=5000))
        assert not await channel.request(m.Subsystem(subsystem="sftp"))
        assert not await channel.request(m.Signal(signal="NOT-A-SIGNAL"))
        assert await channel.request(m.Exec(command=b"echo alive"))
        assert await read_all(channel) == b"alive\n"


async def test_malformed_request_frame_ends_only_that_connection(server: SSHServer) -> None:
    good = await client_for(server)
    bad = await client_for(server)
    channel = await bad.open_session()
    remote_id = bad.conn.require_channels().channel(channel.local_id).remote_id
    assert remote_id is not None
    # The frame itself stops before want_reply: no one can tell whether a reply is due.
    payload = bytes([MsgType.CHANNEL_REQUEST]) + uint32(remote_id) + string(b"pty-req")
    bad.conn.transport.send_payload(payload)
    bad._flush()  # no public API sends raw payloads, on purpose
    await asyncio.wait_for(asyncio.shield(bad.closed), 5)
    assert isinstance(bad.error, SSHError)
    assert "want_reply" in str(bad.error)  # the server said what was wrong
    result = await good.run("echo still-serving")
    assert result.stdout == b"still-serving\n"
    await good.close()
    await bad.close()


def _absurd_pty_then_exec(port: int) -> tuple[bool, bytes, int]:
    """paramiko asks our server for a 100000-column pty, then runs a command on the same connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        transport.auth_password("alice", PASSWORD)
        refused = transport.open_session(timeout=10)
        with pytest.raises(paramiko.SSHException):  # paramiko closes a channel whose request failed
            refused.get_pty(width=100_000, height=24)
        session = transport.open_session(timeout=10)
        session.exec_command("echo alive")
        output = session.makefile("rb").read()
        return transport.is_active(), output, session.recv_exit_status()
    finally:
        transport.close()


async def test_undecodable_request_is_refused_and_the_connection_lives(
    server: SSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sshtui.server")
    active, output, status = await asyncio.to_thread(_absurd_pty_then_exec, server.port)
    assert active and output == b"alive\n" and status == 0
    assert "request refused: pty-req: terminal size 100000x24 exceeds 10000" in caplog.text


async def test_sessions_per_connection_are_limited(home: Path) -> None:
    async with await start_server(base_options(max_sessions=2)) as srv, await client_for(srv) as client:
        await client.open_session()
        await client.open_session()
        with pytest.raises(ChannelOpenError) as refused:
            await client.open_session()
    assert refused.value.open_reason == OpenFailureReason.RESOURCE_SHORTAGE


async def test_login_grace_time_drops_silent_clients(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sshtui.server")
    async with await start_server(base_options(login_grace_time=0.3)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        started = time.monotonic()
        received = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        elapsed = time.monotonic() - started
        writer.close()
        # Meanwhile the server keeps serving others.
        async with await client_for(srv) as client:
            assert (await client.run("echo ok")).stdout == b"ok\n"
    assert received.startswith(b"SSH-2.0-")
    assert 0.2 < elapsed < 4
    assert "login grace time" in caplog.text


# --- authentication -------------------------------------------------------------------------------


async def test_password_authentication(server: SSHServer) -> None:
    async def answer(prompt: str) -> str:
        return PASSWORD

    auth = AuthOptions(password_prompt=answer, preferred=("password",), identities_only=True)
    async with await client_for(server, username="alice", auth=auth) as client:
        assert (await client.run("echo in")).stdout == b"in\n"


async def test_wrong_passwords_are_delayed_then_refused(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def wrong(prompt: str) -> str:
        return "not the password"

    caplog.set_level(logging.INFO, "sshtui.server")
    auth = AuthOptions(password_prompt=wrong, preferred=("password",), identities_only=True)
    async with await start_server(base_options(auth_failure_delay=0.2)) as srv:
        started = time.monotonic()
        with pytest.raises(AuthenticationFailed):
            await client_for(srv, username="alice", auth=auth)
        elapsed = time.monotonic() - started
    # The client tries three times; the failures are answered after 0.2, 0.4 and 0.6 s.
    assert elapsed >= 1.1
    assert "failed password for 'alice'" in caplog.text
    assert "not the password" not in caplog.text


async def test_too_many_failures_disconnect(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def wrong(prompt: str) -> str:
        return "nope"

    caplog.set_level(logging.INFO, "sshtui.server")
    auth = AuthOptions(password_prompt=wrong, preferred=("password",), identities_only=True)
    async with await start_server(base_options(max_auth_attempts=2)) as srv:
        with pytest.raises(SSHError):
            await client_for(srv, username="alice", auth=auth)
    assert "too many authentication failures" in caplog.text


async def test_unknown_key_is_refused(server: SSHServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sshtui.server")
    stranger = PrivateKey.generate("ed25519")
    with pytest.raises(AuthenticationFailed):
        await client_for(server, auth=AuthOptions(keys=[stranger], identities_only=True))
    assert stranger.fingerprint in caplog.text


async def test_rsa_and_ecdsa_user_keys(home: Path) -> None:
    keys = [PrivateKey.generate("ecdsa"), PrivateKey.generate("rsa", 2048)]
    lines = "".join(openssh_public_line(k.public_blob) + "\n" for k in keys)
    async with await start_server(base_options(authorized_keys=AuthorizedKeys.parse(lines))) as srv:
        for key in keys:
            async with await client_for(srv, auth=AuthOptions(keys=[key], identities_only=True)) as client:
                assert (await client.run("echo ok")).exit_status == 0


def test_authorized_keys_lines_with_options_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    plain = PrivateKey.generate("ed25519")
    restricted = PrivateKey.generate("ed25519")
    text = "\n".join([
        "# comment",
        openssh_public_line(plain.public_blob, "plain"),
        'from="10.0.0.1",command="/bin/true" ' + openssh_public_line(restricted.public_blob, "restricted"),
        "ssh-ed25519 not-base64!",
    ])
    keys = AuthorizedKeys.parse(text, "keys")
    assert keys.allows(plain.public_blob)
    assert not keys.allows(restricted.public_blob)
    assert "keys line 3: key options (from, command) are not supported" in caplog.text
    assert "keys line 4" in caplog.text


def test_password_file_checks_hashes_not_plaintext() -> None:
    passwords = PasswordFile.parse(f"# users\n{PASSWORD_LINE}\n")
    assert passwords.verify("alice", PASSWORD)
    assert not passwords.verify("alice", PASSWORD + " ")
    assert not passwords.verify("bob", PASSWORD)
    assert PASSWORD not in PASSWORD_LINE
    with pytest.raises(ServerConfigError, match="line 1"):
        PasswordFile.parse("alice:plaintext-password")
    assert "scrypt" not in repr(passwords)


# --- forwarding -----------------------------------------------------------------------------------


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def test_direct_tcpip_reaches_a_loopback_service(server: SSHServer) -> None:
    echo = await _echo_server()
    port = echo.sockets[0].getsockname()[1]
    payload = os.urandom(3 << 20)  # more than one channel window
    async with echo, await client_for(server) as client:
        channel = await client.open_direct_tcpip("127.0.0.1", port)

        async def send() -> None:
            await channel.write(payload)
            await channel.write_eof()

        _, echoed = await asyncio.gather(send(), read_all(channel))
    assert echoed == payload


async def test_direct_tcpip_beyond_loopback_is_prohibited(server: SSHServer) -> None:
    async with await client_for(server) as client:
        with pytest.raises(ChannelOpenError) as refused:
            await client.open_direct_tcpip("192.0.2.1", 80)
    assert refused.value.open_reason == OpenFailureReason.ADMINISTRATIVELY_PROHIBITED


async def test_direct_tcpip_to_a_closed_port_fails_to_connect(server: SSHServer) -> None:
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    async with await client_for(server) as client:
        with pytest.raises(ChannelOpenError) as refused:
            await client.open_direct_tcpip("127.0.0.1", port)
    assert refused.value.open_reason == OpenFailureReason.CONNECT_FAILED


async def test_tcpip_forward_allocates_a_loopback_port_and_cancels(server: SSHServer) -> None:
    async with await client_for(server) as client:
        ok, data = await client.global_request("tcpip-forward", m.TcpipForward("127.0.0.1", 0).encode_data())
        assert ok and len(data) == 4
        port = int.from_bytes(data, "big")
        _, writer = await asyncio.open_connection("127.0.0.1", port)  # the server listens there now
        writer.close()
        refused, _ = await client.global_request("tcpip-forward", m.TcpipForward("0.0.0.0", 0).encode_data())
        cancel = m.CancelTcpipForward("127.0.0.1", port).encode_data()
        cancelled, _ = await client.global_request("cancel-tcpip-forward", cancel)
    assert not refused
    assert cancelled
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_idle_timeout_disconnects_quiet_clients(home: Path) -> None:
    async with await start_server(base_options(idle_timeout=0.3)) as srv:
        client = await client_for(srv)
        started = time.monotonic()
        await asyncio.wait_for(asyncio.shield(client.closed), 5)
        elapsed = time.monotonic() - started
        await client.close()
    assert "idle timeout" in str(client.error)
    assert 0.1 < elapsed < 4


# --- sshtui serve ---------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


def _serve_env(home: Path) -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "HOME": str(home), "PYTHONPATH": python_path}


async def test_serve_command_serves_until_interrupted(home: Path, tmp_path: Path) -> None:
    keys = tmp_path / "authorized_keys"
    keys.write_text(openssh_public_line(USER_KEY.public_blob) + "\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sshtui", "serve", "--listen", "127.0.0.1:0", "--authorized-keys", str(keys),
        "--host-key-type", "ed25519", "--host-key-type", "ecdsa",
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=_serve_env(home),
    )
    try:
        assert process.stderr is not None
        banner = b""
        while (found := re.search(rb"listening on 127\.0\.0\.1 port (\d+)", banner)) is None:
            line = await asyncio.wait_for(process.stderr.readline(), 20)
            assert line, banner
            banner += line
        port = int(found.group(1))
        auth = AuthOptions(keys=[USER_KEY], identities_only=True)
        options = ClientOptions("127.0.0.1", port, "tester", auth=auth, connect_timeout=10)
        async with await connect(options) as client:
            assert (await client.run("echo served")).stdout == b"served\n"
        process.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(process.stderr.read(), 20)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (banner + rest).decode()
    assert f"[127.0.0.1]:{port} ssh-ed25519 " in log  # known_hosts lines for the generated keys
    assert "ecdsa-sha2-nistp256 " in log
    assert "accepted publickey" in log
    assert "Traceback" not in log


def test_serve_refuses_a_non_loopback_address_without_allow_remote(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sshtui", "serve", "--listen", "0.0.0.0:2222"],
        capture_output=True, text=True, timeout=30, env=_serve_env(home),
    )
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
    assert "--allow-remote" in result.stderr


def test_hash_password_prints_a_line_the_password_file_accepts(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sshtui", "serve", "--hash-password", "carol"],
        input="s3cret words\n", capture_output=True, text=True, timeout=30, env=_serve_env(home),
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("carol:scrypt$") and "s3cret" not in line
    assert PasswordFile.parse(line).verify("carol", "s3cret words")
