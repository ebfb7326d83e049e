"""Live counters and frozen snapshots of port forwards (RFC 4254 §7) and of reconnection attempts.

The forwards update ``ForwardCounters`` and ``LiveConnection`` in place (plain attribute writes on
the data path, nothing allocated per chunk); the UI, status lines and ``--stats-json`` only ever see
the frozen ``ForwardSnapshot``/``ReconnectSnapshot`` built from them on request.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from enum import Enum

from sshtui.forward_spec import ForwardSpec

MAX_ERROR_REASONS = 32  # distinct reasons kept per forward; further ones are counted as "other"
OTHER_REASON = "other"


class ForwardState(Enum):
    STARTING = "starting"
    LISTENING = "listening"
    ACTIVE = "active"  # at least one forwarded connection is open
    RECONNECTING = "reconnecting"  # the SSH connection dropped; listeners stay up
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ForwardedConnectionSnapshot:
    channel_id: int | None  # None until the channel is open
    peer: str  # who connected: the local client (-L/-D) or the server-side originator (-R)
    target: str  # where it goes: fixed for -L/-R, the SOCKS request for -D
    started_at: float  # seconds since the epoch
    bytes_sent: int  # towards the target
    bytes_received: int  # back from the target


@dataclass(frozen=True, slots=True)
class ForwardSnapshot:
    kind: str  # "local" | "remote" | "dynamic"
    spec: str  # as the user wrote it, e.g. "-L 8080:db:5432"
    listen: str  # the address actually listened on (with the chosen port for port 0)
    target: str
    state: ForwardState
    reason: str  # why it is failed or reconnecting; empty otherwise
    open_connections: int
    total_connections: int
    failed_connections: int
    bytes_sent: int
    bytes_received: int
    last_error: str
    errors: tuple[tuple[str, int], ...]  # failed connections by reason, most frequent first
    connections: tuple[ForwardedConnectionSnapshot, ...]


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    number: int
    started_at: float  # seconds since the epoch
    delay: float  # seconds waited before this attempt
    cause: str  # why a connection was needed: the previous drop or failed attempt
    outcome: str  # "connected" or why it failed


@dataclass(frozen=True, slots=True)
class ReconnectSnapshot:
    connected: bool
    connections: int  # successful connections, the first one included
    last_drop: str
    attempts: tuple[ReconnectAttempt, ...]  # the most recent ones


class LiveConnection:
    """One forwarded connection's counters, written by the copy loops."""

    __slots__ = ("channel_id", "peer", "target", "started_at", "bytes_sent", "bytes_received")

    def __init__(self, peer: str, target: str) -> None:
        self.channel_id: int | None = None
        self.peer = peer
        self.target = target
        self.started_at = time.time()
        self.bytes_sent = 0
        self.bytes_received = 0

    def snapshot(self) -> ForwardedConnectionSnapshot:
        return ForwardedConnectionSnapshot(
            self.channel_id, self.peer, self.target, self.started_at, self.bytes_sent, self.bytes_received
        )


class ForwardCounters:
    """Everything a forward counts; bytes of finished connections are folded into the totals."""

    def __init__(self, spec: ForwardSpec) -> None:
        self.spec = spec
        self.listen = spec.listen
        self.state = ForwardState.STARTING
        self.reason = ""
        self.total = 0
        self.failed = 0
        self.last_error = ""
        self.errors: Counter[str] = Counter()
        self.open: set[LiveConnection] = set()
        self._closed_sent = 0
        self._closed_received = 0

    def started(self, peer: str, target: str | None = None) -> LiveConnection:
        live = LiveConnection(peer, target if target is not None else self.spec.target)
        self.open.add(live)
        self.total += 1
        return live

    def finished(self, live: LiveConnection) -> None:
        if live in self.open:
            self.open.discard(live)
            self._closed_sent += live.bytes_sent
            self._closed_received += live.bytes_received

    def failed_with(self, live: LiveConnection | None, reason: str) -> None:
        """A connection could not be forwarded: count it under its reason and drop it."""
        self.failed += 1
        self.last_error = reason
        key = reason if reason in self.errors or len(self.errors) < MAX_ERROR_REASONS else OTHER_REASON
        self.errors[key] += 1
        if live is not None:
            self.finished(live)

    def set_state(self, state: ForwardState, reason: str = "") -> None:
        self.state = state
        self.reason = reason

    def snapshot(self) -> ForwardSnapshot:
        state = self.state
        if state is ForwardState.LISTENING and self.open:
            state = ForwardState.ACTIVE
        connections = tuple(sorted((c.snapshot() for c in self.open), key=lambda c: c.started_at))
        return ForwardSnapshot(
            kind=self.spec.kind,
            spec=self.spec.label,
            listen=self.listen,
            target=self.spec.target,
            state=state,
            reason=self.reason,
            open_connections=len(connections),
            total_connections=self.total,
            failed_connections=self.failed,
            bytes_sent=self._closed_sent + sum(c.bytes_sent for c in connections),
            bytes_received=self._closed_received + sum(c.bytes_received for c in connections),
            last_error=self.last_error,
            errors=tuple(self.errors.most_common()),
            connections=connections,
        )


def status_line(snapshot: ForwardSnapshot) -> str:
    """One line for people: ``-L 8080:db:5432  127.0.0.1:8080 -> db:5432  active  2 open ...``."""
    state = snapshot.state.value
    if snapshot.reason:
        state = f"{state} ({snapshot.reason})"
    arrow = "<-" if snapshot.kind == "remote" else "->"
    line = (
        f"{snapshot.spec}  {snapshot.listen} {arrow} {snapshot.target}  {state}  "
        f"{snapshot.open_connections} open, {snapshot.total_connections} total, "
        f"{snapshot.failed_connections} failed, {_size(snapshot.bytes_sent)} sent, "
        f"{_size(snapshot.bytes_received)} received"
    )
    if snapshot.last_error:
        line += f"; last error: {snapshot.last_error}"
    return line


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns
