"""Rekey policy: when to start a key re-exchange (RFC 4253 §9; RFC 4344 §3; OpenSSH's
RekeyLimit, ssh_config(5)).

A re-exchange starts once either direction has carried the byte limit (``rekey_bytes``,
capped by what the negotiated cipher may safely carry) or ``rekey_packets`` since the last
exchange, or once ``rekey_seconds`` have passed. The kex driver restarts the counters when an
exchange finishes.
"""

from __future__ import annotations

from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.events import KexStarted, TransportEvent
from sshtui.ssh.transport_machine import Phase, TransportMachine


def rekey_byte_limit(*ciphers: str) -> int:
    """RFC 4344 §3.2: rekey after 2**(L/4) blocks of L bits; 1 GiB for 64-bit-block ciphers."""
    limits = []
    for name in ciphers:
        block = CIPHERS[name].block_size
        limits.append((1 << (block * 2)) * block if block >= 16 else 1 << 30)
    return min(limits)


class RekeyPolicy(TransportMachine):
    """Starts the re-exchanges of the ``Transport`` it is part of."""

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
