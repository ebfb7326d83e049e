"""The contract between the server's connection driver and its channel handlers (RFC 4254 §5).

A handler (a session, a forwarded socket) implements ``ChannelHandler``; the driver calls it
for each event of its channel. The handler acts on the channel only through its
``ChannelLink``, which tolerates a channel the peer has already closed: the handler learns of
that through ``on_closed`` and must not crash before. While the connection's socket is backed
up the link takes no data, as if the window were shut, and ``on_window`` follows once it drains:
output then waits at its source instead of queueing in our memory ahead of other channels' data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.errors import LocalProtocolError
from sshtui.ssh.messages import connection as m


class ChannelHandler(Protocol):
    def on_data(self, data: bytes, data_type: int | None) -> None: ...
    def on_eof(self) -> None: ...
    def on_window(self) -> None: ...
    def on_request(self, body: m.TypedData) -> bool: ...
    def on_closed(self) -> None: ...


class ChannelLink:
    """One channel as its handler sees it; ``flush`` sends what the calls queued."""

    __slots__ = ("layer", "local_id", "flush", "label", "_backed_up")

    def __init__(
        self, layer: ConnectionLayer, local_id: int, flush: Callable[[], None], label: str,
        backed_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.layer = layer
        self.local_id = local_id
        self.flush = flush
        self.label = label
        self._backed_up = backed_up

    def writable(self) -> int:
        if self._backed_up():
            return 0
        try:
            return self.layer.writable(self.local_id)
        except LocalProtocolError:
            return 0

    def send(self, data: bytes | bytearray | memoryview, data_type: int | None = None) -> int:
        """As much of ``data`` as the window takes now; the rest waits for ``on_window``."""
        if self._backed_up():
            return 0
        try:
            if data_type is None:
                return self.layer.send_data(self.local_id, data)
            return self.layer.send_extended_data(self.local_id, data, data_type)
        except LocalProtocolError:
            return 0

    def consumed(self, size: int) -> None:
        if size:
            with contextlib.suppress(LocalProtocolError):
                self.layer.consumed(self.local_id, size)

    def send_eof(self) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.send_eof(self.local_id)

    def request(self, body: m.TypedData) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.send_request(self.local_id, body, False)

    def close(self) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.close(self.local_id)
