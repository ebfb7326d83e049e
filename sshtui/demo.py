"""``sshtui demo``: show what the embedded SSH stack does, with nothing to set up.

Until the embedded server and the TUI exist, the demo runs our client core against our
server core in memory and prints every phase of the handshake as it happened: the
negotiated algorithms with why each won, the message timeline, and a rekey.
"""

from __future__ import annotations

import argparse
import os
import time

from sshtui.ssh.config import server_config
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.events import HostKeyReceived, TransportEvent
from sshtui.ssh.transport import Role, Transport


def _pump(client: Transport, server: Transport, log: list[str]) -> None:
    for _ in range(100):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            return
        if to_server:
            server.receive_data(to_server, time.monotonic())
        if to_client:
            events: list[TransportEvent] = client.receive_data(to_client, time.monotonic())
            for event in events:
                if isinstance(event, HostKeyReceived):
                    log.append(f"host key {event.algorithm} {event.fingerprint} (accepted for the demo)")
                    client.accept_host_key(time.monotonic())


def run_in_memory_demo() -> str:
    host_key = PrivateKey.generate("ed25519")
    client = Transport(Role.CLIENT, rng=os.urandom)
    server = Transport(Role.SERVER, server_config(), rng=os.urandom, host_keys=[host_key])
    log: list[str] = []
    client.start(time.monotonic())
    server.start(time.monotonic())
    _pump(client, server, log)
    client.request_service("ssh-userauth", time.monotonic())
    _pump(client, server, log)
    client.request_rekey(time.monotonic())
    _pump(client, server, log)
    snap = client.snapshot()
    lines = [
        "sshtui demo: our SSH client core talking to our SSH server core, in memory",
        "",
        f"  server version   {snap.peer_version}",
        f"  strict kex       {'yes' if snap.strict_kex else 'no'}",
        f"  post-quantum     {'yes' if snap.post_quantum else 'no'}",
        f"  session id       {snap.session_id_fingerprint}",
        *(f"  {entry}" for entry in log),
        "",
        "Negotiated algorithms (RFC 4253 §7.1: the client's first choice the server also offers):",
    ]
    for choice in snap.negotiation:
        lines.append(f"  {choice.category:<16} {choice.chosen:<34} {choice.reason}")
    lines += ["", "Timeline:"]
    for entry in snap.timeline:
        lines.append(f"  {entry.t_ms:9.3f} ms  {entry.direction:<8} {entry.event:<22} {entry.size:>6} B")
    lines += ["", f"Key exchanges: {snap.kex_count} ({snap.rekeys} rekey)"]
    for record in snap.kex_history:
        lines.append(
            f"  #{record.number} by {record.initiated_by:<5} {record.kex_algorithm}"
            f" in {record.duration_ms:.1f} ms"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace | None = None) -> int:
    print(run_in_memory_demo())
    return 0
