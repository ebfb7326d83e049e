"""Where forwards get their SSH connection: a fixed one (``exec``), or one kept up by ``Reconnector``
(``sshtui forward``), which reconnects with exponential backoff when it drops (RFC 4253 §11.1: a
DISCONNECT or a lost TCP connection ends it for good; a new one is a fresh handshake).

Delays start at 1 s and double up to 60 s, each shortened by up to 20 % at random so that many
clients cut off together do not come back in lockstep. Every attempt and its cause is recorded.
While disconnected, a new forwarded connection waits a bounded time for the connection to return
and is otherwise refused with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sshtui.net.client import SSHClient
from sshtui.net.forward_snapshot import ReconnectAttempt, ReconnectSnapshot
from sshtui.ssh.errors import HostKeyRejected, SSHError

MAX_ATTEMPTS_KEPT = 50
ClientHook = Callable[[SSHClient], Awaitable[None]]
StateHook = Callable[[bool, str], None]


class Unavailable(SSHError):
    """No SSH connection right now; the message says why."""


class ClientSource(Protocol):
    async def get_client(self) -> SSHClient: ...


class FixedClient:
    """One connection for the life of the forwards: nothing comes back once it is gone."""

    def __init__(self, client: SSHClient) -> None:
        self.client = client

    async def get_client(self) -> SSHClient:
        if self.client.closed.done():
            raise Unavailable(f"the SSH connection is closed ({self.client.error or 'closed by us'})")
        return self.client


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 0.2  # each delay is cut by a random fraction of itself up to this
    wait_for_connection: float = 10.0  # how long a new forwarded connection waits while disconnected

    def delay(self, attempt: int, draw: Callable[[], float]) -> float:
        """The wait before attempt ``attempt`` (1-based) of one outage."""
        base = min(self.maximum, self.initial * 2.0 ** min(attempt - 1, 62))
        return base * (1.0 - self.jitter * draw())


def describe(error: BaseException | None) -> str:
    if error is None:
        return "closed"
    text = error.message if isinstance(error, SSHError) else str(error)
    return " ".join(text.split()) or type(error).__name__


class Reconnector:
    """Keeps one client connected. ``connect`` makes a new, authenticated client each time;
    ``on_connect`` hooks run on every new client (remote forwards are requested there) and
    ``on_state`` callbacks hear every change of connected state with its reason."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[SSHClient]],
        policy: BackoffPolicy | None = None,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._connect = connect
        self.policy = policy or BackoffPolicy()
        self._draw = draw
        self.on_connect: list[ClientHook] = []
        self.on_state: list[StateHook] = []
        self.client: SSHClient | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._attempts: deque[ReconnectAttempt] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._connections = 0
        self._last_drop = ""
        self._reason = "not connected yet"

    async def start(self) -> SSHClient:
        """The first connection: its failure is the caller's to report, it is not retried."""
        client = await self._connect()
        await self._connected_to(client)
        self._task = asyncio.create_task(self._keep())
        return client

    async def get_client(self) -> SSHClient:
        client = self.client
        if client is not None and not client.closed.done():
            return client
        if self._closing or self.failed.done():
            raise Unavailable(f"no SSH connection: {self._reason}")
        try:
            async with asyncio.timeout(self.policy.wait_for_connection):
                while (client := self.client) is None or client.closed.done():
                    await self._connected.wait()
                    if self._closing:
                        raise Unavailable("no SSH connection: shutting down")
        except TimeoutError:
            raise Unavailable(f"no SSH connection ({self._reason}); reconnecting") from None
        return client

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed.done()

    def snapshot(self) -> ReconnectSnapshot:
        return ReconnectSnapshot(self.connected, self._connections, self._last_drop, tuple(self._attempts))

    async def close(self) -> None:
        """Stop reconnecting and close the connection (a DISCONNECT goes out)."""
        self._closing = True
        self._connected.set()  # wake waiters so they give up
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.close()

    # -- internals

    async def _connected_to(self, client: SSHClient) -> None:
        self.client = client
        self._connections += 1
        self._reason = ""
        for hook in self.on_connect:
            # A hook fails only when the connection failed again already: _keep notices that.
            with contextlib.suppress(SSHError, OSError):
                await hook(client)
        self._connected.set()
        self._notify(True, "")

    def _notify(self, connected: bool, reason: str) -> None:
        for callback in self.on_state:
            callback(connected, reason)

    async def _keep(self) -> None:
        while not self._closing:
            client = self.client
            assert client is not None
            await asyncio.shield(client.closed)
            if self._closing:
                return
            self._connected.clear()
            cause = f"connection lost: {describe(client.error)}"
            self._last_drop = cause
            self._reason = cause
            self._notify(False, cause)
            await self._reconnect(cause)

    async def _reconnect(self, cause: str) -> None:
        attempt = 0
        while not self._closing:
            attempt += 1
            delay = self.policy.delay(attempt, self._draw)
            await asyncio.sleep(delay)
            started = time.time()
            try:
                client = await self._connect()
            except HostKeyRejected as exc:
                self._record(attempt, started, delay, cause, describe(exc))
                self._give_up(f"host key rejected on reconnect: {describe(exc)}")
                return
            except (SSHError, OSError) as exc:
                outcome = describe(exc)
                self._record(attempt, started, delay, cause, outcome)
                cause = self._reason = f"reconnect failed: {outcome}"
                self._notify(False, self._reason)
                continue
            self._record(attempt, started, delay, cause, "connected")
            await self._connected_to(client)
            return

    def _record(self, attempt: int, started: float, delay: float, cause: str, outcome: str) -> None:
        self._attempts.append(ReconnectAttempt(attempt, started, round(delay, 3), cause, outcome))

    def _give_up(self, reason: str) -> None:
        self._reason = reason
        self._closing = True
        self._connected.set()
        self._notify(False, reason)
        if not self.failed.done():
            self.failed.set_result(reason)
