"""An ssh-agent client over a Unix socket (draft-miller-ssh-agent §3, §4.4, §4.5).

Lists the agent's identities and asks it to sign, for publickey authentication without the
private key ever entering this process. One request is outstanding at a time; every call has a
timeout, replies are bounded in size, and anything malformed becomes an ``AgentError``.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass
from types import TracebackType

from sshtui.ssh.crypto.hostkeys import fingerprint_sha256, parse_signature_blob, public_key_type
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.wire import WireReader, byte, string, uint32

SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_EXTENSION_FAILURE = 28
# Failure codes OpenSSH also treats as a refusal (its authfd.c agent_failed()).
_FAILURE_CODES = frozenset({SSH_AGENT_FAILURE, SSH_AGENT_EXTENSION_FAILURE, 30, 102})

SSH_AGENT_RSA_SHA2_256 = 0x02
SSH_AGENT_RSA_SHA2_512 = 0x04
SIGN_FLAGS = {"rsa-sha2-256": SSH_AGENT_RSA_SHA2_256, "rsa-sha2-512": SSH_AGENT_RSA_SHA2_512}

MAX_AGENT_MESSAGE = 256 * 1024
MAX_IDENTITIES = 1024
DEFAULT_TIMEOUT = 10.0
_LENGTH = struct.Struct(">I")


class AgentError(Exception):
    """The agent could not be used, refused, or answered something malformed."""


class AgentUnavailable(AgentError):
    """No agent socket is configured, or nothing answers on it."""


class AgentRefused(AgentError):
    """The agent answered SSH_AGENT_FAILURE."""


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    blob: bytes
    comment: str

    @property
    def key_type(self) -> str:
        try:
            return public_key_type(self.blob)
        except DecodeError:
            return "unknown"

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.blob)


class AgentClient:
    """``async with AgentClient() as agent: ids = await agent.list_identities()``."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.path = os.fspath(path) if path is not None else os.environ.get("SSH_AUTH_SOCK")
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def connect(self) -> None:
        if self._writer is not None:
            return
        if not self.path:
            raise AgentUnavailable("no ssh-agent: SSH_AUTH_SOCK is not set")
        if not hasattr(asyncio, "open_unix_connection"):
            raise AgentUnavailable("ssh-agent sockets need Unix domain socket support")
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_unix_connection(self.path)
        except TimeoutError:
            message = f"no answer from the ssh-agent at {self.path} in {self.timeout:g} s"
            raise AgentUnavailable(message) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AgentUnavailable(f"cannot connect to the ssh-agent at {self.path}: {reason}") from None

    async def list_identities(self) -> list[AgentIdentity]:
        request = byte(SSH_AGENTC_REQUEST_IDENTITIES)
        reply = await self._request(request, SSH_AGENT_IDENTITIES_ANSWER, "list keys")
        try:
            count = reply.uint32("number of keys")
            if count > MAX_IDENTITIES:
                raise AgentError(f"the agent claims {count} keys (limit {MAX_IDENTITIES})")
            identities = [
                AgentIdentity(reply.string("key blob"), reply.string("comment").decode("utf-8", "replace"))
                for _ in range(count)
            ]
            reply.check_end()
        except (DecodeError, AgentError) as exc:
            raise self._broken(f"malformed identities answer: {exc}") from None
        return identities

    async def sign(self, blob: bytes, data: bytes, algorithm: str) -> bytes:
        """A signature blob (``string algorithm || string signature``) over ``data``."""
        flags = SIGN_FLAGS.get(algorithm, 0)
        request = byte(SSH_AGENTC_SIGN_REQUEST) + string(blob) + string(data) + uint32(flags)
        what = f"sign with {fingerprint_sha256(blob)}"
        reply = await self._request(request, SSH_AGENT_SIGN_RESPONSE, what)
        try:
            signature = reply.string("signature")
            reply.check_end()
            signed_with, _ = parse_signature_blob(signature)
        except DecodeError as exc:
            raise self._broken(f"malformed sign response: {exc.message}") from None
        if signed_with != algorithm:
            # An agent that ignores the rsa-sha2 flags answers with SHA-1 ssh-rsa signatures.
            raise self._broken(f"asked the agent for {algorithm} but it signed with {signed_with!r:.64}")
        return signature

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    def _broken(self, message: str) -> AgentError:
        """An agent that answers nonsense is not asked again on this connection."""
        self.close()
        return AgentError(message)

    async def __aenter__(self) -> AgentClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _request(self, message: bytes, expected: int, what: str) -> WireReader:
        if len(message) > MAX_AGENT_MESSAGE:
            raise AgentError(f"cannot {what}: the request is larger than {MAX_AGENT_MESSAGE} bytes")
        async with self._lock:
            await self.connect()
            assert self._reader is not None and self._writer is not None
            try:
                async with asyncio.timeout(self.timeout):
                    self._writer.write(_LENGTH.pack(len(message)) + message)
                    await self._writer.drain()
                    (length,) = _LENGTH.unpack(await self._reader.readexactly(4))
                    if not 0 < length <= MAX_AGENT_MESSAGE:
                        raise AgentError(f"agent reply of {length} bytes (limit {MAX_AGENT_MESSAGE})")
                    body = await self._reader.readexactly(length)
            except TimeoutError:
                self.close()  # a late reply would be read as the answer to the next request
                raise AgentError(f"the agent did not {what} within {self.timeout:g} s") from None
            except AgentError:
                self.close()
                raise
            except (asyncio.IncompleteReadError, OSError):
                self.close()
                raise AgentError(f"the agent closed the connection instead of answering ({what})") from None
        if body[0] in _FAILURE_CODES:
            raise AgentRefused(f"the agent refused to {what}")
        if body[0] != expected:
            raise self._broken(f"the agent answered message {body[0]} to a request to {what}")
        reader = WireReader(body, "agent reply")
        reader.byte("message number")
        return reader
