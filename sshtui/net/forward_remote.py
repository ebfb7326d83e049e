"""Remote forwards, ``-R``: the server listens (tcpip-forward, RFC 4254 §7.1) and opens a
forwarded-tcpip channel (§7.2) for each connection it accepts; we connect to the target here.

As OpenSSH does, the channel is confirmed only once the local connection succeeded, so a refused
target becomes an open failure the server's client sees at once. Port 0 lets the server choose;
the chosen port comes back in the REQUEST_SUCCESS and is what the forward reports. The requests are
made again on every new connection, since a server forgets its listeners with the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from sshtui.forward_spec import ForwardSpec, join_host_port
from sshtui.net.client import SSHClient
from sshtui.net.forward_local import CHUNK, bridge, os_error_text
from sshtui.net.forward_snapshot import ForwardCounters, ForwardSnapshot, ForwardState
from sshtui.ssh.channels.events import ChannelOpenRequested
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import connection as m

LOCAL_CONNECT_TIMEOUT = 15.0
CANCEL_TIMEOUT = 2.0


class RemoteForward:
    def __init__(self, spec: ForwardSpec) -> None:
        if spec.kind != "remote":
            raise ValueError("RemoteForward serves -R forwards only")
        self.spec = spec
        self.counters = ForwardCounters(spec)
        self.bound_port: int | None = None  # what the server listens on, once it agreed

    @property
    def port(self) -> int:
        return self.bound_port if self.bound_port is not None else self.spec.listen_port

    def snapshot(self) -> ForwardSnapshot:
        return self.counters.snapshot()


class RemoteForwards:
    """Every ``-R`` forward of one session. ``attach`` each new client; ``report`` hears one line
    per forward whenever the server starts refusing it, ``announce`` the port the server chose
    for a port 0 forward (as ssh(1) prints "Allocated port ...")."""

    def __init__(
        self,
        specs: Sequence[ForwardSpec],
        report: Callable[[str], None] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.forwards = [RemoteForward(spec) for spec in specs]
        self._report = report
        self._announce = announce
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: SSHClient | None = None

    async def attach(self, client: SSHClient) -> None:
        """Route the client's forwarded-tcpip opens here and ask the server for every listener."""
        self._client = client
        client.on_channel_open_request = lambda event: self._on_open_request(client, event)
        for forward in self.forwards:
            await self._request(client, forward)

    def connection_state(self, connected: bool, reason: str = "") -> None:
        if connected:
            return  # attach() decides each forward's state from the server's answer
        for forward in self.forwards:
            forward.bound_port = None
            forward.counters.set_state(ForwardState.RECONNECTING, reason)

    def snapshots(self) -> list[ForwardSnapshot]:
        return [forward.snapshot() for forward in self.forwards]

    async def close(self) -> None:
        """Ask the server to stop listening (briefly, if still connected) and end every connection."""
        client = self._client
        if client is not None and not client.closed.done():
            for forward in self.forwards:
                if forward.bound_port is not None:
                    body = m.CancelTcpipForward(forward.spec.listen_host, forward.bound_port)
                    request = client.global_request(body.NAME, body.encode_data())
                    with contextlib.suppress(SSHError, TimeoutError):
                        await asyncio.wait_for(request, CANCEL_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _request(self, client: SSHClient, forward: RemoteForward) -> None:
        spec = forward.spec
        body = m.TcpipForward(spec.listen_host, spec.listen_port)
        try:
            accepted, data = await client.global_request(body.NAME, body.encode_data())
            port = spec.listen_port
            if accepted and port == 0:
                port = m.RequestSuccess(data).bound_port()
        except SSHError as exc:
            accepted, reason = False, f"cannot ask the server to listen on {spec.listen}: {exc.message}"
        else:
            reason = f"the server refused to listen on {spec.listen}"
        if not accepted:
            if forward.counters.reason != reason and self._report is not None:
                self._report(f"{spec.label}: {reason}")
            forward.counters.set_state(ForwardState.FAILED, reason)
            return
        forward.bound_port = port
        forward.counters.listen = join_host_port(spec.listen_host, port)
        forward.counters.set_state(ForwardState.LISTENING)
        if spec.listen_port == 0 and self._announce is not None:
            self._announce(f"{spec.label}: the server allocated port {port} (forwarding to {spec.target})")

    def _match(self, address: str, port: int) -> RemoteForward | None:
        candidates = [f for f in self.forwards if f.bound_port == port]
        if len(candidates) > 1:
            candidates = [f for f in candidates if f.spec.listen_host == address] or candidates
        return candidates[0] if candidates else None

    def _on_open_request(self, client: SSHClient, event: ChannelOpenRequested) -> None:
        body = event.type_data
        forward = self._match(body.address, body.port) if isinstance(body, m.ForwardedTcpip) else None
        if forward is None:
            reason = OpenFailureReason.ADMINISTRATIVELY_PROHIBITED
            client.reject_channel(event.local_id, reason, f"no {event.channel_type} expected here")
            return
        assert isinstance(body, m.ForwardedTcpip)
        task = asyncio.create_task(self._serve(client, forward, event.local_id, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, client: SSHClient, forward: RemoteForward, local_id: int, body: m.ForwardedTcpip
    ) -> None:
        spec = forward.spec
        live = forward.counters.started(join_host_port(body.originator_address, body.originator_port))
        try:
            try:
                async with asyncio.timeout(LOCAL_CONNECT_TIMEOUT):
                    if spec.target_path:
                        reader, writer = await asyncio.open_unix_connection(spec.target_path, limit=CHUNK)
                    else:
                        reader, writer = await asyncio.open_connection(
                            spec.target_host, spec.target_port, limit=CHUNK
                        )
            except (OSError, TimeoutError) as exc:
                reason = os_error_text(exc) if isinstance(exc, OSError) else "connection timed out"
                client.reject_channel(local_id, OpenFailureReason.CONNECT_FAILED, reason)
                forward.counters.failed_with(live, f"{spec.target}: {reason}")
                return
            try:
                channel = client.accept_channel(local_id)
            except SSHError as exc:
                writer.close()
                forward.counters.failed_with(live, exc.message)
                return
            live.channel_id = local_id
            await bridge(channel, reader, writer, live)
        except asyncio.CancelledError:
            pass  # closing
        finally:
            forward.counters.finished(live)
