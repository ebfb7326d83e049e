"""The live side panel fed real snapshots from our client connected to our embedded server: the
negotiated algorithms with their reasons, rekey bars that fill with traffic and empty after a
rekey, channel windows, liveness, and re-rendering coalesced to a few times a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from textual.app import App, ComposeResult

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.ssh.config import TransportConfig
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ui.widgets.side_panel import BAR_WIDTH, Liveness, SidePanel, bar, sparkline
from tests.ui.conftest import USER_KEY, Embedded

pytestmark = pytest.mark.timeout(60)

REKEY_BYTES = 2_000_000  # small enough that a few hundred KiB visibly fill the bar


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SidePanel(id="panel")

    @property
    def panel(self) -> SidePanel:
        return self.query_one("#panel", SidePanel)


@pytest.fixture
async def client(embedded: Embedded) -> AsyncIterator[SSHClient]:
    options = ClientOptions(
        "127.0.0.1", embedded.port, "tester",
        transport=TransportConfig(rekey_bytes=REKEY_BYTES),
        auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as connected:
        yield connected


def filled(section: str, label: str) -> int:
    """How many cells of the bar on the line starting with ``label`` are filled."""
    line = next(line for line in section.splitlines() if line.startswith(label))
    return line.count("█")


async def shown(pilot: object, app: PanelApp, snapshot: ConnectionSnapshot) -> None:
    app.panel.update_snapshot(snapshot)
    await pilot.pause(0.3)  # type: ignore[attr-defined]


async def test_negotiated_cipher_and_its_reason_are_shown(client: SSHClient) -> None:
    snapshot = client.snapshot()
    cipher = next(c for c in snapshot.transport.negotiation if c.category == "cipher_c2s")
    # Computed independently of the negotiation code: the client's first choice the server also offers.
    expected = next(name for name in cipher.client_offer if name in cipher.server_offer)
    app = PanelApp()
    async with app.run_test() as pilot:
        await shown(pilot, app, snapshot)
        text = app.panel.section_text("algorithms")
        assert f"cipher c→s   {expected}" in text
        rank = cipher.client_offer.index(expected) + 1
        assert f"client's #{rank} choice" in text
        assert f"server's #{cipher.server_offer.index(expected) + 1} of {len(cipher.server_offer)}" in text
        kex = app.panel.section_text("kex")
        assert "[strict kex]" in kex
        assert snapshot.transport.peer_version in kex


async def test_bytes_bar_fills_with_traffic_and_resets_after_a_forced_rekey(client: SSHClient) -> None:
    app = PanelApp()
    async with app.run_test() as pilot:
        await shown(pilot, app, client.snapshot())
        before = filled(app.panel.section_text("rekey"), "bytes")
        result = await client.run("head -c 800000 /dev/zero")
        assert len(result.stdout) == 800_000
        await shown(pilot, app, client.snapshot())
        after_transfer = filled(app.panel.section_text("rekey"), "bytes")
        assert after_transfer >= before + BAR_WIDTH * 800_000 // REKEY_BYTES - 1
        kex_count = client.snapshot().transport.kex_count
        assert client.request_rekey()
        deadline = time.monotonic() + 10
        while client.snapshot().transport.kex_count == kex_count:
            assert time.monotonic() < deadline, "the rekey did not finish"
            await asyncio.sleep(0.02)
        await shown(pilot, app, client.snapshot())
        rekey = app.panel.section_text("rekey")
        assert filled(rekey, "bytes") < after_transfer
        assert filled(rekey, "bytes") <= 1
        assert "rekeys  1" in rekey
        assert f"last    #{kex_count + 1} started by us" in rekey


async def test_channel_windows_traffic_and_rate_are_listed(client: SSHClient) -> None:
    app = PanelApp()
    async with app.run_test() as pilot:
        channel = await client.exec("cat")
        for _ in range(6):
            await channel.write(b"x" * 50_000)
            await asyncio.sleep(0.02)
            app.panel.update_snapshot(client.snapshot())
        await pilot.pause(0.3)
        text = app.panel.section_text("channels")
        ours = next(c for c in client.snapshot().channels if c.channel_type == "session")
        assert f"#{ours.local_id}→{ours.remote_id} session open" in text
        assert "local window" in text and "remote window" in text
        assert f"max packet    in {ours.local_max_packet}, out {ours.remote_max_packet}" in text
        window_line = next(line for line in text.splitlines() if "remote window" in line)
        assert any(cell in window_line for cell in "▁▂▃▄▅▆▇█"), "no window sparkline"
        traffic = next(line for line in text.splitlines() if line.strip().startswith("sent"))
        assert "KiB" in traffic and not traffic.endswith(" 0 B/s")
        channel.close()


async def test_many_snapshots_are_coalesced_into_a_few_renders(client: SSHClient) -> None:
    app = PanelApp()
    async with app.run_test() as pilot:
        await shown(pilot, app, client.snapshot())
        renders = app.panel.renders
        started = time.monotonic()
        for _ in range(200):
            app.panel.update_snapshot(client.snapshot())
            await asyncio.sleep(0)
        await pilot.pause(0.3)
        elapsed = time.monotonic() - started
        # At most 4 renders a second, plus the one a tick may start as the burst begins.
        assert app.panel.renders - renders <= int(elapsed * 4) + 2
        assert app.panel.renders > renders


async def test_liveness_shows_rtt_and_missed_replies(client: SSHClient) -> None:
    app = PanelApp()
    async with app.run_test() as pilot:
        app.panel.update_snapshot(client.snapshot(), Liveness(0.0125, 2, 15.0))
        await pilot.pause(0.3)
        text = app.panel.section_text("liveness")
        assert "keepalive RTT 12.5 ms" in text
        assert "missed replies 2" in text


async def test_a_closed_connection_shows_why(client: SSHClient) -> None:
    snapshot = client.snapshot()
    transport = replace(snapshot.transport, phase="closed", error="Connection reset by peer")
    app = PanelApp()
    async with app.run_test() as pilot:
        await shown(pilot, app, replace(snapshot, transport=transport))
        assert "Connection reset by peer" in app.panel.section_text("kex")


def test_bar_and_sparkline_scale_to_their_limits() -> None:
    assert bar(0, 100, 10) == "░" * 10
    assert bar(50, 100, 10) == "█" * 5 + "░" * 5
    assert bar(500, 100, 10) == "█" * 10
    line = sparkline([0, 50, 100])
    assert len(line) == 3 and line[0] < line[1] < line[2]
