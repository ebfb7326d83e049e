"""One port forward as a session tab (RFC 4254 §7.1 tcpip-forward for ``-R``, §7.2 direct-tcpip for
``-L`` and ``-D``): where it listens, where it goes, its state, connection counts, bytes and rates
each way, its error reasons, and one row per open forwarded connection with that SSH channel's
window sizes (§5.2).

The pane only ever reads frozen snapshots: the forward's ``ForwardSnapshot`` and its connection's
latest ``ConnectionSnapshot`` (for the windows), handed down by ``sync_forward_tabs`` on the
session screen's timer. Each refresh re-renders only the text and cells that changed.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane

from sshtui.net.forward_snapshot import ForwardedConnectionSnapshot, ForwardSnapshot, ForwardState
from sshtui.ssh.channels.snapshot import ChannelSnapshot
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ui.driver import Connection
from sshtui.ui.forward_manager import ForwardManager
from sshtui.ui.widgets.forwards import STATE_STYLES, RateHistory, state_text
from sshtui.ui.widgets.side_panel import format_bytes, format_rate, sparkline

REFRESH_INTERVAL = 0.5  # seconds between refreshes of the forward tabs (2 Hz)
STOPPED_REASON = "stopped"  # ForwardManager's reason for a forward the user stopped
CONNECTION_COLUMNS = (
    ("channel", "Channel"), ("peer", "Peer"), ("target", "Target"), ("age", "Age"), ("sent", "Sent"),
    ("received", "Received"), ("local_window", "Local window"), ("remote_window", "Remote window"),
)
_pane_ids = itertools.count(1)


def state_word(snapshot: ForwardSnapshot) -> str:
    """The state for the tab title: ``listening``, ``active``, ``stopped``, ``failed``..."""
    if snapshot.state is ForwardState.FAILED and snapshot.reason == STOPPED_REASON:
        return STOPPED_REASON
    return snapshot.state.value


def forward_title(label: str, spec: str, snapshot: ForwardSnapshot | None) -> str:
    return f"{label} · {spec} · {state_word(snapshot) if snapshot is not None else 'starting'}"


def format_age(seconds: float) -> str:
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"


def summary_text(snapshot: ForwardSnapshot, sent: RateHistory, received: RateHistory) -> Text:
    arrow = "<-" if snapshot.kind == "remote" else "->"
    text = Text()
    text.append(f"{snapshot.spec}\n", style="bold")
    text.append(f"listen {snapshot.listen} {arrow} {snapshot.target}\n")
    text.append("state: ")
    text.append(state_text(snapshot), style=STATE_STYLES.get(snapshot.state, ""))
    text.append(f"\nconnections: {snapshot.open_connections} open, {snapshot.total_connections} total, "
                f"{snapshot.failed_connections} failed\n")
    text.append(f"sent {format_bytes(snapshot.bytes_sent)} ({format_rate(sent.current)}) "
                f"{sparkline(sent.rates)}\n")
    text.append(f"received {format_bytes(snapshot.bytes_received)} ({format_rate(received.current)}) "
                f"{sparkline(received.rates)}\n")
    if not snapshot.errors:
        text.append("errors: none", style="dim")
    for reason, count in snapshot.errors:
        text.append(f"error ×{count}: {reason}\n", style="red")
    text.rstrip()
    return text


def connection_cells(
    live: ForwardedConnectionSnapshot, channel: ChannelSnapshot | None, wall_clock: float
) -> tuple[str, ...]:
    windows = ("", "")
    if channel is not None:
        windows = (format_bytes(channel.local_window), format_bytes(channel.remote_window))
    return (
        "opening" if live.channel_id is None else str(live.channel_id),
        live.peer,
        live.target,
        format_age(wall_clock - live.started_at),
        format_bytes(live.bytes_sent),
        format_bytes(live.bytes_received),
        *windows,
    )


def row_key(live: ForwardedConnectionSnapshot) -> str:
    return f"{live.peer}@{live.started_at!r}"


class ForwardPane(TabPane):
    """A live view of one forward (by its ``ForwardManager`` key); ``show`` hands it new snapshots."""

    DEFAULT_CSS = """
    ForwardPane { padding: 0 1; }
    ForwardPane .forward-summary { height: auto; margin-bottom: 1; }
    ForwardPane .forward-connections-title { text-style: bold; color: $primary; }
    ForwardPane DataTable { height: 1fr; }
    ForwardPane .forward-no-connections { color: $text-muted; }
    """

    def __init__(self, key: str, conn: Connection, spec: str) -> None:
        self.key = key
        self.conn = conn  # for the connection-wide keys (new shell, reconnect); not read for the view
        self.label = conn.target.label
        self.spec = spec
        self.closing = False
        self.snapshot: ForwardSnapshot | None = None
        self.sent_rate = RateHistory()
        self.received_rate = RateHistory()
        self.renders = 0
        self._shown_title = forward_title(self.label, spec, None)
        self._shown_summary: Text | None = None
        super().__init__(self._shown_title, id=f"forward-{next(_pane_ids)}")

    def compose(self) -> ComposeResult:
        yield Static("", classes="forward-summary", markup=False)
        yield Label("Open connections", classes="forward-connections-title")
        table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
        for key, label in CONNECTION_COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("none open", classes="forward-no-connections", markup=False)

    @property
    def summary(self) -> str:
        """The summary as shown, as plain text."""
        return self._shown_summary.plain if self._shown_summary is not None else ""

    @property
    def connections_table(self) -> DataTable[str]:
        return self.query_one(DataTable)

    def show(self, snapshot: ForwardSnapshot, connection: ConnectionSnapshot | None,
             clock: float | None = None, wall_clock: float | None = None) -> None:
        """New snapshots; ``clock`` (monotonic seconds) times the rates, ``wall_clock`` the ages."""
        now = time.monotonic() if clock is None else clock
        self.snapshot = snapshot
        self.sent_rate.add(snapshot.bytes_sent, now)
        self.received_rate.add(snapshot.bytes_received, now)
        title = forward_title(self.label, self.spec, snapshot)
        if title != self._shown_title:
            self._shown_title = title
            with contextlib.suppress(Exception):  # the tab may be going away
                self.screen.query_one(TabbedContent).get_tab(self).label = title
        if not self.is_mounted:
            return
        summary = summary_text(snapshot, self.sent_rate, self.received_rate)
        if summary != self._shown_summary:
            self._shown_summary = summary
            self.query_one(".forward-summary", Static).update(summary)
            self.renders += 1
        channels = {c.local_id: c for c in connection.channels} if connection is not None else {}
        self._fill(snapshot.connections, channels, time.time() if wall_clock is None else wall_clock)

    def _fill(self, connections: Iterable[ForwardedConnectionSnapshot], channels: dict[int, ChannelSnapshot],
              wall_clock: float) -> None:
        table = self.connections_table
        wanted = {row_key(live): live for live in connections}
        for gone in [str(key.value) for key in table.rows if key.value not in wanted]:
            table.remove_row(gone)
        for key, live in wanted.items():
            channel = channels.get(live.channel_id) if live.channel_id is not None else None
            cells = connection_cells(live, channel, wall_clock)
            if key not in table.rows:
                table.add_row(*cells, key=key)
                continue
            for (column, _), cell in zip(CONNECTION_COLUMNS, cells, strict=True):
                if table.get_cell(key, column) != cell:
                    table.update_cell(key, column, cell)
        self.query_one(".forward-no-connections", Static).display = not wanted

    def row_text(self, live: ForwardedConnectionSnapshot) -> list[str]:
        """The cells of an open connection's row as shown, in column order."""
        return [str(cell) for cell in self.connections_table.get_row(row_key(live))]


