"""Screens over live connections: the handshake timeline (RFC 4253 §7-§8, RFC 4252) with a diagnostics
export, and the forwards dashboard (RFC 4254 §7) with its add form.

Both follow the driver's ``ConnectionUpdated`` messages through the app, which calls ``refresh_from``;
the widgets themselves coalesce re-renders to 4 Hz. The export leaves out every secret
(``sshtui.ui.diagnostics``) and goes to ``<data dir>/diagnostics/`` or a dialog to copy from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from sshtui.forward_spec import ForwardSpec, ForwardSpecError
from sshtui.store.atomic import atomic_write
from sshtui.store.paths import data_dir, ensure_private_dir
from sshtui.ui.diagnostics import export_json, export_text
from sshtui.ui.driver import Connection, ConnState
from sshtui.ui.forward_manager import parse_spec_text
from sshtui.ui.screens.dialogs import DetailDialog
from sshtui.ui.widgets.forwards import ForwardsTable
from sshtui.ui.widgets.side_panel import Liveness
from sshtui.ui.widgets.timeline import HandshakeTimeline

if TYPE_CHECKING:
    from sshtui.ui.app import SshtuiApp

PANELS_CSS = Path(__file__).resolve().parent.parent / "panels.tcss"


def liveness_of(conn: Connection) -> Liveness | None:
    """Keepalive state of the connection's client (ServerAliveInterval), for the panel and the export."""
    client = conn.client
    if client is None:
        return None
    return Liveness(client.keepalive_rtt, client.keepalives_unanswered, client.options.server_alive_interval)


def export_file_name(conn: Connection, suffix: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    label = "".join(c if c.isalnum() or c in "-_." else "_" for c in conn.target.label)
    return f"{label}-{stamp}.{suffix}"


class TimelineScreen(Screen[None]):
    """The focused connection's handshake waterfall, message log and counts; x/j export, c shows text."""

    CSS_PATH = str(PANELS_CSS)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "export('txt')", "Export text", id="timeline.export_text"),
        Binding("j", "export('json')", "Export JSON", id="timeline.export_json"),
        Binding("c", "show_export", "Show for copy", id="timeline.show"),
        Binding("escape,q", "close", "Close", id="timeline.close"),
    ]

    def __init__(self, conn: Connection) -> None:
        super().__init__(id="timeline-screen")
        self.conn = conn
        self.exported: Path | None = None

    def compose(self) -> ComposeResult:
        yield Label(f"Handshake timeline · {self.conn.target.label}", classes="panel-title")
        yield HandshakeTimeline(self.conn.snapshot, id="timeline")
        yield Footer()

    def refresh_from(self, conn: Connection) -> None:
        if conn is self.conn and conn.snapshot is not None:
            self.query_one(HandshakeTimeline).update_snapshot(conn.snapshot)

    def _export(self, kind: str) -> str | None:
        snapshot = self.conn.snapshot
        if snapshot is None:
            self.notify("nothing to export yet", severity="warning")
            return None
        from sshtui import __version__

        forwards = []
        app = self.app
        manager = getattr(app, "forwards", None)
        if manager is not None:
            forwards = [f.snapshot() for f in manager.of(self.conn)]
        context = {"forwards": forwards, "liveness": liveness_of(self.conn),
                   "destination": self.conn.target.label, "software": f"sshtui {__version__}"}
        return export_json(snapshot, **context) if kind == "json" else export_text(snapshot, **context)

    def action_export(self, kind: str) -> None:
        text = self._export(kind)
        if text is None:
            return
        try:
            directory = ensure_private_dir(data_dir() / "diagnostics")
            path = directory / export_file_name(self.conn, kind)
            atomic_write(path, text.encode("utf-8"))
        except OSError as exc:
            self.notify(f"cannot write the export ({exc}); showing it instead", severity="warning",
                        markup=False)
            self.app.push_screen(DetailDialog("Diagnostics (no secrets)", text))
            return
        self.exported = path
        self.notify(f"saved {path} (no secrets)", title="Diagnostics exported", markup=False)

    def action_show_export(self) -> None:
        text = self._export("txt")
        if text is not None:
            self.app.push_screen(DetailDialog("Diagnostics (no secrets): select and copy", text))

    def action_close(self) -> None:
        self.dismiss()


