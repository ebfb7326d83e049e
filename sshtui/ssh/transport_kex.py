"""The key-exchange driver (RFC 4253 §7-§8): our KEXINIT with the RFC 8308 §2.1 and OpenSSH
"kex-strict" markers on the first exchange, negotiation, the negotiated method's messages, the
server's host key and signature, and NEWKEYS in both directions (§7.3).

A client stops once the signature checks out and reports ``HostKeyReceived``; the exchange
goes on when the driver calls ``Transport.accept_host_key``. A host key that changes during
a re-exchange ends the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sshtui.ssh.config import (
    EXT_INFO_CLIENT,
    EXT_INFO_SERVER,
    STRICT_KEX_CLIENT,
    STRICT_KEX_SERVER,
)
from sshtui.ssh.constants import message_name
from sshtui.ssh.crypto.hostkeys import fingerprint_sha256, verify_signature
from sshtui.ssh.crypto.kex_base import KexContext
from sshtui.ssh.crypto.kex_registry import KEX_METHODS
from sshtui.ssh.errors import HostKeyError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.events import HostKeyReceived, KexCompleted, TransportEvent
from sshtui.ssh.messages.transport import ExtInfo, KexInit, NewKeys
from sshtui.ssh.negotiate import negotiate
from sshtui.ssh.transport_ext_info import SERVER_SIG_ALGS
from sshtui.ssh.transport_keys import AEAD_CIPHERS, build_keys
from sshtui.ssh.transport_machine import Phase, Role, TransportMachine
from sshtui.ssh.transport_rekey import rekey_byte_limit

if TYPE_CHECKING:
    from sshtui.ssh.transport import Transport


class KexDriver(TransportMachine):
    """Runs the key exchanges of the ``Transport`` it is part of."""

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

        record_kex(cast("Transport", self))  # a KexDriver only ever runs as a Transport
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
