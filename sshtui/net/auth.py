"""Client authentication policy, in OpenSSH's order (RFC 4252 §5; ssh_config(5) IdentitiesOnly).

"none" first to learn the allowed methods, then publickey (agent keys, then identity files,
each queried before signing), then keyboard-interactive, then password. Prompts go through
callbacks; a key's passphrase is asked only once the server said it would accept that key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import PrivateKey, public_key_type
from sshtui.ssh.crypto.userkeys import PassphraseRequired, WrongPassphrase
from sshtui.ssh.errors import SSHError
from sshtui.ssh.userauth import (
    AuthBanner,
    AuthEvent,
    AuthFailed,
    AuthSucceeded,
    ClientAuth,
    InfoRequested,
    PasswordChangeRequested,
    PublicKeyAccepted,
)
from sshtui.store.keyfiles import KeyFileError, read_private_key, read_public_key

PasswordPrompt = Callable[[str], Awaitable[str | None]]
KbdIntPrompt = Callable[[str, str, Sequence[tuple[str, bool]]], Awaitable[Sequence[str] | None]]
MAX_PASSPHRASE_TRIES = 3
MAX_PASSWORD_TRIES = 3


class AuthenticationFailed(SSHError):
    """No method succeeded; the message lists what was tried and what the server allows."""


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
    preferred: Sequence[str] = ("publickey", "keyboard-interactive", "password")
    keys: Sequence[PrivateKey] = field(default_factory=tuple)  # in-memory keys, tried first
    # PubkeyAcceptedAlgorithms: signature algorithms our keys may use; None allows every one.
    pubkey_algorithms: Sequence[str] | None = None


def _key_identity(key: PrivateKey, source: str) -> Identity:
    async def sign(algorithm: str, data: bytes) -> bytes:
        return key.sign(algorithm, data)

    return Identity(key.public_blob, source, sign)


def _file_identity(path: Path, blob: bytes, prompt: PasswordPrompt | None) -> Identity:
    async def sign(algorithm: str, data: bytes) -> bytes:
        passphrase: bytes | None = None
        for _ in range(MAX_PASSPHRASE_TRIES + 1):
            try:
                key = await asyncio.to_thread(read_private_key, path, passphrase)
                return key.sign(algorithm, data)
            except (PassphraseRequired, WrongPassphrase) as exc:
                if prompt is None:
                    raise KeyFileError(path, "is encrypted and no passphrase prompt is available") from exc
                answer = await prompt(f"Enter passphrase for key '{path}': ")
                if answer is None:
                    raise KeyFileError(path, "passphrase entry cancelled") from None
                passphrase = answer.encode()
        raise KeyFileError(path, f"wrong passphrase {MAX_PASSPHRASE_TRIES} times")

    return Identity(blob, str(path), sign)


def file_identities(paths: Sequence[Path], prompt: PasswordPrompt | None) -> list[Identity]:
    """Identities for key files: the public half from ``.pub`` or, failing that, the key itself."""
    out = []
    for path in paths:
        pub = path.with_name(path.name + ".pub")
        if pub.exists():
            blob, _ = read_public_key(pub)
        else:
            try:
                blob = read_private_key(path).public_blob
            except PassphraseRequired:
                continue  # no way to know its public key without asking: OpenSSH skips it too
        out.append(_file_identity(path, blob, prompt))
    return out


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
        tried = ", ".join(self._tried) or "nothing"
        allowed = ", ".join(self._allowed) or "none"
        raise AuthenticationFailed(f"Permission denied (tried {tried}; the server allows {allowed})")

    async def _identities(self) -> tuple[list[Identity], object | None]:
        opts = self._options
        identities = [_key_identity(k, "key") for k in opts.keys]
        agent = None
        if not opts.identities_only:
            from_agent, agent = await agent_identities(opts.agent_path)
            identities += from_agent
        identities += file_identities(opts.identity_files, opts.passphrase_prompt)
        seen: set[bytes] = set()
        unique = []
        for identity in identities:
            if identity.blob not in seen:
                seen.add(identity.blob)
                unique.append(identity)
        return unique, agent

    async def _publickey(self, identities: list[Identity]) -> str | None:
        for identity in identities:
            if "publickey" not in self._allowed:
                return None
            algorithm = self._accepted_algorithm(identity.blob)
            if algorithm is None:
                continue
            self._tried.append(f"publickey {identity.key_type} ({identity.source})")
            self._auth.query_publickey(algorithm, identity.blob)
            event = await self._answer()
            if not isinstance(event, PublicKeyAccepted):
                continue
            data = self._auth.publickey_signed_data(algorithm, identity.blob)
            try:
                signature = await identity.sign(algorithm, data)
            except (KeyFileError, SSHError):
                continue
            self._auth.send_publickey_signature(algorithm, identity.blob, signature)
            event = await self._answer()
            if isinstance(event, AuthSucceeded):
                return "success"
            if isinstance(event, AuthFailed) and event.partial_success:
                return "partial"
        return None

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
