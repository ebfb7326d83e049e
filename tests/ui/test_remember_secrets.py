"""Remembering passwords and key passphrases in the app, against our embedded server: a ticked
secret goes to the keyring only once it worked, a remembered one is used without asking, a wrong
remembered one is forgotten and the dialog says so, and without a usable keyring the checkbox offers
memory until exit and the keyring is never called. Secrets never show up in notifications."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from sshtui.ssh.crypto.hostkeys import openssh_public_line
from sshtui.store.keys import encode_private_key
from sshtui.store.secrets import SERVICE
from sshtui.ui.app import SshtuiApp
from sshtui.ui.driver import ConnState
from sshtui.ui.screens.dialogs import SecretDialog
from sshtui.ui.screens.secret_dialogs import RememberSecretDialog
from tests.ui.conftest import PASSWORD, USER_KEY, Embedded, make_app, showing, wait_for

pytestmark = pytest.mark.timeout(90)

PASSPHRASE = "open sesame, said the tester"


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict that notes every call made to it."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}
        self.calls: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append(f"get {username}")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append(f"set {username}")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls.append(f"delete {username}")
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class CountingFailKeyring(keyring.backends.fail.Keyring):
    """Headless Linux's keyring (every call raises), noting any call that reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append(f"get {username}")
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append(f"set {username}")
        super().set_password(service, username, password)


@contextmanager
def installed(monkeypatch: pytest.MonkeyPatch, backend: KeyringBackend) -> Iterator[None]:
    """``backend`` as the process's keyring while the block runs; the previous one comes back."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    with installed(monkeypatch, backend):
        yield backend


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingFailKeyring]:
    backend = CountingFailKeyring()
    with installed(monkeypatch, backend):
        yield backend


def trust_server(home: Path, embedded: Embedded) -> None:
    line = openssh_public_line(embedded.host_key.public_blob)
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{embedded.port} {line}\n")


def install_encrypted_key(home: Path) -> Path:
    """The server's accepted user key as ~/.ssh/id_ed25519, encrypted with PASSPHRASE."""
    path = home / ".ssh" / "id_ed25519"
    path.write_bytes(encode_private_key(USER_KEY, "test", PASSPHRASE.encode()))
    path.chmod(0o600)
    path.with_name("id_ed25519.pub").write_text(openssh_public_line(USER_KEY.public_blob, "test") + "\n")
    return path


def notifications(app: SshtuiApp) -> list[str]:
    return [f"{n.title} {n.message}" for n in app._notifications]


def assert_never_shown(app: SshtuiApp, *secrets: str) -> None:
    shown = "\n".join(notifications(app))
    for secret in secrets:
        assert secret not in shown


def connected(app: SshtuiApp, dest: str) -> bool:
    conn = app.latest_connection(f"quick:{dest}")
    return conn is not None and conn.state is ConnState.CONNECTED


async def wait_for_dialog(pilot: Pilot[None], app: SshtuiApp, what: str) -> RememberSecretDialog:
    await wait_for(pilot, lambda: showing(app, RememberSecretDialog)
                   and app.screen.query_one("#answer", Input).has_focus, what=what)
    dialog = app.screen
    assert isinstance(dialog, RememberSecretDialog)
    return dialog


async def answer(pilot: Pilot[None], secret: str, *, remember: bool) -> None:
    """Type the secret; reach the checkbox with Tab and tick it with Space when asked to; OK."""
    await pilot.press(*secret)
    if remember:
        await pilot.press("tab", "space")
        await pilot.press("tab", "enter")  # on the OK button
    else:
        await pilot.press("enter")


async def test_a_remembered_passphrase_is_stored_after_it_worked_and_used_next_time(
    home: Path, embedded: Embedded, memory_keyring: MemoryKeyring
) -> None:
    key_path = install_encrypted_key(home)
    trust_server(home, embedded)
    dest = f"tester@127.0.0.1:{embedded.port}"
    entry = (SERVICE, f"passphrase:{key_path}")
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(dest)
        dialog = await wait_for_dialog(pilot, app, "passphrase dialog")
        assert str(key_path) in str(dialog.query_one("#prompt-text").render())
        assert dialog.query_one("#answer", Input).password  # masked
        checkbox = dialog.query_one("#remember", Checkbox)
        assert str(checkbox.label) == "Remember in the keyring" and checkbox.value is False
        assert not dialog.query("#secret-note")
        await answer(pilot, PASSPHRASE, remember=True)
        await wait_for(pilot, lambda: connected(app, dest), what="connected")
        assert memory_keyring.entries == {entry: PASSPHRASE}
        assert any("Stored the passphrase for ~/.ssh/id_ed25519 in the keyring" in n
                   for n in notifications(app))
        assert_never_shown(app, PASSPHRASE)

    memory_keyring.calls.clear()
    again = make_app(home)
    async with again.run_test(size=(120, 40)) as pilot:
        again.connect_name(dest)
        # Nothing is asked: a dialog would hold the connection until answered.
        await wait_for(pilot, lambda: connected(again, dest), what="connected without a question")
        assert memory_keyring.calls == [f"get passphrase:{key_path}"]
        assert any("Using the passphrase for ~/.ssh/id_ed25519 remembered in the keyring" in n
                   for n in notifications(again))
        assert_never_shown(again, PASSPHRASE)


