"""``sshtui exec --stats-json FILE`` leaves the file when the connection cannot be set up, too: an
``error`` field with the failure (as on stderr) and whatever the connection got through before it,
such as the key exchange before a refused login (RFC 4253 §7, RFC 4252 §5.1)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.store.keys import encode_private_key
from tests.net.exec_process import run_exec

pytestmark = pytest.mark.timeout(60)

HOST_KEY, AUTHORIZED_KEY, OTHER_KEY = (PrivateKey.generate("ed25519") for _ in range(3))


@pytest.fixture
async def refusing_server() -> AsyncIterator[SSHServer]:
    """Our server, authorising a key the client does not have: every login is refused."""
    authorized = AuthorizedKeys.parse(openssh_public_line(AUTHORIZED_KEY.public_blob, "only") + "\n")
    options = ServerOptions([HOST_KEY], port=0, authorized_keys=authorized, auth_failure_delay=0.0)
    async with await start_server(options) as server:
        yield server


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def exec_with_stats(tmp_path: Path, port: int, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """Run ``sshtui exec`` with ``OTHER_KEY``; its exit code, stderr and the stats file's document."""
    home = tmp_path / "home"
    home.mkdir()
    key = tmp_path / "id_ed25519"
    key.write_bytes(encode_private_key(OTHER_KEY, "client"))
    key.chmod(0o600)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {openssh_public_line(HOST_KEY.public_blob, 'host')}\n")
    stats = tmp_path / "stats.json"
    code, _, stderr = await run_exec(
        *("-F", "none", "-p", str(port), "-i", str(key)),
        *("-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"),
        *("-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "--stats-json", str(stats), *extra),
        *("127.0.0.1", "true"),
        cwd=tmp_path, env={"HOME": str(home)},
    )
    assert stats.exists(), f"no stats file; stderr: {stderr.decode()}"
    return code, stderr.decode(), json.loads(stats.read_text())


async def test_refused_login_leaves_stats_with_the_error_and_the_key_exchange(
    refusing_server: SSHServer, tmp_path: Path
) -> None:
    code, stderr, stats = await exec_with_stats(tmp_path, refusing_server.port)
    assert code == 255
    assert "Permission denied" in stats["error"]
    assert stats["error"] in " ".join(stderr.split())  # the same words as the user saw
    events = [entry["event"] for entry in stats["timeline"]]
    assert {"KEXINIT", "NEWKEYS", "USERAUTH_FAILURE"} <= set(events)
    assert events.index("NEWKEYS") < events.index("USERAUTH_FAILURE")
    transport = stats["transport"]
    assert transport["kex_count"] == 1 and transport["cipher_c2s"] and transport["kex_algorithm"]
    assert stats["authenticated"] is False
    assert [a["result"] for a in stats["auth"] if a["method"] == "publickey"] == ["failure"]
    assert stats["channels"] == [] and stats["exit"] == {"status": None, "signal": None}


async def test_refused_tcp_connect_leaves_stats_with_the_error(tmp_path: Path) -> None:
    port = closed_port()
    code, stderr, stats = await exec_with_stats(tmp_path, port)
    assert code == 255
    assert f"port {port}" in stats["error"] and "refused" in stats["error"].lower()
    assert stats["error"] in " ".join(stderr.split())
    assert not any(entry["event"] == "KEXINIT" for entry in stats["timeline"])
    assert stats["transport"]["kex_count"] == 0 and stats["authenticated"] is False


async def test_unreachable_jump_host_leaves_stats_naming_it(tmp_path: Path) -> None:
    """The destination's connection never started: no transport, but the error is there."""
    hop_port = closed_port()
    code, _, stats = await exec_with_stats(tmp_path, closed_port(), "-J", f"127.0.0.1:{hop_port}")
    assert code == 255
    assert f"port {hop_port}" in stats["error"]
    assert stats["transport"] is None and stats["timeline"] == [] and stats["auth"] == []
