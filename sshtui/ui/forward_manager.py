"""Port forwards of the app's connections (RFC 4254 §7): ``-L``/``-D`` listeners here, ``-R`` on the server.

Every forward belongs to one driver ``Connection`` and takes its channels from that connection's
current client, so a reconnect serves the same listeners again. The forwards dashboard lists
``snapshots()``; stop and restart act on a forward by its row key (``connection label: spec``).
Forwards saved on a host (``Host.forwards``) start when the host connects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sshtui.forward_spec import ForwardKind, ForwardSpec, ForwardSpecError, parse_forward
from sshtui.net.client import SSHClient
from sshtui.net.forward_local import ForwardError, LocalForward
from sshtui.net.forward_remote import RemoteForwards
from sshtui.net.forward_snapshot import ForwardSnapshot, ForwardState
from sshtui.net.reconnect import Unavailable
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ui.driver import Connection, ConnState

KINDS: dict[str, ForwardKind] = {"-L": "local", "-R": "remote", "-D": "dynamic"}


def parse_spec_text(text: str) -> ForwardSpec:
    """``-L 8080:db:5432``, ``-R ...`` or ``-D 1080`` as typed in the add form; ``ForwardSpecError``."""
    words = text.strip().split(None, 1)
    if not words or words[0] not in KINDS:
        raise ForwardSpecError(f"start with -L, -R or -D, e.g. -L 8080:localhost:80 (got {text.strip()!r})")
    if len(words) == 2 and words[1].startswith("-"):
        raise ForwardSpecError(f"one forward at a time: {text.strip()!r}")
    return parse_forward(KINDS[words[0]], words[1] if len(words) == 2 else "")


class _ConnectionSource:
    """The connection's client of the moment (a reconnect brings a new one)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def get_client(self) -> SSHClient:
        client = self.conn.client
        if client is None or client.closed.done() or self.conn.state is not ConnState.CONNECTED:
            raise Unavailable(f"{self.conn.target.label} is not connected")
        return client


@dataclass
class ManagedForward:
    conn: Connection
    spec: ForwardSpec
    local: LocalForward | None = None
    remote: RemoteForwards | None = None
    stopped: bool = False
    paused: bool = False  # stopped because the user closed its connection; a reconnect starts it again
    open_handler: Callable[[Any], None] | None = None  # the -R forward's own forwarded-tcpip handler

    @property
    def key(self) -> str:
        return f"{self.conn.target.label}: {self.spec.label}"

    def snapshot(self) -> ForwardSnapshot:
        if self.local is not None:
            snap = self.local.snapshot()
        elif self.remote is not None:
            snap = self.remote.snapshots()[0]
        else:
            raise RuntimeError("forward never started")
        if self.stopped:
            return replace(snap, spec=self.key, state=ForwardState.FAILED, reason="stopped",
                           open_connections=0)
        return replace(snap, spec=self.key)


class ForwardManager:
    """Every forward of every connection, in the order they were added."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self._report = report
        self.forwards: dict[str, ManagedForward] = {}

    def snapshots(self) -> list[ForwardSnapshot]:
        return [forward.snapshot() for forward in self.forwards.values()]

    def of(self, conn: Connection) -> list[ManagedForward]:
        return [forward for forward in self.forwards.values() if forward.conn is conn]

    async def add(self, conn: Connection, spec: ForwardSpec) -> ManagedForward:
        """Start a forward on ``conn``; a failure to listen is reported and the forward shows failed."""
        forward = ManagedForward(conn, spec)
        if forward.key in self.forwards:
            raise ForwardSpecError(f"{forward.key} is already forwarded")
        self.forwards[forward.key] = forward
        await self._start(forward)
        return forward

    async def _start(self, forward: ManagedForward) -> None:
        forward.stopped = forward.paused = False
        if forward.spec.kind == "remote":
            forward.remote = RemoteForwards([forward.spec], self._report)
            client = forward.conn.client
            if client is not None and forward.conn.state is ConnState.CONNECTED:
                await self._attach_remote(forward, client)
            return
        forward.local = LocalForward(forward.spec, _ConnectionSource(forward.conn))
        try:
            await forward.local.start()
        except ForwardError as exc:
            self._report(str(exc))

    async def stop(self, key: str) -> None:
        forward = self.forwards.get(key)
        if forward is None or forward.stopped:
            return
        await self._close(forward)
        forward.stopped = True

    async def restart(self, key: str) -> None:
        forward = self.forwards.get(key)
        if forward is None:
            return
        await self._close(forward)
        await self._start(forward)

    async def remove(self, key: str) -> None:
        forward = self.forwards.pop(key, None)
        if forward is not None:
            await self._close(forward)

    async def connection_changed(self, conn: Connection) -> None:
        """Listeners stay up across a drop; remote forwards are asked for again on the new client.
        Closing the connection stops its forwards, as leaving ssh(1) does; reconnecting restarts them."""
        connected = conn.state is ConnState.CONNECTED
        for forward in self.of(conn):
            if forward.paused and connected:
                forward.paused = False
                await self._start(forward)
                continue
            if forward.stopped:
                continue
            if conn.state is ConnState.CLOSED:
                await self._close(forward)
                forward.stopped = forward.paused = True
                continue
            if forward.local is not None:
                forward.local.connection_state(connected, "" if connected else conn.error or conn.state.value)
            if forward.remote is not None:
                if connected and conn.client is not None:
                    await self._attach_remote(forward, conn.client)
                else:
                    forward.remote.connection_state(False, conn.error or conn.state.value)

    async def _attach_remote(self, forward: ManagedForward, client: SSHClient) -> None:
        """Each ``RemoteForwards`` takes the client's one open-request hook; route them all through ours."""
        assert forward.remote is not None
        await forward.remote.attach(client)
        forward.open_handler = client.on_channel_open_request
        conn = forward.conn

        def route(event: Any) -> None:
            port = getattr(event.type_data, "port", None)
            for other in self.of(conn):
                remote, handler = other.remote, other.open_handler
                if remote is None or handler is None or other.stopped:
                    continue
                if any(r.bound_port == port for r in remote.forwards):
                    handler(event)
                    return
            client.reject_channel(event.local_id, OpenFailureReason.ADMINISTRATIVELY_PROHIBITED,
                                  f"no {event.channel_type} expected here")

        client.on_channel_open_request = route

    async def close_all(self) -> None:
        for forward in list(self.forwards.values()):
            with contextlib.suppress(Exception):
                await self._close(forward)

    @staticmethod
    async def _close(forward: ManagedForward) -> None:
        if forward.local is not None:
            await forward.local.close()
        if forward.remote is not None:
            await forward.remote.close()