class AddForwardDialog(ModalScreen[tuple[Connection, ForwardSpec] | None]):
    """``-L``/``-R``/``-D`` as ssh(1) writes them, checked by ``sshtui.forward_spec`` before closing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="forward_add.cancel")]

    def __init__(self, connections: Sequence[Connection], preferred: Connection | None = None) -> None:
        super().__init__(classes="dialog")
        self.connections = list(connections)
        self.preferred = preferred if preferred in self.connections else self.connections[0]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label("Add a port forward", classes="dialog-title")
            options = [(c.target.label, c.conn_id) for c in self.connections]
            yield Select(options, value=self.preferred.conn_id, allow_blank=False, id="forward-connection")
            yield Input(placeholder="-L 8080:localhost:80   -R 9000:localhost:3000   -D 1080",
                        id="forward-spec")
            yield Static("", id="forward-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#forward-spec", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        try:
            spec = parse_spec_text(self.query_one("#forward-spec", Input).value)
        except ForwardSpecError as exc:
            self.query_one("#forward-error", Static).update(str(exc))
            return
        chosen = self.query_one("#forward-connection", Select).value
        conn = next((c for c in self.connections if c.conn_id == chosen), self.preferred)
        self.dismiss((conn, spec))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ForwardsScreen(Screen[None]):
    """Every forward of every connection: a add, s stop, r restart (the table's keys)."""

    CSS_PATH = str(PANELS_CSS)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="forwards.close"),
    ]

    def __init__(self, preferred: Callable[[], Connection | None] | None = None) -> None:
        super().__init__(id="forwards-screen")
        self.preferred = preferred

    @property
    def sshtui(self) -> SshtuiApp:
        from sshtui.ui.app import SshtuiApp

        assert isinstance(self.app, SshtuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label("Port forwards", classes="panel-title")
        yield ForwardsTable(id="forwards")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_forwards()
        self.set_interval(1.0, self.refresh_forwards)  # byte counters move without connection updates
        self.query_one("#forwards-table").focus()

    def refresh_forwards(self) -> None:
        try:
            table = self.query_one(ForwardsTable)
        except NoMatches:
            return  # pushed but not composed yet: its mount fills the table
        table.update_forwards(self.sshtui.forwards.snapshots())

    @on(ForwardsTable.AddRequested)
    def _add(self) -> None:
        connected = [c for c in self.sshtui.driver.connections.values() if c.state is ConnState.CONNECTED]
        if not connected:
            self.notify("connect to a host first", severity="warning")
            return
        preferred = self.preferred() if self.preferred is not None else None

        def answered(result: tuple[Connection, ForwardSpec] | None) -> None:
            if result is not None:
                self.run_worker(self._start(*result), exit_on_error=False)

        self.app.push_screen(AddForwardDialog(connected, preferred), answered)

    async def _start(self, conn: Connection, spec: ForwardSpec) -> None:
        try:
            await self.sshtui.forwards.add(conn, spec)
        except ForwardSpecError as exc:
            self.notify(str(exc), severity="error", markup=False)
        self.refresh_forwards()

    @on(ForwardsTable.StopRequested)
    async def _stop(self, event: ForwardsTable.StopRequested) -> None:
        await self.sshtui.forwards.stop(event.spec)
        self.refresh_forwards()

    @on(ForwardsTable.RestartRequested)
    async def _restart(self, event: ForwardsTable.RestartRequested) -> None:
        await self.sshtui.forwards.restart(event.spec)
        self.refresh_forwards()

    def action_close(self) -> None:
        self.dismiss()
