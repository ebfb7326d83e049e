"""The transport's phases and the dispatch of what the peer sends (RFC 4253 §7.1, §11;
OpenSSH PROTOCOL "kex-strict").

Phases and their legal transitions are in ``TRANSITIONS``; the set of messages legal from
the peer is computed from the phase (``_dispatch_transport``), the way OpenSSH swaps dispatch
tables. A protocol error queues a DISCONNECT, moves to the sticky CLOSED phase and is
reported as a ``Disconnected`` event carrying the typed error.

``TransportMachine`` holds all the state of one transport. The handlers it declares abstract
come from the mixins ``Transport`` combines: the key-exchange driver (``transport_kex``), the
rekey policy (``transport_rekey``) and EXT_INFO (``transport_ext_info``).
"""

from __future__ import annotations

import contextlib
import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from sshtui.ssh.config import TransportConfig
from sshtui.ssh.constants import DisconnectReason, MsgType, message_name
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.crypto.kex_base import ClientKex, KexOutcome, ServerKex
from sshtui.ssh.errors import (
    ConnectionClosedError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SSHError,
)
from sshtui.ssh.events import (
    DebugReceived,
    Disconnected,
    KexStarted,
    PayloadReceived,
    ServiceAccepted,
    ServiceRequested,
    TransportEvent,
    UnimplementedReceived,
    VersionReceived,
)
from sshtui.ssh.messages.transport import (
    Debug,
    Disconnect,
    ExtInfo,
    KexInit,
    NewKeys,
    ServiceAccept,
    ServiceRequest,
    Unimplemented,
)
from sshtui.ssh.negotiate import Negotiated
from sshtui.ssh.packet import DirectionKeys, PacketReader, PacketWriter
from sshtui.ssh.snapshot import KexRecord
from sshtui.ssh.timeline import Timeline
from sshtui.ssh.version import VersionParser, escape_line, make_version_line
from sshtui.ssh.wire import WireReader


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class Phase(enum.Enum):
    VERSION = "version exchange"
    KEXINIT = "kexinit"  # our KEXINIT is sent; waiting for the peer's
    KEX = "key exchange"  # both KEXINITs known; method messages in flight
    NEWKEYS = "newkeys"  # our NEWKEYS is sent; waiting for the peer's
    ESTABLISHED = "established"
    CLOSED = "closed"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.VERSION: frozenset({Phase.KEXINIT, Phase.CLOSED}),
    Phase.KEXINIT: frozenset({Phase.KEX, Phase.CLOSED}),
    Phase.KEX: frozenset({Phase.NEWKEYS, Phase.CLOSED}),
    Phase.NEWKEYS: frozenset({Phase.ESTABLISHED, Phase.CLOSED}),
    Phase.ESTABLISHED: frozenset({Phase.KEXINIT, Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}

_OUR_KEX_PHASES = frozenset({Phase.VERSION, Phase.KEXINIT, Phase.KEX})
_GENERIC = frozenset({MsgType.DISCONNECT, MsgType.IGNORE, MsgType.DEBUG, MsgType.UNIMPLEMENTED})
_ASSIGNED_TRANSPORT = frozenset(int(m) for m in MsgType if m < 50)
_CHANNEL_DATA = int(MsgType.CHANNEL_DATA)
_VERSION_SCRATCH_SIZE = 16 * 1024  # socket reads before the version line is complete
Rng = Callable[[int], bytes]


class TransportMachine(ABC):
    """The state of one transport, its phase moves and the routing of received messages."""

    def __init__(
        self,
        role: Role,
        config: TransportConfig | None = None,
        *,
        rng: Rng,
        host_keys: Sequence[PrivateKey] = (),
    ):
        self.role = role
        self.config = config or TransportConfig()
        self._rng = rng
        self._host_keys = tuple(host_keys)
        if role is Role.SERVER and not self._host_keys:
            raise LocalProtocolError("a server needs at least one host key")
        self.phase = Phase.VERSION
        self.error: SSHError | None = None
        self._local_version = make_version_line(self.config.software_version)
        self._peer_version = b""
        self._version_parser = VersionParser(expect_preamble=role is Role.CLIENT)
        self._writer = PacketWriter(rng)
        self._reader = PacketReader(self.config.max_packet_length)
        self._scratch = memoryview(bytearray(_VERSION_SCRATCH_SIZE))
        self._scratch_in_use = False
        self._out: list[bytes] = []
        self._queued: list[bytes] = []  # service payloads held while our kex is in progress
        self._now = 0.0
        self._start_time = 0.0
        self.timeline = Timeline()
        # Key exchange state.
        self._local_kexinit: KexInit | None = None
        self._local_kexinit_payload = b""
        self._peer_kexinit_payload = b""
        self._negotiated: Negotiated | None = None
        self._kex: ClientKex | ServerKex | None = None
        self._ignore_next_kex_packet = False
        self._pending_keys: tuple[DirectionKeys, DirectionKeys] | None = None
        self._awaiting_host_key: KexOutcome | None = None
        self._session_id: bytes | None = None
        self._host_key_blob: bytes | None = None
        self._kex_initiator = "local"
        self._kex_started_at = 0.0
        self.kex_count = 0
        self.strict_kex = False
        self._peer_ext_info = False
        self._ext_info_count = 0
        self.server_sig_algs: tuple[str, ...] = ()
        # Rekey accounting: totals at the end of the last exchange.
        self._base_bytes_out = self._base_bytes_in = 0
        self._base_packets_out = self._base_packets_in = 0
        self._last_kex_time = 0.0
        self._rekey_bytes_limit = self.config.rekey_bytes
        self._rekey_in_at = self.config.rekey_bytes  # received-bytes total that triggers a rekey
        self.kex_history: list[KexRecord] = []
        # Service layer.
        self._service: str | None = None
        # What the layer above is doing once ESTABLISHED ("authentication", "session"), for messages.
        self.established_activity = "service request"
        self._service_requested: str | None = None
        self._disconnect_reason = ""

    # ------------------------------------------------------------------ phases

    def _move(self, phase: Phase) -> None:
        if phase is not self.phase and phase not in TRANSITIONS[self.phase]:
            raise LocalProtocolError(f"internal: illegal transition {self.phase.name} -> {phase.name}")
        self.phase = phase

    def _ms(self) -> float:
        return (self._now - self._start_time) * 1000.0

    def fail(self, exc: ProtocolError) -> Disconnected:
        """Close for good after a protocol error: queue DISCONNECT, report it as an event."""
        self.error = exc
        if self.phase is not Phase.CLOSED:
            by_peer = False
            if self.phase is not Phase.VERSION and exc.reason is not DisconnectReason.CONNECTION_LOST:
                # Best effort: the connection is failing anyway.
                with contextlib.suppress(Exception):
                    self._out.append(self._writer.encode(Disconnect(exc.reason, exc.message[:256]).encode()))
            self.phase = Phase.CLOSED
            self._disconnect_reason = f"{exc.reason.name}: {exc.message}"
            return Disconnected(exc.reason, exc.message, by_peer=by_peer, error=exc)
        return Disconnected(exc.reason, exc.message, by_peer=False, error=exc)

    def _on_version(self, version: bytes, events: list[TransportEvent]) -> None:
        self._peer_version = version
        self.timeline.add(self._ms(), "received", "version", len(version))
        events.append(VersionReceived(escape_line(version, 255), tuple(self._version_parser.preamble)))
        self._move(Phase.KEXINIT)

    # ------------------------------------------------------------------ sending

    def _send(self, payload: bytes) -> None:
        self._out.append(self._writer.encode(payload))
        self.timeline.message(self._ms(), "sent", payload[0], len(payload))

    def _send_or_queue_transport(self, payload: bytes, now: float | None) -> None:
        if now is not None:
            self._now = now
        if self.phase is Phase.CLOSED:
            raise ConnectionClosedError("the connection is closed")
        if self._our_kex_running() or self.phase is Phase.VERSION:
            self._queued.append(payload)
        else:
            self._send(payload)

    def _our_kex_running(self) -> bool:
        """From our KEXINIT until our NEWKEYS only kex and generic messages may be sent (RFC 4253 §7.1)."""
        return self.phase in _OUR_KEX_PHASES

    # ------------------------------------------------------------------ receiving

    def _process_packets(self, events: list[TransportEvent]) -> None:
        # Runs once per packet of a bulk transfer: names are looked up once per call.
        reader = self._reader
        next_payload = reader.next_payload
        record = self.timeline.message
        closed, kex, newkeys = Phase.CLOSED, Phase.KEX, Phase.NEWKEYS
        channel_data = _CHANNEL_DATA
        t_ms = self._ms()  # every packet of one call arrived at the same ``now``
        while self.phase is not closed and self._awaiting_host_key is None:
            payload = next_payload()
            if payload is None:
                return
            if not payload:
                raise RemoteProtocolError("peer sent a packet with an empty payload")
            msg_type = payload[0]
            record(t_ms, "received", msg_type, len(payload))
            if msg_type != channel_data:
                # Only CHANNEL_DATA travels on as a view of the decrypted packet (see PayloadReceived).
                payload = bytes(payload)
            phase = self.phase
            if msg_type >= 50 and phase is not kex and phase is not newkeys:
                if self._service is None:
                    raise RemoteProtocolError(
                        f"peer sent {message_name(msg_type)} before any service was started"
                    )
                events.append(PayloadReceived(msg_type, payload, reader.last_sequence))
                if reader.bytes >= self._rekey_in_at:
                    self._check_rekey(events)
                continue
            self._dispatch_transport(msg_type, bytes(payload), events)

    def _in_initial_strict_kex(self) -> bool:
        return self.strict_kex and self.kex_count == 0

    def _dispatch_transport(self, msg_type: int, payload: bytes, events: list[TransportEvent]) -> None:
        phase = self.phase
        if msg_type in _GENERIC:
            if self._in_initial_strict_kex() and msg_type != MsgType.DISCONNECT:
                raise RemoteProtocolError(
                    f"strict key exchange: peer sent {message_name(msg_type)} before the first NEWKEYS"
                )
            self._on_generic(msg_type, payload, events)
            return
        if msg_type == MsgType.KEXINIT:
            if phase is Phase.ESTABLISHED:
                self._send_kexinit(initiator="peer")
                events.append(KexStarted(self.kex_count, "peer"))
            elif phase is not Phase.KEXINIT or self._peer_kexinit_payload:
                raise RemoteProtocolError(f"peer sent KEXINIT during {phase.value}")
            self._on_kexinit(payload, events)
            return
        if phase is Phase.KEX and msg_type in range(30, 50):
            if self._ignore_next_kex_packet:
                self._ignore_next_kex_packet = False
                return
            self._on_kex_message(msg_type, payload, events)
            return
        if msg_type == MsgType.NEWKEYS and phase is Phase.NEWKEYS:
            NewKeys.decode(payload)
            self._on_peer_newkeys(events)
            return
        if self._in_initial_strict_kex() or phase in (Phase.KEX, Phase.NEWKEYS):
            raise RemoteProtocolError(f"peer sent {message_name(msg_type)} during {phase.value}")
        if msg_type == MsgType.SERVICE_REQUEST and self.role is Role.SERVER and phase is Phase.ESTABLISHED:
            self._on_service_request(ServiceRequest.decode(payload), events)
        elif msg_type == MsgType.SERVICE_ACCEPT and self.role is Role.CLIENT and phase is Phase.ESTABLISHED:
            self._on_service_accept(ServiceAccept.decode(payload), events)
        elif msg_type == MsgType.EXT_INFO and self.role is Role.CLIENT and self.kex_count > 0:
            self._on_ext_info(ExtInfo.decode(payload), events)
        elif msg_type in _ASSIGNED_TRANSPORT:
            raise RemoteProtocolError(f"peer sent {message_name(msg_type)} during {phase.value}")
        else:
            # RFC 4253 §11.4: unrecognised messages get UNIMPLEMENTED, not a disconnect.
            self._send(Unimplemented(self._reader.last_sequence).encode())

    def _on_generic(self, msg_type: int, payload: bytes, events: list[TransportEvent]) -> None:
        if msg_type == MsgType.DISCONNECT:
            msg = Disconnect.decode(payload)
            description = escape_line(msg.description.encode(), 500)
            try:
                reason = DisconnectReason(msg.reason)
                name = reason.name
            except ValueError:
                reason, name = DisconnectReason.PROTOCOL_ERROR, f"reason {msg.reason}"
            self._disconnect_reason = f"peer: {name}: {description}"
            self.phase = Phase.CLOSED
            events.append(Disconnected(msg.reason, description, by_peer=True))
        elif msg_type == MsgType.IGNORE:
            WireReader(payload[1:], "IGNORE").string_view("data")
        elif msg_type == MsgType.DEBUG:
            debug = Debug.decode(payload)
            events.append(DebugReceived(debug.always_display, escape_line(debug.message.encode(), 500)))
        else:
            events.append(UnimplementedReceived(Unimplemented.decode(payload).sequence_number))

    def _on_service_request(self, msg: ServiceRequest, events: list[TransportEvent]) -> None:
        if self._service == msg.service:
            # Some clients (paramiko) repeat the request before each auth method; OpenSSH allows it.
            self._send(ServiceAccept(msg.service).encode())
            return
        if self._service is not None or msg.service not in self.config.services:
            raise LocalProtocolError(
                f"service {escape_line(msg.service.encode())!r} is not available",
                DisconnectReason.SERVICE_NOT_AVAILABLE,
            )
        self._service = msg.service
        self._send(ServiceAccept(msg.service).encode())
        events.append(ServiceRequested(msg.service))

    def _on_service_accept(self, msg: ServiceAccept, events: list[TransportEvent]) -> None:
        if self._service_requested is None or self._service is not None:
            raise RemoteProtocolError("peer sent SERVICE_ACCEPT without a pending request")
        if msg.service != self._service_requested:
            raise RemoteProtocolError(
                f"peer accepted service {escape_line(msg.service.encode())!r},"
                f" we asked for {self._service_requested!r}"
            )
        self._service = msg.service
        events.append(ServiceAccepted(msg.service))

    # ------------------------------------------------------------------ supplied by the mixins

    @abstractmethod
    def _send_kexinit(self, initiator: str) -> None:
        """Queue our KEXINIT; past the version exchange, move to KEXINIT: ``transport_kex``."""

    @abstractmethod
    def _on_kexinit(self, payload: bytes, events: list[TransportEvent]) -> None:
        """The peer's KEXINIT: negotiate and start the chosen method: ``transport_kex``."""

    @abstractmethod
    def _on_kex_message(self, msg_type: int, payload: bytes, events: list[TransportEvent]) -> None:
        """A message of the running key-exchange method (30-49): ``transport_kex``."""

    @abstractmethod
    def _on_peer_newkeys(self, events: list[TransportEvent]) -> None:
        """The peer's NEWKEYS: its new keys apply from the next packet: ``transport_kex``."""

    @abstractmethod
    def _on_ext_info(self, msg: ExtInfo, events: list[TransportEvent]) -> None:
        """A server's EXT_INFO, on the client: ``transport_ext_info``."""

    @abstractmethod
    def _check_rekey(self, events: list[TransportEvent] | None) -> None:
        """Start a re-exchange when a limit is reached: ``transport_rekey``."""
