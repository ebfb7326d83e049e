"""The forwards dashboard fed snapshots from the forwards' own counters: state, bytes, rate, last
error, and the add/stop/restart keys posting messages for the selected forward."""

from __future__ import annotations

import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.message import Message

from sshtui.forward_spec import parse_forward
from sshtui.net.forward_snapshot import ForwardCounters, ForwardState
from sshtui.ui.widgets.forwards import ForwardsTable

pytestmark = pytest.mark.timeout(30)


class ForwardsApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Message] = []

    def compose(self) -> ComposeResult:
        yield ForwardsTable(id="forwards")

    @property
    def table(self) -> ForwardsTable:
        return self.query_one("#forwards", ForwardsTable)

    @on(ForwardsTable.AddRequested)
    @on(ForwardsTable.StopRequested)
    @on(ForwardsTable.RestartRequested)
    def _record(self, message: Message) -> None:
        self.requests.append(message)


def counters(kind: str, text: str) -> ForwardCounters:
    forward = ForwardCounters(parse_forward(kind, text))  # type: ignore[arg-type]
    forward.set_state(ForwardState.LISTENING)
    return forward


async def test_rows_show_state_traffic_rate_and_errors() -> None:
    web = counters("local", "8080:db.internal:5432")
    socks = counters("dynamic", "1080")
    app = ForwardsApp()
    async with app.run_test() as pilot:
        assert app.query_one("#forwards-empty").display
        app.table.update_forwards([web.snapshot(), socks.snapshot()], now=100.0)
        await pilot.pause(0.3)
        assert not app.query_one("#forwards-empty").display
        live = web.started("127.0.0.1:50000")
        live.bytes_sent, live.bytes_received = 10 * 1024, 30 * 1024
        socks.failed_with(None, "connection refused by example.org:443")
        app.table.update_forwards([web.snapshot(), socks.snapshot()], now=102.0)
        await pilot.pause(0.3)
        row = app.table.row_text(web.snapshot().spec)
        assert row[:5] == ["local", "127.0.0.1:8080", "db.internal:5432", "active", "1 of 1"]
        assert row[5:7] == ["10.0 KiB", "30.0 KiB"]
        assert row[7].endswith("20.0 KiB/s")  # 40 KiB over 2 seconds
        socks_row = app.table.row_text(socks.snapshot().spec)
        assert socks_row[3] == "listening"
        assert socks_row[8] == "connection refused by example.org:443"


async def test_keys_post_add_stop_and_restart_for_the_selected_forward() -> None:
    first = counters("local", "8080:db:5432")
    second = counters("remote", "9000:localhost:80")
    app = ForwardsApp()
    async with app.run_test() as pilot:
        app.table.update_forwards([first.snapshot(), second.snapshot()])
        await pilot.pause(0.3)
        app.query_one("#forwards-table").focus()
        await pilot.press("down", "s", "r", "a")
        await pilot.pause()
        kinds = [type(m) for m in app.requests]
        expected = [ForwardsTable.StopRequested, ForwardsTable.RestartRequested, ForwardsTable.AddRequested]
        assert kinds == expected
        specs = [getattr(m, "spec", None) for m in app.requests]
        assert specs[:2] == [second.snapshot().spec] * 2


async def test_a_failed_forward_shows_why_and_rows_follow_the_snapshots() -> None:
    forward = counters("local", "8080:db:5432")
    other = counters("local", "8081:db:5433")
    app = ForwardsApp()
    async with app.run_test() as pilot:
        app.table.update_forwards([forward.snapshot(), other.snapshot()])
        await pilot.pause(0.3)
        forward.set_state(ForwardState.FAILED, "address already in use")
        app.table.update_forwards([forward.snapshot()])
        await pilot.pause(0.3)
        table = app.query_one("#forwards-table")
        assert table.row_count == 1  # type: ignore[attr-defined]
        assert app.table.row_text(forward.snapshot().spec)[3] == "failed (address already in use)"
        assert set(app.table.history) == {forward.snapshot().spec}
