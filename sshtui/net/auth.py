"""Client authentication policy, in OpenSSH's order (RFC 4252 §5; ssh_config(5) IdentitiesOnly).

"none" first to learn the allowed methods, then publickey (agent keys, then identity files,
each queried before signing), then keyboard-interactive, then password. Prompts go through
callbacks; a key's passphrase is asked only once the server said it would accept that key,
except for an encrypted key whose public half is hidden too (a PEM or PKCS#8 file without its
``.pub``): that one is unlocked first, as ssh(1) does, then offered. A passphrase is asked at most
``MAX_PASSPHRASE_TRIES`` times per key and connection; a key that cannot be used is skipped, and
when authentication fails the error says which keys were skipped and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import KeyFormatError, PrivateKey, public_key_type
from sshtui.ssh.crypto.userkeys import PassphraseRequired, WrongPassphrase
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
from sshtui.store.keyfiles import KeyFileError, read_private_key, read_public_half, read_public_key

PasswordPrompt = Callable[[str], Awaitable[str | None]]
KbdIntPrompt = Callable[[str, str, Sequence[tuple[str, bool]]], Awaitable[Sequence[str] | None]]
MAX_PASSPHRASE_TRIES = 3
MAX_PASSWORD_TRIES = 3


class AuthenticationFailed(SSHError):
    """No method succeeded; the message lists what was tried, what the server allows and the keys
    that were skipped, each with its reason."""


class PassphraseTriesExhausted(KeyFileError):
    """Every passphrase typed for a key was wrong."""


@dataclass
class Identity:
    """A key we can offer: from the agent (signs remotely) or a file (loaded when needed)."""

    blob: bytes
    source: str
    sign: Callable[[str, bytes], Awaitable[bytes]]

    @property
    def key_type(self) -> str:
        return public_key_type(self.blob)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """An identity file, loaded only when it is to sign. ``blob`` is None while the public half is
    unknown: the file is encrypted and hides it, so the key is unlocked before it is offered."""

    path: Path
    blob: bytes | None = field(repr=False)


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


def _key_identity(key: PrivateKey, source: str) -> Identity:
    async def sign(algorithm: str, data: bytes) -> bytes:
        return key.sign(algorithm, data)

    return Identity(key.public_blob, source, sign)


def key_files(paths: Sequence[Path]) -> tuple[list[KeyFile], list[str]]:
    """The identity files that may be offered, and ``"path: reason"`` for those that may not.

    The public half comes from the ``.pub`` beside the key or, failing that, from the key file."""
    usable: list[KeyFile] = []
    skipped: list[str] = []
    for path in paths:
        pub = path.with_name(path.name + ".pub")
        try:
            if pub.exists():
                usable.append(KeyFile(path, read_public_key(pub)[0]))
                continue
        except KeyFormatError:
            pass  # a damaged .pub: the key file itself may still say what its public half is
        try:
            usable.append(KeyFile(path, read_public_half(path)))
        except PassphraseRequired:
            usable.append(KeyFile(path, None))
        except KeyFormatError as exc:
            skipped.append(exc.message)
    return usable, skipped


async def unlock_key_file(path: Path, prompt: PasswordPrompt | None) -> PrivateKey:
    """The private key in ``path``, asking for its passphrase when it has one, at most
    ``MAX_PASSPHRASE_TRIES`` times. Raises ``KeyFormatError`` whose message says why it cannot be
    used: cancelled, no passphrase typed, wrong every time (``PassphraseTriesExhausted``), ..."""
    passphrase: bytes | None = None
    question = f"Enter passphrase for key '{path}': "
    for attempt in range(MAX_PASSPHRASE_TRIES + 1):
        try:
            return await asyncio.to_thread(read_private_key, path, passphrase)
        except PassphraseRequired:
            pass
        except WrongPassphrase:
            if attempt == MAX_PASSPHRASE_TRIES:
                reason = f"wrong passphrase {MAX_PASSPHRASE_TRIES} times"
                raise PassphraseTriesExhausted(path, reason) from None
            question = f"Bad passphrase, try again for key '{path}': "
        if prompt is None:
            raise KeyFileError(path, "encrypted, and no passphrase can be asked for here (BatchMode)")
        answer = await prompt(question)
        if answer is None:
            raise KeyFileError(path, "passphrase entry cancelled")
        if not answer:  # as ssh(1): an empty answer means "skip this key"
            raise KeyFileError(path, "no passphrase given")
        passphrase = answer.encode()
    raise AssertionError("unreachable: the last try returns or raises")


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
                self._unlocked[path] = await unlock_key_file(path, self._options.passphrase_prompt)
            except KeyFormatError as exc:
                self._unlocked[path] = None
                self._skip(exc.message)
                notify = self._options.notice_callback
                if isinstance(exc, PassphraseTriesExhausted) and notify is not None:
                    notify(f"{exc.message}; going on without this key")
        return self._unlocked[path]

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
        if prompt is None:
            return None
        for _ in range(MAX_PASSWORD_TRIES):
            password = await prompt(f"{self._auth.username}'s password: ")
            if password is None:
                return None
            self._tried.append("password")
            self._auth.try_password(password)
            event = await self._answer()
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
