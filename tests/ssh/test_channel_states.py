"""Random conversations between a client and a server connection layer (RFC 4254 §5):
opens, data, reads, EOFs, closes and requests in any order, with messages delivered late
or interleaved. Whatever the order, a legal conversation never raises, windows stay in
bounds, every byte arrives once and in order, and a closed channel reports nothing more."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sshtui.ssh.channels.channel import ChannelState
from sshtui.ssh.channels.events import (
    ChannelClosed,
    ChannelData,
    ChannelEof,
    ChannelEvent,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequested,
    ChannelRequestReceived,
    ChannelRequestResult,
    ChannelWindowOpened,
    GlobalRequestReceived,
    GlobalRequestResult,
    KeepaliveReply,
)
from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.constants import OpenFailureReason
from sshtui.ssh.messages.channel_requests import Env
from sshtui.ssh.messages.connection import TcpipForward

from .test_channels import Link

SIDES = ("client", "server")
Key = tuple[str, int]  # (side, local channel id)

sides = st.sampled_from(SIDES)
picks = st.integers(0, 2**16)


def pattern(offset: int, size: int) -> bytes:
    """Bytes that differ by position, so a lost, repeated or reordered byte shows."""
    return bytes((offset + i) % 251 for i in range(size))


class ConnectionPair(RuleBasedStateMachine):
    @initialize(
        client_window=st.integers(0, 3000),
        client_packet=st.integers(1, 700),
        server_window=st.integers(0, 3000),
        server_packet=st.integers(1, 700),
    )
    def connect(self, client_window: int, client_packet: int, server_window: int, server_packet: int) -> None:
        self.link = Link(
            client={"initial_window": client_window, "max_packet": client_packet},
            server={"initial_window": server_window, "max_packet": server_packet},
        )
        self.windows = {"client": client_window, "server": server_window}
        self.sent: dict[Key, bytearray] = defaultdict(bytearray)
        self.received: dict[Key, bytearray] = defaultdict(bytearray)
        self.unread: dict[Key, int] = defaultdict(int)
        self.replies_owed: dict[Key, int] = defaultdict(int)
        self.results_awaited: dict[Key, int] = defaultdict(int)
        self.pending_accept: dict[str, list[int]] = {side: [] for side in SIDES}
        self.closed: dict[str, set[int]] = {side: set() for side in SIDES}
        self.global_owed = {side: 0 for side in SIDES}
        self.global_awaited = {side: 0 for side in SIDES}

    # --- helpers ---------------------------------------------------------------------------

    def layer(self, side: str) -> ConnectionLayer:
        return self.link.client if side == "client" else self.link.server

    def live_ids(self, side: str, *states: ChannelState) -> list[int]:
        snaps = self.layer(side).snapshot(0.0)
        return [s.local_id for s in snaps if not states or ChannelState[s.state] in states]

    def pick(self, side: str, pick: int, *states: ChannelState) -> int | None:
        ids = self.live_ids(side, *states)
        return ids[pick % len(ids)] if ids else None

    def forget(self, key: Key) -> None:
        for table in (self.sent, self.received, self.unread, self.replies_owed, self.results_awaited):
            table.pop(key, None)

    def new_channel(self, side: str, local_id: int) -> None:
        self.closed[side].discard(local_id)
        self.forget((side, local_id))

    def absorb(self, side: str, events: list[ChannelEvent]) -> None:
        layer = self.layer(side)
        for event in events:
            local_id = getattr(event, "local_id", None)
            if local_id is not None and not isinstance(event, ChannelOpenRequested):
                assert local_id not in self.closed[side], f"{side}: {event} for a closed channel"
            key = (side, local_id if local_id is not None else -1)
            if isinstance(event, ChannelOpenRequested):
                self.new_channel(side, event.local_id)
                self.pending_accept[side].append(event.local_id)
            elif isinstance(event, ChannelData):
                self.received[key] += event.data
                self.unread[key] += len(event.data)
            elif isinstance(event, ChannelClosed | ChannelOpenFailed):
                self.closed[side].add(event.local_id)
                self.forget(key)
            elif isinstance(event, ChannelRequestReceived):
                self.replies_owed[key] += event.want_reply
            elif isinstance(event, ChannelRequestResult):
                assert self.results_awaited[key] > 0
                self.results_awaited[key] -= 1
            elif isinstance(event, ChannelWindowOpened):
                assert event.available <= layer.channel(event.local_id).remote_window
            elif isinstance(event, GlobalRequestReceived):
                self.global_owed[side] += event.want_reply
            elif isinstance(event, GlobalRequestResult | KeepaliveReply):
                self.global_awaited[side] -= 1
            else:
                assert isinstance(event, ChannelOpened | ChannelEof)

    def deliver(self, direction: str, limit: int | None = None) -> None:
        queue = self.link.to_server if direction == "server" else self.link.to_client
        layer = self.layer(direction)
        count = len(queue) if limit is None else min(limit, len(queue))
        for _ in range(count):
            self.absorb(direction, layer.handle(queue.popleft(), self.link.now))

    # --- rules -----------------------------------------------------------------------------

    @rule(side=sides)
    def open_channel(self, side: str) -> None:
        layer = self.layer(side)
        if side == "client":
            local_id = layer.open_session(self.link.now)
        else:
            local_id = layer.open_forwarded_tcpip("127.0.0.1", 2222, "127.0.0.1", 50000, self.link.now)
        self.new_channel(side, local_id)

    @rule(side=sides)
    def open_established_channel(self, side: str) -> None:
        """Open and accept at once (with whatever else is in flight), so data has somewhere to go."""
        self.open_channel(side)
        self.deliver_everything()
        other = "server" if side == "client" else "client"
        while self.pending_accept[other]:
            self.layer(other).accept_open(self.pending_accept[other].pop())
        self.deliver_everything()

    @precondition(lambda self: self.pending_accept["client"] or self.pending_accept["server"])
    @rule(side=sides, pick=picks, accept=st.booleans())
    def answer_open(self, side: str, pick: int, accept: bool) -> None:
        pending = self.pending_accept[side]
        if not pending:
            return
        local_id = pending.pop(pick % len(pending))
        if accept:
            self.layer(side).accept_open(local_id)
        else:
            self.layer(side).reject_open(local_id, OpenFailureReason.CONNECT_FAILED, "refused")
            self.closed[side].add(local_id)
            self.forget((side, local_id))

    @precondition(lambda self: self.link.client.channel_count or self.link.server.channel_count)
    @rule(side=sides, pick=picks, size=st.integers(0, 5000), stderr=st.booleans())
    def send_data(self, side: str, pick: int, size: int, stderr: bool) -> None:
        local_id = self.pick(side, pick, ChannelState.OPEN, ChannelState.EOF_RECEIVED)
        if local_id is None:
            return
        layer, key = self.layer(side), (side, local_id)
        writable = layer.writable(local_id)
        data = pattern(len(self.sent[key]), size)
        accepted = layer.send_extended_data(local_id, data) if stderr else layer.send_data(local_id, data)
        assert accepted == min(size, writable)
        assert layer.writable(local_id) == writable - accepted
        self.sent[key] += data[:accepted]

    @precondition(lambda self: any(self.unread.values()))
    @rule(side=sides, pick=picks, fraction=st.floats(0, 1))
    def read(self, side: str, pick: int, fraction: float) -> None:
        unread = [key for key, size in self.unread.items() if key[0] == side and size]
        if not unread:
            return
        key = unread[pick % len(unread)]
        size = int(self.unread[key] * fraction)
        self.layer(side).consumed(key[1], size)
        self.unread[key] -= size

    @rule(side=sides, pick=picks)
    def send_eof(self, side: str, pick: int) -> None:
        local_id = self.pick(side, pick, ChannelState.OPEN, ChannelState.EOF_RECEIVED, ChannelState.EOF_SENT)
        if local_id is not None:
            self.layer(side).send_eof(local_id)
            assert self.layer(side).writable(local_id) == 0

    @rule(side=sides, pick=picks)
    def close(self, side: str, pick: int) -> None:
        states = [s for s in ChannelState if s is not ChannelState.OPEN_REQUESTED]
        local_id = self.pick(side, pick, *states)
        if local_id is not None:
            self.layer(side).close(local_id)

    @rule(side=sides, pick=picks, want_reply=st.booleans())
    def send_request(self, side: str, pick: int, want_reply: bool) -> None:
        states = (ChannelState.OPEN, ChannelState.EOF_SENT, ChannelState.EOF_RECEIVED, ChannelState.EOF_BOTH)
        local_id = self.pick(side, pick, *states)
        if local_id is not None:
            self.layer(side).send_request(local_id, Env("LANG", "C.UTF-8"), want_reply)
            self.results_awaited[(side, local_id)] += want_reply

    @rule(side=sides, pick=picks, success=st.booleans())
    def reply_request(self, side: str, pick: int, success: bool) -> None:
        owed = [key for key, count in self.replies_owed.items() if key[0] == side and count]
        if owed:
            key = owed[pick % len(owed)]
            self.layer(side).reply_request(key[1], success)
            self.replies_owed[key] -= 1

    @rule(side=sides, keepalive=st.booleans())
    def global_request(self, side: str, keepalive: bool) -> None:
        if keepalive:
            self.layer(side).send_keepalive(self.link.now)
        else:
            self.layer(side).global_request("tcpip-forward", TcpipForward("", 0).encode_data(), True)
        self.global_awaited[side] += 1

    @rule(side=sides, success=st.booleans())
    def reply_global(self, side: str, success: bool) -> None:
        if self.global_owed[side]:
            self.layer(side).reply_global(success)
            self.global_owed[side] -= 1

    @precondition(lambda self: self.link.to_server or self.link.to_client)
    @rule(direction=sides, limit=st.integers(1, 5))
    def deliver_some(self, direction: str, limit: int) -> None:
        self.deliver(direction, limit)

    @precondition(lambda self: self.link.to_server or self.link.to_client)
    @rule()
    def deliver_everything(self) -> None:
        while self.link.to_server or self.link.to_client:
            self.deliver("server")
            self.deliver("client")

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def windows_stay_in_bounds(self) -> None:
        for side in SIDES:
            layer = self.layer(side)
            for snap in layer.snapshot(self.link.now):
                channel = layer.channel(snap.local_id)
                assert snap.local_window >= 0 and snap.local_window + channel.buffered <= self.windows[side]
                assert 0 <= snap.remote_window <= 2**32 - 1
                unread = self.unread.get((side, snap.local_id), 0)
                # Data that raced our CLOSE is counted in the window but never shown to the reader.
                assert unread == channel.buffered or (snap.close_sent and unread <= channel.buffered)

    @precondition(lambda self: not self.link.to_server and not self.link.to_client)
    @invariant()
    def when_quiet_both_ends_agree(self) -> None:
        for side, other in (("client", "server"), ("server", "client")):
            layer, peer = self.layer(side), self.layer(other)
            peer_channels = {s.local_id: s for s in peer.snapshot(0.0)}
            for snap in layer.snapshot(0.0):
                # Once every message is through, a CLOSE has always been answered.
                assert snap.state != "CLOSE_SENT"
                mirror = peer_channels.get(snap.remote_id) if snap.remote_id is not None else None
                if mirror is None or mirror.remote_id != snap.local_id or mirror.state == "OPEN_REQUESTED":
                    continue
                if snap.state == "OPENING":
                    continue
                if not snap.eof_sent:  # after EOF the reader stops returning credit
                    assert snap.remote_window == mirror.local_window
                assert snap.bytes_sent == mirror.bytes_received
                assert self.sent[(side, snap.local_id)] == self.received[(other, mirror.local_id)]
                assert snap.packets_sent == mirror.packets_received
                # Unanswered requests are exactly those queued behind one the peer's driver owes.
                awaited = self.results_awaited[(side, snap.local_id)]
                owed = self.replies_owed[(other, mirror.local_id)]
                assert awaited >= owed and (awaited == 0 or owed > 0)
            awaited, owed = self.global_awaited[side], self.global_owed[other]
            assert awaited >= owed and (awaited == 0 or owed > 0)


TestConnectionPair = ConnectionPair.TestCase
TestConnectionPair.settings = settings(max_examples=150, stateful_step_count=80, deadline=None)
