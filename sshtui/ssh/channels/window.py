"""Channel flow-control windows (RFC 4254 §5.2).

Each direction of a channel has a window: the number of bytes the receiver is still
willing to accept. Data shrinks it; SSH_MSG_CHANNEL_WINDOW_ADJUST grows it again. The
window can never exceed 2**32 - 1 and no single data message may exceed the maximum
packet size announced when the channel was opened.
"""

from __future__ import annotations

from sshtui.ssh.errors import LocalProtocolError, RemoteProtocolError

WINDOW_MAX = 2**32 - 1


def _check_size(value: int, name: str, lowest: int = 0) -> None:
    if not lowest <= value <= WINDOW_MAX:
        raise LocalProtocolError(f"{name} {value} is outside {lowest}..{WINDOW_MAX}")


class ReceiveWindow:
    """What we let the peer send. Refilled only as the application consumes data.

    Every byte of the initial window is in exactly one state, so
    ``available + buffered + unacknowledged == initial`` always holds: ``available``
    (the peer may still send it), ``buffered`` (received, not yet read by the
    application) or ``unacknowledged`` (read, not yet returned by a WINDOW_ADJUST).
    Returning credit only for consumed data is what makes a slow reader push back on a
    fast sender instead of buffering without bound.
    """

    __slots__ = ("_threshold", "available", "buffered", "initial", "max_packet", "unacknowledged")

    def __init__(self, initial: int, max_packet: int) -> None:
        _check_size(initial, "initial window size")
        _check_size(max_packet, "maximum packet size", lowest=1)
        self.initial = initial
        self.max_packet = max_packet
        self.available = initial
        self.buffered = 0
        self.unacknowledged = 0
        # Adjusting at half the window keeps the peer streaming while sending few
        # WINDOW_ADJUST messages; at least one byte so a tiny window still refills.
        self._threshold = max(1, initial // 2)

    def on_data(self, size: int) -> None:
        """The peer sent ``size`` bytes of channel data or extended data."""
        if size > self.max_packet:
            raise RemoteProtocolError(
                f"peer sent {size} bytes of channel data, more than the maximum packet size {self.max_packet}"
            )
        if size > self.available:
            raise RemoteProtocolError(
                f"peer sent {size} bytes of channel data but the window allowed only {self.available}"
            )
        if size < 0:
            raise LocalProtocolError(f"channel data size cannot be negative ({size})")
        self.available -= size
        self.buffered += size

    def consumed(self, size: int) -> int:
        """The application read ``size`` bytes; returns the WINDOW_ADJUST increment to send
        now, or 0 while less than half the initial window awaits returning."""
        if not 0 <= size <= self.buffered:
            raise LocalProtocolError(f"consumed {size} bytes but only {self.buffered} are buffered")
        self.buffered -= size
        self.unacknowledged += size
        if self.unacknowledged < self._threshold:
            return 0
        increment = self.unacknowledged
        self.unacknowledged = 0
        self.available += increment
        return increment

    def __repr__(self) -> str:
        return (
            f"ReceiveWindow(available={self.available}, buffered={self.buffered}, "
            f"unacknowledged={self.unacknowledged}, initial={self.initial}, max_packet={self.max_packet})"
        )


class SendWindow:
    """What the peer lets us send. Both sizes come from the peer's CHANNEL_OPEN or
    CHANNEL_OPEN_CONFIRMATION."""

    __slots__ = ("available", "max_packet")

    def __init__(self, initial: int, max_packet: int) -> None:
        _check_size(initial, "initial window size")
        _check_size(max_packet, "maximum packet size")
        if max_packet == 0:
            # We could never send a byte; better to say so than to stall silently.
            raise RemoteProtocolError("peer announced a maximum packet size of 0")
        self.available = initial
        self.max_packet = max_packet

    def adjust(self, increment: int) -> None:
        """Apply the peer's CHANNEL_WINDOW_ADJUST."""
        if increment < 0:
            raise LocalProtocolError(f"window increment cannot be negative ({increment})")
        if self.available + increment > WINDOW_MAX:
            raise RemoteProtocolError(
                f"window adjust of {increment} would grow the window from {self.available} past 2**32-1"
            )
        self.available += increment

    def reserve(self, wanted: int) -> int:
        """How many of ``wanted`` bytes may be sent now, in one data message; those bytes
        are taken from the window. 0 means wait for a WINDOW_ADJUST."""
        if wanted < 0:
            raise LocalProtocolError(f"cannot reserve a negative size ({wanted})")
        granted = min(wanted, self.available, self.max_packet)
        self.available -= granted
        return granted

    def __repr__(self) -> str:
        return f"SendWindow(available={self.available}, max_packet={self.max_packet})"
