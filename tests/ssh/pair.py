"""An in-memory client <-> server transport pair for tests of the sans-IO core."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from sshtui.ssh.config import TransportConfig
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.events import HostKeyReceived, TransportEvent
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Role

_HOST_KEYS: dict[str, PrivateKey] = {}


def host_key(kind: str) -> PrivateKey:
    """Host keys are slow to make (RSA); share one per kind across tests."""
    if kind not in _HOST_KEYS:
        _HOST_KEYS[kind] = PrivateKey.generate(kind)
    return _HOST_KEYS[kind]


def seeded_rng(seed: int):  # type: ignore[no-untyped-def]
    gen = random.Random(seed)
    return lambda n: gen.randbytes(n)


@dataclass
class Pair:
    client: Transport
    server: Transport
    now: float = 1000.0
    client_events: list[TransportEvent] = field(default_factory=list)
    server_events: list[TransportEvent] = field(default_factory=list)
    auto_accept: bool = True
    chunk: int | None = None  # deliver at most this many bytes per call (None: everything)

    def _deliver(self, data: bytes, to: Transport, sink: list[TransportEvent]) -> None:
        if not data:
            return
        step = self.chunk or len(data)
        for i in range(0, len(data), step):
            events = to.receive_data(data[i : i + step], self.now)
            sink.extend(events)
            if to is self.client and self.auto_accept:
                for ev in events:
                    if isinstance(ev, HostKeyReceived):
                        sink.extend(self.client.accept_host_key(self.now))

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            c = self.client.data_to_send()
            s = self.server.data_to_send()
            if not c and not s:
                return
            self._deliver(c, self.server, self.server_events)
            self._deliver(s, self.client, self.client_events)

    def events(self, side: str, kind: type) -> list:  # type: ignore[type-arg]
        pool = self.client_events if side == "client" else self.server_events
        return [e for e in pool if isinstance(e, kind)]


def make_pair(
    client_config: TransportConfig | None = None,
    server_config: TransportConfig | None = None,
    host_key_kinds: tuple[str, ...] = ("ed25519",),
    seed: int | None = None,
    start: bool = True,
) -> Pair:
    rng_c = seeded_rng(seed) if seed is not None else os.urandom
    rng_s = seeded_rng(seed + 1) if seed is not None else os.urandom
    client = Transport(Role.CLIENT, client_config, rng=rng_c)
    server = Transport(
        Role.SERVER,
        server_config or server_defaults(),
        rng=rng_s,
        host_keys=[host_key(k) for k in host_key_kinds],
    )
    pair = Pair(client, server)
    if start:
        client.start(pair.now)
        server.start(pair.now)
    return pair


def server_defaults() -> TransportConfig:
    from sshtui.ssh.config import server_config

    return server_config()
