"""Events the transport reports to its driver (RFC 4253 phases as they happen).

Each is a frozen dataclass; the driver reacts (e.g. asks the trust store on
``HostKeyReceived``) and calls back into the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshtui.ssh.errors import SSHError


@dataclass(frozen=True, slots=True)
class VersionReceived:
    version: str
    # Lines the server sent before its version line (RFC 4253 §4.2), control characters escaped.
    preamble: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KexStarted:
    kex_count: int  # how many key exchanges completed before this one
    initiated_by: str  # "local" or "peer"


@dataclass(frozen=True, slots=True)
class HostKeyReceived:
    """The server's host key signed the exchange hash; the driver must accept or reject it."""

    algorithm: str
    key_blob: bytes
    fingerprint: str


@dataclass(frozen=True, slots=True)
class KexCompleted:
    kex_count: int
    initiated_by: str
    duration: float
    kex_algorithm: str
    cipher_c2s: str
    cipher_s2c: str


@dataclass(frozen=True, slots=True)
class ExtInfoReceived:
    server_sig_algs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceRequested:
    service: str


@dataclass(frozen=True, slots=True)
class ServiceAccepted:
    service: str


@dataclass(frozen=True, slots=True)
class PayloadReceived:
    """A message for the service layer (message number 50 and above)."""

    msg_type: int
    # CHANNEL_DATA payloads may be a memoryview of the decrypted packet, which saves copying
    # bulk data one more time; every other payload is bytes.
    payload: bytes | memoryview
    sequence: int = 0  # the packet's sequence number, for UNIMPLEMENTED replies


@dataclass(frozen=True, slots=True)
class DebugReceived:
    always_display: bool
    message: str  # control characters escaped


@dataclass(frozen=True, slots=True)
class UnimplementedReceived:
    sequence_number: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is closed for good: by the peer, by us, or by a protocol error."""

    reason: int
    description: str
    by_peer: bool
    error: SSHError | None = None


TransportEvent = (
    VersionReceived
    | KexStarted
    | HostKeyReceived
    | KexCompleted
    | ExtInfoReceived
    | ServiceRequested
    | ServiceAccepted
    | PayloadReceived
    | DebugReceived
    | UnimplementedReceived
    | Disconnected
)
