"""Immutable per-channel views for the UI and ``--stats-json`` (RFC 4254 §5 channel state).

The UI never touches live ``Channel`` objects; ``ConnectionLayer.snapshot`` hands out
these instead. ``sshtui.ssh.snapshot.to_jsonable`` turns them into plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshtui.ssh.channels.channel import Channel


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    local_id: int
    remote_id: int | None  # None until the peer confirmed our open
    channel_type: str
    state: str  # a ChannelState name
    local_window: int  # what the peer may still send us
    remote_window: int  # what we may still send the peer
    local_max_packet: int
    remote_max_packet: int
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    eof_sent: bool
    eof_received: bool
    close_sent: bool
    close_received: bool
    opened_at: float  # the ``now`` of the open request
    age_seconds: float  # from opened_at to the ``now`` of the snapshot
    exit_status: int | None
    exit_signal: str | None


def snapshot_channel(channel: Channel, now: float) -> ChannelSnapshot:
    return ChannelSnapshot(
        local_id=channel.local_id,
        remote_id=channel.remote_id,
        channel_type=channel.channel_type,
        state=channel.state.name,
        local_window=channel.local_window,
        remote_window=channel.remote_window,
        local_max_packet=channel.local_max_packet,
        remote_max_packet=channel.remote_max_packet,
        bytes_sent=channel.bytes_sent,
        bytes_received=channel.bytes_received,
        packets_sent=channel.packets_sent,
        packets_received=channel.packets_received,
        eof_sent=channel.eof_sent,
        eof_received=channel.eof_received,
        close_sent=channel.close_sent,
        close_received=channel.close_received,
        opened_at=channel.opened_at,
        age_seconds=max(0.0, now - channel.opened_at),
        exit_status=channel.exit_status,
        exit_signal=channel.exit_signal,
    )
