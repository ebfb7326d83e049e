"""Client authentication policy, in OpenSSH's order (RFC 4252 §5; ssh_config(5) IdentitiesOnly).

"none" first to learn the allowed methods, then publickey (agent keys, then identity files,
each queried before signing), then keyboard-interactive, then password. Prompts go through
callbacks; a key's passphrase is asked only once the server said it would accept that key,
except for an encrypted key whose public half is hidden too (a PEM or PKCS#8 file without its
``.pub``): that one is unlocked first, as ssh(1) does, then offered. A passphrase is asked at most
``MAX_PASSPHRASE_TRIES`` times per key and connection; a key that cannot be used is skipped, and
when authentication fails the error says which keys were skipped and why (identity files are
read and unlocked by ``sshtui.net.auth_keyfiles``).

With a ``SecretPrompter`` the prompts say what each secret is for (the key file; ``user@host:port``)
and the prompter hears whether it worked: a passphrase as soon as it decrypts the key or fails to,
a password when the server answers that attempt (SUCCESS, or partial success, vs FAILURE). An
expired password (RFC 4252 §8 PASSWD_CHANGEREQ) counts as not working: it is not worth remembering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sshtui.net.auth_keyfiles import MAX_PASSPHRASE_TRIES as MAX_PASSPHRASE_TRIES
from sshtui.net.auth_keyfiles import (
    KeyFile,
    PassphraseTriesExhausted,
    PasswordPrompt,
    SecretWorked,
    key_files,
    unlock_key_file,
)
from sshtui.ssh.crypto.hostkeys import KeyFormatError, PrivateKey, public_key_type
from sshtui.ssh.errors import SSHError
from sshtui.ssh.userauth_client import ClientAuth
from sshtui.ssh.userauth_events import (
    AuthBanner,
    AuthEvent,
    AuthFailed,
    AuthSucceeded,
    InfoRequested,
    PasswordChangeRequested,
    PublicKeyAccepted,
)

KbdIntPrompt = Callable[[str, str, Sequence[tuple[str, bool]]], Awaitable[Sequence[str] | None]]
MAX_PASSWORD_TRIES = 3


class AuthenticationFailed(SSHError):
    """No method succeeded; the message lists what was tried, what the server allows and the keys
    that were skipped, each with its reason."""


class SecretPrompter(Protocol):
    """Prompts told what each secret is for, and told afterwards whether it worked (see
    ``sshtui.prompts.Prompter``, which implements this)."""

    async def password(self, prompt: str, *, account: str | None = None) -> str | None: ...

    async def passphrase(self, prompt: str, *, key_path: Path | None = None) -> str | None: ...

    async def secret_result(self, secret_id: str, ok: bool) -> None: ...


@dataclass
class Identity:
    """A key we can offer: from the agent (signs remotely) or a file (loaded when needed)."""

    blob: bytes
    source: str
    sign: Callable[[str, bytes], Awaitable[bytes]]

    @property
    def key_type(self) -> str:
        return public_key_type(self.blob)


@dataclass
class AuthOptions:
    identity_files: Sequence[Path] = ()
    identities_only: bool = False
    agent_path: str | None = None
    password_prompt: PasswordPrompt | None = None
    passphrase_prompt: PasswordPrompt | None = None
    kbdint_prompt: KbdIntPrompt | None = None
    banner_callback: Callable[[str], None] | None = None
    # Told when a key is given up on after wrong passphrases, so the next prompt makes sense.
    notice_callback: Callable[[str], None] | None = None
    preferred: Sequence[str] = ("publickey", "keyboard-interactive", "password")
    keys: Sequence[PrivateKey] = field(default_factory=tuple)  # in-memory keys, tried first
    # PubkeyAcceptedAlgorithms: signature algorithms our keys may use; None allows every one.
    pubkey_algorithms: Sequence[str] | None = None
    # Asks in place of password_prompt and passphrase_prompt, with context, where those are set
    # (BatchMode leaves them None, and then nothing is asked either way).
    secret_prompter: SecretPrompter | None = None
    # The (host, port) logged in to: with the user name, whose password is asked for.
    destination: tuple[str, int] | None = None


def _key_identity(key: PrivateKey, source: str) -> Identity:
    async def sign(algorithm: str, data: bytes) -> bytes:
        return key.sign(algorithm, data)

    return Identity(key.public_blob, source, sign)


async def agent_identities(agent_path: str | None) -> tuple[list[Identity], object | None]:
    from sshtui.net.agent import AgentClient, AgentError

    try:
        agent = AgentClient(agent_path)
        await agent.connect()
        listed = await agent.list_identities()
    except (AgentError, OSError):
        return [], None

    def signer(blob: bytes) -> Callable[[str, bytes], Awaitable[bytes]]:
        async def sign(algorithm: str, data: bytes) -> bytes:
            return await agent.sign(blob, data, algorithm)

        return sign

    return [Identity(i.blob, f"agent: {i.comment}", signer(i.blob)) for i in listed], agent


class Authenticator:
    """Runs the client's side of authentication against ``ClientAuth``'s events."""

    def __init__(
        self,
        auth: ClientAuth,
        events: asyncio.Queue[AuthEvent],
        flush: Callable[[], None],
        options: AuthOptions,
        step_timeout: float | None,
    ):
        self._auth = auth
        self._events = events
        self._flush = flush
        self._options = options
        self._timeout = step_timeout
        self._allowed: tuple[str, ...] = ()
        self._tried: list[str] = []
        self._skipped: dict[str, None] = {}  # "what: why", in order, once each
        self._unlocked: dict[Path, PrivateKey | None] = {}  # None: given up on, reason in _skipped

    async def _next(self) -> AuthEvent:
        while True:
            async with asyncio.timeout(self._timeout):
                event = await self._events.get()
            if isinstance(event, AuthBanner):
                if self._options.banner_callback is not None:
                    self._options.banner_callback(event.text)
                continue
            return event

    async def _answer(self) -> AuthEvent:
        self._flush()
        event = await self._next()
        if isinstance(event, AuthFailed):
            self._allowed = event.allowed
        return event

    async def run(self) -> str:
        """Authenticate; returns the method that succeeded or raises AuthenticationFailed."""
        self._auth.try_none()
        event = await self._answer()
        if isinstance(event, AuthSucceeded):
            return "none"
        agent = None
        try:
            for method in self._options.preferred:
                while method in self._allowed:
                    if method == "publickey":
                        identities, agent = await self._identities()
                        result = await self._publickey(identities)
                    elif method == "keyboard-interactive":
                        result = await self._keyboard_interactive()
                    elif method == "password":
                        result = await self._password()
                    else:
                        result = None
                    if result == "success":
                        return method
                    if result != "partial":
                        break
        finally:
            close = getattr(agent, "close", None)
            if close is not None:
                close()
        raise AuthenticationFailed(self._failure_message())

    def _failure_message(self) -> str:
        tried = ", ".join(self._tried) or "nothing"
        allowed = ", ".join(self._allowed) or "none"
        message = f"Permission denied (tried {tried}; the server allows {allowed})"
        if self._skipped:
            message += ". Keys not used: " + "; ".join(self._skipped)
        return message

    def _skip(self, reason: str) -> None:
        self._skipped[reason] = None

    async def _identities(self) -> tuple[list[Identity | KeyFile], object | None]:
        opts = self._options
        identities: list[Identity | KeyFile] = [_key_identity(k, "key") for k in opts.keys]
        agent = None
        if not opts.identities_only:
            from_agent, agent = await agent_identities(opts.agent_path)
            identities += from_agent
        files, skipped = key_files(opts.identity_files)
        for reason in skipped:
            self._skip(reason)
        identities += files
        return identities, agent

    async def _unlock(self, path: Path) -> PrivateKey | None:
        """The key in ``path``, its passphrase asked for at most once per connection; None when it
        cannot be used (the reason is kept for the failure message)."""
        if path not in self._unlocked:
            try:
                prompt, worked = self._passphrase_prompt(path)
                self._unlocked[path] = await unlock_key_file(path, prompt, worked)
            except KeyFormatError as exc:
                self._unlocked[path] = None
                self._skip(exc.message)
                notify = self._options.notice_callback
                if isinstance(exc, PassphraseTriesExhausted) and notify is not None:
                    notify(f"{exc.message}; going on without this key")
        return self._unlocked[path]

    def _passphrase_prompt(self, path: Path) -> tuple[PasswordPrompt | None, SecretWorked | None]:
        """How to ask for ``path``'s passphrase, and whom to tell whether it worked."""
        plain = self._options.passphrase_prompt
        prompter = self._options.secret_prompter
        if plain is None or prompter is None:
            return plain, None
        from sshtui.store.secrets import passphrase_key  # only here: it loads the keyring module

        async def ask(question: str) -> str | None:
            return await prompter.passphrase(question, key_path=path)

        return ask, _reporter(prompter, passphrase_key(path))

    def _password_prompt(self) -> tuple[PasswordPrompt | None, SecretWorked | None]:
        """How to ask for the login password, and whom to tell whether the server took it."""
        plain = self._options.password_prompt
        prompter = self._options.secret_prompter
        destination = self._options.destination
        if plain is None or prompter is None or destination is None:
            return plain, None
        from sshtui.store.secrets import account_name, account_password_key

        account = account_name(self._auth.username, *destination)

        async def ask(question: str) -> str | None:
            return await prompter.password(question, account=account)

        return ask, _reporter(prompter, account_password_key(account))

    async def _publickey(self, identities: list[Identity | KeyFile]) -> str | None:
        offered: set[bytes] = set()  # the same key from the agent and a file is offered once
        for identity in identities:
            if "publickey" not in self._allowed:
                return None
            blob = identity.blob
            if blob is None:
                assert isinstance(identity, KeyFile)
                key = await self._unlock(identity.path)
                if key is None:
                    continue
                blob = key.public_blob
            if blob in offered:
                continue
            offered.add(blob)
            source = str(identity.path) if isinstance(identity, KeyFile) else identity.source
            algorithm = self._accepted_algorithm(blob)
            if algorithm is None:
                self._skip(f"{source}: {public_key_type(blob)} keys are not in PubkeyAcceptedAlgorithms")
                continue
            self._tried.append(f"publickey {public_key_type(blob)} ({source})")
            self._auth.query_publickey(algorithm, blob)
            event = await self._answer()
            if not isinstance(event, PublicKeyAccepted):
                continue
            data = self._auth.publickey_signed_data(algorithm, blob)
            signature = await self._sign(identity, blob, algorithm, data)
            if signature is None:
                continue
            self._auth.send_publickey_signature(algorithm, blob, signature)
            event = await self._answer()
            if isinstance(event, AuthSucceeded):
                return "success"
            if isinstance(event, AuthFailed) and event.partial_success:
                return "partial"
        return None

    async def _sign(
        self, identity: Identity | KeyFile, blob: bytes, algorithm: str, data: bytes
    ) -> bytes | None:
        if isinstance(identity, Identity):
            try:
                return await identity.sign(algorithm, data)
            except SSHError as exc:
                self._skip(f"{identity.source}: {exc.message}")
                return None
        key = await self._unlock(identity.path)
        if key is None:
            return None
        if key.public_blob != blob:
            self._skip(f"{identity.path}: the .pub file beside it holds a different key")
            return None
        return key.sign(algorithm, data)

    def _accepted_algorithm(self, blob: bytes) -> str | None:
        algorithm = self._auth.signature_algorithm_for(blob)
        accepted = self._options.pubkey_algorithms
        if accepted is None or algorithm in accepted:
            return algorithm
        if public_key_type(blob) == "ssh-rsa":
            # The server's favourite RSA hash is not allowed here: fall back to one that is.
            server = self._auth.server_sig_algs
            for name in ("rsa-sha2-512", "rsa-sha2-256"):
                if name in accepted and (not server or name in server):
                    return name
        return None

    async def _password(self) -> str | None:
        prompt = self._options.password_prompt
        ask, worked = self._password_prompt()
        if prompt is None or ask is None:
            return None
        for _ in range(MAX_PASSWORD_TRIES):
            password = await ask(f"{self._auth.username}'s password: ")
            if password is None:
                return None
            self._tried.append("password")
            self._auth.try_password(password)
            event = await self._answer()
            if worked is not None:
                accepted = isinstance(event, AuthSucceeded) or (
                    isinstance(event, AuthFailed) and event.partial_success
                )
                await worked(accepted)
            if isinstance(event, PasswordChangeRequested):
                new = await prompt(f"{event.prompt} New password: ")
                if new is None:
                    return None
                self._auth.change_password(password, new)
                event = await self._answer()
            if isinstance(event, AuthSucceeded):
                return "success"
            if isinstance(event, AuthFailed) and event.partial_success:
                return "partial"
            if "password" not in self._allowed:
                return None
        return None

    async def _keyboard_interactive(self) -> str | None:
        prompt = self._options.kbdint_prompt
        if prompt is None:
            return None
        self._tried.append("keyboard-interactive")
        self._auth.try_keyboard_interactive()
        while True:
            event = await self._answer()
            if isinstance(event, InfoRequested):
                answers = await prompt(event.name, event.instruction, event.prompts) if event.prompts else []
                if answers is None:
                    return None
                self._auth.send_info_response(list(answers))
                continue
            if isinstance(event, AuthSucceeded):
                return "success"
            if isinstance(event, AuthFailed) and event.partial_success:
                return "partial"
            return None


def _reporter(prompter: SecretPrompter, secret_id: str) -> SecretWorked:
    async def worked(ok: bool) -> None:
        await prompter.secret_result(secret_id, ok)

    return worked
