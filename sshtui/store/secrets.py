"""Passwords and key passphrases: kept in the OS keyring when the user asks, never on disk by us.

Entries live under the service ``sshtui`` with the user name ``password:USER@HOST:PORT`` or
``passphrase:/absolute/key/path``, so they show up readably in Seahorse, Keychain Access or
``keyring get sshtui ...``. A secret is stored only when the user asks for it (``remember=True``).

Without a usable keyring (headless Linux gives ``keyring.backends.fail.Keyring``, whose every call
raises; the null backend silently drops what it is given; a locked collection raises on use) the
store falls back to asking each time, remembering in this process's memory only when asked to, and
says so once. Backends with a priority below 1 (for example keyrings.alt's plaintext file) are not
used unless the user picked one explicitly with ``PYTHON_KEYRING_BACKEND``: we never cause a secret
to be written to disk in the clear.

Keyring calls may block (D-Bus round trips, an unlock dialog): call them from a worker thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Final, Literal

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from keyring.backend import KeyringBackend

SERVICE: Final = "sshtui"
BACKEND_ENV: Final = "PYTHON_KEYRING_BACKEND"
MIN_TRUSTED_PRIORITY: Final = 1
UNAVAILABLE_NOTICE: Final = (
    "no usable OS keyring ({reason}): passwords and passphrases will be asked each time, "
    "and remembered only until sshtui exits when you ask for that"
)
# Everything a backend is known to raise: keyring's own errors, NoKeyringError (a RuntimeError),
# D-Bus and file problems surfacing as OSError.
_BACKEND_ERRORS = (keyring.errors.KeyringError, RuntimeError, OSError)

StoredIn = Literal["keyring", "session", "not stored"]


def account_name(user: str, host: str, port: int) -> str:
    """``user@host:port``: the account a login password belongs to (host names ignore case)."""
    return f"{user}@{host.lower()}:{port}"


def account_password_key(account: str) -> str:
    """The keyring user name of the password of ``account`` (as ``account_name`` spells it)."""
    return f"password:{account}"


def password_key(user: str, host: str, port: int) -> str:
    """The keyring user name of a login password: ``password:user@host:port``."""
    return account_password_key(account_name(user, host, port))


def passphrase_key(path: str | os.PathLike[str]) -> str:
    """The keyring user name of a private key's passphrase: ``passphrase:/absolute/path``."""
    return f"passphrase:{os.path.abspath(os.path.expanduser(path))}"


def _describe(backend: KeyringBackend) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def _unusable_reason(backend: KeyringBackend) -> str | None:
    """Why ``backend`` must not hold our secrets, or None when it may."""
    if isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring):
        return _describe(backend)
    if os.environ.get(BACKEND_ENV):
        return None  # the user chose this backend on purpose
    # A chainer passes secrets to each of its backends in turn, so each one must be acceptable.
    members = getattr(backend, "backends", None) or [backend]
    for member in members:
        try:
            priority = float(member.priority)
        except Exception:  # a backend's priority raises to say "not usable here"
            return f"{_describe(member)} is not usable here"
        if priority < MIN_TRUSTED_PRIORITY:
            return f"{_describe(member)} is not a secure store"
    return None


class SecretStore:
    """The keyring, with an in-memory fallback for this process; thread-safe.

    ``notify`` receives the "no usable keyring" notice, once; without it the notice waits for
    ``pop_notice()``. Secrets are never part of messages, ``repr()`` or logs.
    """

    def __init__(
        self,
        backend: KeyringBackend | None = None,
        *,
        service: str = SERVICE,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self._backend = backend
        self._notify = notify
        self._lock = threading.Lock()
        self._session: dict[str, str] = {}
        self._unusable: str | None = None
        self._probed = False
        self._notice_given = False
        self._pending_notice: str | None = None

    def __repr__(self) -> str:
        state = "keyring" if self.available else f"session only ({self._unusable})"
        return f"<SecretStore service={self.service!r} {state}, {len(self._session)} in session>"

    @property
    def backend(self) -> KeyringBackend:
        if self._backend is None:
            self._backend = keyring.get_keyring()
        return self._backend

    @property
    def backend_name(self) -> str:
        return _describe(self.backend)

    @property
    def available(self) -> bool:
        """Whether secrets can go to the OS keyring (probed once; a failing call turns it off)."""
        if not self._probed:
            self._probed = True
            reason = _unusable_reason(self.backend)
            if reason is not None:
                self._give_up(reason)
        return self._unusable is None

    def give_up(self, reason: str) -> None:
        """Stop using the keyring for the rest of the process (it hung, or failed unexpectedly)."""
        self._give_up(reason)

    def get(self, key: str) -> str | None:
        """The stored secret for ``key``, or None: ask the user then."""
        with self._lock:
            remembered = self._session.get(key)
        if remembered is not None or not self.available:
            return remembered
        try:
            return self.backend.get_password(self.service, key)
        except _BACKEND_ERRORS as exc:
            self._give_up(f"{self.backend_name} failed: {type(exc).__name__}")
            return None

    def save(self, key: str, secret: str, *, remember: bool) -> StoredIn:
        """Keep ``secret`` only if the user asked to: in the keyring, or else in memory until exit."""
        if not remember:
            return "not stored"
        if self.available:
            try:
                self.backend.set_password(self.service, key, secret)
            except _BACKEND_ERRORS as exc:
                self._give_up(f"{self.backend_name} failed: {type(exc).__name__}")
            else:
                return "keyring"
        with self._lock:
            self._session[key] = secret
        return "session"

    def forget(self, key: str) -> None:
        """Remove ``key`` from memory and from the keyring (nothing happens when it is not there)."""
        with self._lock:
            self._session.pop(key, None)
        if self.available:
            try:
                self.backend.delete_password(self.service, key)
            except keyring.errors.PasswordDeleteError:
                pass  # was not stored
            except _BACKEND_ERRORS as exc:
                self._give_up(f"{self.backend_name} failed: {type(exc).__name__}")

    def obtain(self, key: str, ask: Callable[[], tuple[str, bool] | None]) -> str | None:
        """The stored secret, or ``ask()``'s answer ``(secret, remember)`` saved as the user chose.

        None when ``ask`` returns None (the user cancelled).
        """
        stored = self.get(key)
        if stored is not None:
            return stored
        answer = ask()
        if answer is None:
            return None
        secret, remember = answer
        self.save(key, secret, remember=remember)
        return secret

    def clear_session(self) -> None:
        with self._lock:
            self._session.clear()

    def pop_notice(self) -> str | None:
        """The "no usable keyring" notice the first time it is asked for after it arose, else None."""
        with self._lock:
            notice, self._pending_notice = self._pending_notice, None
        return notice

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._unusable = self._unusable or reason
            if self._notice_given:
                return
            self._notice_given = True
            notice = UNAVAILABLE_NOTICE.format(reason=reason)
            if self._notify is None:
                self._pending_notice = notice
        if self._notify is not None:
            self._notify(notice)


_default_store: SecretStore | None = None
_default_lock = threading.Lock()


def default_store() -> SecretStore:
    """The process-wide store, so that the fallback notice is given once per process."""
    global _default_store
    with _default_lock:
        if _default_store is None:
            _default_store = SecretStore()
        return _default_store
