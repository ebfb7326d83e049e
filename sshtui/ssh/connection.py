"""A whole SSH connection, sans-IO: transport (RFC 4253) + user authentication (RFC 4252)
+ connection layer (RFC 4254), routed by message number (RFC 4250 §4.1.2).

``ClientConnection`` and ``ServerConnection`` are what drivers use: bytes in, events out,
bytes out. Messages for a layer that is not running yet (channel messages before the
user is authenticated, userauth messages after) are protocol errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sshtui.ssh.channels.events import (
    ChannelData,
    ChannelEvent,
    ChannelOpenRejected,
    ChannelRequestRejected,
    GlobalRequestRejected,
)
from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.channels.snapshot import ChannelSnapshot
from sshtui.ssh.config import TransportConfig
from sshtui.ssh.constants import MsgType
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sshtui.ssh.events import (
    ExtInfoReceived,
    KexCompleted,
    PayloadReceived,
    ServiceAccepted,
    ServiceRequested,
    TransportEvent,
)
from sshtui.ssh.snapshot import TransportSnapshot
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Role
from sshtui.ssh.userauth_client import ClientAuth
from sshtui.ssh.userauth_events import AuthAttempt, AuthEvent, AuthSucceeded, ServerAuthEvent
from sshtui.ssh.userauth_server import ServerAuth, ServerAuthState

USERAUTH_SERVICE = "ssh-userauth"
_DECISION_STATES = frozenset(
    {
        ServerAuthState.NONE_DECISION,
        ServerAuthState.PUBLICKEY_QUERY_DECISION,
        ServerAuthState.PUBLICKEY_DECISION,
        ServerAuthState.PASSWORD_DECISION,
        ServerAuthState.KEYBOARD_INTERACTIVE_DECISION,
    }
)
DEFAULT_WINDOW = 2 * 1024 * 1024
DEFAULT_MAX_PACKET = 256 * 1024 - 1024


@dataclass(frozen=True, slots=True)
class AuthReady:
    """The ssh-userauth service is running: the driver may start authenticating."""

    username: str


Event = TransportEvent | AuthEvent | ServerAuthEvent | ChannelEvent | AuthReady
_CHANNEL_DATA = int(MsgType.CHANNEL_DATA)
# The messages whose type-specific data may be refused without ending the connection.
_REFUSABLE = frozenset({int(MsgType.GLOBAL_REQUEST), int(MsgType.CHANNEL_OPEN), int(MsgType.CHANNEL_REQUEST)})


def _merged_data(channel: int, parts: list[bytes | memoryview]) -> ChannelData:
    """One event for the data of consecutive CHANNEL_DATA packets to one channel."""
    return ChannelData(channel, b"".join(parts) if len(parts) > 1 else bytes(parts[0]), None)


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    transport: TransportSnapshot
    username: str
    auth: tuple[AuthAttempt, ...]
    authenticated: bool
    channels: tuple[ChannelSnapshot, ...]


class _Connection:
    """Shared routing; subclasses create the auth object for their role."""

    role: Role

    def __init__(
        self,
        transport: Transport,
        *,
        initial_window: int = DEFAULT_WINDOW,
        max_packet: int = DEFAULT_MAX_PACKET,
    ):
        self.transport = transport
        self.channels: ConnectionLayer | None = None
        self._initial_window = initial_window
        self._max_packet = max_packet
        self._now = 0.0
        self._started_at = 0.0
        self._deferred: list[PayloadReceived] = []

    # -- driver API shared by both roles

    def start(self, now: float) -> None:
        self._now = self._started_at = now
        self.transport.start(now)

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[Event]:
        self._now = now
        return self._route(self.transport.receive_data(data, now), now)

    def receive_buffer(self) -> memoryview:
        """Free space for the driver's next socket read; see ``Transport.receive_buffer``."""
        return self.transport.receive_buffer()

    def received_into(self, size: int, now: float) -> list[Event]:
        """``size`` bytes were read into ``receive_buffer()``; 0 means EOF."""
        self._now = now
        return self._route(self.transport.received_into(size, now), now)

    def tick(self, now: float) -> list[Event]:
        self._now = now
        return self._route(self.transport.tick(now), now)

    def data_to_send(self) -> bytes:
        return self.transport.data_to_send()

    def disconnect(self, description: str = "", now: float | None = None) -> None:
        from sshtui.ssh.constants import DisconnectReason

        self.transport.disconnect(DisconnectReason.BY_APPLICATION, description, now)

    @property
    def is_closed(self) -> bool:
        return self.transport.is_closed

    def require_channels(self) -> ConnectionLayer:
        if self.channels is None:
            raise LocalProtocolError("channels can be used only after authentication")
        return self.channels

    # -- routing

    def _send(self, payload: bytes) -> None:
        self.transport.send_payload(payload)

    def _start_channels(self) -> None:
        self.transport.established_activity = "session"
        self.channels = ConnectionLayer(
            self._send,
            initial_window=self._initial_window,
            max_packet=self._max_packet,
            is_client=self.role is Role.CLIENT,
        )

    def _route(self, events: Sequence[TransportEvent], now: float) -> list[Event]:
        out: list[Event] = []
        # Bulk transfers are almost all CHANNEL_DATA: it skips the general dispatch below, and
        # consecutive packets for one channel become one ChannelData event, which copies the
        # data once and leaves the driver one event per read instead of one per packet.
        channels = self.channels
        data_channel = -1
        parts: list[bytes | memoryview] = []
        # Only handling an event can start holding payloads back: re-checked after each one.
        holding = bool(self._deferred) or self._awaiting_decision()
        for event in events:
            if not isinstance(event, PayloadReceived):
                if parts:
                    out.append(_merged_data(data_channel, parts))
                    parts = []
                out.append(event)
                self._on_transport_event(event, out)
                holding = bool(self._deferred) or self._awaiting_decision()
                continue
            if holding:
                # The driver has not answered the previous auth attempt yet: keep order.
                self._deferred.append(event)
                continue
            try:
                if event.msg_type == _CHANNEL_DATA and channels is not None:
                    payload = event.payload
                    channel = channels.accept_channel_data(payload)
                    if channel >= 0:
                        if channel != data_channel and parts:
                            out.append(_merged_data(data_channel, parts))
                            parts = []
                        data_channel = channel
                        parts.append(payload[9:])
                    continue
                if parts:
                    out.append(_merged_data(data_channel, parts))
                    parts = []
                self._on_payload(event, now, out)
                holding = bool(self._deferred) or self._awaiting_decision()
                channels = self.channels  # authentication may just have started the channels
            except ProtocolError as exc:
                if parts:  # what arrived before the violation is delivered
                    out.append(_merged_data(data_channel, parts))
                    parts = []
                out.append(self.transport.fail(exc))
                break
        if parts:
            out.append(_merged_data(data_channel, parts))
        return out

    def _awaiting_decision(self) -> bool:
        return False

    def resume(self, now: float) -> list[Event]:
        """Handle payloads held back while an auth decision was pending (server role)."""
        held, self._deferred = self._deferred, []
        return self._route(held, now)

    def _on_payload(self, event: PayloadReceived, now: float, out: list[Event]) -> None:
        msg_type = event.msg_type
        payload = event.payload if type(event.payload) is bytes else bytes(event.payload)
        if msg_type < 80:
            out.extend(self._handle_auth(payload))
        elif self.channels is None:
            raise RemoteProtocolError(
                f"peer sent message {msg_type} (connection layer) before authentication"
            )
        elif msg_type <= 100:
            events = self.channels.handle(payload, now)
            if events and msg_type in _REFUSABLE:
                self._note_rejections(events, now)
            out.extend(events)
        else:
            self.transport.send_unimplemented(event.sequence)

    def _note_rejections(self, events: Sequence[ChannelEvent], now: float) -> None:
        """The timeline shows the request received and the failure sent, if any; this says why."""
        for event in events:
            # Each reason starts with the type refused: decoders name the body they decode.
            if isinstance(event, ChannelRequestRejected):
                what = f"CHANNEL_REQUEST refused on channel {event.local_id}: {event.reason}"
            elif isinstance(event, GlobalRequestRejected):
                what = f"GLOBAL_REQUEST refused: {event.reason}"
            elif isinstance(event, ChannelOpenRejected):
                what = f"CHANNEL_OPEN refused (peer channel {event.sender_channel}): {event.reason}"
            else:
                continue
            self.transport.timeline.add((now - self._started_at) * 1000.0, "local", what, 0)

    def _on_transport_event(self, event: TransportEvent, out: list[Event]) -> None:
        """Hook for role-specific reactions to transport events."""

    def _handle_auth(self, payload: bytes) -> list[Event]:
        raise NotImplementedError