async def test_a_wrong_remembered_passphrase_is_forgotten_and_the_dialog_says_so(
    home: Path, embedded: Embedded, memory_keyring: MemoryKeyring
) -> None:
    key_path = install_encrypted_key(home)
    trust_server(home, embedded)
    stale = "the passphrase before it was changed"
    memory_keyring.entries[(SERVICE, f"passphrase:{key_path}")] = stale
    dest = f"tester@127.0.0.1:{embedded.port}"
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(dest)
        dialog = await wait_for_dialog(pilot, app, "passphrase dialog after the stale one")
        note = str(dialog.query_one("#secret-note", Static).render())
        assert "remembered for this key was wrong" in note
        assert memory_keyring.entries == {}
        assert dialog.query_one("#remember", Checkbox).value is False
        await answer(pilot, PASSPHRASE, remember=False)
        await wait_for(pilot, lambda: connected(app, dest), what="connected")
        assert memory_keyring.entries == {}  # not ticked: not stored
        assert any("remembered in the keyring was wrong: forgot it" in n for n in notifications(app))
        assert_never_shown(app, PASSPHRASE, stale)


async def test_a_password_is_stored_only_once_the_server_accepted_it(
    home: Path, embedded: Embedded, memory_keyring: MemoryKeyring
) -> None:
    trust_server(home, embedded)
    dest = f"alice@127.0.0.1:{embedded.port}"
    entry = (SERVICE, f"password:{dest}")
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(dest)
        await wait_for_dialog(pilot, app, "password dialog")
        assert "alice's password" in str(app.screen.query_one("#prompt-text").render())
        await answer(pilot, "not the password", remember=True)
        await wait_for(pilot, lambda: showing(app, RememberSecretDialog)
                       and app.screen.query_one("#answer", Input).value == "", what="second prompt")
        # The rejected one was ticked, yet never stored: looked up before each dialog, nothing more.
        assert memory_keyring.calls == [f"get password:{dest}"] * 2
        assert not app.screen.query("#secret-note")
        assert app.screen.query_one("#remember", Checkbox).value is False
        await answer(pilot, PASSWORD, remember=True)
        await wait_for(pilot, lambda: connected(app, dest), what="connected")
        assert memory_keyring.entries == {entry: PASSWORD}
        assert any(f"Stored the password of {dest} in the keyring" in n for n in notifications(app))
        assert_never_shown(app, PASSWORD, "not the password")


async def test_an_unticked_password_is_not_stored(
    home: Path, embedded: Embedded, memory_keyring: MemoryKeyring
) -> None:
    trust_server(home, embedded)
    dest = f"alice@127.0.0.1:{embedded.port}"
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(dest)
        await wait_for_dialog(pilot, app, "password dialog")
        await answer(pilot, PASSWORD, remember=False)
        await wait_for(pilot, lambda: connected(app, dest), what="connected")
        assert memory_keyring.entries == {}
        assert memory_keyring.calls == [f"get password:{dest}"]


async def test_without_a_keyring_the_password_is_remembered_until_exit_and_the_keyring_untouched(
    home: Path, embedded: Embedded, no_keyring: CountingFailKeyring
) -> None:
    trust_server(home, embedded)
    dest = f"alice@127.0.0.1:{embedded.port}"
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(dest)
        dialog = await wait_for_dialog(pilot, app, "password dialog")
        assert str(dialog.query_one("#remember", Checkbox).label) == "Remember until sshtui exits"
        await answer(pilot, PASSWORD, remember=True)
        await wait_for(pilot, lambda: connected(app, dest), what="connected")
        # The secret is kept once the server's answer has been handled, which may follow "connected".
        await wait_for(
            pilot,
            lambda: any(f"Remembering the password of {dest} until sshtui exits" in n
                        for n in notifications(app)),
            what="remembered notice",
        )
        assert any("no usable OS keyring" in n for n in notifications(app))

        # Another connection to the same account in this run of the app asks nothing.
        conn = app.latest_connection(f"quick:{dest}")
        assert conn is not None
        second = app.driver.connect("second", conn.target)
        await wait_for(pilot, lambda: second.state is ConnState.CONNECTED, what="second connection")
        assert not showing(app, SecretDialog)
        await wait_for(
            pilot,
            lambda: any(f"Using the password of {dest} remembered until sshtui exits" in n
                        for n in notifications(app)),
            what="used-remembered notice",
        )
        assert no_keyring.calls == []
        assert_never_shown(app, PASSWORD)
