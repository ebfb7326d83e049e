"""Two terminals in one app: a flood parsing in one must not hold up keys and output in the other."""

from __future__ import annotations

import asyncio

from textual import events
from textual.app import App, ComposeResult

from sshtui.ui.terminal.widget import TerminalView

FLOOD = b"y\r\n" * 1_000_000  # 3 MB of one scroll per line: many parse slices for any emulator


class TwoTerminals(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[str, list[bytes]] = {"flooding": [], "typing": []}

    def compose(self) -> ComposeResult:
        for name, sent in self.sent.items():
            yield TerminalView(sent.append, id=name)

    def terminal(self, name: str) -> TerminalView:
        return self.query_one(f"#{name}", TerminalView)


async def until(condition: object, what: str, timeout: float = 20.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)
    assert condition(), what


async def test_a_key_and_its_echo_get_through_while_another_terminal_parses_a_flood() -> None:
    app = TwoTerminals()
    async with app.run_test(size=(80, 20)):
        flooding, typing = app.terminal("flooding"), app.terminal("typing")
        typing.focus()
        await until(lambda: typing.has_focus, "focus")
        flooding.feed(FLOOD)

        app.post_message(events.Key("x", "x"))  # as the terminal driver posts a keystroke
        await until(lambda: app.sent["typing"], "the key reached the remote")
        assert app.sent["typing"] == [b"x"]
        typing.feed(b"x")  # the remote's echo
        await until(lambda: typing.backend.display()[0].startswith("x"), "the echo is on screen")

        assert flooding.pending_bytes > 0  # all of that while the flood was still being parsed
        await until(lambda: flooding.pending_bytes == 0, "the flood parsed to the end", timeout=60)
        assert flooding.backend.display()[-2].rstrip() == "y"


async def test_a_short_output_into_an_idle_terminal_is_on_screen_at_once() -> None:
    app = TwoTerminals()
    async with app.run_test(size=(80, 20)):
        typing = app.terminal("typing")
        typing.feed(b"$ ls")
        assert typing.backend.display()[0].startswith("$ ls")  # no turn of the event loop needed
        assert typing.pending_bytes == 0
