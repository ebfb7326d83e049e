"""Tabs of shells against our embedded server: several shells per connection, several connections,
keys in and output back through the terminal widget, closing tabs and channels, drops and reconnect."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshtui.ssh.crypto.hostkeys import openssh_public_line
from sshtui.ui.app import SshtuiApp
from sshtui.ui.driver import ConnState
from sshtui.ui.screens.session import ShellPane
from sshtui.ui.terminal import AvtBackend, PyteBackend
from tests.ui.conftest import Embedded, install_user_key, make_app, wait_for

pytestmark = pytest.mark.timeout(90)


def trust_server(home: Path, embedded: Embedded, *names: str) -> None:
    line = openssh_public_line(embedded.host_key.public_blob)
    text = "".join(f"[{name}]:{embedded.port} {line}\n" for name in names or ("127.0.0.1",))
    (home / ".ssh" / "known_hosts").write_text(text)


def screen_text(pane: ShellPane) -> str:
    return "\n".join(line.rstrip() for line in pane.terminal.backend.display())


def tab_label(app: SshtuiApp, pane: ShellPane) -> str:
    return str(app.session_screen.tabs.get_tab(pane).label)


async def open_first_shell(app: SshtuiApp, pilot: object, dest: str, count: int = 1) -> ShellPane:
    app.connect_name(dest)
    await wait_for(pilot, lambda: len([p for p in app.session_screen.panes() if p.channel]) >= count,  # type: ignore[arg-type]
                   what="shell")
    pane = app.session_screen.panes()[-1]
    await wait_for(pilot, lambda: "$" in screen_text(pane) or "#" in screen_text(pane), what="prompt")  # type: ignore[arg-type]
    return pane


async def test_two_shells_on_one_connection_keys_in_output_out(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        first = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        assert first.terminal.has_focus
        assert tab_label(app, first) == f"tester@127.0.0.1:{embedded.port} #1 · shell"
        await pilot.press("ctrl+right_square_bracket")  # the terminal lets go of the keyboard
        await pilot.press("n")  # another shell on the focused tab's connection
        await wait_for(pilot, lambda: len(app.session_screen.panes()) == 2
                       and app.session_screen.panes()[1].channel is not None, what="second shell")
        second = app.session_screen.panes()[1]
        assert second.conn is first.conn and second.conn.client is first.conn.client  # same transport
        assert len(first.conn.channels) == 2
        assert tab_label(app, second).endswith("#2 · shell")

        app.session_screen.tabs.active = first.id or ""
        await pilot.pause()
        first.terminal.focus()
        await pilot.press(*"echo hi", "enter")
        await wait_for(pilot, lambda: "\nhi\n" in screen_text(first) + "\n", what="echo output")
        assert "echo hi" not in screen_text(second)

        # Closing a tab closes its channel; the connection stays for the other tab.
        channel = first.channel
        assert channel is not None
        await pilot.press("ctrl+right_square_bracket", "w")
        await wait_for(pilot, lambda: channel.closed.done(), what="channel closed")
        assert app.session_screen.panes() == [second]
        assert first.conn.state is ConnState.CONNECTED and len(first.conn.channels) == 1

        # The connection closes with its last channel.
        client = second.conn.client
        assert client is not None
        await pilot.press("ctrl+right_square_bracket", "w")
        await wait_for(pilot, lambda: client.closed.done(), what="connection closed")
        assert second.conn.state is ConnState.CLOSED
        await wait_for(pilot, lambda: not embedded.server.connections, what="server saw the close")


async def test_several_connections_at_once(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded, "127.0.0.1", "localhost")
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        one = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        await pilot.press("ctrl+right_square_bracket", "escape")  # back to the hosts screen
        assert app.screen is app.hosts_screen
        two = await open_first_shell(app, pilot, f"tester@localhost:{embedded.port}", count=2)
        assert one.conn is not two.conn and one.conn.state is two.conn.state is ConnState.CONNECTED
        assert "localhost" in tab_label(app, two) and "127.0.0.1" in tab_label(app, one)
        assert len(embedded.server.connections) == 2


async def test_a_dropped_connection_marks_its_tabs_and_reconnects_with_one_key(
    home: Path, embedded: Embedded
) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        conn = pane.conn
        for handler in list(embedded.server.connections):
            handler.shutdown("test drops the connection")
        await wait_for(pilot, lambda: conn.state is ConnState.DROPPED, what="drop noticed")
        await pilot.pause()
        assert "dropped (r: reconnect)" in tab_label(app, pane)
        assert pane.channel is None
        await pilot.press("ctrl+right_square_bracket", "r")
        await wait_for(pilot, lambda: conn.state is ConnState.CONNECTED and pane.channel is not None,
                       what="reconnected")
        assert conn.attempt == 2 and app.session_screen.panes() == [pane]  # the same tab, a new shell
        pane.terminal.focus()
        await pilot.press(*"echo back", "enter")
        await wait_for(pilot, lambda: "\nback\n" in screen_text(pane) + "\n", what="output after reconnect")


@pytest.mark.parametrize(("setting", "expected"), [("pyte", PyteBackend), ("vt9000", AvtBackend)])
async def test_config_chooses_the_terminal_emulator_and_a_wrong_name_falls_back_with_a_warning(
    home: Path, embedded: Embedded, tmp_path: Path, setting: str, expected: type
) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    config = tmp_path / "config" / "sshtui"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[terminal]\nemulator = "{setting}"\n')
    app = make_app(home)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        pane = await open_first_shell(app, pilot, f"tester@127.0.0.1:{embedded.port}")
        assert isinstance(pane.terminal.backend, expected)
        await pilot.press(*"echo $((6*7))", "enter")
        await wait_for(pilot, lambda: "\n42\n" in screen_text(pane) + "\n", what="command output")
        warned = any("vt9000" in str(note.message) for note in app._notifications)
        assert warned == (setting == "vt9000")
