"""A saved host used as a jump host, end to end through two embedded servers: the hop is reached at
the saved address and port, as the saved user, with the saved key, and the destination through it
(RFC 4254 §7.2 direct-tcpip), both from the library and from ``sshtui exec -J``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sshtui.net.jump import connect_through, hop_settings
from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.options import effective_jumps, resolve_settings
from sshtui.options_client import build_client_options
from sshtui.prompts import Prompter
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.store.hosts import Host, HostStore
from sshtui.store.keys import encode_private_key
from tests.net.exec_process import REPO_ROOT, run_exec

pytestmark = pytest.mark.timeout(60)

HOP_HOST_KEY, DEST_HOST_KEY = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
HOP_USER_KEY, DEST_USER_KEY = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")


def write_key(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(encode_private_key(key, path.name))
    path.chmod(0o600)
    return path


async def serve(host_key: PrivateKey, user_key: PrivateKey) -> SSHServer:
    """A server that accepts only ``user_key``, so a login proves which key was used."""
    authorized = AuthorizedKeys.parse(openssh_public_line(user_key.public_blob, "only") + "\n")
    options = ServerOptions([host_key], port=0, authorized_keys=authorized, shell="/bin/sh")
    return await start_server(options)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
async def servers(home: Path, tmp_path: Path) -> AsyncIterator[tuple[SSHServer, SSHServer, Path]]:
    """The hop and the destination, the hop saved as "bastion" with its own user and key, and a
    known_hosts file holding both host keys. The destination's key is not the hop's."""
    hop, dest = await serve(HOP_HOST_KEY, HOP_USER_KEY), await serve(DEST_HOST_KEY, DEST_USER_KEY)
    known = tmp_path / "known_hosts"
    known.write_text("".join(
        f"[127.0.0.1]:{server.port} {openssh_public_line(key.public_blob, 'host')}\n"
        for server, key in ((hop, HOP_HOST_KEY), (dest, DEST_HOST_KEY))
    ))
    hop_key = write_key(tmp_path / "hop_key", HOP_USER_KEY)
    store = HostStore.load()
    store.add(Host("bastion", "127.0.0.1", port=hop.port, user="hopper", identity_files=(str(hop_key),)))
    store.save()
    async with hop, dest:
        yield hop, dest, known


def accepted_users(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().rsplit(" for ", 1)[1] for r in caplog.records if ": accepted " in r.getMessage()]


async def test_saved_host_as_jump_host(
    servers: tuple[SSHServer, SSHServer, Path], home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sshtui.server")
    _, dest, known = servers
    settings = resolve_settings(
        "127.0.0.1",
        port=str(dest.port),
        user="target",
        identity_files=[str(write_key(tmp_path / "dest_key", DEST_USER_KEY))],
        options=[
            f"UserKnownHostsFile={known}", "StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes"
        ],
        config_file="none",
        home=home,
        system_config_file=None,
    )
    prompter = Prompter(batch_mode=True)
    jumps = effective_jumps(settings, "bastion")
    hops = [build_client_options(hop_settings(settings, name), prompter) for name in jumps]
    client = await connect_through(hops, build_client_options(settings, prompter))
    try:
        result = await client.run("echo through")
    finally:
        await client.close()
    assert (result.exit_status, result.stdout) == (0, b"through\n")
    assert accepted_users(caplog) == ["'hopper'", "'target'"]


async def test_exec_with_a_saved_jump_host(
    servers: tuple[SSHServer, SSHServer, Path], home: Path, tmp_path: Path
) -> None:
    _, dest, known = servers
    dest_key = write_key(tmp_path / "dest_key", DEST_USER_KEY)
    code, stdout, stderr = await run_exec(
        *("-F", "none", "-p", str(dest.port), "-i", str(dest_key)),
        *("-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"),
        *("-o", "IdentitiesOnly=yes", "-J", "bastion", "127.0.0.1", "echo", "via", "bastion"),
        cwd=REPO_ROOT,
    )
    assert (code, stdout) == (0, b"via bastion\n"), stderr.decode()
