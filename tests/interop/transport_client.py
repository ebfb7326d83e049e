"""A minimal blocking driver for the transport core, enough to talk to a real sshd in tests."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from sshtui.ssh.config import TransportConfig
from sshtui.ssh.events import Disconnected, HostKeyReceived, KexCompleted, ServiceAccepted, TransportEvent
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Role


@dataclass
class Session:
    transport: Transport
    sock: socket.socket
    events: list[TransportEvent] = field(default_factory=list)

    def flush(self) -> None:
        data = self.transport.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump_until(self, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        self.flush()
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out in phase {self.transport.phase.name}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            new = self.transport.receive_data(data, time.monotonic())
            for event in new:
                if isinstance(event, HostKeyReceived):
                    new.extend(self.transport.accept_host_key(time.monotonic()))
            self.events.extend(new)
            self.flush()
            if any(isinstance(e, Disconnected) for e in new):
                return

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)

    def close(self) -> None:
        try:
            self.transport.disconnect(now=time.monotonic())
            self.flush()
        except OSError:
            pass
        self.sock.close()


def connect(host: str, port: int, config: TransportConfig | None = None, timeout: float = 10.0) -> Session:
    sock = socket.create_connection((host, port), timeout=timeout)
    transport = Transport(Role.CLIENT, config, rng=os.urandom)
    transport.start(time.monotonic())
    session = Session(transport, sock)
    session.pump_until(lambda: session.count(KexCompleted) >= 1 or transport.is_closed, timeout)
    if transport.is_closed:
        return session
    transport.request_service("ssh-userauth", time.monotonic())
    session.pump_until(lambda: session.count(ServiceAccepted) >= 1 or transport.is_closed, timeout)
    return session
