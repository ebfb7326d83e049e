"""The channel table of one connection (RFC 4254 §5.1): live channels by our own channel
number, the allocation of those numbers, and the window sizes new channels start with.

The lookups name what was wrong with a number: ``ours`` is for numbers our driver passed
(``LocalProtocolError``), ``known``, ``addressed`` and ``opening`` for numbers a peer message
named (``RemoteProtocolError``).
"""

from __future__ import annotations

from heapq import heappop, heappush

from sshtui.ssh.channels.channel import PEER_ADDRESSABLE, Channel, ChannelState
from sshtui.ssh.channels.window import ReceiveWindow, SendWindow
from sshtui.ssh.errors import LocalProtocolError, RemoteProtocolError


class ChannelTable:
    """At most ``max_channels`` channels; a freed number is reused, smallest first."""

    def __init__(self, initial_window: int, max_packet: int, max_channels: int) -> None:
        ReceiveWindow(initial_window, max_packet)  # validates both sizes
        if max_channels < 1:
            raise LocalProtocolError(f"max_channels must be at least 1, got {max_channels}")
        self.initial_window = initial_window
        self.max_packet = max_packet
        self.max_channels = max_channels
        self.channels: dict[int, Channel] = {}
        self._free_ids: list[int] = []  # a heap, so the smallest free id is reused first
        self._next_id = 0

    def allocate_id(self) -> int | None:
        """A free number, or None when ``max_channels`` are in use."""
        if len(self.channels) >= self.max_channels:
            return None
        if self._free_ids:
            return heappop(self._free_ids)
        # Every id below _next_id is in use, so ids stay below max_channels.
        self._next_id += 1
        return self._next_id - 1

    def free_id(self, local_id: int) -> None:
        """Give back a number that ``allocate_id`` handed out but no channel took."""
        heappush(self._free_ids, local_id)

    def register(
        self, local_id: int, channel_type: str, state: ChannelState, now: float, window: int | None = None
    ) -> Channel:
        initial, max_packet = self.window_for(window)
        recv = ReceiveWindow(initial, max_packet)
        ch = self.channels[local_id] = Channel(local_id, channel_type, state, recv, now)
        return ch

    def release(self, ch: Channel) -> None:
        del self.channels[ch.local_id]
        heappush(self._free_ids, ch.local_id)

    def window_for(self, window: int | None) -> tuple[int, int]:
        """(initial window, max packet) for a new channel: the defaults unless overridden."""
        if window is None:
            return self.initial_window, self.max_packet
        return window, min(self.max_packet, max(window, 1))

    def peer_window(self, initial_window: int, max_packet: int) -> SendWindow:
        # A zero max packet would stall the channel forever; above ours we could not send it.
        return SendWindow(initial_window, min(max(max_packet, 1), self.max_packet))

    # --- lookups -----------------------------------------------------------------------

    def ours(self, local_id: int, action: str) -> Channel:
        ch = self.channels.get(local_id)
        if ch is None:
            raise LocalProtocolError(f"cannot {action} channel {local_id}: no such channel")
        return ch

    def cannot_send(self, local_id: int, what: str) -> LocalProtocolError:
        ch = self.channels.get(local_id)
        state = "no such channel" if ch is None else f"it is {ch.state.name}"
        return LocalProtocolError(f"cannot send {what} on channel {local_id}: {state}")

    def known(self, recipient: int, what: str) -> Channel:
        ch = self.channels.get(recipient)
        if ch is None:
            raise RemoteProtocolError(f"{what} for unknown channel {recipient}")
        return ch

    def addressed(self, recipient: int, what: str) -> Channel:
        """The channel a peer message names, which the peer must know and not have closed."""
        ch = self.known(recipient, what)
        if ch.state not in PEER_ADDRESSABLE:
            raise ch._misaddressed(what)
        return ch

    def opening(self, recipient: int, what: str) -> Channel:
        ch = self.channels.get(recipient)
        if ch is None or ch.state is not ChannelState.OPENING:
            raise RemoteProtocolError(f"{what} for channel {recipient}, which we are not opening")
        return ch
