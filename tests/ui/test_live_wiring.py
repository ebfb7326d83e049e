"""The live screens wired into the app, against our embedded server: the side panel, the handshake
timeline and its export, the forwards dashboard, broadcast input, and the trust/keys screens and
command palette reachable from the hosts screen."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.widgets import Input

from sshtui.ui.screens.hosts import HostsScreen
from sshtui.ui.screens.keys import KeysScreen
from sshtui.ui.screens.live import AddForwardDialog, ForwardsScreen, TimelineScreen
from sshtui.ui.screens.session import BROADCAST_MARK
from sshtui.ui.screens.trust import TrustScreen
from sshtui.ui.widgets.forwards import ForwardsTable
from sshtui.ui.widgets.side_panel import SidePanel
from sshtui.ui.widgets.timeline import HandshakeTimeline
from tests.ui.conftest import Embedded, install_user_key, make_app, wait_for
from tests.ui.test_tabs import open_first_shell, screen_text, tab_label, trust_server

pytestmark = pytest.mark.timeout(90)


def destination(embedded: Embedded) -> str:
    return f"tester@127.0.0.1:{embedded.port}"


async def release_keyboard(pilot: object) -> None:
    await pilot.press("ctrl+right_square_bracket")  # type: ignore[attr-defined]


async def test_side_panel_toggles_and_shows_the_negotiated_cipher(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_first_shell(app, pilot, destination(embedded))
        panel = app.session_screen.query_one(SidePanel)
        assert not panel.display
        await release_keyboard(pilot)
        await pilot.press("p")
        assert panel.display
        snapshot = pane.conn.snapshot
        assert snapshot is not None
        cipher = snapshot.transport.cipher_c2s
        assert cipher
        await wait_for(pilot, lambda: cipher in panel.section_text("algorithms"), what="cipher in the panel")
        assert snapshot.transport.kex_algorithm in panel.section_text("algorithms")
        renders = panel.renders
        await pilot.pause(1.0)
        assert panel.renders - renders <= 5  # coalesced to at most 4 a second
        await pilot.press("p")
        assert not panel.display


async def test_timeline_lists_newkeys_and_exports_without_secrets(
    home: Path, embedded: Embedded, tmp_path: Path
) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_first_shell(app, pilot, destination(embedded))
        await release_keyboard(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen), what="timeline screen")
        timeline = app.screen.query_one(HandshakeTimeline)
        await wait_for(pilot, lambda: "NEWKEYS" in timeline.section_text("log")
                       + timeline.section_text("waterfall"), what="NEWKEYS in the timeline")
        await pilot.press("j")
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        await wait_for(pilot, lambda: screen.exported is not None, what="export")
        assert screen.exported is not None
        assert screen.exported.parent == tmp_path / "data" / "sshtui" / "diagnostics"
        document = json.loads(screen.exported.read_text())
        assert document["transport"]["cipher_c2s"] == pane.conn.snapshot.transport.cipher_c2s  # type: ignore[union-attr]
        assert "session_id" not in json.dumps(document).replace("session_id_fingerprint", "")
        await pilot.press("escape")
        assert app.screen is app.session_screen


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def test_forwards_screen_adds_a_local_forward_that_listens_and_carries(
    home: Path, embedded: Embedded
) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    target = await _echo_server()
    target_port = target.sockets[0].getsockname()[1]
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_first_shell(app, pilot, destination(embedded))
        await release_keyboard(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardsScreen), what="forwards screen")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddForwardDialog), what="add form")
        field = app.screen.query_one("#forward-spec", Input)
        field.value = "-L nonsense"
        await pilot.press("enter")
        assert isinstance(app.screen, AddForwardDialog)  # refused with a reason, the form stays
        assert "bad local forwarding specification" in str(app.screen.query_one("#forward-error").render())
        field.value = f"-L 0:127.0.0.1:{target_port}"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardsScreen), what="back on the dashboard")
        table = app.screen.query_one(ForwardsTable)
        await wait_for(pilot, lambda: len(table.forwards) == 1 and table.selected_spec() is not None,
                       what="the forward's row")
        spec = table.selected_spec()
        assert spec is not None
        await wait_for(pilot, lambda: "listening" in table.row_text(spec)[3], what="listening")
        listen = table.row_text(spec)[1]
        port = int(listen.rsplit(":", 1)[1])
        assert port != 0
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"through the tunnel\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"THROUGH THE TUNNEL\n"
        writer.close()
        await pilot.press("s")  # stop
        await wait_for(pilot, lambda: "stopped" in table.row_text(spec)[3], what="stopped")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    target.close()
    await target.wait_closed()


async def test_broadcast_sends_what_is_typed_to_both_tabs(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        first = await open_first_shell(app, pilot, destination(embedded))
        await release_keyboard(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: len(app.session_screen.panes()) == 2
                       and app.session_screen.panes()[1].channel is not None, what="second shell")
        second = app.session_screen.panes()[1]
        await wait_for(pilot, lambda: screen_text(second).strip()[-1:] in ("$", "#"), what="second prompt")
        for pane in (first, second):
            app.session_screen.tabs.active = pane.id or ""
            await pilot.pause()
            await release_keyboard(pilot)
            await pilot.press("b")
            assert tab_label(app, pane).startswith(BROADCAST_MARK)
        assert "BROADCAST" in str(app.session_screen.query_one("#broadcast-bar").render())
        await pilot.press("enter")  # back into the second tab's shell
        assert second.terminal.has_focus
        await pilot.press(*"echo bc-$((2+3))", "enter")
        for pane in (first, second):
            await wait_for(pilot, lambda p=pane: "\nbc-5" in screen_text(p),  # type: ignore[misc]
                           what=f"broadcast output in tab {pane.number}")
        await release_keyboard(pilot)
        await pilot.press("b")  # the second tab stops receiving
        assert not tab_label(app, second).startswith(BROADCAST_MARK)
        await pilot.press("enter")
        await pilot.press(*"echo solo-$((1+1))", "enter")
        await wait_for(pilot, lambda: "\nsolo-2" in screen_text(second), what="own output")
        await pilot.pause(0.3)
        assert "solo-2" not in screen_text(first)


async def test_trust_and_keys_from_the_hosts_screen_and_the_palette(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen), what="hosts screen")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen), what="trust manager")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen), what="hosts again")
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen), what="keys screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen), what="hosts again")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Forwards dashboard")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardsScreen), what="the palette's forwards")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Toggle side panel")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.session_screen
                       and app.session_screen.query_one(SidePanel).display, what="the panel from the palette")


async def test_a_saved_hosts_forwards_start_when_it_connects(home: Path, embedded: Embedded) -> None:
    install_user_key(home)
    trust_server(home, embedded)
    (home.parent / "config" / "sshtui").mkdir(parents=True)
    hosts = home.parent / "config" / "sshtui" / "hosts.toml"
    hosts.write_text(
        f'version = 1\n[hosts.lab]\nhostname = "127.0.0.1"\nport = {embedded.port}\nuser = "tester"\n'
        'forwards = ["-L 0:127.0.0.1:9", "-D 0"]\n'
    )
    app = make_app(home, hosts_path=hosts)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_first_shell(app, pilot, "lab")
        await wait_for(pilot, lambda: len(app.forwards.snapshots()) == 2, what="saved forwards")
        states = [s.state.value for s in app.forwards.snapshots()]
        assert states == ["listening", "listening"]
        assert [s.spec for s in app.forwards.snapshots()] == ["lab: -L 0:127.0.0.1:9", "lab: -D 0"]


async def test_two_remote_forwards_on_one_connection_both_carry_and_stop_with_it(
    home: Path, embedded: Embedded
) -> None:
    from sshtui.ui.forward_manager import parse_spec_text

    install_user_key(home)
    trust_server(home, embedded)
    first_target, second_target = await _echo_server(), await _echo_server()
    app = make_app(home)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_first_shell(app, pilot, destination(embedded))
        for target in (first_target, second_target):
            port = target.sockets[0].getsockname()[1]
            await app.forwards.add(pane.conn, parse_spec_text(f"-R 0:127.0.0.1:{port}"))
        snapshots = app.forwards.snapshots()
        assert [s.state.value for s in snapshots] == ["listening", "listening"]
        for snapshot, word in zip(snapshots, (b"one", b"two"), strict=True):
            server_port = int(snapshot.listen.rsplit(":", 1)[1])  # the embedded server listens there
            reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
            writer.write(word + b"\n")
            assert await asyncio.wait_for(reader.readline(), 10) == word.upper() + b"\n"
            writer.close()
        await app.session_screen.close_pane(pane)  # the last tab: the connection closes
        await wait_for(pilot, lambda: all(s.reason == "stopped" for s in app.forwards.snapshots()),
                       what="forwards stopped with their connection")
    for target in (first_target, second_target):
        target.close()
        await target.wait_closed()
