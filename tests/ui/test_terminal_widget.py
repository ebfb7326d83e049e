"""TerminalView inside a running Textual app: keys out, output in, only changed rows repainted."""

from __future__ import annotations

from textual import events
from textual.app import App, ComposeResult
from textual.command import CommandPalette
from textual.strip import Strip
from textual.widgets import Button

from sshtui.ui.terminal.widget import TerminalView


class CountingTerminal(TerminalView):
    """Records which rows Textual asked to render."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.rendered: list[int] = []

    def render_line(self, y: int) -> Strip:
        self.rendered.append(y)
        return super().render_line(y)


class Host(App[None]):
    def __init__(self, *, with_button: bool = False) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.sizes: list[tuple[int, int]] = []
        self.titles: list[str] = []
        self.bells = 0
        self.released = 0
        self.ready_calls = 0
        self.with_button = with_button

    def compose(self) -> ComposeResult:
        if self.with_button:
            yield Button("other")
        yield CountingTerminal(
            self.sent.append, on_resize=lambda columns, rows: self.sizes.append((columns, rows)),
            ready_for_more=self._reader_ready,
        )

    def _reader_ready(self) -> None:
        self.ready_calls += 1

    def on_terminal_view_title_changed(self, message: TerminalView.TitleChanged) -> None:
        self.titles.append(message.title)

    def on_terminal_view_bell(self, message: TerminalView.Bell) -> None:
        self.bells += 1

    def on_terminal_view_focus_released(self, message: TerminalView.FocusReleased) -> None:
        self.released += 1

    @property
    def terminal(self) -> CountingTerminal:
        return self.query_one(CountingTerminal)


def screen_text(terminal: TerminalView) -> list[str]:
    return [terminal.render_line(y).text.rstrip() for y in range(terminal.size.height)]


async def test_typed_keys_reach_the_remote_including_keys_textual_would_take() -> None:
    app = Host()
    async with app.run_test(size=(40, 8)) as pilot:
        app.terminal.focus()
        await pilot.press("l", "s", "enter", "tab", "ctrl+c", "ctrl+p", "up", "f5")
        await pilot.pause()
        assert b"".join(app.sent) == b"ls\r\t\x03\x10\x1b[A\x1b[15~"
        assert not isinstance(app.screen, CommandPalette)
        assert app.focused is app.terminal  # tab did not move focus, ctrl+p opened no palette


async def test_cursor_keys_follow_the_remotes_application_mode() -> None:
    app = Host()
    async with app.run_test(size=(40, 8)) as pilot:
        app.terminal.focus()
        app.terminal.feed(b"\x1b[?1h")
        await pilot.pause()
        await pilot.press("up")
        assert app.sent[-1] == b"\x1bOA"


async def test_output_appears_on_screen() -> None:
    app = Host()
    async with app.run_test(size=(30, 6)) as pilot:
        app.terminal.feed(b"hello \x1b[31mworld\x1b[0m\r\n$ ")
        await pilot.pause(0.1)
        assert screen_text(app.terminal)[:2] == ["hello world", "$"]


async def test_only_the_changed_row_is_rendered_again() -> None:
    app = Host()
    async with app.run_test(size=(30, 10)) as pilot:
        terminal = app.terminal
        terminal.feed(b"".join(b"line %d\r\n" % n for n in range(5)) + b"\x1b[3;1H")
        await pilot.pause(0.1)
        terminal.rendered.clear()
        terminal.feed(b"changed")
        await pilot.pause(0.1)
        assert terminal.rendered and set(terminal.rendered) == {2}
        assert screen_text(terminal)[2] == "changed"


async def test_many_chunks_cause_few_repaints() -> None:
    app = Host()
    async with app.run_test(size=(30, 10)) as pilot:
        terminal = app.terminal
        terminal.rendered.clear()
        for n in range(500):
            terminal.feed(b"x%d\r\n" % n)
        await pilot.pause(0.2)
        # Painting follows the refresh timer, not the 500 chunks: at most a few full frames of 10 rows.
        assert len(terminal.rendered) < 500
        assert screen_text(terminal)[-2] == "x499"


async def test_paste_is_bracketed_when_the_remote_enabled_it() -> None:
    app = Host()
    async with app.run_test(size=(30, 6)) as pilot:
        terminal = app.terminal
        terminal.focus()
        terminal.post_message(events.Paste("a\nb"))
        await pilot.pause()
        terminal.feed(b"\x1b[?2004h")
        await pilot.pause()
        terminal.post_message(events.Paste("c"))
        await pilot.pause()
        assert app.sent == [b"a\rb", b"\x1b[200~c\x1b[201~"]


async def test_resize_reports_the_new_size() -> None:
    app = Host()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert app.sizes[-1] == (40, 10)
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert app.sizes[-1] == (60, 20)
        assert (app.terminal.backend.columns, app.terminal.backend.rows) == (60, 20)


async def test_queries_are_answered_through_write() -> None:
    app = Host()
    async with app.run_test(size=(30, 6)) as pilot:
        app.terminal.feed(b"ab\x1b[6n")
        await pilot.pause()
        assert app.sent == [b"\x1b[1;3R"]


async def test_title_and_bell_become_messages() -> None:
    app = Host()
    async with app.run_test(size=(30, 6)) as pilot:
        app.terminal.feed(b"\x1b]0;build: ok\x07\x07\x07")
        await pilot.pause(0.1)
        assert app.titles == ["build: ok"]
        assert app.bells == 1  # rings within one frame coalesce


async def test_double_escape_gives_focus_back_to_the_app() -> None:
    app = Host(with_button=True)
    async with app.run_test(size=(30, 8)) as pilot:
        app.terminal.focus()
        await pilot.pause()
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.released == 1
        assert app.focused is not app.terminal
        assert b"\x1b" not in b"".join(app.sent)


async def test_a_single_escape_is_sent_after_the_double_tap_window() -> None:
    app = Host()
    async with app.run_test(size=(30, 8)) as pilot:
        app.terminal.focus()
        await pilot.press("escape")
        await pilot.pause(TerminalView.DOUBLE_ESCAPE_SECONDS + 0.2)
        assert app.sent == [b"\x1b"]
        assert app.focused is app.terminal


async def test_escape_then_a_key_keeps_their_order() -> None:
    app = Host()
    async with app.run_test(size=(30, 8)) as pilot:
        app.terminal.focus()
        await pilot.press("escape", "x")
        assert app.sent == [b"\x1b", b"x"]


async def test_ctrl_right_bracket_gives_focus_back() -> None:
    app = Host(with_button=True)
    async with app.run_test(size=(30, 8)) as pilot:
        app.terminal.focus()
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause()
        assert app.released == 1 and app.focused is not app.terminal and app.sent == []


async def test_mouse_clicks_are_reported_only_when_the_remote_asked() -> None:
    app = Host()
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.click(CountingTerminal, offset=(3, 1))
        assert app.sent == []
        app.terminal.feed(b"\x1b[?1000h\x1b[?1006h")
        await pilot.pause()
        await pilot.click(CountingTerminal, offset=(3, 1))
        await pilot.pause()
        assert app.sent == [b"\x1b[<0;4;2M", b"\x1b[<0;4;2m"]


async def test_shift_page_up_shows_the_scrollback_and_typing_returns_to_the_live_screen() -> None:
    app = Host()
    async with app.run_test(size=(20, 5)) as pilot:
        terminal = app.terminal
        terminal.focus()
        terminal.feed(b"".join(b"L%d\r\n" % n for n in range(30)))
        await pilot.pause(0.1)
        await pilot.press("shift+pageup")
        await pilot.pause()
        assert terminal.history_offset == 4
        assert screen_text(terminal)[0] == "L22"
        assert app.sent == []
        await pilot.press("q")
        await pilot.pause()
        assert terminal.history_offset == 0 and app.sent == [b"q"]
        assert screen_text(terminal)[0] == "L26"


async def test_a_flood_pauses_the_reader_until_parsing_catches_up() -> None:
    app = Host()
    async with app.run_test(size=(40, 10)) as pilot:
        terminal = app.terminal
        chunk = b"y\r\n" * 20_000
        accepted = [terminal.feed(chunk) for _ in range(6)]
        assert accepted[-1] is False
        assert terminal.pending_bytes >= TerminalView.HIGH_WATER
        for _ in range(200):
            await pilot.pause(0.05)
            if terminal.pending_bytes == 0:
                break
        assert terminal.pending_bytes == 0
        assert app.ready_calls == 1
        assert terminal.feed(b"") is True


async def test_default_coloured_cells_take_the_widgets_theme_colours() -> None:
    app = Host()
    async with app.run_test(size=(20, 4)) as pilot:
        terminal = app.terminal
        terminal.feed(b"ab\x1b[44mcd")
        await pilot.pause(0.1)
        themed = terminal.rich_style
        segments = list(terminal.render_line(0))
        assert segments[0].text == "ab" and segments[0].style is not None
        assert segments[0].style.bgcolor == themed.bgcolor and segments[0].style.color == themed.color
        assert segments[1].text == "cd" and segments[1].style is not None
        assert segments[1].style.bgcolor is not None and segments[1].style.bgcolor.name == "blue"
