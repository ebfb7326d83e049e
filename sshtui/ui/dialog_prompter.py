"""Authentication prompts as dialogs, and the passwords and passphrases the user chose to remember
(RFC 4252 §7 and §8 secrets; keyring layout in ``sshtui.store.secrets``).

Before a passphrase or password dialog opens, the secret store is asked for a remembered one; if it
has one, that is used without asking and a notice says so. If it then proves wrong (the key does not
decrypt, the server refuses the password) it is removed from the store, and the dialog that follows
says why it appeared. A dialog offers "Remember in the keyring" (or, without a usable keyring,
"Remember until sshtui exits"), off by default; a ticked secret is stored only once it has worked.

Keyring calls can block (D-Bus round trips, an unlock prompt on the desktop), so each runs in a
thread and is given ``KEYRING_TIMEOUT`` seconds; a keyring that does not answer in time is not used
again in this process. Notices name the key file or the account, never the secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from sshtui.prompts import Prompter

if TYPE_CHECKING:
    from sshtui.net.trust import UnknownHostQuestion
    from sshtui.store.secrets import SecretStore
    from sshtui.ui.driver import Prompts

KEYRING_TIMEOUT = 10.0
REMEMBER_IN_KEYRING = "Remember in the keyring"
REMEMBER_FOR_SESSION = "Remember until sshtui exits"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Given:
    """A secret handed to authentication and waiting for its verdict."""

    what: str  # "the passphrase for ~/.ssh/id_ed25519", "the password of alice@host:22"
    remembered: bool  # it came from the store, not from the user
    to_store: str | None = field(default=None, repr=False)  # typed with "remember" ticked


class SecretKeeper:
    """One connection attempt's use of the secret store: look up before asking, store or forget
    after the verdict. ``prompts`` shows the dialogs and notices."""

    def __init__(self, store: SecretStore, prompts: Prompts, title: str, *,
                 timeout: float = KEYRING_TIMEOUT) -> None:
        self.store = store
        self._prompts = prompts
        self._title = title
        self._timeout = timeout
        self._given: dict[str, _Given] = {}
        self._wrong: set[str] = set()  # remembered ones that failed this time: ask instead

    def __repr__(self) -> str:
        return f"<SecretKeeper {self._title!r}: {len(self._given)} awaiting a verdict>"

    async def obtain(self, secret_id: str, prompt: str, what: str) -> str | None:
        """The secret for ``secret_id``: the remembered one, else the user's answer (None: cancelled)."""
        kind = _kind(secret_id)
        if secret_id not in self._wrong:
            stored = await self._call(self.store.get, secret_id, default=None)
            if stored is not None:
                place = await self._place()
                self._given[secret_id] = _Given(what, remembered=True)
                self._prompts.notice(f"Using {what} remembered {place}.")
                return stored
        note = ""
        if secret_id in self._wrong:
            refused = "was wrong" if kind == "passphrase" else "was not accepted by the server"
            note = f"The {kind} remembered for this {_subject(kind)} {refused}, so it was forgotten."
        in_keyring = await self._call(lambda: self.store.available, default=False)
        label = REMEMBER_IN_KEYRING if in_keyring else REMEMBER_FOR_SESSION
        answer = await self._prompts.remembered_secret(self._title, prompt, remember_label=label, note=note)
        if answer is None:
            return None
        secret, remember = answer
        self._given[secret_id] = _Given(what, remembered=False, to_store=secret if remember else None)
        return secret

    async def result(self, secret_id: str, ok: bool) -> None:
        """Authentication's verdict on the secret last given for ``secret_id``."""
        given = self._given.pop(secret_id, None)
        if given is None:
            return
        if given.remembered and not ok:
            self._wrong.add(secret_id)
            place = await self._place()
            await self._call(self.store.forget, secret_id, default=None)
            refused = "was wrong" if _kind(secret_id) == "passphrase" else "was not accepted"
            self._prompts.notice(f"{_capital(given.what)} remembered {place} {refused}: forgot it.")
        elif ok and given.to_store is not None:
            stored = await self._call(self.store.save, secret_id, given.to_store, remember=True,
                                      default="not stored")
            if stored == "keyring":
                self._prompts.notice(f"Stored {given.what} in the keyring ({self.store.backend_name}).")
            elif stored == "session":
                self._prompts.notice(f"Remembering {given.what} until sshtui exits.")

    async def _place(self) -> str:
        in_keyring = await self._call(lambda: self.store.available, default=False)
        return "in the keyring" if in_keyring else "until sshtui exits"

    async def _call(self, function: Callable[..., T], *args: object, default: T, **kwargs: object) -> T:
        """``function`` run in a thread, at most ``timeout`` seconds; ``default`` when it fails."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(function, *args, **kwargs), self._timeout)
        except TimeoutError:
            self.store.give_up(f"no answer within {self._timeout:g} s")
            result = default
        except Exception as exc:  # whatever a backend raises: the user is asked instead, no traceback
            self.store.give_up(f"{type(exc).__name__}")
            result = default
        finally:
            notice = self.store.pop_notice()
            if notice is not None:
                self._prompts.notice(notice)
        return result


def _kind(secret_id: str) -> Literal["passphrase", "password"]:
    return "passphrase" if secret_id.startswith("passphrase:") else "password"


def _subject(kind: str) -> str:
    return "key" if kind == "passphrase" else "account"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def shown_path(path: Path, home: Path) -> str:
    """``path`` with the home directory written as ``~``, as users know their key files."""
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


class DialogPrompter(Prompter):
    """``Prompter``'s callbacks answered by dialogs instead of the controlling terminal; passwords
    and passphrases go through ``keeper`` when there is one."""

    def __init__(self, prompts: Prompts, label: str, on_ask: Callable[[], None], *, batch_mode: bool,
                 keeper: SecretKeeper | None = None, home: Path | None = None) -> None:
        super().__init__(batch_mode=batch_mode)
        self._prompts = prompts
        self._label = label
        self._on_ask = on_ask
        self._keeper = keeper
        self._home = home if home is not None else Path.home()

    async def ask(self, prompt: str, *, echo: bool) -> str | None:
        if self.batch_mode:
            return None
        self._on_ask()
        return await self._prompts.secret(self._label, prompt, echo=echo)

    async def passphrase(self, prompt: str, *, key_path: Path | None = None) -> str | None:
        if self.batch_mode or key_path is None or self._keeper is None:
            return await super().passphrase(prompt, key_path=key_path)
        from sshtui.store.secrets import passphrase_key

        self._on_ask()
        what = f"the passphrase for {shown_path(key_path.absolute(), self._home)}"
        return await self._keeper.obtain(passphrase_key(key_path), prompt, what)

    async def password(self, prompt: str, *, account: str | None = None) -> str | None:
        if self.batch_mode or account is None or self._keeper is None:
            return await super().password(prompt, account=account)
        from sshtui.store.secrets import account_password_key

        self._on_ask()
        return await self._keeper.obtain(account_password_key(account), prompt, f"the password of {account}")

    async def secret_result(self, secret_id: str, ok: bool) -> None:
        if self._keeper is not None:
            await self._keeper.result(secret_id, ok)

    async def keyboard_interactive(
        self, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]
    ) -> Sequence[str] | None:
        if self.batch_mode:
            return None
        self._on_ask()
        return await self._prompts.keyboard_interactive(self._label, name, instruction, prompts)

    async def confirm_host_key(self, question: UnknownHostQuestion) -> bool:
        return False  # the driver's own verifier asks, with the key at hand for the randomart

    def banner(self, text: str) -> None:
        self._prompts.notice(text)
