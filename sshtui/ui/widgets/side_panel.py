"""The live side panel of a session: key exchange state (RFC 4253 §7, strict kex per OpenSSH
PROTOCOL §1.10), rekey counters against their limits (RFC 4344 §3), channel windows (RFC 4254 §5.2)
and keepalive liveness.

The panel is a pure function of the ``ConnectionSnapshot``s it is given ("attributes down"); the only
state it keeps is a bounded history per channel for the window sparklines and the byte rate. However
fast snapshots arrive, it re-renders at most ``REFRESH_HZ`` times a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from sshtui.ssh.channels.snapshot import ChannelSnapshot
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.negotiate import CategoryChoice
from sshtui.ssh.snapshot import TransportSnapshot

REFRESH_HZ = 4
HISTORY = 48  # window samples kept per channel: one sparkline cell each
MAX_CHANNELS_SHOWN = 16
BAR_WIDTH = 20
SPARK_CELLS = "▁▂▃▄▅▆▇█"
CATEGORY_LABELS = {
    "kex": "kex",
    "host_key": "host key",
    "cipher_c2s": "cipher c→s",
    "cipher_s2c": "cipher s→c",
    "mac_c2s": "mac c→s",
    "mac_s2c": "mac s→c",
    "compression_c2s": "compress c→s",
    "compression_s2c": "compress s→c",
}


@dataclass(frozen=True, slots=True)
class Liveness:
    """Keepalive state from the driver (ServerAliveInterval); not part of the sans-IO snapshot."""

    rtt_seconds: float | None  # the last keepalive's round trip, None before the first answer
    missed_replies: int
    interval_seconds: float = 0.0  # 0 when keepalives are off


# --- formatting shared by the panels ------------------------------------------------------------


def format_bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def format_rate(bytes_per_second: float) -> str:
    return f"{format_bytes(bytes_per_second)}/s"


def bar(value: float, limit: float, width: int = BAR_WIDTH) -> str:
    """``███░░░`` filled in proportion to ``value / limit`` (full when at or over the limit)."""
    fraction = 0.0 if limit <= 0 else min(1.0, max(0.0, value / limit))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def sparkline(values: Iterable[float], ceiling: float | None = None) -> str:
    """One cell per value, scaled to ``ceiling`` (the largest value when not given)."""
    samples = list(values)
    if not samples:
        return ""
    top = ceiling if ceiling is not None else max(samples)
    if top <= 0:
        return SPARK_CELLS[0] * len(samples)
    last = len(SPARK_CELLS) - 1
    return "".join(SPARK_CELLS[min(last, max(0, round(v / top * last)))] for v in samples)


# --- the sections, as pure functions of a snapshot ------------------------------------------------


def render_kex(t: TransportSnapshot) -> Text:
    text = Text()
    text.append("Key exchange\n", style="bold")
    text.append(f"phase       {t.phase}{' (kex running)' if t.kex_in_progress else ''}\n")
    text.append(f"exchanges   {t.kex_count} ({t.rekeys} rekey{'s' if t.rekeys != 1 else ''})\n")
    badges = []
    if t.strict_kex:
        badges.append(("[strict kex]", "bold green"))
    if t.post_quantum:
        badges.append(("[post-quantum]", "bold cyan"))
    if badges:
        for label, style in badges:
            text.append(label, style=style)
            text.append(" ")
        text.append("\n")
    text.append(f"server      {t.peer_version if t.role == 'client' else t.local_version}\n")
    if t.session_id_fingerprint:
        text.append(f"session id\n  {t.session_id_fingerprint}\n")
    if t.error:
        text.append(f"error       {t.error}\n", style="bold red")
    elif t.disconnect_reason:
        text.append(f"closed      {t.disconnect_reason}\n", style="yellow")
    return text


def choice_line(choice: CategoryChoice) -> tuple[str, str]:
    label = CATEGORY_LABELS.get(choice.category, choice.category)
    return f"{label:<13}{choice.chosen}", choice.reason


def render_algorithms(t: TransportSnapshot) -> Text:
    text = Text()
    text.append("Negotiated\n", style="bold")
    if not t.negotiation:
        text.append("not negotiated yet\n", style="dim")
        return text
    for choice in t.negotiation:
        line, reason = choice_line(choice)
        text.append(line + "\n")
        text.append(f"  {reason}\n", style="dim")
    return text


def render_rekey(t: TransportSnapshot) -> Text:
    r = t.rekey
    text = Text()
    text.append("Rekey\n", style="bold")
    text.append(f"bytes   {bar(r.bytes_since_kex, r.bytes_limit)} "
                f"{format_bytes(r.bytes_since_kex)} / {format_bytes(r.bytes_limit)}\n")
    text.append(f"packets {bar(r.packets_since_kex, r.packets_limit)} "
                f"{r.packets_since_kex} / {r.packets_limit}\n")
    if r.seconds_limit:
        text.append(f"time    {bar(r.seconds_since_kex, r.seconds_limit)} "
                    f"{r.seconds_since_kex:.0f} s / {r.seconds_limit:.0f} s\n")
    else:
        text.append(f"time    {r.seconds_since_kex:.0f} s since kex (no time limit)\n")
    text.append(f"rekeys  {t.rekeys}\n")
    last = t.kex_history[-1] if t.kex_history else None
    if last is not None and last.number > 1:
        who = "us" if last.initiated_by == "local" else "the peer"
        text.append(f"last    #{last.number} started by {who}, took {last.duration_ms:.1f} ms\n")
    elif last is not None:
        text.append(f"initial exchange took {last.duration_ms:.1f} ms\n")
    return text


class ChannelHistory:
    """Window samples and the byte rate of one channel, bounded to ``HISTORY`` samples."""

    __slots__ = ("local_windows", "remote_windows", "_clock", "_total", "rate")

    def __init__(self) -> None:
        self.local_windows: deque[int] = deque(maxlen=HISTORY)
        self.remote_windows: deque[int] = deque(maxlen=HISTORY)
        self._clock: float | None = None
        self._total = 0
        self.rate = 0.0

    def add(self, channel: ChannelSnapshot) -> None:
        self.local_windows.append(channel.local_window)
        self.remote_windows.append(channel.remote_window)
        # The channel's own clock (the connection's ``now``) makes rates independent of UI timing.
        clock = channel.opened_at + channel.age_seconds
        total = channel.bytes_sent + channel.bytes_received
        if self._clock is not None and clock > self._clock:
            self.rate = max(0, total - self._total) / (clock - self._clock)
        self._clock, self._total = clock, total


def render_channels(channels: Sequence[ChannelSnapshot], history: dict[int, ChannelHistory]) -> Text:
    text = Text()
    text.append("Channels\n", style="bold")
    if not channels:
        text.append("no channels open\n", style="dim")
        return text
    for channel in channels[:MAX_CHANNELS_SHOWN]:
        h = history.get(channel.local_id)
        remote = "?" if channel.remote_id is None else str(channel.remote_id)
        text.append(f"#{channel.local_id}→{remote} {channel.channel_type} {channel.state.lower()}\n")
        local_spark = sparkline(h.local_windows) if h else ""
        remote_spark = sparkline(h.remote_windows) if h else ""
        text.append(f"  local window  {format_bytes(channel.local_window):>10} {local_spark}\n")
        text.append(f"  remote window {format_bytes(channel.remote_window):>10} {remote_spark}\n")
        text.append(f"  max packet    in {channel.local_max_packet}, out {channel.remote_max_packet}\n")
        sent, received = format_bytes(channel.bytes_sent), format_bytes(channel.bytes_received)
        text.append(f"  sent {sent}, received {received}, {format_rate(h.rate if h else 0.0)}\n")
    hidden = len(channels) - MAX_CHANNELS_SHOWN
    if hidden > 0:
        text.append(f"… and {hidden} more\n", style="dim")
    return text


def render_liveness(liveness: Liveness | None) -> Text:
    text = Text()
    text.append("Liveness\n", style="bold")
    if liveness is None or (liveness.interval_seconds <= 0 and liveness.rtt_seconds is None):
        text.append("keepalives off\n", style="dim")
        return text
    rtt = "no answer yet" if liveness.rtt_seconds is None else f"{liveness.rtt_seconds * 1000:.1f} ms"
    text.append(f"keepalive RTT {rtt}\n")
    style = "bold red" if liveness.missed_replies else ""
    text.append(f"missed replies {liveness.missed_replies}\n", style=style)
    return text


# --- the widget ---------------------------------------------------------------------------------


class SidePanel(VerticalScroll):
    """Kex state, negotiated algorithms with reasons, rekey bars, channel windows and liveness."""

    DEFAULT_CSS = """
    SidePanel { width: 60; height: 1fr; }
    SidePanel > Static { margin-bottom: 1; }
    """

    def __init__(
        self,
        snapshot: ConnectionSnapshot | None = None,
        liveness: Liveness | None = None,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.snapshot: ConnectionSnapshot | None = None
        self.liveness = liveness
        self.history: dict[int, ChannelHistory] = {}
        self.renders = 0  # how many times the sections were rebuilt (coalescing is observable)
        self._dirty = False
        self._failed = False
        if snapshot is not None:
            self.update_snapshot(snapshot, liveness)

    def compose(self) -> ComposeResult:
        yield Static(id="panel-kex", markup=False)
        yield Static(id="panel-algorithms", markup=False)
        yield Static(id="panel-rekey", markup=False)
        yield Static(id="panel-channels", markup=False)
        yield Static(id="panel-liveness", markup=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self._refresh_if_dirty)
        self._refresh_if_dirty()

    def update_snapshot(self, snapshot: ConnectionSnapshot, liveness: Liveness | None = None) -> None:
        """Take a new snapshot; the panel shows it at its next refresh tick."""
        self.snapshot = snapshot
        if liveness is not None:
            self.liveness = liveness
        present = set()
        for channel in snapshot.channels:
            present.add(channel.local_id)
            self.history.setdefault(channel.local_id, ChannelHistory()).add(channel)
        for gone in self.history.keys() - present:
            del self.history[gone]
        self._dirty = True

    def _refresh_if_dirty(self) -> None:
        if not self._dirty or not self.is_mounted or self.snapshot is None:
            return
        self._dirty = False
        snap = self.snapshot
        try:
            sections = {
                "#panel-kex": render_kex(snap.transport),
                "#panel-algorithms": render_algorithms(snap.transport),
                "#panel-rekey": render_rekey(snap.transport),
                "#panel-channels": render_channels(snap.channels, self.history),
                "#panel-liveness": render_liveness(self.liveness),
            }
            for selector, text in sections.items():
                self.query_one(selector, Static).update(text)
        except Exception as exc:  # a panel must never take the session down with a traceback
            if not self._failed:
                self._failed = True
                self.notify(f"side panel: {exc}", title="Panel error", severity="error", markup=False)
            return
        self._failed = False
        self.renders += 1

    def section_text(self, name: str) -> str:
        """What a section shows, as plain text: kex, algorithms, rekey, channels or liveness."""
        return str(self.query_one(f"#panel-{name}", Static).content)
