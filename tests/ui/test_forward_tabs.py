"""Port forwards as session tabs, against our embedded server: a forward started on a connection gets
its own tab (without taking the focus from the shell), shows where it listens and the traffic of its
open connections, and closing the tab stops and removes the forward; a forward removed elsewhere
loses its tab."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from sshtui.ui.app import SshtuiApp
from sshtui.ui.forward_manager import parse_spec_text
from sshtui.ui.screens.forward_pane import ForwardPane
from sshtui.ui.screens.live import ForwardsScreen
from sshtui.ui.widgets.forwards import ForwardsTable
from sshtui.ui.widgets.side_panel import format_bytes
from tests.ui.conftest import Embedded, install_user_key, make_app, wait_for
from tests.ui.test_tabs import open_first_shell, screen_text, trust_server

pytestmark = pytest.mark.timeout(90)


def forward_tabs(app: SshtuiApp) -> list[ForwardPane]:
    return list(app.session_screen.query(ForwardPane).results(ForwardPane))


def label_of(app: SshtuiApp, pane: ForwardPane) -> str:
    return str(app.session_screen.tabs.get_tab(pane).label)


def listening_port(pane: ForwardPane) -> int:
    found = re.search(r"listen 127\.0\.0\.1:(\d+) ->", pane.summary)
    assert found, pane.summary
    return int(found.group(1))


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The forward's target: every line back in capitals, until the client closes."""
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()


async def test_a_forward_gets_a_tab_that_shows_its_traffic_and_closing_it_removes_the_forward(
    home: Path, embedded: Embedded
) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    target = await asyncio.start_server(echo_lines, "127.0.0.1", 0)
    target_port = target.sockets[0].getsockname()[1]
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        shell = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        spec = f"-L 0:127.0.0.1:{target_port}"
        await app.forwards.add(shell.conn, parse_spec_text(spec))
        await wait_for(pilot, lambda: len(forward_tabs(app)) == 1, what="the forward's tab")
        tab = forward_tabs(app)[0]
        await wait_for(pilot, lambda: label_of(app, tab).endswith("listening"), what="listening title")
        assert label_of(app, tab) == f"tester@127.0.0.1:{embedded.port} · {spec} · listening"

        # The shell keeps the keyboard: typing still reaches it.
        assert app.session_screen.tabs.active_pane is shell and shell.terminal.has_focus
        await pilot.press(*"echo still-$((3*3))", "enter")
        await wait_for(pilot, lambda: "\nstill-9" in screen_text(shell), what="the shell still typed into")

        await wait_for(pilot, lambda: "listen 127.0.0.1:" in tab.summary, what="the summary")
        port = listening_port(tab)
        assert port != 0
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"through the tab\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"THROUGH THE TAB\n"
        await wait_for(pilot, lambda: "1 open, 1 total, 0 failed" in tab.summary, what="one open connection")
        await wait_for(pilot, lambda: "sent 16 B" in tab.summary and "received 16 B" in tab.summary,
                       what="bytes each way")
        assert tab.snapshot is not None and len(tab.snapshot.connections) == 1
        live = tab.snapshot.connections[0]
        assert live.channel_id is not None

        def row_shows_the_channel_windows() -> bool:
            snapshot = shell.conn.snapshot
            channel = next((c for c in snapshot.channels if c.local_id == live.channel_id), None) \
                if snapshot is not None else None
            if channel is None:
                return False
            row = tab.row_text(live)
            return row[6:] == [format_bytes(channel.local_window), format_bytes(channel.remote_window)]

        await wait_for(pilot, row_shows_the_channel_windows, what="the connection's row with its windows")
        row = tab.row_text(live)
        assert row[0] == str(live.channel_id) and row[2] == f"127.0.0.1:{target_port}"
        assert row[1].startswith("127.0.0.1:") and row[4:6] == ["16 B", "16 B"]

        # w on the forward tab (the keyboard given back first) stops and removes the forward.
        await pilot.press("ctrl+right_square_bracket", "right")
        await wait_for(pilot, lambda: app.session_screen.tabs.active_pane is tab, what="the forward tab")
        await pilot.press("w")
        await wait_for(pilot, lambda: not forward_tabs(app), what="the tab gone")
        assert app.forwards.snapshots() == []
        assert await asyncio.wait_for(reader.read(), 10) == b""  # its open connection ended too
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert app.session_screen.tabs.active_pane is shell and shell.terminal.has_focus
        await pilot.press("ctrl+right_square_bracket", "f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardsScreen), what="the dashboard")
        table = app.screen.query_one(ForwardsTable)
        await pilot.pause(0.3)
        assert table.forwards == () and app.screen.query_one("#forwards-empty").display
    target.close()
    await target.wait_closed()


async def test_stop_restart_new_shell_and_removal_elsewhere(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        shell = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        forward = await app.forwards.add(shell.conn, parse_spec_text("-D 0"))
        await wait_for(pilot, lambda: len(forward_tabs(app)) == 1, what="the forward's tab")
        tab = forward_tabs(app)[0]
        await wait_for(pilot, lambda: "listen 127.0.0.1:" in tab.summary, what="the summary")
        port = listening_port(tab)
        await pilot.press("ctrl+right_square_bracket", "right")
        await wait_for(pilot, lambda: app.session_screen.tabs.active_pane is tab, what="the forward tab")
        assert "s stop/restart" in str(app.session_screen.query_one("#session-hint").render())

        await pilot.press("s")
        await wait_for(pilot, lambda: label_of(app, tab).endswith("· stopped"), what="stopped")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        await pilot.press("s")
        await wait_for(pilot, lambda: label_of(app, tab).endswith("· listening"), what="listening again")

        # n on a forward tab opens a shell on the forward's connection.
        await pilot.press("n")
        await wait_for(pilot, lambda: len(app.session_screen.panes()) == 2
                       and app.session_screen.panes()[1].channel is not None, what="second shell")
        assert app.session_screen.panes()[1].conn is shell.conn
        assert app.session_screen.tabs.active_pane is app.session_screen.panes()[1]

        # Removed elsewhere (the dashboard's manager): the tab goes, the shells stay.
        await app.forwards.remove(forward.key)
        await wait_for(pilot, lambda: not forward_tabs(app), what="the tab gone")
        assert len(app.session_screen.panes()) == 2
