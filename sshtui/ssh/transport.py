"""The SSH transport layer as a sans-IO state machine (RFC 4253 §4-§11, RFC 8308, OpenSSH
strict kex): the API its driver uses.

Bytes in (``receive_data``), events out, bytes out (``data_to_send``). Time comes in as
``now`` on every call and randomness through the ``rng`` given at construction.

``Transport`` combines the phase machine and message dispatch (``transport_machine``, home of
``Role`` and ``Phase``) with the key-exchange driver (``transport_kex``), the rekey policy
(``transport_rekey``) and EXT_INFO handling (``transport_ext_info``).
"""

from __future__ import annotations

from sshtui.ssh.constants import DisconnectReason, message_name
from sshtui.ssh.errors import (
    ConnectionClosedError,
    HostKeyRejected,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from sshtui.ssh.events import TransportEvent
from sshtui.ssh.messages.transport import Disconnect, ServiceRequest, Unimplemented
from sshtui.ssh.negotiate import Negotiated
from sshtui.ssh.snapshot import TransportSnapshot
from sshtui.ssh.transport_ext_info import ExtInfoHandler
from sshtui.ssh.transport_kex import KexDriver
from sshtui.ssh.transport_machine import Phase, Role
from sshtui.ssh.transport_rekey import RekeyPolicy


class Transport(KexDriver, RekeyPolicy, ExtInfoHandler):
    """One side of an SSH transport. Not thread-safe; one driver feeds it."""

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