class ClientConnection(_Connection):
    role = Role.CLIENT

    def __init__(
        self,
        username: str,
        config: TransportConfig | None = None,
        *,
        rng: Callable[[int], bytes],
        initial_window: int = DEFAULT_WINDOW,
        max_packet: int = DEFAULT_MAX_PACKET,
        allow_ssh_rsa: bool = False,
    ):
        super().__init__(
            Transport(Role.CLIENT, config, rng=rng), initial_window=initial_window, max_packet=max_packet
        )
        self.username = username
        self.auth: ClientAuth | None = None
        self._allow_ssh_rsa = allow_ssh_rsa

    def accept_host_key(self, now: float) -> list[Event]:
        self._now = now
        return self._route(self.transport.accept_host_key(now), now)

    def reject_host_key(self, reason: str, now: float | None = None) -> list[Event]:
        return list(self.transport.reject_host_key(reason, now))

    def require_auth(self) -> ClientAuth:
        if self.auth is None:
            raise LocalProtocolError("authentication has not started yet")
        return self.auth

    def _on_transport_event(self, event: TransportEvent, out: list[Event]) -> None:
        if isinstance(event, KexCompleted) and event.kex_count == 1:
            # A packet right behind NEWKEYS may already have failed (bad MAC): its Disconnected follows.
            if not self.transport.is_closed:
                self.transport.request_service(USERAUTH_SERVICE)
        elif isinstance(event, ServiceAccepted) and event.service == USERAUTH_SERVICE:
            session_id = self.transport.session_id
            assert session_id is not None
            self.transport.established_activity = "authentication"
            self.auth = ClientAuth(
                self.username,
                session_id,
                self._send,
                server_sig_algs=self.transport.server_sig_algs,
                allow_ssh_rsa=self._allow_ssh_rsa,
            )
            out.append(AuthReady(self.username))
        elif isinstance(event, ExtInfoReceived) and self.auth is not None:
            self.auth.server_sig_algs = event.server_sig_algs

    def _handle_auth(self, payload: bytes) -> list[Event]:
        if self.auth is None:
            raise RemoteProtocolError(f"peer sent userauth message {payload[0]} before the service started")
        if self.auth.authenticated:
            raise RemoteProtocolError(
                f"peer sent userauth message {payload[0]} after authentication succeeded"
            )
        events: list[Event] = list(self.auth.handle(payload))
        if any(isinstance(e, AuthSucceeded) for e in events):
            self._start_channels()
        return events

    def snapshot(self) -> ConnectionSnapshot:
        return ConnectionSnapshot(
            transport=self.transport.snapshot(),
            username=self.username,
            auth=self.auth.attempts if self.auth else (),
            authenticated=bool(self.auth and self.auth.authenticated),
            channels=self.channels.snapshot(self._now) if self.channels else (),
        )


