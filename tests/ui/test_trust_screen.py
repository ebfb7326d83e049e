"""The trust manager on temporary known_hosts files: every entry listed with file:line, hashed names
shown as hashed, search (a host name finds its hashed line), removal only after confirmation with
the file changed accordingly, and a live check against our embedded server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from textual.app import App

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import connect
from sshtui.net.hostkey_rotation import LearnedRotation
from sshtui.ssh.crypto.hostkeys import PrivateKey, fingerprint_sha256, openssh_public_line
from sshtui.ui.screens.dialogs import ConfirmDialog
from sshtui.ui.screens.trust import TrustScreen
from tests.ui.conftest import USER_KEY, Embedded, wait_for

pytestmark = pytest.mark.timeout(60)

KEY_A = PrivateKey.generate("ed25519")
KEY_B = PrivateKey.generate("ed25519")
KEY_C = PrivateKey.generate("ecdsa", 256)


def hashed(name: str, salt: bytes) -> str:
    """HashKnownHosts' form, computed here from its definition (HMAC-SHA1 keyed by the salt)."""
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


@pytest.fixture
def known_hosts_file(home: Path) -> Path:
    path = home / ".ssh" / "known_hosts"
    path.write_text(
        "# a comment line\n"
        f"web.example.com,10.0.0.1 {openssh_public_line(KEY_A.public_blob)}\n"
        f"{hashed('secret.example.com', bytes(range(20)))} {openssh_public_line(KEY_B.public_blob)}\n"
        f"@revoked * {openssh_public_line(KEY_C.public_blob)}\n"
    )
    return path


class TrustApp(App[None]):
    def __init__(self, screen: TrustScreen) -> None:
        super().__init__()
        self.trust = screen

    def on_mount(self) -> None:
        self.push_screen(self.trust)


async def test_lists_every_entry_with_location_and_hashed_names_hidden(known_hosts_file: Path) -> None:
    rotation = LearnedRotation("web.example.com", 22, known_hosts_file, (("ssh-ed25519", "SHA256:new"),), ())
    screen = TrustScreen([known_hosts_file], rotations=[rotation])
    async with TrustApp(screen).run_test() as pilot:
        await pilot.pause()
        rows = screen.rows()
        assert [row[0] for row in rows] == [f"{known_hosts_file}:{n}" for n in (2, 3, 4)]
        assert rows[0][1] == "web.example.com,10.0.0.1"
        assert rows[0][4] == fingerprint_sha256(KEY_A.public_blob)
        assert rows[1][1] == "(hashed name)"
        assert "secret" not in " ".join(rows[1])
        assert rows[2][2] == "@revoked" and rows[2][3] == "ecdsa-sha2-nistp256"
        rotations = str(screen.query_one("#trust-rotations").content)  # type: ignore[attr-defined]
        assert "learned ssh-ed25519 key SHA256:new" in rotations


async def test_search_by_host_finds_hashed_lines_too(known_hosts_file: Path) -> None:
    screen = TrustScreen([known_hosts_file])
    async with TrustApp(screen).run_test() as pilot:
        await pilot.press("slash", *"secret.example.com")
        await pilot.pause()
        assert [row[0] for row in screen.rows()] == [f"{known_hosts_file}:3"]
        await pilot.press("ctrl+a", "ctrl+k", *"nistp256")
        await pilot.pause()
        assert [row[0] for row in screen.rows()] == [f"{known_hosts_file}:4"]


async def test_remove_needs_confirmation_and_changes_the_file(known_hosts_file: Path) -> None:
    original = known_hosts_file.read_text()
    screen = TrustScreen([known_hosts_file])
    app = TrustApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "d")  # the hashed line
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the list")
        assert known_hosts_file.read_text() == original
        assert len(screen.rows()) == 3
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.rows()) == 2, what="the row to go")
    lines = original.splitlines()
    assert known_hosts_file.read_text().splitlines() == lines[:2] + lines[3:]
    assert known_hosts_file.with_name("known_hosts.old").read_text() == original


async def test_check_compares_the_live_server_key(known_hosts_file: Path, embedded: Embedded) -> None:
    with known_hosts_file.open("a") as handle:
        handle.write(f"[127.0.0.1]:{embedded.port} {openssh_public_line(embedded.host_key.public_blob)}\n")
        handle.write(f"[localhost]:{embedded.port} {openssh_public_line(KEY_A.public_blob)}\n")

    async def fetch(host: str, port: int) -> bytes:
        seen: list[bytes] = []

        async def capture(host: str, port: int, algorithm: str, blob: bytes) -> None:
            seen.append(blob)

        options = ClientOptions(host, port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
                                verify_host_key=capture, connect_timeout=10)
        async with await connect(options):
            pass
        return seen[0]

    screen = TrustScreen([known_hosts_file], fetch_host_key=fetch)
    async with TrustApp(screen).run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down", "c")  # [127.0.0.1]:port
        result = screen.query_one("#trust-check")

        def shown() -> str:
            return str(result.content)  # type: ignore[attr-defined]

        await wait_for(pilot, lambda: "trusted by" in shown(), what="the verdict")
        assert f"trusted by {known_hosts_file}:5" in shown()
        await pilot.press("down", "c")  # [localhost]:port holds another key
        await wait_for(pilot, lambda: "CHANGED" in shown(), what="the changed verdict")
        assert f"{known_hosts_file}:6" in shown()


async def test_a_failed_check_is_a_notification(known_hosts_file: Path) -> None:
    async def fetch(host: str, port: int) -> bytes:
        raise ConnectionRefusedError(111, "Connection refused")

    screen = TrustScreen([known_hosts_file], fetch_host_key=fetch)
    app = TrustApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("c")
        await wait_for(pilot, lambda: bool(app._notifications), what="a notification")
        assert "Connection refused" in str(screen.query_one("#trust-check").content)  # type: ignore[attr-defined]
