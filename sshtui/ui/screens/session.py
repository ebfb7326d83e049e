"""The sessions screen: one tab per shell channel (RFC 4254 §6.2 pty-req, §6.5 shell, §6.7 window-change)
and one per port forward (§7, ``sshtui.ui.screens.forward_pane``).

Several connections at once, several shells per connection over the same transport. Each tab wires
its terminal to its channel: ``channel.read()`` feeds the terminal only while the terminal can take
more (it says so through ``feed()``'s result and ``ready_for_more``), so a flood waits in the SSH
window rather than in our memory; keystrokes go out at once, in order (only while the window is shut
do they queue for a writer task); resizes
become window-change requests, the last size of a burst only. Closing a tab closes its channel and
the connection closes with its last channel. The terminal keeps every key; ctrl+] (or Escape twice)
hands the keyboard back to this screen's bindings.

The side panel (``p``) follows the focused tab's connection, fed from the driver's snapshots (at most
4 a second) and the client's keepalive round trip. Broadcast (``b`` on each tab that should receive)
sends what is typed in any broadcasting tab to every broadcasting tab; each shows it in its title.
Forward tabs follow the app's ``ForwardManager`` (set as ``forwards``) twice a second: a new forward
gets a tab without taking the focus, one removed elsewhere loses it; closing the tab removes the forward.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, TabbedContent, TabPane

from sshtui.net.channel import Channel, Outbox
from sshtui.ssh.errors import SSHError
from sshtui.ui.driver import Connection, ConnectionView, ConnState, SessionDriver, describe_error
from sshtui.ui.forward_manager import ForwardManager
from sshtui.ui.screens import forward_pane
from sshtui.ui.screens.forward_pane import REFRESH_INTERVAL, ForwardPane
from sshtui.ui.terminal import DEFAULT_EMULATOR, BackendFactory
from sshtui.ui.terminal.widget import TerminalView
from sshtui.ui.widgets.side_panel import SidePanel

READ_CHUNK = 64 * 1024
RESIZE_DELAY = 0.08
DEFAULT_SIZE = (80, 24)
KEYBOARD_HINT = (
    "The shell has the keyboard: ctrl+] (or Esc Esc) gives it back for n new shell, w close tab, "
    "r reconnect, p panel, t timeline, b broadcast, f forwards, h hosts"
)
FORWARD_HINT = "A port forward: s stop/restart, w close (stops and removes it), n new shell on its connection"
BROADCAST_MARK = "((broadcast))"


class ShellPane(TabPane):
    """One tab: a terminal and the shell channel behind it (None while opening or after it ended)."""

    def __init__(
        self, driver: SessionDriver, conn: Connection, number: int, pane_id: str,
        route_input: Callable[[ShellPane, bytes], bool] | None = None,
        emulator: BackendFactory = DEFAULT_EMULATOR,
    ) -> None:
        self.driver = driver
        self.broadcast = False
        self._route_input = route_input
        self.conn = conn
        self.number = number
        self.channel: Channel | None = None
        self.ended = ""  # why the shell is gone, shown in the title
        self.terminal = TerminalView(
            self._write, self._resized, backend_factory=emulator, ready_for_more=self._resume_reading
        )
        self._can_read = asyncio.Event()
        self._can_read.set()
        self._outbox: Outbox | None = None
        self._resize_timer: Timer | None = None
        self._pty_size: tuple[int, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        super().__init__(self.title_for(conn.view()), self.terminal, id=pane_id)

    def title_for(self, view: ConnectionView) -> str:
        state = self.ended or ("shell" if self.channel is not None else view.status)
        if view.state in (ConnState.DROPPED, ConnState.FAILED):
            state = f"{view.state.value} (r: reconnect)"
        elif view.state is ConnState.CONNECTING:
            state = view.status
        mark = f"{BROADCAST_MARK} " if self.broadcast else ""
        return f"{mark}{view.label} #{self.number} · {state}"

    # -- the channel

    async def attach(self, channel: Channel) -> None:
        self.channel = channel
        self.ended = ""
        self._can_read.set()
        self._outbox = Outbox(channel)
        self._spawn(self._pump(channel))
        self._spawn(self._outbox.drain())
        if self._pty_size is not None and self._pty_size != DEFAULT_SIZE:
            await channel.resize(*self._pty_size)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, channel: Channel) -> None:
        """Remote output into the terminal, only as fast as the terminal takes it."""
        try:
            while True:
                await self._can_read.wait()
                data = await channel.read(READ_CHUNK)
                if not data:
                    break
                if not self.terminal.feed(data):
                    self._can_read.clear()
        except SSHError:
            pass
        if self.channel is channel:
            await self._channel_ended(channel)

    def _resume_reading(self) -> None:
        self._can_read.set()

    def _write(self, data: bytes) -> None:
        if self._route_input is not None and self.broadcast and self._route_input(self, data):
            return
        self.send(data)

    def send(self, data: bytes) -> None:
        """Bytes to the shell, in order with the keys typed here."""
        if self.channel is not None and data and self._outbox is not None:
            self._outbox.send(data)

    def _resized(self, columns: int, rows: int) -> None:
        self._pty_size = (columns, rows)
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DELAY, self._send_size)

    def _send_size(self) -> None:
        channel, size = self.channel, self._pty_size
        if channel is not None and size is not None:
            self._spawn(self._quiet(channel.resize(*size)))

    @staticmethod
    async def _quiet(request: Awaitable[None]) -> None:
        with contextlib.suppress(SSHError):
            await request

    async def _channel_ended(self, channel: Channel) -> None:
        self.channel = None
        client = self.conn.client
        if channel.error is not None or (client is not None and client.closed.done()):
            self.refresh_title()  # the connection went: the driver reports that, reconnect reopens
            return
        info = None
        with contextlib.suppress(Exception):
            if channel.exit.done():
                info = channel.exit.result()
        if info is not None and info.status is not None:
            self.ended = f"exited ({info.status})"
        elif info is not None and info.signal:
            self.ended = f"killed ({info.signal})"
        elif self.conn.state is ConnState.CONNECTED:
            self.ended = "closed"
        else:
            self.ended = ""
        if self.conn.state is ConnState.CONNECTED:
            await self.driver.release(self.conn, channel)
        self.refresh_title()

    def refresh_title(self) -> None:
        with contextlib.suppress(Exception):
            self.screen.query_one(TabbedContent).get_tab(self).label = self.title_for(self.conn.view())

    def initial_size(self) -> tuple[int, int]:
        width, height = self.terminal.size
        return (width, height) if width > 0 and height > 0 else self._pty_size or DEFAULT_SIZE

    async def close(self) -> None:
        channel, self.channel = self.channel, None
        for task in list(self._tasks):
            task.cancel()
        if channel is not None:
            await self.driver.release(self.conn, channel)


class SessionScreen(Screen[None]):
    """Tabs of shells. Bindings act once the terminal has let go of the keyboard (ctrl+])."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_shell", "New shell", id="session.new_shell"),
        Binding("w", "close_tab", "Close tab", id="session.close_tab"),
        Binding("r", "reconnect", "Reconnect", id="session.reconnect"),
        Binding("i", "details", "Details", id="session.details"),
        Binding("escape,h", "hosts", "Hosts", id="session.hosts"),
        Binding("enter", "focus_terminal", "Back to shell", id="session.focus_terminal"),
        Binding("p", "toggle_panel", "Panel", id="session.panel"),
        Binding("t", "timeline", "Timeline", id="session.timeline"),
        Binding("b", "toggle_broadcast", "Broadcast", id="session.broadcast"),
        Binding("f", "forwards", "Forwards", id="session.forwards"),
        Binding("s", "toggle_forward", "Stop/restart", id="session.toggle_forward"),
    ]

    def __init__(self, driver: SessionDriver, *, show_panel: bool = False) -> None:
        super().__init__(id="session")
        self.show_panel = show_panel
        self.driver = driver
        self.emulator: BackendFactory = DEFAULT_EMULATOR  # config.toml's [terminal] emulator may change it
        self._tab_numbers = 0
        self._per_connection: dict[int, int] = {}
        self.forwards: ForwardManager | None = None  # the app's, for the forward tabs
        self._syncing = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="session-main"):
            with Vertical(id="session-body"):
                yield Label("No sessions yet: pick a host (esc) and press enter.", id="no-sessions")
                yield TabbedContent(id="tabs")
            panel = SidePanel(id="side-panel")
            panel.display = self.show_panel
            yield panel
        yield Label("", id="broadcast-bar")
        yield Label(KEYBOARD_HINT, id="session-hint")
        yield Footer()

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one(TabbedContent)

    def panes(self, conn: Connection | None = None) -> list[ShellPane]:
        return [p for p in self.query(ShellPane).results(ShellPane) if conn is None or p.conn is conn]

    def active_pane(self) -> ShellPane | None:
        tab = self.active_tab()
        return tab if isinstance(tab, ShellPane) else None

    def active_tab(self) -> ShellPane | ForwardPane | None:
        try:
            pane = self.tabs.active_pane
        except NoMatches:  # the screen is being torn down while updates still arrive
            return None
        return pane if isinstance(pane, ShellPane | ForwardPane) else None

    def active_connection(self) -> Connection | None:
        """The focused tab's connection, a shell's or a forward's."""
        tab = self.active_tab()
        return tab.conn if tab is not None else None

    # -- opening and closing

    async def add_shell(self, conn: Connection) -> ShellPane:
        """A new tab on ``conn``, with a shell opened at the terminal's size."""
        self._tab_numbers += 1
        number = self._per_connection.get(conn.conn_id, 0) + 1
        self._per_connection[conn.conn_id] = number
        pane = ShellPane(
            self.driver, conn, number, f"tab-{self._tab_numbers}", self._broadcast_input, self.emulator
        )
        await self.tabs.add_pane(pane, before=forward_pane.first_forward_tab(self.tabs))
        self.tabs.active = pane.id or ""
        self.query_one("#no-sessions").display = False
        self._open_shell(pane)
        return pane

    @work(group="shell", exit_on_error=False)
    async def _open_shell(self, pane: ShellPane) -> None:
        await asyncio.sleep(0)  # let the new tab get its size first
        try:
            channel = await self.driver.open_shell(pane.conn, pane.initial_size())
        except SSHError as exc:
            pane.ended = f"no shell: {describe_error(exc)}"
            pane.refresh_title()
            self.notify(describe_error(exc), title=f"{pane.conn.target.label}: no shell", severity="error",
                        markup=False)
            return
        await pane.attach(channel)
        pane.refresh_title()
        if self.active_pane() is pane and self.is_current:
            pane.terminal.focus()

    async def close_pane(self, pane: ShellPane) -> None:
        await pane.close()
        await self.tabs.remove_pane(pane.id or "")
        if pane.broadcast:
            pane.broadcast = False
            self._show_broadcast_bar()
        self.query_one("#no-sessions").display = not self.tabs.tab_count

    def connection_ready(self, conn: Connection) -> None:
        """A connection came up: reopen the shells of its tabs (a reconnect), or open its first."""
        panes = self.panes(conn)
        for pane in panes:
            if pane.channel is None:
                self._open_shell(pane)
        if not panes:
            self.run_worker(self.add_shell(conn), group="shell", exit_on_error=False)

    def connection_updated(self, view: ConnectionView) -> None:
        for pane in self.panes():
            if pane.conn.conn_id == view.conn_id:
                if view.state in (ConnState.DROPPED, ConnState.CLOSED, ConnState.FAILED):
                    pane.channel = None
                pane.refresh_title()
        active = self.active_connection()
        if active is not None and active.conn_id == view.conn_id:
            self.refresh_panel()

    # -- forward tabs

    async def sync_forwards(self) -> None:
        if self.forwards is None or self._syncing or not self.is_mounted:
            return
        self._syncing = True
        try:
            await forward_pane.sync_forward_tabs(self.tabs, self.forwards)
        finally:
            self._syncing = False
        self.query_one("#no-sessions").display = not self.tabs.tab_count

    async def action_toggle_forward(self) -> None:
        tab = self.active_tab()
        if isinstance(tab, ForwardPane) and self.forwards is not None:
            await forward_pane.toggle_forward(self.forwards, tab)
            await self.sync_forwards()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_forward = isinstance(self.active_tab(), ForwardPane)
        if action == "toggle_forward":
            return on_forward
        return not (on_forward and action in ("focus_terminal", "toggle_broadcast"))

    # -- the side panel

    @property
    def side_panel(self) -> SidePanel:
        return self.query_one("#side-panel", SidePanel)

    def refresh_panel(self) -> None:
        """The focused tab's connection into the panel (the panel itself re-renders at most 4 Hz)."""
        from sshtui.ui.screens.live import liveness_of

        conn = self.active_connection()
        if conn is None or not self.side_panel.display or conn.snapshot is None:
            return
        self.side_panel.update_snapshot(conn.snapshot, liveness_of(conn))

    def action_toggle_panel(self) -> None:
        self.show_panel = not self.show_panel
        self.side_panel.display = self.show_panel
        self.refresh_panel()

    def action_timeline(self) -> None:
        from sshtui.ui.screens.live import TimelineScreen

        conn = self.active_connection()
        if conn is None or conn.snapshot is None:
            self.notify("no connection in this tab yet", severity="warning")
            return
        self.app.push_screen(TimelineScreen(conn))

    def action_forwards(self) -> None:
        from sshtui.ui.screens.live import ForwardsScreen

        self.app.push_screen(ForwardsScreen(self.active_connection))

    # -- broadcast

    def broadcasting(self) -> list[ShellPane]:
        return [pane for pane in self.panes() if pane.broadcast]

    def _broadcast_input(self, origin: ShellPane, data: bytes) -> bool:
        """Typed in a broadcasting tab: to every broadcasting tab. False leaves it to the tab itself."""
        receivers = self.broadcasting()
        if origin not in receivers or len(receivers) < 2:
            return False
        for pane in receivers:
            pane.send(data)
        return True

    def set_broadcast(self, pane: ShellPane, on: bool) -> None:
        pane.broadcast = on
        pane.set_class(on, "broadcasting")
        pane.refresh_title()
        self._show_broadcast_bar()

    def _show_broadcast_bar(self) -> None:
        receivers = self.broadcasting()
        bar = self.query_one("#broadcast-bar", Label)
        bar.display = bool(receivers)
        names = ", ".join(f"{p.conn.target.label} #{p.number}" for p in receivers)
        bar.update(f"BROADCAST: typing goes to {len(receivers)} tab(s): {names}" if receivers else "")

    def action_toggle_broadcast(self) -> None:
        pane = self.active_pane()
        if pane is not None:
            self.set_broadcast(pane, not pane.broadcast)

    # -- actions

    def action_new_shell(self) -> None:
        conn = self.active_connection()
        if conn is None:
            return
        if conn.state is not ConnState.CONNECTED:
            label = conn.target.label
            self.notify(f"{label} is not connected; press r to reconnect", severity="warning", markup=False)
            return
        self.run_worker(self.add_shell(conn), group="shell", exit_on_error=False)

    async def action_close_tab(self) -> None:
        tab = self.active_tab()
        if isinstance(tab, ForwardPane) and self.forwards is not None:
            await forward_pane.close_forward_tab(self.tabs, self.forwards, tab)
            self.query_one("#no-sessions").display = not self.tabs.tab_count
            self.notify(f"{tab.key}: stopped and removed", title="Port forward closed", markup=False)
        elif isinstance(tab, ShellPane):
            await self.close_pane(tab)

    def action_reconnect(self) -> None:
        conn = self.active_connection()
        if conn is not None and not self.driver.reconnect(conn):
            self.notify(f"{conn.target.label} is {conn.state.value}", markup=False)

    def action_details(self) -> None:
        from sshtui.ui.screens.dialogs import DetailDialog

        conn = self.active_connection()
        if conn is not None:
            view = conn.view()
            self.app.push_screen(DetailDialog(view.label, view.detail or view.status))

    def action_hosts(self) -> None:
        self.dismiss()

    def action_focus_terminal(self) -> None:
        pane = self.active_pane()
        if pane is not None:
            pane.terminal.focus()

    @on(TabbedContent.TabActivated)
    def _activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane
        self.query_one("#session-hint", Label).update(FORWARD_HINT if isinstance(pane, ForwardPane)
                                                      else KEYBOARD_HINT)
        self.refresh_bindings()
        if isinstance(pane, ShellPane):
            pane.terminal.focus()
        elif isinstance(pane, ForwardPane):
            self.query_one("Tabs").focus()  # the screen's keys (s, w, n) act on this tab
        self.refresh_panel()

    @on(TerminalView.FocusReleased)
    def _released(self) -> None:
        self.query_one("Tabs").focus()

    @on(TerminalView.TitleChanged)
    def _title(self, event: TerminalView.TitleChanged) -> None:
        self.sub_title = event.title

    def on_mount(self) -> None:
        self.query_one("#broadcast-bar", Label).display = False
        self.set_interval(REFRESH_INTERVAL, self.sync_forwards)

    async def on_screen_resume(self) -> None:
        self.action_focus_terminal()
        self.refresh_panel()
        await self.sync_forwards()
