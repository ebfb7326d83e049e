"""Channel data within the flow-control windows (RFC 4254 §5.2): sending what the peer's
window allows, in max-packet pieces, and returning window credit as the application reads."""

from __future__ import annotations

import struct
from collections.abc import Callable

from sshtui.ssh.channels.channel import Channel
from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import LocalProtocolError

Send = Callable[[bytes], None]

_pack_u32 = struct.Struct(">I").pack
_WINDOW_ADJUST = struct.Struct(">BII")

_Buffer = bytes | bytearray | memoryview


def write(ch: Channel, data: _Buffer, prefix: bytes, send: Send) -> int:
    """Send as much of ``data`` as the peer's window allows, each message starting with
    ``prefix`` (message number and recipient, plus the type for extended data); returns how
    many bytes went."""
    window = ch._send
    size = len(data)
    total = size if size <= window.available else window.available
    if total <= 0:
        return 0
    window.available -= total
    step = window.max_packet
    ch._bytes_sent += total
    if total <= step:  # the common case: one message, no view needed
        body = data if total == size else memoryview(data)[:total]
        send(b"".join((prefix, _pack_u32(total), body)))
        ch._packets_sent += 1
        return total
    view = memoryview(data)
    for start in range(0, total, step):
        chunk = view[start : start + step if start + step < total else total]
        send(b"".join((prefix, _pack_u32(len(chunk)), chunk)))
    ch._packets_sent += -(-total // step)
    return total


def return_credit(ch: Channel, size: int, send: Send) -> bool:
    """The application has read ``size`` received bytes of ``ch``; True when that queued a
    WINDOW_ADJUST (credit goes back in steps of at least half the window)."""
    if ch._discarding:
        return False
    try:
        increment = ch._recv.consumed(size)
    except LocalProtocolError as exc:
        raise LocalProtocolError(f"channel {ch.local_id}: {exc.message}") from None
    remote_id = ch._remote_id
    if increment and remote_id is not None and not ch._eof_received:
        send(_WINDOW_ADJUST.pack(MsgType.CHANNEL_WINDOW_ADJUST, remote_id, increment))
        return True
    return False
