"""asyncio channel objects over the sans-IO connection layer (RFC 4254 §5, §6).

Back-pressure both ways: ``write`` waits while the peer's window is shut; data the peer
sends waits in a buffer bounded by our receive window, and the window reopens (WINDOW_ADJUST)
only as ``read`` hands data to the application. ``Outbox`` writes interactive input without
a task switch while the window is open, and in order behind what waits while it is shut.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.errors import ConnectionClosedError, SSHError
from sshtui.ssh.messages import connection as m


class ChannelOpenError(SSHError):
    """The peer refused to open a channel."""

    def __init__(self, reason: int, description: str):
        super().__init__(f"channel open failed: {description or 'no reason given'} (code {reason})")
        self.open_reason = reason
        self.description = description


class _Stream:
    """Bytes received on one stream of a channel (stdout or stderr), not yet read."""

    __slots__ = ("_chunks", "_size", "_eof", "_waiter")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        waiter = self._waiter  # _wake(), inlined: this runs once per data packet
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, limit: int) -> bytes:
        while not self._chunks:
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if limit < 0 or self._size <= limit:
            data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
            self._chunks.clear()
            self._size = 0
            return data
        out = bytearray()
        while self._chunks and len(out) < limit:
            chunk = self._chunks.popleft()
            room = limit - len(out)
            if len(chunk) > room:
                self._chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            out += chunk
        self._size -= len(out)
        return bytes(out)

    @property
    def buffered(self) -> int:
        return self._size


@dataclass(frozen=True, slots=True)
class ExitInfo:
    status: int | None
    signal: str | None
    core_dumped: bool = False
    error_message: str = ""


class Channel:
    """One open channel. Created by the client driver; the driver feeds it events."""

    def __init__(self, layer: ConnectionLayer, local_id: int, flush: Callable[[], None]):
        self._layer = layer
        self.local_id = local_id
        # The core's channel object, kept so its final counters stay readable after the close.
        self.core = layer.channel(local_id)
        self._flush = flush
        self.stdout = _Stream()
        self.stderr = _Stream()
        self._loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.exit: asyncio.Future[ExitInfo] = self._loop.create_future()
        self._window_waiter: asyncio.Future[None] | None = None
        self._request_results: deque[asyncio.Future[bool]] = deque()
        self._eof_sent = False
        self.error: BaseException | None = None

    # -- events from the driver

    def on_data(self, data: bytes, data_type: int | None) -> None:
        (self.stdout if data_type is None else self.stderr).feed(data)

    def on_eof(self) -> None:
        self.stdout.feed_eof()
        self.stderr.feed_eof()

    def on_window(self) -> None:
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_request_result(self, success: bool) -> None:
        if self._request_results:
            future = self._request_results.popleft()
            if not future.done():
                future.set_result(success)

    def on_exit_status(self, status: int) -> None:
        if not self.exit.done():
            self.exit.set_result(ExitInfo(status, None))

    def on_exit_signal(self, signal: str, core_dumped: bool, message: str) -> None:
        if not self.exit.done():
            self.exit.set_result(ExitInfo(None, signal, core_dumped, message))

    def on_closed(self, error: BaseException | None = None) -> None:
        self.error = self.error or error
        self.on_eof()
        self.on_window()
        if not self.opened.done():
            self.opened.set_exception(error or ConnectionClosedError("channel closed before it opened"))
        if not self.exit.done():
            if error is not None:
                self.exit.set_exception(error)
            else:
                self.exit.set_result(ExitInfo(None, None))
        if not self.closed.done():
            self.closed.set_result(None)
        while self._request_results:
            result = self._request_results.popleft()
            if result.done():
                continue
            if error is None:
                result.set_result(False)
            else:
                # The connection failed: a waiter must see why, not read it as "the server refused".
                result.set_exception(error)
                result.exception()  # marks it retrieved; an awaiting caller still gets it raised
        # Nobody may be waiting on these; do not let asyncio warn about unretrieved errors.
        for done in (self.opened, self.exit):
            if done.done() and not done.cancelled():
                done.exception()

    # -- application API

    async def read(self, limit: int = -1) -> bytes:
        """Data from the peer's stdout; b"" at EOF. Reading reopens the peer's window."""
        data = await self.stdout.read(limit)
        self._consumed(len(data))
        return data

    async def read_stderr(self, limit: int = -1) -> bytes:
        data = await self.stderr.read(limit)
        self._consumed(len(data))
        return data

    def _consumed(self, size: int) -> None:
        # Most reads return no window yet: nothing is queued then, and there is nothing to flush.
        if size and not self.closed.done() and self._layer.consumed(self.local_id, size):
            self._flush()

    async def write(self, data: bytes | memoryview) -> None:
        """Send all of ``data``, waiting whenever the peer's window is shut."""
        view = memoryview(data)
        while view:
            if self.closed.done():
                raise ConnectionClosedError("channel is closed")
            sent = self._layer.send_data(self.local_id, view)
            if sent:
                view = view[sent:]
                self._flush()
                continue
            self._window_waiter = self._loop.create_future()
            try:
                await self._window_waiter
            finally:
                self._window_waiter = None
            if self.error is not None:
                raise self.error

    def write_nowait(self, data: bytes | memoryview) -> int:
        """Send as much of ``data`` as the peer's window takes now; how many bytes went (0: shut).
        For a caller that keeps its own order, such as keys typed while earlier ones still wait."""
        if self.closed.done():
            raise ConnectionClosedError("channel is closed")
        sent = self._layer.send_data(self.local_id, data)
        if sent:
            self._flush()
        return sent

    async def write_eof(self) -> None:
        if not self._eof_sent and not self.closed.done():
            self._eof_sent = True
            self._layer.send_eof(self.local_id)
            self._flush()

    async def request(self, body: m.TypedData, want_reply: bool = True) -> bool:
        if self.closed.done():
            reason = f": {self.error}" if self.error else ""
            raise ConnectionClosedError(f"channel is closed{reason}")
        future: asyncio.Future[bool] | None = None
        if want_reply:
            future = self._loop.create_future()
            self._request_results.append(future)
        self._layer.send_request(self.local_id, body, want_reply)
        self._flush()
        return await future if future is not None else True

    async def resize(self, cols: int, rows: int) -> None:
        await self.request(m.WindowChange(cols=cols, rows=rows), want_reply=False)

    async def signal(self, name: str) -> None:
        await self.request(m.Signal(signal=name), want_reply=False)

    def close(self) -> None:
        if not self.closed.done():
            try:
                self._layer.close(self.local_id)
                self._flush()
            except SSHError:
                pass

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)


class Outbox:
    """Input for one channel, kept in order. Written at once while nothing waits before it, so a key
    does not wait for a task's turn (behind a flood's parsing); queued for ``drain`` while the
    window is shut. Run ``drain`` as a task for as long as the channel is used."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._queue: deque[bytes] = deque()
        self._queued = asyncio.Event()

    def send(self, data: bytes) -> None:
        """Send ``data`` after everything sent before; dropped once the channel is closed."""
        if not self._queue:
            try:
                data = data[self._channel.write_nowait(data) :]
            except SSHError:
                return
            if not data:
                return
        self._queue.append(data)
        self._queued.set()

    async def drain(self) -> None:
        queue = self._queue
        while True:
            await self._queued.wait()
            self._queued.clear()
            while queue:
                try:
                    await self._channel.write(queue[0])  # stays queued, so later input waits behind it
                except SSHError:
                    return
                queue.popleft()
