"""The SSH transport layer as a sans-IO state machine (RFC 4253 §4-§11, RFC 8308, strict kex).

Bytes in (``receive_data``), events out, bytes out (``data_to_send``). Time comes in as
``now`` on every call and randomness through the ``rng`` given at construction.

Phases and their legal transitions are in ``TRANSITIONS``; the set of messages legal
from the peer is computed from the phase (``_allowed``), the way OpenSSH swaps dispatch
tables. A protocol error queues a DISCONNECT, moves to the sticky CLOSED phase and is
reported as a ``Disconnected`` event carrying the typed error.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Sequence

from sshtui.ssh.config import (
    EXT_INFO_CLIENT,
    EXT_INFO_SERVER,
    STRICT_KEX_CLIENT,
    STRICT_KEX_SERVER,
    TransportConfig,
)
from sshtui.ssh.constants import DisconnectReason, MsgType, message_name
from sshtui.ssh.crypto.hostkeys import PrivateKey, fingerprint_sha256, verify_signature
from sshtui.ssh.crypto.kex_base import ClientKex, KexContext, KexOutcome, ServerKex
from sshtui.ssh.crypto.kex_registry import KEX_METHODS
from sshtui.ssh.errors import (
    ConnectionClosedError,
    HostKeyError,
    HostKeyRejected,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SSHError,
)
from sshtui.ssh.events import (
    DebugReceived,
    Disconnected,
    ExtInfoReceived,
    HostKeyReceived,
    KexCompleted,
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
from sshtui.ssh.negotiate import Negotiated, negotiate
from sshtui.ssh.packet import DirectionKeys, PacketReader, PacketWriter
from sshtui.ssh.snapshot import KexRecord, TransportSnapshot
from sshtui.ssh.timeline import Timeline
from sshtui.ssh.transport_keys import AEAD_CIPHERS, SERVER_SIG_ALGS, build_keys, rekey_byte_limit
from sshtui.ssh.version import VersionParser, escape_line, make_version_line
from sshtui.ssh.wire import WireReader, string


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
MAX_EXT_INFO_MESSAGES = 2
Rng = Callable[[int], bytes]


class Transport:
    """One side of an SSH transport. Not thread-safe; one driver feeds it."""

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

    # ------------------------------------------------------------------ public API

    def start(self, now: float) -> None:
        """Queue our version line and our first KEXINIT (sent together, saving a round trip)."""
        self._now = self._start_time = self._last_kex_time = now
        self._out.append(self._local_version + b"\r\n")
        self.timeline.add(0.0, "sent", "version", len(self._local_version))
        self._send_kexinit(initiator="local")

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[TransportEvent]:
        """Feed bytes from the peer; returns what happened. An empty ``data`` means EOF."""
        self._now = now
        if self.phase is Phase.CLOSED:
            return []
        events: list[TransportEvent] = []
        try:
            if not data:
                raise RemoteProtocolError(
                    f"connection closed by the peer during {self.activity}", DisconnectReason.CONNECTION_LOST
                )
            if self.phase is Phase.VERSION:
                version = self._version_parser.feed(data)
                if version is None:
                    return events
                self._on_version(version, events)
                data = self._version_parser.leftover()
            self._reader.feed(data)
            self._process_packets(events)
            self._check_rekey(events)
        except ProtocolError as exc:
            events.append(self.fail(exc))
        return events

    def receive_buffer(self) -> memoryview:
        """Where the driver may have the socket write received bytes, to hand them over with
        ``received_into`` instead of ``receive_data``: bulk data then skips a copy."""
        if self.phase is Phase.VERSION:
            # The version line goes through its own parser; packets start after it.
            self._scratch_in_use = True
            return self._scratch
        self._scratch_in_use = False
        return self._reader.receive_buffer()

    def received_into(self, size: int, now: float) -> list[TransportEvent]:
        """``size`` bytes were written at the start of the last ``receive_buffer()``; 0 means EOF."""
        if self._scratch_in_use or not size:
            self._scratch_in_use = False
            return self.receive_data(bytes(self._scratch[:size]), now)
        self._now = now
        if self.phase is Phase.CLOSED:
            return []
        events: list[TransportEvent] = []
        try:
            self._reader.received(size)
            self._process_packets(events)
            self._check_rekey(events)
        except ProtocolError as exc:
            events.append(self.fail(exc))
        return events

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def send_payload(self, payload: bytes, now: float | None = None) -> None:
        """Send a service-layer message (number 50 or above); held back during our key exchange."""
        if now is not None:
            self._now = now
        if self.phase is Phase.CLOSED:
            raise ConnectionClosedError("the connection is closed")
        if payload[0] < 50:
            raise LocalProtocolError(f"send_payload is for service messages, not {message_name(payload[0])}")
        if self._service is None:
            raise LocalProtocolError("no service is active yet: send a service request first")
        if self._our_kex_running():
            self._queued.append(payload)
        else:
            self._send(payload)
            self._check_rekey(None)

    def request_service(self, service: str, now: float | None = None) -> None:
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("only a client requests services")
        if self._service_requested is not None:
            raise LocalProtocolError(f"service {self._service_requested} was already requested")
        self._service_requested = service
        self._send_or_queue_transport(ServiceRequest(service).encode(), now)

    def accept_host_key(self, now: float | None = None) -> list[TransportEvent]:
        """The driver trusts the key of the last ``HostKeyReceived``: finish the exchange."""
        if now is not None:
            self._now = now
        if self._awaiting_host_key is None:
            raise LocalProtocolError("no host key is waiting for a decision")
        self._awaiting_host_key = None
        self.timeline.add(self._ms(), "local", "host key accepted", 0)
        events: list[TransportEvent] = []
        try:
            self._send_newkeys()
            self._process_packets(events)
        except ProtocolError as exc:
            events.append(self.fail(exc))
        return events

    def reject_host_key(self, reason: str, now: float | None = None) -> list[TransportEvent]:
        if now is not None:
            self._now = now
        self._awaiting_host_key = None
        return [self.fail(HostKeyRejected(reason))]

    def request_rekey(self, now: float | None = None) -> bool:
        """Start a key re-exchange now; False when one is already running or not yet possible."""
        if now is not None:
            self._now = now
        if self.phase is not Phase.ESTABLISHED:
            return False
        self._send_kexinit(initiator="local")
        return True

    def tick(self, now: float) -> list[TransportEvent]:
        """Time passes: may start a time-based rekey. Call at ``next_deadline()``."""
        self._now = now
        events: list[TransportEvent] = []
        if self.phase is Phase.ESTABLISHED:
            try:
                self._check_rekey(events)
            except ProtocolError as exc:
                events.append(self.fail(exc))
        return events

    def next_deadline(self) -> float | None:
        if self.phase is not Phase.ESTABLISHED or self.config.rekey_seconds is None:
            return None
        return self._last_kex_time + self.config.rekey_seconds

    def disconnect(
        self,
        reason: DisconnectReason = DisconnectReason.BY_APPLICATION,
        description: str = "",
        now: float | None = None,
    ) -> None:
        if now is not None:
            self._now = now
        if self.phase is Phase.CLOSED:
            return
        if self.phase is not Phase.VERSION:
            self._send(Disconnect(reason, description).encode())
        self._disconnect_reason = f"{reason.name}: {description}" if description else reason.name
        self._move(Phase.CLOSED)

    def send_unimplemented(self, sequence: int) -> None:
        """RFC 4253 §11.4: the answer to a message number nobody here implements."""
        if self.phase is not Phase.CLOSED:
            self._send_or_queue_transport(Unimplemented(sequence).encode(), None)

    def send_ignore(self, data: bytes = b"", now: float | None = None) -> None:
        from sshtui.ssh.messages.transport import Ignore

        self._send_or_queue_transport(Ignore(data).encode(), now)

    @property
    def session_id(self) -> bytes | None:
        return self._session_id

    @property
    def negotiated(self) -> Negotiated | None:
        return self._negotiated

    @property
    def service_active(self) -> str | None:
        return self._service

    @property
    def is_closed(self) -> bool:
        return self.phase is Phase.CLOSED

    @property
    def activity(self) -> str:
        """The phase in words, for error messages: "key exchange", "authentication", "session"..."""
        return self.established_activity if self.phase is Phase.ESTABLISHED else self.phase.value

    @property
    def buffered_incoming(self) -> int:
        return self._reader.buffered

    def snapshot(self) -> TransportSnapshot:
        from sshtui.ssh.transport_snapshot import build_snapshot

        return build_snapshot(self)

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

    def _send_kexinit(self, initiator: str) -> None:
        cfg = self.config
        first = self.kex_count == 0
        kex = list(cfg.kex_algorithms)
        if self.role is Role.CLIENT:
            host_key_algs = tuple(cfg.host_key_algorithms)
            if first:
                kex += [EXT_INFO_CLIENT] if cfg.ext_info else []
                kex += [STRICT_KEX_CLIENT] if cfg.strict_kex else []
        else:
            available = {alg for key in self._host_keys for alg in key.algorithms}
            host_key_algs = tuple(a for a in cfg.host_key_algorithms if a in available)
            if not host_key_algs:
                raise LocalProtocolError(
                    "none of our host keys can sign with the configured HostKeyAlgorithms"
                )
            if first:
                kex += [EXT_INFO_SERVER] if cfg.ext_info else []
                kex += [STRICT_KEX_SERVER] if cfg.strict_kex else []
        kexinit = KexInit(
            cookie=self._rng(16),
            kex_algorithms=tuple(kex),
            server_host_key_algorithms=host_key_algs,
            encryption_c2s=cfg.ciphers,
            encryption_s2c=cfg.ciphers,
            mac_c2s=cfg.macs,
            mac_s2c=cfg.macs,
            compression_c2s=cfg.compression,
            compression_s2c=cfg.compression,
        )
        self._local_kexinit = kexinit
        self._local_kexinit_payload = kexinit.encode()
        if self.phase is Phase.ESTABLISHED:
            self._kex_initiator = initiator
            self._kex_started_at = self._now
        elif self.phase is Phase.VERSION:
            self._kex_started_at = self._now
        self._send(self._local_kexinit_payload)
        if self.phase is not Phase.VERSION:
            self._move(Phase.KEXINIT)

    def _send_newkeys(self) -> None:
        assert self._pending_keys is not None
        outbound = self._pending_keys[0] if self.role is Role.CLIENT else self._pending_keys[1]
        self._send(NewKeys().encode())
        self._writer.set_keys(outbound)
        if self.strict_kex:
            self._writer.reset_sequence()
        self._move(Phase.NEWKEYS)
        if self.role is Role.SERVER and self.kex_count == 0 and self._peer_ext_info:
            self._send(ExtInfo((("server-sig-algs", ",".join(SERVER_SIG_ALGS).encode()),)).encode())
        queued, self._queued = self._queued, []
        for payload in queued:
            self._send(payload)

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

    def _on_kexinit(self, payload: bytes, events: list[TransportEvent]) -> None:
        peer = KexInit.decode(payload)
        self._peer_kexinit_payload = payload
        local = self._local_kexinit
        assert local is not None
        client, server = (local, peer) if self.role is Role.CLIENT else (peer, local)
        if self.kex_count == 0:
            self.strict_kex = (
                self.config.strict_kex
                and STRICT_KEX_CLIENT in client.kex_algorithms
                and STRICT_KEX_SERVER in server.kex_algorithms
            )
            if self.strict_kex and self._reader.last_sequence != 0:
                raise RemoteProtocolError("strict key exchange: KEXINIT was not the peer's first packet")
            self._peer_ext_info = self.role is Role.SERVER and EXT_INFO_CLIENT in peer.kex_algorithms
        negotiated = negotiate(client, server, AEAD_CIPHERS, we_are_client=self.role is Role.CLIENT)
        self._negotiated = negotiated
        self._ignore_next_kex_packet = negotiated.ignore_guessed_packet
        local_payload = self._local_kexinit_payload
        ctx = KexContext(
            client_version=self._local_version if self.role is Role.CLIENT else self._peer_version,
            server_version=self._peer_version if self.role is Role.CLIENT else self._local_version,
            client_kexinit=local_payload if self.role is Role.CLIENT else payload,
            server_kexinit=payload if self.role is Role.CLIENT else local_payload,
        )
        method = KEX_METHODS[negotiated.kex]
        if self.role is Role.CLIENT:
            self._kex = method.make_client(ctx, self._rng)
        else:
            key = next(k for k in self._host_keys if negotiated.host_key in k.algorithms)
            self._kex = method.make_server(ctx, self._rng, key.signer(negotiated.host_key))
        self._move(Phase.KEX)
        for out in self._kex.start():
            self._send(out)

    def _on_kex_message(self, msg_type: int, payload: bytes, events: list[TransportEvent]) -> None:
        kex = self._kex
        assert kex is not None and self._negotiated is not None
        if msg_type not in kex.expected:
            raise RemoteProtocolError(
                f"peer sent {message_name(msg_type)} out of order in {self._negotiated.kex}"
            )
        replies, outcome = kex.receive(payload)
        for out in replies:
            self._send(out)
        if outcome is None:
            return
        self._kex = None
        if self._session_id is None:
            self._session_id = outcome.exchange_hash
        negotiated = self._negotiated
        self._pending_keys = build_keys(negotiated, outcome, self._session_id)
        if self.role is Role.SERVER:
            self._send_newkeys()
            return
        verify_signature(negotiated.host_key, outcome.host_key_blob, outcome.signature, outcome.exchange_hash)
        if self._host_key_blob is None:
            self._host_key_blob = outcome.host_key_blob
            self._awaiting_host_key = outcome
            events.append(
                HostKeyReceived(
                    negotiated.host_key, outcome.host_key_blob, fingerprint_sha256(outcome.host_key_blob)
                )
            )
            return
        if outcome.host_key_blob != self._host_key_blob:
            raise HostKeyError("the server's host key changed during key re-exchange")
        self._send_newkeys()

    def _on_peer_newkeys(self, events: list[TransportEvent]) -> None:
        assert self._pending_keys is not None and self._negotiated is not None
        inbound = self._pending_keys[1] if self.role is Role.CLIENT else self._pending_keys[0]
        self._reader.set_keys(inbound)
        if self.strict_kex:
            self._reader.reset_sequence()
        self._pending_keys = None
        self._peer_kexinit_payload = b""
        self._local_kexinit = None
        self._move(Phase.ESTABLISHED)
        self.kex_count += 1
        from sshtui.ssh.transport_snapshot import record_kex

        record_kex(self)
        n = self._negotiated
        cipher_spec_limit = rekey_byte_limit(n.cipher_c2s, n.cipher_s2c)
        self._rekey_bytes_limit = min(self.config.rekey_bytes, cipher_spec_limit)
        self._base_bytes_out, self._base_bytes_in = self._writer.bytes, self._reader.bytes
        self._rekey_in_at = self._base_bytes_in + self._rekey_bytes_limit
        self._base_packets_out, self._base_packets_in = self._writer.packets, self._reader.packets
        self._last_kex_time = self._now
        events.append(
            KexCompleted(
                self.kex_count,
                self._kex_initiator,
                self._now - self._kex_started_at,
                n.kex,
                n.cipher_c2s,
                n.cipher_s2c,
            )
        )

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

    def _on_ext_info(self, msg: ExtInfo, events: list[TransportEvent]) -> None:
        self._ext_info_count += 1
        if self._ext_info_count > MAX_EXT_INFO_MESSAGES:
            raise RemoteProtocolError(f"peer sent more than {MAX_EXT_INFO_MESSAGES} EXT_INFO messages")
        raw = msg.get("server-sig-algs")
        if raw is not None:
            self.server_sig_algs = WireReader(string(raw), "EXT_INFO").name_list("server-sig-algs")
        events.append(ExtInfoReceived(self.server_sig_algs))

    # ------------------------------------------------------------------ rekey policy

    def _check_rekey(self, events: list[TransportEvent] | None) -> None:
        if self.phase is not Phase.ESTABLISHED:
            return
        limit = self._rekey_bytes_limit
        packets_limit = self.config.rekey_packets
        seconds = self.config.rekey_seconds
        if (
            self._writer.bytes - self._base_bytes_out >= limit
            or self._reader.bytes - self._base_bytes_in >= limit
            or self._writer.packets - self._base_packets_out >= packets_limit
            or self._reader.packets - self._base_packets_in >= packets_limit
            or (seconds is not None and self._now - self._last_kex_time >= seconds)
        ):
            self._send_kexinit(initiator="local")
            if events is not None:
                events.append(KexStarted(self.kex_count, "local"))
