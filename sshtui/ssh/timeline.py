"""A bounded record of every message sent and received, for the handshake waterfall and logs.

The first ``HEAD`` entries (the handshake) are kept whole; after that a ring buffer keeps
the latest ``TAIL`` entries, and per-message-type counts cover everything.
"""

from __future__ import annotations

from collections import deque

from sshtui.ssh.constants import message_name
from sshtui.ssh.snapshot import TimelineEntry

HEAD = 256
TAIL = 512


class Timeline:
    __slots__ = ("_head", "_tail", "dropped", "sent_counts", "received_counts")

    def __init__(self) -> None:
        self._head: list[tuple[float, str, str, int]] = []
        self._tail: deque[tuple[float, str, str | int, int]] = deque(maxlen=TAIL)
        self.dropped = 0
        self.sent_counts = [0] * 256
        self.received_counts = [0] * 256

    def add(self, t_ms: float, direction: str, event: str, size: int) -> None:
        if len(self._head) < HEAD:
            self._head.append((t_ms, direction, event, size))
        else:
            if len(self._tail) == TAIL:
                self.dropped += 1
            self._tail.append((t_ms, direction, event, size))

    def message(self, t_ms: float, direction: str, msg_type: int, size: int) -> None:
        """Hot path: one call per packet, so names are resolved only when a snapshot is taken."""
        if direction == "sent":
            self.sent_counts[msg_type] += 1
        else:
            self.received_counts[msg_type] += 1
        if len(self._head) < HEAD:
            self._head.append((t_ms, direction, message_name(msg_type), size))
        else:
            if len(self._tail) == TAIL:
                self.dropped += 1
            self._tail.append((t_ms, direction, msg_type, size))

    def entries(self) -> tuple[TimelineEntry, ...]:
        out = [TimelineEntry(*e) for e in self._head]
        for t_ms, direction, event, size in self._tail:
            name = message_name(event) if isinstance(event, int) else event
            out.append(TimelineEntry(t_ms, direction, name, size))
        return tuple(out)

    def counts(self) -> tuple[tuple[str, int], ...]:
        merged: dict[str, int] = {}
        for msg_type in range(256):
            total = self.sent_counts[msg_type] + self.received_counts[msg_type]
            if total:
                merged[message_name(msg_type)] = total
        return tuple(sorted(merged.items(), key=lambda kv: -kv[1]))
