"""The handshake timeline fed real snapshots from our client and our embedded server: the setup
waterfall in protocol order with millisecond offsets, then the log of encrypted messages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from textual.app import App, ComposeResult

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.ssh.snapshot import TimelineEntry
from sshtui.ui.widgets.timeline import HandshakeTimeline, after_newkeys, waterfall_rows
from tests.ui.conftest import PASSWORD, USER_KEY, Embedded

pytestmark = pytest.mark.timeout(60)

OFFSET = r"[+-]\s*\d+\.\d ms"


class TimelineApp(App[None]):
    def compose(self) -> ComposeResult:
        yield HandshakeTimeline(id="timeline")

    @property
    def timeline(self) -> HandshakeTimeline:
        return self.query_one("#timeline", HandshakeTimeline)


@pytest.fixture
async def client(embedded: Embedded) -> AsyncIterator[SSHClient]:
    options = ClientOptions(
        "127.0.0.1", embedded.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as connected:
        yield connected


def line_of(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


async def settle(pilot, app) -> None:  # type: ignore[no-untyped-def]
    """The widget repaints on a 4 Hz timer: wait (bounded) until it has shown the snapshot."""
    for _ in range(40):
        await pilot.pause(0.1)
        if "NEWKEYS" in app.timeline.section_text("waterfall"):
            return


async def test_waterfall_lists_the_setup_in_protocol_order_with_offsets(client: SSHClient) -> None:
    result = await client.run("echo hello")
    assert result.stdout == b"hello\n"
    app = TimelineApp()
    async with app.run_test() as pilot:
        app.timeline.update_snapshot(client.snapshot(), tcp_connect_ms=1.5)
        await settle(pilot, app)
        text = app.timeline.section_text("waterfall")
        newkeys = line_of(text, "NEWKEYS")
        assert re.search(OFFSET, newkeys), newkeys
        order = ["TCP connect", "version", "KEXINIT", "NEWKEYS", "SERVICE_REQUEST", "USERAUTH_REQUEST",
                 "USERAUTH_SUCCESS", "CHANNEL_OPEN", "CHANNEL_REQUEST"]
        positions = [text.index(step) for step in order]
        assert positions == sorted(positions)
        assert "USERAUTH_SUCCESS (publickey: success)" in text
        assert "-1.5 ms" in line_of(text, "TCP connect")
        for phase in ("version exchange", "key exchange", "authentication", "channel"):
            assert re.search(rf"^{phase}\s+from {OFFSET}, \d+\.\d ms$", text, re.MULTILINE), phase


async def test_log_shows_encrypted_messages_with_counts(client: SSHClient) -> None:
    await client.run("echo one; echo two")
    snapshot = client.snapshot()
    app = TimelineApp()
    async with app.run_test() as pilot:
        app.timeline.update_snapshot(snapshot)
        await settle(pilot, app)
        log = app.timeline.section_text("log")
        assert "KEXINIT" not in log  # the clear-text handshake is in the waterfall, not the log
        assert "CHANNEL_DATA" in log
        data_messages = sum(1 for e in snapshot.transport.timeline if e.event == "CHANNEL_DATA")
        counts = app.timeline.section_text("counts")
        assert re.search(rf"^CHANNEL_DATA\s+{data_messages}$", counts, re.MULTILINE), counts


async def test_password_attempts_are_labelled(embedded: Embedded) -> None:
    async def password(prompt: str) -> str:
        return PASSWORD

    options = ClientOptions(
        "127.0.0.1", embedded.port, "alice",
        auth=AuthOptions(password_prompt=password, preferred=("password",), identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as client:
        rows = waterfall_rows(client.snapshot().transport.timeline, client.snapshot().auth)
    labels = [row.label for row in rows if row.phase == "authentication"]
    assert "USERAUTH_SUCCESS (password: success)" in labels
    assert PASSWORD not in " ".join(labels)


def test_waterfall_ends_at_session_data_and_durations_reach_the_next_step() -> None:
    entries = (
        TimelineEntry(0.0, "sent", "version", 20),
        TimelineEntry(2.0, "received", "version", 22),
        TimelineEntry(3.0, "sent", "KEXINIT", 900),
        TimelineEntry(9.0, "received", "NEWKEYS", 1),
        TimelineEntry(12.0, "sent", "CHANNEL_DATA", 100),
        TimelineEntry(13.0, "sent", "KEXINIT", 900),
    )
    rows = waterfall_rows(entries)
    assert [row.label for row in rows] == ["version", "version", "KEXINIT", "NEWKEYS"]
    assert [row.duration_ms for row in rows] == [2.0, 1.0, 6.0, 0.0]
    assert [e.event for e in after_newkeys(entries)] == ["CHANNEL_DATA", "KEXINIT"]
