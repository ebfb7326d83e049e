"""The keys screen checked against OpenSSH's ssh-keygen: listing with fingerprints and randomart,
generating a key, changing its passphrase, copying and exporting the public key."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from sshtui.ui.screens.dialogs import DetailDialog
from sshtui.ui.screens.keys import GenerateKeyDialog, KeysScreen, PassphraseDialog
from tests.ui.conftest import wait_for

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen"),
]


def keygen(*args: str) -> str:
    return subprocess.run(["ssh-keygen", *args], check=True, capture_output=True, text=True).stdout


def opens_with(path: Path, passphrase: str) -> bool:
    done = subprocess.run(["ssh-keygen", "-y", "-P", passphrase, "-f", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def ssh_key(home: Path) -> Path:
    path = home / ".ssh" / "id_ed25519"
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "made by ssh-keygen", "-f", str(path))
    return path


class KeysApp(App[None]):
    def __init__(self, screen: KeysScreen) -> None:
        super().__init__()
        self.keys = screen

    def on_mount(self) -> None:
        self.push_screen(self.keys)


def text_of(screen: KeysScreen, selector: str) -> str:
    return str(screen.query_one(selector).content)  # type: ignore[attr-defined]


async def submit(pilot: Pilot[None], app: App[None], values: dict[str, str]) -> None:
    """Fill the form's fields and press enter in the last one, as a user would."""
    field = None
    for selector, value in values.items():
        field = app.screen.query_one(selector, Input)
        field.value = value
    assert field is not None
    field.focus()
    await pilot.press("enter")
    await pilot.pause()


async def test_lists_keys_with_ssh_keygen_fingerprint_and_randomart(home: Path, ssh_key: Path) -> None:
    screen = KeysScreen(home=home)
    async with KeysApp(screen).run_test() as pilot:
        await pilot.pause()
        rows = screen.rows()
        assert len(rows) == 1
        fingerprint = keygen("-lf", str(ssh_key)).split()[1]
        assert rows[0][0] == str(ssh_key)
        assert rows[0][2] == fingerprint
        assert rows[0][3] == "none" and rows[0][4] == "made by ssh-keygen"
        art = keygen("-lvf", str(ssh_key)).splitlines()[1:]
        assert text_of(screen, "#keys-randomart").splitlines() == art
        assert text_of(screen, "#keys-public") == ssh_key.with_name("id_ed25519.pub").read_text().strip()


async def test_generate_writes_a_key_ssh_keygen_opens(home: Path) -> None:
    target = home / ".ssh" / "id_new"
    screen = KeysScreen(home=home)
    app = KeysApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, GenerateKeyDialog), what="the form")
        await submit(pilot, app, {"#key-path": str(target), "#key-comment": "from the ui",
                                  "#new-passphrase": "one", "#new-passphrase-again": "two"})
        assert "do not match" in str(app.screen.query_one("#form-error").content)  # type: ignore[attr-defined]
        assert not target.exists()
        await submit(pilot, app, {"#new-passphrase-again": "one"})
        await wait_for(pilot, lambda: any(row[0] == str(target) for row in screen.rows()), what="the new key")
        row = next(row for row in screen.rows() if row[0] == str(target))
        assert row[3] == "yes" and row[4] == "from the ui"
    assert opens_with(target, "one")
    assert not opens_with(target, "two")
    assert keygen("-lf", str(target)).split()[1] == row[2]


async def test_change_passphrase_needs_the_old_one(home: Path, ssh_key: Path) -> None:
    screen = KeysScreen(home=home)
    app = KeysApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), what="the form")
        await submit(pilot, app, {"#new-passphrase": "s3cret", "#new-passphrase-again": "s3cret"})
        await wait_for(pilot, lambda: screen.rows()[0][3] == "yes", what="the key to be encrypted")
        assert opens_with(ssh_key, "s3cret")
        before = ssh_key.read_bytes()
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), what="the form")
        wrong = {"#old-passphrase": "wrong", "#new-passphrase": "", "#new-passphrase-again": ""}
        await submit(pilot, app, wrong)
        await wait_for(pilot, lambda: any("not changed" in (n.title or "") for n in app._notifications),
                       what="the error")
        assert ssh_key.read_bytes() == before
    assert keygen("-lf", str(ssh_key)).split()[2:] == ["made", "by", "ssh-keygen", "(ED25519)"]


async def test_copy_and_export_give_the_authorized_keys_line(home: Path, ssh_key: Path) -> None:
    expected = ssh_key.with_name("id_ed25519.pub").read_text().strip()
    screen = KeysScreen(home=home)
    app = KeysApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == expected
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailDialog), what="the export")
        assert str(app.screen.query_one("#detail-text").content) == expected  # type: ignore[attr-defined]
