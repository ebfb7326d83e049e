"""Secrets go to the OS keyring only when the user asks; without a usable keyring they stay in memory
for the process, the user is told once, and nothing reaches the disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from sshtui.store.secrets import SERVICE, SecretStore, passphrase_key, password_key

SECRET = "correct horse battery staple"


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class LockedKeyring(MemoryKeyring):
    """A desktop keyring whose collection is locked and cannot be unlocked from here."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class PlaintextLikeKeyring(MemoryKeyring):
    """Stands for keyrings.alt's file backends: low priority because they are not a secure store."""

    priority = 0.5  # type: ignore[assignment]


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The headless-Linux situation; every place a file could land points into tmp_path."""
    for variable in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield tmp_path
    keyring.set_keyring(previous)


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# --- with a keyring -----------------------------------------------------------------------------------


def test_remembered_password_goes_to_the_keyring_under_readable_names(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    key = password_key("alice", "Example.ORG", 2222)

    assert store.save(key, SECRET, remember=True) == "keyring"

    assert memory_keyring.entries == {(SERVICE, "password:alice@example.org:2222"): SECRET}
    assert SecretStore().get(key) == SECRET  # a later run finds it
    assert store.available and store.pop_notice() is None


def test_nothing_is_stored_unless_the_user_asks(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    key = password_key("alice", "example.org", 22)
    assert store.save(key, SECRET, remember=False) == "not stored"
    assert memory_keyring.entries == {}
    assert store.get(key) is None


def test_forget_removes_the_entry_and_tolerates_absence(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    key = passphrase_key("/keys/id_ed25519")
    store.save(key, SECRET, remember=True)
    store.forget(key)
    store.forget(key)
    assert memory_keyring.entries == {}
    assert store.get(key) is None


def test_passphrase_key_uses_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert passphrase_key("keys/id_rsa") == f"passphrase:{tmp_path}/keys/id_rsa"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert passphrase_key("~/.ssh/id_ed25519") == f"passphrase:{tmp_path}/home/.ssh/id_ed25519"


def test_obtain_asks_only_when_nothing_is_stored(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    key = password_key("bob", "h", 22)
    questions: list[str] = []

    def ask() -> tuple[str, bool]:
        questions.append(key)
        return SECRET, True

    assert store.obtain(key, ask) == SECRET
    assert store.obtain(key, ask) == SECRET
    assert len(questions) == 1
    assert store.obtain(password_key("bob", "other", 22), lambda: None) is None


def test_secret_never_shows_in_repr_or_notices(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    store.save(password_key("a", "h", 22), SECRET, remember=True)
    assert SECRET not in repr(store)


# --- without a usable keyring ----------------------------------------------------------------------------


def test_fail_backend_falls_back_to_memory_and_says_so_once(no_keyring: Path) -> None:
    store = SecretStore()
    key = password_key("alice", "example.org", 22)

    assert not store.available
    assert store.get(key) is None
    assert store.save(key, SECRET, remember=True) == "session"
    assert store.get(key) == SECRET
    store.save(password_key("bob", "example.org", 22), "other secret", remember=True)

    notice = store.pop_notice()
    assert notice is not None and "asked each time" in notice and "keyring.backends.fail.Keyring" in notice
    assert SECRET not in notice
    assert store.pop_notice() is None
    assert SECRET not in repr(store)
    assert SecretStore().get(key) is None  # memory only: gone with the process


def test_fail_backend_writes_nothing_to_disk(no_keyring: Path) -> None:
    store = SecretStore()
    store.save(password_key("alice", "example.org", 22), SECRET, remember=True)
    store.save(passphrase_key("/keys/id"), SECRET + "-passphrase", remember=True)

    assert files_containing(no_keyring, SECRET.encode()) == []


def test_notify_callback_is_called_exactly_once(no_keyring: Path) -> None:
    notices: list[str] = []
    store = SecretStore(notify=notices.append)
    for user in ("a", "b", "c"):
        store.save(password_key(user, "h", 22), SECRET, remember=True)
        store.get(password_key(user, "h", 22))
    assert len(notices) == 1
    assert store.pop_notice() is None


def test_null_backend_is_not_trusted_to_keep_anything() -> None:
    store = SecretStore(keyring.backends.null.Keyring())  # type: ignore[no-untyped-call]
    assert store.save("k", SECRET, remember=True) == "session"
    assert store.get("k") == SECRET


def test_locked_keyring_falls_back_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    notices: list[str] = []
    store = SecretStore(LockedKeyring(), notify=notices.append)

    assert store.get("k") is None
    assert store.save("k", SECRET, remember=True) == "session"
    assert store.get("k") == SECRET
    assert len(notices) == 1 and "KeyringLocked" in notices[0]


def test_low_priority_backend_is_refused_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    backend = PlaintextLikeKeyring()
    assert SecretStore(backend).save("k", SECRET, remember=True) == "session"
    assert backend.entries == {}

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.PlaintextLikeKeyring")
    assert SecretStore(backend).save("k", SECRET, remember=True) == "keyring"
    assert backend.entries == {(SERVICE, "k"): SECRET}


def test_keyring_home_is_untouched_by_lookups(no_keyring: Path) -> None:
    SecretStore().get(password_key("a", "h", 22))
    assert not any(p.is_file() for p in no_keyring.rglob("*"))
