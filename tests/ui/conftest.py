"""Fixtures of the UI tests: an isolated home (HOME and the XDG dirs in tmp_path, so no test touches the
user's files or keyring), the embedded server on 127.0.0.1, and helpers to wait on the app."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
from textual.pilot import Pilot

from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, hash_password
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.ui.app import SshtuiApp

HOST_KEY = PrivateKey.generate("ed25519")
USER_KEY = PrivateKey.generate("ed25519")
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def no_os_keyring() -> Any:
    """No UI test reads or writes the machine's keyring; tests that need one install their own."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "home"
    (directory / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(directory))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # never the user's agent
    monkeypatch.setenv("ENV", "")
    return directory


def install_user_key(home: Path, key: PrivateKey = USER_KEY) -> Path:
    """The key as ~/.ssh/id_ed25519 (and .pub) of the test home, where the client looks by default."""
    path = home / ".ssh" / "id_ed25519"
    path.write_bytes(key.to_openssh())
    os.chmod(path, 0o600)
    path.with_name("id_ed25519.pub").write_text(openssh_public_line(key.public_blob, "test") + "\n")
    return path


@dataclass
class Embedded:
    server: SSHServer
    host_key: PrivateKey

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
async def embedded(home: Path) -> AsyncIterator[Embedded]:
    """Our server on a free loopback port: user key or alice's password, sessions in /bin/sh."""
    options = ServerOptions(
        [HOST_KEY],
        port=0,
        authorized_keys=AuthorizedKeys.parse(openssh_public_line(USER_KEY.public_blob, "tester") + "\n"),
        passwords=PasswordFile.parse(f"alice:{hash_password(PASSWORD)}"),
        auth_failure_delay=0.01,
        shell="/bin/sh",
    )
    async with await start_server(options) as server:
        yield Embedded(server, HOST_KEY)


def make_app(home: Path, **kwargs: object) -> SshtuiApp:
    return SshtuiApp(home=home, system_config_file=None, **kwargs)  # type: ignore[arg-type]


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 15.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
    await asyncio.sleep(0)


def showing(app: SshtuiApp, screen_type: type) -> bool:
    """``screen_type`` is the current screen and has been composed and mounted."""
    return isinstance(app.screen, screen_type) and bool(app.screen.query("Button"))
