"""One channel's life cycle (RFC 4254 §5.1 opening, §5.3 EOF and CLOSE).

A channel is opened by one side and confirmed or refused by the other. Each side then
half-closes its own direction with EOF, independently, and the channel ends once both
sides have sent CLOSE. ``TRANSITIONS`` is the whole state machine: anything not listed
there is a protocol violation, by us or by the peer depending on who acted.

``Channel`` objects are owned and changed only by ``ConnectionLayer``; drivers get them
from ``ConnectionLayer.channel`` and read the properties.
"""

from __future__ import annotations

import struct
from collections import deque
from enum import Enum

from sshtui.ssh.channels.window import ReceiveWindow, SendWindow
from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import LocalProtocolError, RemoteProtocolError

_DATA_PREFIX = struct.Struct(">BI")


class ChannelState(Enum):
    OPENING = "opening"  # we sent CHANNEL_OPEN, awaiting confirmation or failure
    OPEN_REQUESTED = "open requested"  # the peer sent CHANNEL_OPEN, awaiting our driver's answer
    OPEN = "open"
    EOF_SENT = "eof sent"  # our direction is finished, the peer's still flows
    EOF_RECEIVED = "eof received"  # the peer's direction is finished, ours still flows
    EOF_BOTH = "eof both"
    CLOSE_SENT = "close sent"  # awaiting the peer's CLOSE; its data is discarded meanwhile
    CLOSE_RECEIVED = "close received"  # we must answer with CLOSE (we do so at once)
    CLOSED = "closed"


class ChannelAction(Enum):
    OPEN_CONFIRMED = "open confirmed"
    OPEN_FAILED = "open failed"
    ACCEPT = "accept"
    REJECT = "reject"
    SEND_EOF = "send eof"
    RECEIVE_EOF = "receive eof"
    SEND_CLOSE = "send close"
    RECEIVE_CLOSE = "receive close"


_S = ChannelState
_A = ChannelAction

TRANSITIONS: dict[tuple[ChannelState, ChannelAction], ChannelState] = {
    (_S.OPENING, _A.OPEN_CONFIRMED): _S.OPEN,
    (_S.OPENING, _A.OPEN_FAILED): _S.CLOSED,
    (_S.OPEN_REQUESTED, _A.ACCEPT): _S.OPEN,
    (_S.OPEN_REQUESTED, _A.REJECT): _S.CLOSED,
    (_S.OPEN, _A.SEND_EOF): _S.EOF_SENT,
    (_S.OPEN, _A.RECEIVE_EOF): _S.EOF_RECEIVED,
    (_S.OPEN, _A.SEND_CLOSE): _S.CLOSE_SENT,
    (_S.OPEN, _A.RECEIVE_CLOSE): _S.CLOSE_RECEIVED,
    (_S.EOF_SENT, _A.RECEIVE_EOF): _S.EOF_BOTH,
    (_S.EOF_SENT, _A.SEND_CLOSE): _S.CLOSE_SENT,
    (_S.EOF_SENT, _A.RECEIVE_CLOSE): _S.CLOSE_RECEIVED,
    (_S.EOF_RECEIVED, _A.SEND_EOF): _S.EOF_BOTH,
    (_S.EOF_RECEIVED, _A.SEND_CLOSE): _S.CLOSE_SENT,
    (_S.EOF_RECEIVED, _A.RECEIVE_CLOSE): _S.CLOSE_RECEIVED,
    (_S.EOF_BOTH, _A.SEND_CLOSE): _S.CLOSE_SENT,
    (_S.EOF_BOTH, _A.RECEIVE_CLOSE): _S.CLOSE_RECEIVED,
    # The peer may not have seen our CLOSE yet: its EOF is legal (once) and its CLOSE ends the channel.
    (_S.CLOSE_SENT, _A.RECEIVE_EOF): _S.CLOSE_SENT,
    (_S.CLOSE_SENT, _A.RECEIVE_CLOSE): _S.CLOSED,
    (_S.CLOSE_RECEIVED, _A.SEND_CLOSE): _S.CLOSED,
}

