"""The interface every key exchange method implements (RFC 4253 §7-8), and the shared
driver for methods shaped like ECDH: one INIT string, one REPLY (RFC 5656 §4, RFC 8731 §3).

The transport drives a method generically: it calls ``start()`` right after both KEXINITs,
feeds each method-specific payload (numbers 30..49) to ``receive()``, sends what comes back
and, once a ``KexOutcome`` appears, verifies (client) or has made (server) the host key
signature and derives keys from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sshtui.ssh.constants import DisconnectReason, message_name
from sshtui.ssh.crypto.hostkeys import HostKeySigner
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.kex import exchange_hash
from sshtui.ssh.messages.kex import KexEcdhInit, KexEcdhReply
from sshtui.ssh.wire import string

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class KexContext:
    """The inputs of the exchange hash that the transport knows before the method starts."""

    client_version: bytes  # identification strings without CR LF
    server_version: bytes
    client_kexinit: bytes  # full KEXINIT payloads, message number included
    server_kexinit: bytes


@dataclass(frozen=True, slots=True)
class KexOutcome:
    exchange_hash: bytes
    # Already encoded for hashing: mpint(K) for (EC)DH, string(K) for the hybrid PQ method.
    shared_secret: bytes = field(repr=False)
    host_key_blob: bytes
    # string algorithm || string signature; on the client it still has to be verified.
    signature: bytes
    hash_name: str


class ClientKex(Protocol):
    """One client-side run of a key exchange method."""

    expected: frozenset[int]

    def start(self) -> list[bytes]: ...

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]: ...


class ServerKex(Protocol):
    """One server-side run of a key exchange method; its reply carries the signature of H."""

    expected: frozenset[int]

    def start(self) -> list[bytes]: ...

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]: ...


@dataclass(frozen=True, slots=True)
class KexMethod:
    name: str
    hash_name: str
    post_quantum: bool
    make_client: Callable[[KexContext, Rng], ClientKex]
    make_server: Callable[[KexContext, Rng, HostKeySigner], ServerKex]
    # Weak methods (SHA-1) are only offered when the user asks for them.
    opt_in: bool = False


def random_bytes(rng: Rng, count: int) -> bytes:
    data = rng(count)
    if len(data) != count:
        raise LocalProtocolError(f"random source returned {len(data)} bytes instead of {count}")
    return data


def kex_failed(message: str) -> RemoteProtocolError:
    """An error for cryptographically invalid values sent by the peer."""
    return RemoteProtocolError(message, DisconnectReason.KEY_EXCHANGE_FAILED)


def message_number(payload: bytes, method: str, expected: frozenset[int]) -> int:
    """The message number of ``payload``, refused unless it is one ``expected`` now."""
    if not payload:
        raise DecodeError(f"{method}: empty key exchange payload")
    number = payload[0]
    if number not in expected:
        wanted = " or ".join(sorted(message_name(n) for n in expected)) or "nothing"
        raise RemoteProtocolError(
            f"{method}: unexpected {message_name(number)} during key exchange (waiting for {wanted})"
        )
    return number


# Computes (client side) the encoded shared secret from the server's reply value.
ClientFinish = Callable[[bytes], bytes]
# Computes (server side) our reply value and the encoded shared secret from the client's value.
ServerRespond = Callable[[bytes], tuple[bytes, bytes]]

_ONLY_INIT = frozenset({KexEcdhInit.MSG})
_ONLY_REPLY = frozenset({KexEcdhReply.MSG})
_NOTHING: frozenset[int] = frozenset()


class EcdhShapedClient:
    """Client of a method with ECDH_INIT(string) / ECDH_REPLY(string, string, string) messages:
    H = HASH(V_C || V_S || I_C || I_S || K_S || Q_C || Q_S || K)."""

    __slots__ = ("_client_public", "_context", "_finish", "_hash_name", "_method", "expected")

    def __init__(
        self, context: KexContext, method: str, hash_name: str, client_public: bytes, finish: ClientFinish
    ):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._client_public = client_public
        self._finish = finish
        self.expected: frozenset[int] = _NOTHING

    def start(self) -> list[bytes]:
        self.expected = _ONLY_REPLY
        return [KexEcdhInit(self._client_public).encode()]

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        message_number(payload, self._method, self.expected)
        reply = KexEcdhReply.decode(payload)
        self.expected = _NOTHING
        shared = self._finish(reply.server_public)
        fields = string(self._client_public) + string(reply.server_public)
        digest = exchange_hash(self._hash_name, self._context, reply.host_key, fields, shared)
        return [], KexOutcome(digest, shared, reply.host_key, reply.signature, self._hash_name)


class EcdhShapedServer:
    """Server side of an ECDH-shaped method; signs H with the negotiated host key."""

    __slots__ = ("_context", "_hash_name", "_method", "_respond", "_signer", "expected")

    def __init__(
        self, context: KexContext, method: str, hash_name: str, signer: HostKeySigner, respond: ServerRespond
    ):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._signer = signer
        self._respond = respond
        self.expected: frozenset[int] = _ONLY_INIT

    def start(self) -> list[bytes]:
        return []

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        message_number(payload, self._method, self.expected)
        init = KexEcdhInit.decode(payload)
        self.expected = _NOTHING
        server_public, shared = self._respond(init.client_public)
        host_key = self._signer.public_blob
        fields = string(init.client_public) + string(server_public)
        digest = exchange_hash(self._hash_name, self._context, host_key, fields, shared)
        signature = self._signer.sign(digest)
        reply = KexEcdhReply(host_key, server_public, signature).encode()
        return [reply], KexOutcome(digest, shared, host_key, signature, self._hash_name)