def first_forward_tab(tabs: TabbedContent) -> ForwardPane | None:
    """Where a new shell tab goes, so that shells come first and forwards after them."""
    return next((pane for pane in tabs.query(ForwardPane).results(ForwardPane) if not pane.closing), None)


async def sync_forward_tabs(tabs: TabbedContent, manager: ForwardManager) -> list[ForwardPane]:
    """One tab per forward of ``manager``: add tabs for new forwards (without activating them), drop
    the tabs of forwards removed elsewhere, and hand every tab its latest snapshots. Returns the new tabs."""
    panes = {pane.key: pane for pane in tabs.query(ForwardPane).results(ForwardPane)}
    for key, pane in panes.items():
        if key not in manager.forwards and not pane.closing:
            pane.closing = True
            await tabs.remove_pane(pane.id or "")
    added: list[ForwardPane] = []
    for key, forward in list(manager.forwards.items()):
        if key not in panes:
            panes[key] = ForwardPane(key, forward.conn, forward.spec.label)
            await tabs.add_pane(panes[key])
            added.append(panes[key])
        pane = panes[key]
        if key in manager.forwards and not pane.closing:
            pane.show(forward.snapshot(), forward.conn.snapshot)
    return added


async def toggle_forward(manager: ForwardManager, pane: ForwardPane) -> None:
    """``s`` on a forward tab: restart a stopped or failed forward, stop a running one."""
    if pane.snapshot is not None and pane.snapshot.state is ForwardState.FAILED:
        await manager.restart(pane.key)
    else:
        await manager.stop(pane.key)


async def close_forward_tab(tabs: TabbedContent, manager: ForwardManager, pane: ForwardPane) -> None:
    """Closing the tab stops the forward and forgets it. The key leaves the manager before the first
    await, so no sync in between brings the tab back."""
    pane.closing = True
    await manager.remove(pane.key)
    await tabs.remove_pane(pane.id or "")