_WE_MAY_SEND = frozenset({_S.OPEN, _S.EOF_RECEIVED})
_PEER_MAY_SEND = frozenset({_S.OPEN, _S.EOF_SENT, _S.CLOSE_SENT})
# States in which the peer knows our channel number and may address messages to it.
PEER_ADDRESSABLE = frozenset({_S.OPEN, _S.EOF_SENT, _S.EOF_RECEIVED, _S.EOF_BOTH, _S.CLOSE_SENT})


class Channel:
    """State, windows and counters of one channel; see the module docstring for who may change it."""

    __slots__ = (
        "_local_id", "_remote_id", "_channel_type", "_state", "_opened_at",
        "_recv", "_send", "_data_prefix", "_sending", "_receiving", "_discarding",
        "_eof_sent", "_eof_received", "_close_sent", "_close_received", "_close_when_open",
        "_bytes_sent", "_bytes_received", "_packets_sent", "_packets_received",
        "_exit_status", "_exit_signal", "_awaiting_results", "_replies_owed",
    )

    def __init__(
        self, local_id: int, channel_type: str, state: ChannelState, recv: ReceiveWindow, opened_at: float
    ) -> None:
        if state not in (_S.OPENING, _S.OPEN_REQUESTED):
            raise LocalProtocolError(f"a channel starts as OPENING or OPEN_REQUESTED, not {state.name}")
        self._local_id = local_id
        self._remote_id: int | None = None
        self._channel_type = channel_type
        self._state: ChannelState = state
        self._opened_at = opened_at
        self._recv = recv
        # Nothing may be sent before the peer's window is known: a shut placeholder until then.
        self._send = SendWindow(0, 1)
        self._data_prefix = b""
        # Cached from the state so the per-packet paths test one attribute.
        self._sending = False
        self._receiving = False
        self._discarding = False
        self._eof_sent = False
        self._eof_received = False
        self._close_sent = False
        self._close_received = False
        self._close_when_open = False
        self._bytes_sent = 0
        self._bytes_received = 0
        self._packets_sent = 0
        self._packets_received = 0
        self._exit_status: int | None = None
        self._exit_signal: str | None = None
        # Request types of our want_reply requests, oldest first: replies come in this order.
        self._awaiting_results: deque[str] = deque()
        # Our replies to the peer's want_reply requests, oldest first: None until decided.
        self._replies_owed: deque[bool | None] = deque()

    def can(self, action: ChannelAction) -> bool:
        if action is _A.RECEIVE_EOF and self._eof_received:
            return False
        return (self._state, action) in TRANSITIONS

    def apply(self, action: ChannelAction) -> ChannelState:
        """Take a transition; an action not allowed now is a bug in the caller."""
        if not self.can(action):
            raise LocalProtocolError(
                f"channel {self._local_id}: cannot {action.value} in state {self._state.name}"
            )
        state = self._state = TRANSITIONS[self._state, action]
        if action is _A.SEND_EOF:
            self._eof_sent = True
        elif action is _A.RECEIVE_EOF:
            self._eof_received = True
        elif action is _A.SEND_CLOSE:
            self._close_sent = True
        elif action is _A.RECEIVE_CLOSE:
            self._close_received = True
        self._sending = state in _WE_MAY_SEND
        self._receiving = state in _PEER_MAY_SEND and not self._eof_received
        self._discarding = state is _S.CLOSE_SENT
        return state

    # --- used by ConnectionLayer only --------------------------------------------------

    def _misaddressed(self, what: str) -> RemoteProtocolError:
        """The error for a peer message this channel cannot take in its current state."""
        if self._state is _S.OPEN_REQUESTED:  # we have not told the peer our number yet
            return RemoteProtocolError(f"{what} for unknown channel {self._local_id}")
        if self._state is _S.OPENING:
            return RemoteProtocolError(f"{what} on channel {self._local_id} before the peer confirmed it")
        if self._eof_received:
            return RemoteProtocolError(f"{what} on channel {self._local_id} after the peer's EOF")
        return RemoteProtocolError(f"{what} on channel {self._local_id} in state {self._state.name}")

    def _on_data(self, size: int, what: str) -> bool:
        """Account for ``size`` bytes from the peer; False if they are to be discarded."""
        if not self._receiving:
            raise self._misaddressed(what)
        try:
            self._recv.on_data(size)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{what} on channel {self._local_id}: {exc.message}") from None
        self._bytes_received += size
        self._packets_received += 1
        return not self._discarding

    def _owe_reply(self, decided: bool | None) -> None:
        """The peer wants a reply: ``decided`` now, or None for the driver to decide."""
        self._replies_owed.append(decided)

    def _decide_reply(self, success: bool) -> None:
        owed = self._replies_owed
        try:
            owed[owed.index(None)] = success
        except ValueError:
            raise LocalProtocolError(f"no request on channel {self._local_id} awaits a reply") from None

    def _ready_replies(self) -> list[bool]:
        """Decided replies that may go out now: those not queued behind an undecided one."""
        owed = self._replies_owed
        ready: list[bool] = []
        while owed and owed[0] is not None:
            ready.append(bool(owed.popleft()))
        return ready

    def _confirm(self, remote_id: int, send: SendWindow) -> None:
        self._remote_id = remote_id
        self._send = send
        # CHANNEL_DATA starts with these five bytes for the channel's whole life.
        self._data_prefix = _DATA_PREFIX.pack(MsgType.CHANNEL_DATA, remote_id)

    # --- read-only view ----------------------------------------------------------------

    @property
    def local_id(self) -> int:
        return self._local_id

    @property
    def remote_id(self) -> int | None:
        """The peer's number for this channel; None until it is known."""
        return self._remote_id

    @property
    def channel_type(self) -> str:
        return self._channel_type

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def opened_at(self) -> float:
        return self._opened_at

    @property
    def writable(self) -> int:
        """Bytes we may send now: the peer's window, or 0 when our direction is shut."""
        return self._send.available if self._sending else 0

    @property
    def local_window(self) -> int:
        """Bytes the peer may still send us before we grant more."""
        return self._recv.available

    @property
    def remote_window(self) -> int:
        """Bytes we may still send before the peer grants more (0 before confirmation)."""
        return self._send.available

    @property
    def local_max_packet(self) -> int:
        return self._recv.max_packet

    @property
    def remote_max_packet(self) -> int:
        return 0 if self._remote_id is None else self._send.max_packet

    @property
    def buffered(self) -> int:
        """Bytes received that the application has not yet reported as consumed."""
        return self._recv.buffered

    @property
    def eof_sent(self) -> bool:
        return self._eof_sent

    @property
    def eof_received(self) -> bool:
        return self._eof_received

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @property
    def close_received(self) -> bool:
        return self._close_received

    @property
    def bytes_sent(self) -> int:
        return self._bytes_sent

    @property
    def bytes_received(self) -> int:
        return self._bytes_received

    @property
    def packets_sent(self) -> int:
        return self._packets_sent

    @property
    def packets_received(self) -> int:
        return self._packets_received

    @property
    def exit_status(self) -> int | None:
        return self._exit_status

    @property
    def exit_signal(self) -> str | None:
        return self._exit_signal

    @property
    def requests_awaiting_reply(self) -> int:
        """Our want_reply requests the peer has not answered yet."""
        return len(self._awaiting_results)

    @property
    def replies_owed(self) -> int:
        """The peer's want_reply requests we have not answered yet."""
        return len(self._replies_owed)

    def __repr__(self) -> str:
        return (
            f"Channel(local_id={self._local_id}, remote_id={self._remote_id}, "
            f"type={self._channel_type!r}, state={self._state.name})"
        )
