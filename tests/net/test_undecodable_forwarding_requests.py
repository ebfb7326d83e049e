"""A real peer (paramiko) sends our embedded server forwarding requests whose type-specific
data does not decode (RFC 4254 §4, §7): each is refused on its own and the connection goes on
to run a command."""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # paramiko warns about deprecated ciphers on import
    import paramiko  # type: ignore[import-untyped]

from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import PasswordFile, hash_password
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.crypto.hostkeys import PrivateKey

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SSHServer]:
    monkeypatch.setenv("HOME", str(tmp_path))  # the session's shell starts, and reads its profile, there
    options = ServerOptions(
        [PrivateKey.generate("ed25519")],
        port=0,
        passwords=PasswordFile.parse(f"alice:{hash_password(PASSWORD)}"),
        auth_failure_delay=0.01,
        shell="/bin/sh",
    )
    async with await start_server(options) as srv:
        yield srv


@dataclass
class Outcome:
    bad_forward_answers: list[object]  # what paramiko's global_request returned for each
    bad_open: paramiko.ChannelException
    good_forward_port: int
    output: bytes
    exit_status: int
    still_active: bool


def _bad_requests_then_exec(port: int) -> Outcome:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        transport.auth_password("alice", PASSWORD)
        answers = [
            transport.global_request("tcpip-forward", ("127.0.0.1", 70_000), wait=True),
            transport.global_request("tcpip-forward", ("127.0.0.1",), wait=True),  # no port at all
            transport.global_request("cancel-tcpip-forward", ("127.0.0.1", 1 << 20), wait=True),
        ]
        with pytest.raises(paramiko.ChannelException) as refused:
            # paramiko writes the ports as uint32 without checking that they are TCP ports.
            transport.open_channel("direct-tcpip", ("127.0.0.1", 70_000), ("127.0.0.1", 40_000), timeout=10)
        bound = transport.global_request("tcpip-forward", ("127.0.0.1", 0), wait=True)
        assert bound is not None, "a well-formed tcpip-forward after the bad ones was refused"
        session = transport.open_session(timeout=10)
        session.exec_command("echo alive")
        output = session.makefile("rb").read()
        return Outcome(
            answers, refused.value, bound.get_int(), output, session.recv_exit_status(), transport.is_active()
        )
    finally:
        transport.close()


async def test_undecodable_forwarding_requests_are_refused_and_the_connection_lives(
    server: SSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "paramiko.transport")
    caplog.set_level(logging.INFO, "sshtui.server")
    outcome = await asyncio.to_thread(_bad_requests_then_exec, server.port)
    assert outcome.bad_forward_answers == [None, None, None]  # None: REQUEST_FAILURE
    assert outcome.bad_open.code == OpenFailureReason.CONNECT_FAILED
    # paramiko's exception carries the standard text for the code; its log has our description.
    assert "open FAILED: direct-tcpip: port 70000 is not a TCP port" in caplog.text
    assert 0 < outcome.good_forward_port <= 0xFFFF
    assert outcome.output == b"alive\n" and outcome.exit_status == 0 and outcome.still_active
    # The server's log says what it refused and why, one line each.
    server_lines = [r.getMessage() for r in caplog.records if r.name == "sshtui.server"]
    assert sum("global request refused: tcpip-forward" in line for line in server_lines) == 2
    assert any("channel open refused: direct-tcpip: port 70000" in line for line in server_lines)
