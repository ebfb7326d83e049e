"""The forwards dashboard: one row per port forward (RFC 4254 §7: ``-L`` direct-tcpip, ``-R``
tcpip-forward, ``-D`` SOCKS over direct-tcpip) with its state, open connections, bytes each way,
a rate sparkline and the last error.

A pure view of ``ForwardSnapshot``s ("attributes down"); adding, stopping and restarting are posted
as messages for the app to carry out ("messages up"). Re-renders at most ``REFRESH_HZ`` times a
second; the rate history per forward is bounded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from sshtui.net.forward_snapshot import ForwardSnapshot, ForwardState
from sshtui.ui.widgets.side_panel import format_bytes, format_rate, sparkline

REFRESH_HZ = 4
RATE_HISTORY = 24
COLUMNS = (
    ("kind", "Kind"), ("listen", "Listen"), ("target", "Target"), ("state", "State"), ("open", "Open"),
    ("sent", "Sent"), ("received", "Received"), ("rate", "Rate"), ("error", "Last error"),
)
STATE_STYLES = {
    ForwardState.STARTING: "yellow",
    ForwardState.LISTENING: "green",
    ForwardState.ACTIVE: "bold green",
    ForwardState.RECONNECTING: "yellow",
    ForwardState.FAILED: "bold red",
}


class RateHistory:
    """Bytes per second of one forward, one sample per snapshot, bounded to ``RATE_HISTORY``."""

    __slots__ = ("rates", "_clock", "_total")

    def __init__(self) -> None:
        self.rates: deque[float] = deque(maxlen=RATE_HISTORY)
        self._clock: float | None = None
        self._total = 0

    def add(self, total: int, clock: float) -> None:
        if self._clock is not None and clock > self._clock:
            self.rates.append(max(0, total - self._total) / (clock - self._clock))
        self._clock, self._total = clock, total

    @property
    def current(self) -> float:
        return self.rates[-1] if self.rates else 0.0


def state_text(forward: ForwardSnapshot) -> str:
    """``listening``, ``reconnecting (connection lost)``, ``failed (stopped)``."""
    return forward.state.value + (f" ({forward.reason})" if forward.reason else "")


def row_cells(forward: ForwardSnapshot, history: RateHistory | None) -> tuple[Text, ...]:
    state = state_text(forward)
    rate = f"{sparkline(history.rates) if history else ''} {format_rate(history.current if history else 0)}"
    return (
        Text(forward.kind),
        Text(forward.listen),
        Text(forward.target),
        Text(state, style=STATE_STYLES.get(forward.state, "")),
        Text(f"{forward.open_connections} of {forward.total_connections}"),
        Text(format_bytes(forward.bytes_sent)),
        Text(format_bytes(forward.bytes_received)),
        Text(rate.strip()),
        Text(forward.last_error, style="red"),
    )


class ForwardsTable(Vertical):
    """The dashboard table; select a row and press a key to act on that forward."""

    DEFAULT_CSS = """
    ForwardsTable { height: auto; max-height: 1fr; }
    ForwardsTable DataTable { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add forward", id="forwards.add"),
        Binding("s", "stop", "Stop", id="forwards.stop"),
        Binding("r", "restart", "Restart", id="forwards.restart"),
    ]

    class AddRequested(Message):
        """The user wants to add a forward; the app asks for its spec."""

    class StopRequested(Message):
        def __init__(self, spec: str) -> None:
            super().__init__()
            self.spec = spec

    class RestartRequested(Message):
        def __init__(self, spec: str) -> None:
            super().__init__()
            self.spec = spec

    def __init__(
        self, forwards: Sequence[ForwardSnapshot] = (), *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.forwards: tuple[ForwardSnapshot, ...] = ()
        self.history: dict[str, RateHistory] = {}
        self.renders = 0
        self._dirty = False
        self._failed = False
        if forwards:
            self.update_forwards(forwards)

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="forwards-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("no port forwards (a: add one)", id="forwards-empty", markup=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self._refresh_if_dirty)
        self._dirty = True
        self._refresh_if_dirty()

    def update_forwards(self, forwards: Sequence[ForwardSnapshot], now: float | None = None) -> None:
        """Take new snapshots; ``now`` (seconds, any clock) times the rate samples."""
        clock = time.monotonic() if now is None else now
        self.forwards = tuple(forwards)
        for forward in self.forwards:
            self.history.setdefault(forward.spec, RateHistory()).add(
                forward.bytes_sent + forward.bytes_received, clock
            )
        for gone in self.history.keys() - {f.spec for f in self.forwards}:
            del self.history[gone]
        self._dirty = True

    def _refresh_if_dirty(self) -> None:
        if not self._dirty or not self.is_mounted:
            return
        self._dirty = False
        try:
            self._fill(self.query_one("#forwards-table", DataTable))
            self.query_one("#forwards-empty", Static).display = not self.forwards
        except Exception as exc:  # never a traceback in the UI
            if not self._failed:
                self._failed = True
                self.notify(f"forwards: {exc}", title="Forwards error", severity="error", markup=False)
            return
        self._failed = False
        self.renders += 1

    def _fill(self, table: DataTable[Text]) -> None:
        wanted = [f.spec for f in self.forwards]
        current = [str(key.value) for key in table.rows]
        if wanted != current:
            selected = self.selected_spec()
            table.clear()
            for forward in self.forwards:
                table.add_row(*row_cells(forward, self.history.get(forward.spec)), key=forward.spec)
            if selected in wanted:
                table.move_cursor(row=wanted.index(selected))
            return
        for forward in self.forwards:
            cells = row_cells(forward, self.history.get(forward.spec))
            for (column, _), cell in zip(COLUMNS, cells, strict=True):
                table.update_cell(forward.spec, column, cell)

    def selected_spec(self) -> str | None:
        table = self.query_one("#forwards-table", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return None if row_key.value is None else str(row_key.value)

    def row_text(self, spec: str) -> list[str]:
        """The cells of a forward's row as shown, in column order."""
        table = self.query_one("#forwards-table", DataTable)
        return [str(cell) for cell in table.get_row(spec)]

    def action_add(self) -> None:
        self.post_message(self.AddRequested())

    def action_stop(self) -> None:
        spec = self.selected_spec()
        if spec is None:
            self.notify("no forward selected", severity="warning")
            return
        self.post_message(self.StopRequested(spec))

    def action_restart(self) -> None:
        spec = self.selected_spec()
        if spec is None:
            self.notify("no forward selected", severity="warning")
            return
        self.post_message(self.RestartRequested(spec))
