"""A diagnostics export of one connection (text or JSON) that is safe to paste into a bug report.

Built from snapshots (RFC 4253 transport, RFC 4252 authentication, RFC 4254 channels and forwards)
by an allow-list: only the fields named here are copied, so a field added to a snapshot later is
left out until someone decides it is safe. Never exported: secrets (there are none in snapshots),
key blobs and fingerprints of host or user keys, and the session id, not even its fingerprint
(RFC 4253 §7.2: it identifies the session and is signed in user authentication).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sshtui.net.forward_snapshot import ForwardSnapshot
from sshtui.ssh.channels.snapshot import ChannelSnapshot
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.snapshot import TransportSnapshot
from sshtui.ssh.userauth_events import AuthAttempt
from sshtui.ui.widgets.side_panel import Liveness

FORMAT_VERSION = 1
LEFT_OUT = (
    "passwords, passphrases and private keys",
    "host key and user key blobs and fingerprints",
    "the session id and its fingerprint",
)

_TRANSPORT_FIELDS = (
    "role", "phase", "local_version", "peer_version", "strict_kex", "post_quantum", "kex_count", "rekeys",
    "kex_in_progress", "kex_algorithm", "host_key_algorithm", "cipher_c2s", "cipher_s2c", "mac_c2s",
    "mac_s2c", "compression_c2s", "compression_s2c", "server_sig_algs", "bytes_sent", "bytes_received",
    "packets_sent", "packets_received", "timeline_dropped", "disconnect_reason", "error",
)
_REKEY_FIELDS = (
    "bytes_since_kex", "packets_since_kex", "seconds_since_kex", "bytes_limit", "packets_limit",
    "seconds_limit",
)
_KEX_RECORD_FIELDS = (
    "number", "initiated_by", "started_ms", "duration_ms", "kex_algorithm", "host_key_algorithm",
    "cipher_c2s", "cipher_s2c", "mac_c2s", "mac_s2c", "bytes_before", "packets_before",
)
_CHANNEL_FIELDS = (
    "local_id", "remote_id", "channel_type", "state", "local_window", "remote_window", "local_max_packet",
    "remote_max_packet", "bytes_sent", "bytes_received", "packets_sent", "packets_received", "eof_sent",
    "eof_received", "close_sent", "close_received", "age_seconds", "exit_status", "exit_signal",
)
_AUTH_FIELDS = ("method", "key_type", "result", "allowed", "partial_success")  # not the key fingerprint
_FORWARD_FIELDS = (
    "kind", "spec", "listen", "target", "reason", "open_connections", "total_connections",
    "failed_connections", "bytes_sent", "bytes_received", "last_error",
)


def _pick(obj: object, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _transport(t: TransportSnapshot) -> dict[str, Any]:
    out = _pick(t, _TRANSPORT_FIELDS)
    out["negotiation"] = [
        {
            "category": c.category,
            "chosen": c.chosen,
            "client_rank": c.client_rank,
            "server_rank": c.server_rank,
            "reason": c.reason,
            "client_offer": list(c.client_offer),
            "server_offer": list(c.server_offer),
        }
        for c in t.negotiation
    ]
    out["rekey"] = _pick(t.rekey, _REKEY_FIELDS)
    out["kex_history"] = [_pick(record, _KEX_RECORD_FIELDS) for record in t.kex_history]
    out["message_counts"] = dict(t.message_counts)
    out["timeline"] = [
        {"t_ms": round(e.t_ms, 3), "direction": e.direction, "event": e.event, "size": e.size}
        for e in t.timeline
    ]
    return out


def _channel(c: ChannelSnapshot) -> dict[str, Any]:
    return _pick(c, _CHANNEL_FIELDS)


def _auth(a: AuthAttempt) -> dict[str, Any]:
    return _pick(a, _AUTH_FIELDS)


def _forward(f: ForwardSnapshot) -> dict[str, Any]:
    out = _pick(f, _FORWARD_FIELDS)
    out["state"] = f.state.value
    out["errors"] = [{"reason": reason, "count": count} for reason, count in f.errors]
    return out


def diagnostics(
    snapshot: ConnectionSnapshot,
    *,
    forwards: Sequence[ForwardSnapshot] = (),
    liveness: Liveness | None = None,
    destination: str = "",
    software: str = "",
) -> dict[str, Any]:
    """The export as plain JSON types; see the module docstring for what is left out."""
    out: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "software": software,
        "destination": destination,
        "username": snapshot.username,
        "authenticated": snapshot.authenticated,
        "left_out": list(LEFT_OUT),
        "transport": _transport(snapshot.transport),
        "auth": [_auth(a) for a in snapshot.auth],
        "channels": [_channel(c) for c in snapshot.channels],
        "forwards": [_forward(f) for f in forwards],
    }
    if liveness is not None:
        out["liveness"] = {
            "keepalive_interval_seconds": liveness.interval_seconds,
            "keepalive_rtt_ms": None if liveness.rtt_seconds is None else liveness.rtt_seconds * 1000,
            "missed_replies": liveness.missed_replies,
        }
    return out


def export_json(snapshot: ConnectionSnapshot, **context: Any) -> str:
    return json.dumps(diagnostics(snapshot, **context), indent=1, sort_keys=False) + "\n"


def export_text(snapshot: ConnectionSnapshot, **context: Any) -> str:
    """The same content for people: one section per part, one ``name: value`` per line."""
    data = diagnostics(snapshot, **context)
    t = data["transport"]
    lines = [f"sshtui diagnostics (format {data['format']}) {data['software']}".rstrip()]
    lines.append(f"destination: {data['destination']}  user: {data['username']}  "
                 f"authenticated: {data['authenticated']}")
    lines.append("left out: " + "; ".join(data["left_out"]))
    lines.append("")
    lines.append("[transport]")
    for name in _TRANSPORT_FIELDS:
        value = t[name]
        lines.append(f"{name}: {', '.join(value) if isinstance(value, list) else value}")
    for name, value in t["rekey"].items():
        lines.append(f"rekey.{name}: {value}")
    lines.append("")
    lines.append("[negotiation]")
    for choice in t["negotiation"]:
        lines.append(f"{choice['category']}: {choice['chosen']} ({choice['reason']})")
        lines.append(f"  client offered: {', '.join(choice['client_offer'])}")
        lines.append(f"  server offered: {', '.join(choice['server_offer'])}")
    lines.append("")
    lines.append("[key exchanges]")
    for record in t["kex_history"]:
        lines.append(
            f"#{record['number']} by {record['initiated_by']} at {record['started_ms']:.1f} ms, "
            f"{record['duration_ms']:.1f} ms: {record['kex_algorithm']} / {record['host_key_algorithm']} / "
            f"{record['cipher_c2s']}"
        )
    lines.append("")
    lines.append("[authentication]")
    for attempt in data["auth"]:
        key = f" {attempt['key_type']}" if attempt["key_type"] else ""
        allowed = ", ".join(attempt["allowed"])
        lines.append(f"{attempt['method']}{key}: {attempt['result']} (allowed: {allowed})")
    lines.append("")
    lines.append("[channels]")
    for channel in data["channels"]:
        lines.append(" ".join(f"{k}={v}" for k, v in channel.items()))
    if data["forwards"]:
        lines.append("")
        lines.append("[forwards]")
        for forward in data["forwards"]:
            lines.append(" ".join(f"{k}={v}" for k, v in forward.items() if k != "errors"))
    if "liveness" in data:
        lines.append("")
        lines.append("[liveness]")
        lines.extend(f"{k}: {v}" for k, v in data["liveness"].items())
    lines.append("")
    lines.append("[messages]")
    lines.extend(f"{name}: {count}" for name, count in t["message_counts"].items())
    lines.append("")
    lines.append(f"[timeline] ({t['timeline_dropped']} entries not kept)")
    lines.extend(f"{e['t_ms']:10.1f} ms {e['direction']:<8} {e['event']} {e['size']}" for e in t["timeline"])
    return "\n".join(lines) + "\n"