class ServerConnection(_Connection):
    role = Role.SERVER

    def __init__(
        self,
        host_keys: Sequence[PrivateKey],
        config: TransportConfig | None = None,
        *,
        rng: Callable[[int], bytes],
        auth_methods: tuple[str, ...] = ("publickey", "password"),
        max_auth_attempts: int = 6,
        banner: str | None = None,
        initial_window: int = DEFAULT_WINDOW,
        max_packet: int = DEFAULT_MAX_PACKET,
    ):
        from sshtui.ssh.config import server_config

        super().__init__(
            Transport(Role.SERVER, config or server_config(), rng=rng, host_keys=host_keys),
            initial_window=initial_window,
            max_packet=max_packet,
        )
        self.auth: ServerAuth | None = None
        self._auth_methods = auth_methods
        self._max_auth_attempts = max_auth_attempts
        self._banner = banner

    def require_auth(self) -> ServerAuth:
        if self.auth is None:
            raise LocalProtocolError("authentication has not started yet")
        return self.auth

    def accept_auth(self) -> None:
        """Accept the pending attempt; the connection layer starts."""
        self.require_auth().accept()
        self._start_channels()

    def _on_transport_event(self, event: TransportEvent, out: list[Event]) -> None:
        if isinstance(event, ServiceRequested) and event.service == USERAUTH_SERVICE:
            session_id = self.transport.session_id
            assert session_id is not None
            self.auth = ServerAuth(
                session_id,
                self._send,
                methods=self._auth_methods,
                max_attempts=self._max_auth_attempts,
                banner=self._banner,
            )

    def _awaiting_decision(self) -> bool:
        return self.auth is not None and self.auth.state in _DECISION_STATES

    def _handle_auth(self, payload: bytes) -> list[Event]:
        if self.auth is None:
            raise RemoteProtocolError(f"peer sent userauth message {payload[0]} before the service started")
        if self.channels is not None:
            # RFC 4252 §5.1: requests after success are ignored.
            return []
        return list(self.auth.handle(payload))

    def snapshot(self) -> ConnectionSnapshot:
        return ConnectionSnapshot(
            transport=self.transport.snapshot(),
            username=(self.auth.authenticated_user or "") if self.auth else "",
            auth=(),
            authenticated=self.channels is not None,
            channels=self.channels.snapshot(self._now) if self.channels else (),
        )
