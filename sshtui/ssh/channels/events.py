"""Events the connection layer reports to its driver (RFC 4254 §4-§7, OpenSSH PROTOCOL §2).

Each is a frozen dataclass; ``ConnectionLayer.handle`` returns them in the order the
messages arrived. ``local_id`` is always our own channel number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.messages.connection_fields import TypedData


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """The peer confirmed a channel we opened; data may flow."""

    local_id: int
    channel_type: str


@dataclass(frozen=True, slots=True)
class ChannelOpenFailed:
    """The peer refused a channel we opened; ``local_id`` is free again."""

    local_id: int
    reason: int  # usually an OpenFailureReason
    description: str  # the peer's text, control characters escaped


@dataclass(frozen=True, slots=True)
class ChannelOpenRequested:
    """The peer wants a channel; answer with ``accept_open`` or ``reject_open``."""

    local_id: int
    channel_type: str
    type_data: TypedData  # Session, DirectTcpip, ForwardedTcpip, DirectStreamlocal...


@dataclass(frozen=True, slots=True)
class ChannelOpenRejected:
    """A CHANNEL_OPEN of a type we know whose type-specific data did not decode (RFC 4254
    §5.1). It was refused already with CHANNEL_OPEN_FAILURE and no channel was allocated, so
    there is no ``local_id``; the connection carries on. For the user and the logs only."""

    sender_channel: int  # the peer's number for the channel it wanted
    channel_type: str  # always one of ours: only known types have data we decode
    reason_code: OpenFailureReason  # what the CHANNEL_OPEN_FAILURE said
    reason: str  # what was wrong, e.g. "direct-tcpip: port 70000 is not a TCP port"


@dataclass(frozen=True, slots=True)
class ChannelData:
    """Bytes from the peer. Call ``consumed`` once the application has read them, or the
    peer runs out of window and stops sending."""

    local_id: int
    # Terminal sessions carry typed passwords, so the bytes stay out of the repr.
    data: bytes = field(repr=False)
    data_type: int | None  # None for ordinary data, 1 (stderr) or another code for extended data


@dataclass(frozen=True, slots=True)
class ChannelEof:
    """The peer will send no more data on this channel (it may still send requests)."""

    local_id: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """Both sides sent CLOSE: the channel is gone and ``local_id`` may be reused."""

    local_id: int


@dataclass(frozen=True, slots=True)
class ChannelRequestReceived:
    """A channel request the driver must act on (exit-status, exit-signal, pty-req, eow...).
    With ``want_reply`` answer it with ``reply_request``; replies go out in arrival order."""

    local_id: int
    request_type: str
    want_reply: bool
    request: TypedData


@dataclass(frozen=True, slots=True)
class ChannelRequestRejected:
    """A request of a type we know whose data did not decode (RFC 4254 §5.4). It was refused
    already, with CHANNEL_FAILURE if the peer wanted a reply; the channel and the connection
    carry on. For the user and the logs only: the driver owes no reply."""

    local_id: int
    request_type: str  # always one of ours: only known types have data we decode
    want_reply: bool
    reason: str  # what was wrong, e.g. "pty-req: terminal size 99999x24 exceeds 10000"


@dataclass(frozen=True, slots=True)
class ChannelRequestResult:
    """The peer's answer to one of our channel requests sent with want_reply."""

    local_id: int
    success: bool
    request_type: str


@dataclass(frozen=True, slots=True)
class ChannelWindowOpened:
    """The peer granted more send window: writers blocked on a shut window can resume."""

    local_id: int
    available: int


@dataclass(frozen=True, slots=True)
class GlobalRequestReceived:
    """A global request the driver must act on (tcpip-forward, hostkeys-00@openssh.com...).
    With ``want_reply`` answer it with ``reply_global``; replies go out in arrival order."""

    name: str
    want_reply: bool
    data: bytes
    request: TypedData


@dataclass(frozen=True, slots=True)
class GlobalRequestRejected:
    """A global request of a type we know whose data did not decode (RFC 4254 §4). It was
    refused already, with REQUEST_FAILURE in its turn if the peer wanted a reply; the
    connection carries on. For the user and the logs only: the driver owes no reply."""

    name: str  # always one of ours: only known types have data we decode
    want_reply: bool
    reason: str  # what was wrong, e.g. "tcpip-forward: port 70000 is not a TCP port"


@dataclass(frozen=True, slots=True)
class GlobalRequestResult:
    """The peer's answer to one of our global requests sent with want_reply."""

    success: bool
    data: bytes  # e.g. the bound port of a tcpip-forward for port 0
    name: str


@dataclass(frozen=True, slots=True)
class KeepaliveReply:
    """The peer answered a keepalive (success or failure alike: either proves it is alive)."""

    rtt_seconds: float


ChannelEvent = (
    ChannelOpened
    | ChannelOpenFailed
    | ChannelOpenRequested
    | ChannelOpenRejected
    | ChannelData
    | ChannelEof
    | ChannelClosed
    | ChannelRequestReceived
    | ChannelRequestRejected
    | ChannelRequestResult
    | ChannelWindowOpened
    | GlobalRequestReceived
    | GlobalRequestRejected
    | GlobalRequestResult
    | KeepaliveReply
)
