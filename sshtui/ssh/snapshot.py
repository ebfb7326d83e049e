"""Immutable views of connection state for the UI and ``--stats-json`` (no key material).

The transport builds a ``TransportSnapshot`` on request; the UI never touches live
core objects. ``to_jsonable`` turns any snapshot tree into plain JSON types.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from sshtui.ssh.negotiate import CategoryChoice


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    t_ms: float  # milliseconds since the connection started
    direction: str  # "sent" | "received" | "local"
    event: str  # message name, or a local event such as "host key accepted"
    size: int  # payload bytes (0 for local events)


@dataclass(frozen=True, slots=True)
class KexRecord:
    number: int  # 1 for the initial exchange
    initiated_by: str  # "local" | "peer"
    started_ms: float
    duration_ms: float
    kex_algorithm: str
    host_key_algorithm: str
    cipher_c2s: str
    cipher_s2c: str
    mac_c2s: str
    mac_s2c: str
    # Traffic since the previous exchange when this one started (what triggered it).
    bytes_before: int
    packets_before: int


@dataclass(frozen=True, slots=True)
class RekeyCounters:
    bytes_since_kex: int
    packets_since_kex: int
    seconds_since_kex: float
    bytes_limit: int
    packets_limit: int
    seconds_limit: float | None


@dataclass(frozen=True, slots=True)
class TransportSnapshot:
    role: str
    phase: str
    local_version: str
    peer_version: str
    strict_kex: bool
    kex_count: int
    rekeys: int
    kex_in_progress: bool
    kex_algorithm: str
    host_key_algorithm: str
    cipher_c2s: str
    cipher_s2c: str
    mac_c2s: str
    mac_s2c: str
    compression_c2s: str
    compression_s2c: str
    post_quantum: bool
    negotiation: tuple[CategoryChoice, ...]
    host_key_fingerprint: str
    session_id_fingerprint: str  # SHA256 of the session id, never the id itself
    server_sig_algs: tuple[str, ...]
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    rekey: RekeyCounters
    kex_history: tuple[KexRecord, ...]
    message_counts: tuple[tuple[str, int], ...]  # per message name, both directions
    timeline: tuple[TimelineEntry, ...]
    timeline_dropped: int  # entries left out of the bounded timeline
    disconnect_reason: str
    error: str


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for a snapshot tree (dataclasses, tuples, enums, bytes as hex)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, CategoryChoice):
            out["reason"] = value.reason
        return out
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    return value
