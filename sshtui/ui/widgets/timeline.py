"""The handshake timeline: a waterfall of the connection's setup (RFC 4253 §4.2 version exchange,
§7 key exchange, §10 service request; RFC 4252 §5 authentication; RFC 4254 §5.1 channel open and
§6 session requests) with millisecond offsets, durations and sizes, then a scrolling log of the
messages after the first NEWKEYS with counts per message type.

Built from ``TransportSnapshot.timeline`` only; the widget re-renders at most ``REFRESH_HZ`` times
a second however often snapshots arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.snapshot import TimelineEntry
from sshtui.ssh.userauth_events import AuthAttempt
from sshtui.ui.widgets.side_panel import format_bytes

REFRESH_HZ = 4
MAX_WATERFALL_ROWS = 64
LOG_LINES = 400  # the newest messages shown in the log (the snapshot itself is bounded too)
WATERFALL_WIDTH = 20
LABEL_WIDTH = 40
ARROWS = {"sent": "→", "received": "←", "local": "·"}
# Messages that mean the session is running: the setup waterfall ends at the first one.
SESSION_TRAFFIC = frozenset({"CHANNEL_DATA", "CHANNEL_EXTENDED_DATA"})
_AUTH_REPLIES = frozenset({"USERAUTH_SUCCESS", "USERAUTH_FAILURE", "USERAUTH_PK_OK"})
_CHANNEL_SETUP = frozenset(
    {"CHANNEL_OPEN", "CHANNEL_OPEN_CONFIRMATION", "CHANNEL_OPEN_FAILURE", "CHANNEL_REQUEST",
     "CHANNEL_SUCCESS", "CHANNEL_FAILURE"}
)


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    phase: str
    label: str
    direction: str  # "sent" | "received" | "local"
    start_ms: float  # from the start of the connection (negative for the TCP connect)
    duration_ms: float  # until the next step of the setup
    size: int


def phase_of(event: str, kex_done: bool) -> str | None:
    """Which setup phase a timeline event belongs to, or None for other traffic."""
    if event == "version":
        return "version exchange"
    if event in ("KEXINIT", "NEWKEYS", "host key accepted") or event.startswith("KEX"):
        return "rekey" if kex_done else "key exchange"
    if event == "EXT_INFO":
        return "key exchange"
    if event.startswith("SERVICE_"):
        return "service"
    if event.startswith("USERAUTH_"):
        return "authentication"
    if event in _CHANNEL_SETUP:
        return "channel"
    return None


def _auth_labels(entries: Sequence[TimelineEntry], auth: Sequence[AuthAttempt]) -> dict[int, str]:
    """Each answered authentication request and its answer, labelled with the attempt behind it."""
    requests = [i for i, e in enumerate(entries) if e.event == "USERAUTH_REQUEST"]
    replies = [i for i, e in enumerate(entries) if e.event in _AUTH_REPLIES]
    labels: dict[int, str] = {}
    # Only when every answer has its attempt: a guess would mislabel the user's methods.
    if len(replies) == len(auth):
        for index, attempt in zip(replies, auth, strict=True):
            labels[index] = f"{entries[index].event} ({attempt.method}: {attempt.result})"
    if len(requests) == len(auth):
        for index, attempt in zip(requests, auth, strict=True):
            key = f" {attempt.key_type}" if attempt.key_type else ""
            labels[index] = f"USERAUTH_REQUEST ({attempt.method}{key})"
    return labels


def waterfall_rows(
    entries: Sequence[TimelineEntry], auth: Sequence[AuthAttempt] = (), tcp_connect_ms: float | None = None
) -> list[WaterfallRow]:
    """The setup steps, from the version exchange to the first session data."""
    picked: list[tuple[int, str]] = []
    kex_done = False
    for index, entry in enumerate(entries):
        if entry.event in SESSION_TRAFFIC or len(picked) >= MAX_WATERFALL_ROWS:
            break
        phase = phase_of(entry.event, kex_done)
        if phase is not None:
            picked.append((index, phase))
        if entry.event == "NEWKEYS" and entry.direction == "received":
            kex_done = True
    labels = _auth_labels(entries, auth)
    rows: list[WaterfallRow] = []
    if tcp_connect_ms is not None:
        rows.append(WaterfallRow("tcp", "TCP connect", "local", -tcp_connect_ms, tcp_connect_ms, 0))
    for position, (index, phase) in enumerate(picked):
        entry = entries[index]
        following = entries[picked[position + 1][0]].t_ms if position + 1 < len(picked) else entry.t_ms
        label = labels.get(index, entry.event)
        duration = following - entry.t_ms
        rows.append(WaterfallRow(phase, label, entry.direction, entry.t_ms, duration, entry.size))
    return rows


def phase_spans(rows: Sequence[WaterfallRow]) -> list[tuple[str, float, float]]:
    """``(phase, start_ms, duration_ms)`` per phase, in the order phases began."""
    spans: dict[str, tuple[float, float]] = {}
    for row in rows:
        start, end = spans.get(row.phase, (row.start_ms, row.start_ms))
        spans[row.phase] = (min(start, row.start_ms), max(end, row.start_ms + row.duration_ms))
    return [(phase, start, end - start) for phase, (start, end) in spans.items()]


def render_waterfall(rows: Sequence[WaterfallRow], width: int = WATERFALL_WIDTH) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    text.append("Connection setup\n", style="bold")
    if not rows:
        text.append("nothing exchanged yet\n", style="dim")
        return text
    first = min(r.start_ms for r in rows)
    total = max(r.start_ms + r.duration_ms for r in rows) - first
    scale = width / total if total > 0 else 0.0
    for row in rows:
        offset = min(width - 1, int((row.start_ms - first) * scale))
        length = max(1, min(width - offset, round(row.duration_ms * scale)))
        lane = " " * offset + "█" * length + " " * (width - offset - length)
        size = format_bytes(row.size) if row.size else ""
        label = row.label if len(row.label) <= LABEL_WIDTH else row.label[: LABEL_WIDTH - 1] + "…"
        arrow = ARROWS.get(row.direction, " ")
        took = f"{row.duration_ms:7.1f} ms"
        text.append(f"{row.start_ms:+8.1f} ms {arrow} {label:<{LABEL_WIDTH}} {size:>8} {took} ")
        text.append(f"▕{lane}▏\n", style=_PHASE_STYLES.get(row.phase, ""))
    text.append("\n")
    for phase, start, duration in phase_spans(rows):
        text.append(f"{phase:<18} from {start:+.1f} ms, {duration:.1f} ms\n",
                    style=_PHASE_STYLES.get(phase, ""))
    return text


_PHASE_STYLES = {
    "tcp": "blue",
    "version exchange": "cyan",
    "key exchange": "magenta",
    "rekey": "magenta",
    "service": "yellow",
    "authentication": "green",
    "channel": "bright_blue",
}


def after_newkeys(entries: Sequence[TimelineEntry]) -> Sequence[TimelineEntry]:
    """The messages after the first NEWKEYS (either way): the encrypted part of the connection."""
    for index, entry in enumerate(entries):
        if entry.event == "NEWKEYS":
            return entries[index + 1 :]
    return ()


def render_log(entries: Sequence[TimelineEntry], dropped: int) -> Text:
    shown = after_newkeys(entries)
    text = Text(no_wrap=True, overflow="crop")
    hidden = dropped + max(0, len(shown) - LOG_LINES)
    if hidden:
        text.append(f"… {hidden} earlier messages not kept\n", style="dim")
    for entry in shown[-LOG_LINES:]:
        size = format_bytes(entry.size) if entry.size else ""
        text.append(f"{entry.t_ms:10.1f} ms {ARROWS.get(entry.direction, ' ')} {entry.event:<26} {size}\n")
    if not shown:
        text.append("no encrypted messages yet\n", style="dim")
    return text


def render_counts(counts: Sequence[tuple[str, int]]) -> Text:
    text = Text()
    text.append("Messages by type\n", style="bold")
    for name, count in counts:
        text.append(f"{name:<26} {count:>7}\n")
    return text


class HandshakeTimeline(Vertical):
    """The setup waterfall above a scrolling log of later messages and the counts per type."""

    DEFAULT_CSS = """
    HandshakeTimeline { height: 1fr; }
    HandshakeTimeline #timeline-waterfall { height: auto; }
    HandshakeTimeline #timeline-bottom { height: 1fr; }
    HandshakeTimeline #timeline-log { width: 1fr; }
    HandshakeTimeline #timeline-counts { width: 36; }
    HandshakeTimeline #timeline-waterfall, HandshakeTimeline #timeline-log-text {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    def __init__(
        self,
        snapshot: ConnectionSnapshot | None = None,
        tcp_connect_ms: float | None = None,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.snapshot: ConnectionSnapshot | None = snapshot
        self.tcp_connect_ms = tcp_connect_ms
        self.renders = 0
        self._dirty = snapshot is not None
        self._log_key: tuple[int, int, float] | None = None
        self._failed = False

    def compose(self) -> ComposeResult:
        yield Static(id="timeline-waterfall", markup=False)
        with Horizontal(id="timeline-bottom"):
            with VerticalScroll(id="timeline-log"):
                yield Static(id="timeline-log-text", markup=False)
            yield Static(id="timeline-counts", markup=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self._refresh_if_dirty)
        self._refresh_if_dirty()

    def update_snapshot(self, snapshot: ConnectionSnapshot, tcp_connect_ms: float | None = None) -> None:
        self.snapshot = snapshot
        if tcp_connect_ms is not None:
            self.tcp_connect_ms = tcp_connect_ms
        self._dirty = True

    def _refresh_if_dirty(self) -> None:
        if not self._dirty or not self.is_mounted or self.snapshot is None:
            return
        self._dirty = False
        t = self.snapshot.transport
        try:
            rows = waterfall_rows(t.timeline, self.snapshot.auth, self.tcp_connect_ms)
            self.query_one("#timeline-waterfall", Static).update(render_waterfall(rows))
            self.query_one("#timeline-counts", Static).update(render_counts(t.message_counts))
            last = t.timeline[-1].t_ms if t.timeline else 0.0
            key = (len(t.timeline), t.timeline_dropped, last)
            if key != self._log_key:  # the log is the costly part: rebuild it only when it grew
                self._log_key = key
                log = self.query_one("#timeline-log", VerticalScroll)
                follow = log.scroll_y >= log.max_scroll_y
                log_text = render_log(t.timeline, t.timeline_dropped)
                self.query_one("#timeline-log-text", Static).update(log_text)
                if follow:
                    log.scroll_end(animate=False)
        except Exception as exc:  # never a traceback in the UI
            if not self._failed:
                self._failed = True
                self.notify(f"timeline: {exc}", title="Timeline error", severity="error", markup=False)
            return
        self._failed = False
        self.renders += 1

    def section_text(self, name: str) -> str:
        """Plain text of ``waterfall``, ``log`` or ``counts``."""
        selectors = {"waterfall": "#timeline-waterfall", "log": "#timeline-log-text"}
        selector = selectors.get(name, f"#timeline-{name}")
        return str(self.query_one(selector, Static).content)
