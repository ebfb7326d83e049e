"""Building ``TransportSnapshot``s and kex history records from a live transport.

Kept apart from ``transport.py`` so the state machine stays readable; only this module
knows how internal counters map to what the UI shows. Never copies key material: the
session id appears only as a SHA256 fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from sshtui.ssh.crypto.hostkeys import fingerprint_sha256
from sshtui.ssh.crypto.kex_registry import KEX_METHODS
from sshtui.ssh.snapshot import KexRecord, RekeyCounters, TransportSnapshot

if TYPE_CHECKING:
    from sshtui.ssh.transport import Transport


def session_id_fingerprint(session_id: bytes | None) -> str:
    if session_id is None:
        return ""
    digest = hashlib.sha256(session_id).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def record_kex(t: Transport) -> None:
    """Append the exchange that just finished to ``t.kex_history``."""
    n = t.negotiated
    assert n is not None
    t.kex_history.append(
        KexRecord(
            number=t.kex_count,
            initiated_by=t._kex_initiator,
            started_ms=(t._kex_started_at - t._start_time) * 1000.0,
            duration_ms=(t._now - t._kex_started_at) * 1000.0,
            kex_algorithm=n.kex,
            host_key_algorithm=n.host_key,
            cipher_c2s=n.cipher_c2s,
            cipher_s2c=n.cipher_s2c,
            mac_c2s=n.mac_c2s,
            mac_s2c=n.mac_s2c,
            bytes_before=(t._writer.bytes - t._base_bytes_out) + (t._reader.bytes - t._base_bytes_in),
            packets_before=(t._writer.packets - t._base_packets_out)
            + (t._reader.packets - t._base_packets_in),
        )
    )


def build_snapshot(t: Transport) -> TransportSnapshot:
    n = t.negotiated
    since = RekeyCounters(
        bytes_since_kex=(t._writer.bytes - t._base_bytes_out) + (t._reader.bytes - t._base_bytes_in),
        packets_since_kex=(t._writer.packets - t._base_packets_out)
        + (t._reader.packets - t._base_packets_in),
        seconds_since_kex=max(0.0, t._now - t._last_kex_time),
        bytes_limit=t._rekey_bytes_limit,
        packets_limit=t.config.rekey_packets,
        seconds_limit=t.config.rekey_seconds,
    )
    return TransportSnapshot(
        role=t.role.value,
        phase=t.phase.value,
        local_version=t._local_version.decode("ascii", "replace"),
        peer_version=t._peer_version.decode("utf-8", "backslashreplace"),
        strict_kex=t.strict_kex,
        kex_count=t.kex_count,
        rekeys=max(0, t.kex_count - 1),
        kex_in_progress=t.phase.name in ("KEXINIT", "KEX", "NEWKEYS") and t.kex_count > 0,
        kex_algorithm=n.kex if n else "",
        host_key_algorithm=n.host_key if n else "",
        cipher_c2s=n.cipher_c2s if n else "",
        cipher_s2c=n.cipher_s2c if n else "",
        mac_c2s=n.mac_c2s if n else "",
        mac_s2c=n.mac_s2c if n else "",
        compression_c2s=n.compression_c2s if n else "",
        compression_s2c=n.compression_s2c if n else "",
        post_quantum=bool(n and n.kex in KEX_METHODS and KEX_METHODS[n.kex].post_quantum),
        negotiation=n.choices if n else (),
        host_key_fingerprint=fingerprint_sha256(t._host_key_blob) if t._host_key_blob else "",
        session_id_fingerprint=session_id_fingerprint(t.session_id),
        server_sig_algs=t.server_sig_algs,
        bytes_sent=t._writer.bytes,
        bytes_received=t._reader.bytes,
        packets_sent=t._writer.packets,
        packets_received=t._reader.packets,
        rekey=since,
        kex_history=tuple(t.kex_history),
        message_counts=t.timeline.counts(),
        timeline=t.timeline.entries(),
        timeline_dropped=t.timeline.dropped,
        disconnect_reason=t._disconnect_reason,
        error=str(t.error) if t.error else "",
    )
