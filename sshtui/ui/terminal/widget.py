"""TerminalView: a Textual widget showing a remote terminal (xterm, as ``TERM=xterm-256color`` promises).

It knows nothing about SSH: output comes in through ``feed()``, keystrokes go out through the ``write``
callable, and a new size through ``on_resize`` (the caller sends the window-change request, RFC 4254 §6.7).

Speed: ``feed()`` only queues bytes (a short output into an idle terminal, such as an echo, is parsed at
once). Parsing runs in slices of about ``PARSE_BUDGET`` seconds (less while unfocused), each its own callback
on asyncio's ready queue, not Textual's message queue, which runs queued callbacks back to back without
returning to the loop: between two slices the loop reads sockets and runs keys and the other tabs, so a
flood in one tab holds up nothing for longer than a slice. The bytes per slice adapt to how fast the
emulator parses this output (``yes`` scrolls once per three bytes). Painting happens on a <= 60 Hz timer
that refreshes only the rows the emulator marked dirty (Textual's line API re-renders just those). When
parsing falls behind, ``feed()`` returns False and ``ready_for_more`` is called once the backlog has
drained, so the caller reads the channel only as fast as we parse (and the SSH window, not our memory,
absorbs the flood).

Keys: every key goes to the remote, including those Textual would take (tab, ctrl+c, ctrl+p, escape),
except the focus-release keys: press Escape twice within 0.4 s, or ctrl+], to give focus back to the app.
A single Escape is sent after that 0.4 s (at once in full-screen programs, which use the alternate
screen and want it immediately). Shift+PageUp/PageDown scroll the local scrollback.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from sshtui.ui.terminal.avt_backend import AvtBackend
from sshtui.ui.terminal.backend import DEFAULT_SCROLLBACK, BackendFactory, TerminalBackend
from sshtui.ui.terminal.keys import MouseAction, encode_focus, encode_key, encode_mouse, encode_paste

CURSOR_STYLE = Style(reverse=True)


class TerminalView(Widget, can_focus=True):
    """A terminal emulator widget fed with bytes; see the module docstring for keys and flow control."""

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
        background: $background;
        color: $foreground;
    }
    """

    RELEASE_FOCUS_KEYS = frozenset({"ctrl+right_square_bracket"})
    DOUBLE_ESCAPE_SECONDS = 0.4
    REFRESH_INTERVAL = 1 / 60
    PARSE_BUDGET = 0.008
    BACKGROUND_PARSE_BUDGET = 0.002  # unfocused: a flood in another tab gives way to the one typed in
    BACKGROUND_PAUSE = 0.004
    PARSE_SLICE = 16 * 1024  # the most bytes fed to the emulator in one call
    MIN_PARSE_SLICE = 256
    INLINE_PARSE = 4 * 1024  # fed while nothing is queued: parsed at once
    HIGH_WATER = 256 * 1024
    LOW_WATER = 64 * 1024
    SYNCHRONIZED_OUTPUT_TIMEOUT = 0.15
    MOTION_INTERVAL = 1 / 60

    class TitleChanged(Message):
        """The remote set the window title (OSC 0 or 2)."""

        def __init__(self, title: str) -> None:
            super().__init__()
            self.title = title

    class Bell(Message):
        """The remote rang the bell (BEL); at most one per repaint."""

    class FocusReleased(Message):
        """The user pressed a focus-release key: the app should take over the keyboard."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        on_resize: Callable[[int, int], None] | None = None,
        scrollback: int = DEFAULT_SCROLLBACK,
        backend_factory: BackendFactory = AvtBackend,
        *,
        ready_for_more: Callable[[], None] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._write = write
        self._on_resize = on_resize
        self.ready_for_more = ready_for_more
        self.backend: TerminalBackend = backend_factory(
            80, 24, scrollback=scrollback, on_reply=write, on_title=self._title_set, on_bell=self._bell_rung
        )
        self._backlog: deque[memoryview] = deque()
        self._pending = 0
        self._reader_paused = False
        self._parse_handle: asyncio.Handle | None = None
        self._slice = self.PARSE_SLICE
        self._strips: dict[int, Strip] = {}
        self._cursor_drawn: tuple[int, int] | None = None
        self._scroll_offset = 0
        self._history_mark = 0
        self._title: str | None = None
        self._bell = False
        self._synchronized_since: float | None = None
        self._escape_at: float | None = None
        self._escape_timer: Timer | None = None
        self._refresh_timer: Timer | None = None
        self._last_tick = 0.0
        self._last_motion = 0.0
        self._applied_size: tuple[int, int] | None = None
        self._base_style: Style | None = None

    # -- output path -----------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not parsed yet."""
        return self._pending

    def feed(self, data: bytes) -> bool:
        """Queue output from the remote; False means "stop reading until ``ready_for_more`` is called"."""
        if data:
            idle = not self._backlog and self._parse_handle is None
            self._backlog.append(memoryview(data))
            self._pending += len(data)
            if idle and len(data) <= min(self.INLINE_PARSE, self._slice) and self.is_mounted:
                self._parse_some()  # an echo, a prompt: on screen now, not after another turn of the loop
                if time.monotonic() - self._last_tick >= self.REFRESH_INTERVAL:
                    self._tick()  # and painted now, unless a frame went out less than a frame ago
            else:
                self._schedule_parse()
        if self._pending >= self.HIGH_WATER:
            self._reader_paused = True
        return not self._reader_paused

    def _schedule_parse(self) -> None:
        if self._parse_handle is None and self.is_mounted:
            self._parse_handle = asyncio.get_running_loop().call_soon(self._parse_some)

    def _parse_some(self) -> None:
        self._parse_handle = None
        try:
            self._parse_slice()
        except Exception as error:
            self.call_later(_reraise, error)  # Textual's error handling, as for any handler of ours
            return
        self._wake_refresh()
        if self._backlog:
            if self.has_focus:
                self._schedule_parse()
            elif self.is_mounted:
                # Unfocused, a flood gets a third of the loop: between its slices the loop runs whole
                # turns without it, so the typed-in tab's echo is painted within a frame or two.
                loop = asyncio.get_running_loop()
                self._parse_handle = loop.call_later(self.BACKGROUND_PAUSE, self._parse_some)
        if self._reader_paused and self._pending <= self.LOW_WATER:
            self._reader_paused = False
            if self.ready_for_more is not None:
                self.ready_for_more()

    def _parse_slice(self) -> None:
        """Feed the emulator for about ``PARSE_BUDGET`` seconds, in chunks sized to take half of it."""
        backlog, feed, clock = self._backlog, self.backend.feed, time.perf_counter
        budget = self.PARSE_BUDGET if self.has_focus else self.BACKGROUND_PARSE_BUDGET
        deadline = clock() + budget
        while backlog:
            size = self._slice
            chunk = backlog.popleft()
            if len(chunk) > size:
                backlog.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._pending -= len(chunk)
            started = clock()
            feed(bytes(chunk))
            now = clock()
            took = now - started
            if took > budget / 2:
                self._slice = max(self.MIN_PARSE_SLICE, int(len(chunk) * budget / 2 / took))
            elif len(chunk) == size and took < budget / 8:
                self._slice = min(self.PARSE_SLICE, size * 2)
            if now >= deadline:
                break

    def _title_set(self, title: str) -> None:
        self._title = title

    def _bell_rung(self) -> None:
        self._bell = True

    # -- painting --------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._refresh_timer = self.set_interval(self.REFRESH_INTERVAL, self._tick, pause=True)
        self._apply_size()
        if self._backlog:
            self._schedule_parse()

    def on_unmount(self) -> None:
        if self._parse_handle is not None:
            self._parse_handle.cancel()
            self._parse_handle = None

    def _wake_refresh(self) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.resume()

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        backend = self.backend
        if self._title is not None:
            self.post_message(self.TitleChanged(self._title))
            self._title = None
        if self._bell:
            self.post_message(self.Bell())
            self._bell = False
        if backend.synchronized_output:
            now = time.monotonic()
            if self._synchronized_since is None:
                self._synchronized_since = now
            if now - self._synchronized_since < self.SYNCHRONIZED_OUTPUT_TIMEOUT:
                return  # the remote is mid-frame; paint when it has finished (or has taken too long)
        else:
            self._synchronized_since = None
        dirty = backend.take_dirty()
        cursor = self._cursor_cell()
        if cursor != self._cursor_drawn:
            dirty.update(position[1] for position in (cursor, self._cursor_drawn) if position is not None)
            self._cursor_drawn = cursor
        for y in dirty:
            self._strips.pop(y, None)
        if self._scroll_offset and backend.history_pushed != self._history_mark:
            # Keep the lines being read still while new output scrolls in below them.
            self._scroll_offset += backend.history_pushed - self._history_mark
            self._scroll_offset = min(self._scroll_offset, backend.history_size)
            self._history_mark = backend.history_pushed
            self.refresh()
        elif dirty:
            if self._scroll_offset or len(dirty) * 2 > self.size.height:
                self.refresh()
            else:
                width = self.size.width
                self.refresh(*(Region(0, y, width, 1) for y in dirty))
        elif not self._backlog and self._refresh_timer is not None:
            self._refresh_timer.pause()  # idle: no timer wake-ups until output or input arrives

    def _cursor_cell(self) -> tuple[int, int] | None:
        if not self.has_focus or self._scroll_offset or not self.backend.cursor_visible:
            return None
        return self.backend.cursor

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        backend = self.backend
        # Line-API strips get no CSS colours from Textual: cells in the terminal's default colours
        # take the widget's (themed) foreground and background from this base style.
        base = self.rich_style
        if base != self._base_style:
            self._base_style = base
            self._strips.clear()
            backend.set_base_style(base)
        if self._scroll_offset:
            line = backend.history_size - self._scroll_offset + y
            if line < 0:
                return Strip.blank(width, base)
            if line < backend.history_size:
                return Strip(backend.history_segments(line)).adjust_cell_length(width, base)
            y = line - backend.history_size
        if y >= backend.rows:
            return Strip.blank(width, base)
        strip = self._strips.get(y)
        if strip is None:
            strip = self._strips[y] = Strip(backend.row_segments(y)).adjust_cell_length(width, base)
        if self._cursor_drawn is not None and self._cursor_drawn[1] == y:
            x = self._cursor_drawn[0]
            strip = Strip.join(
                [strip.crop(0, x), strip.crop(x, x + 1).apply_style(CURSOR_STYLE), strip.crop(x + 1, width)]
            )
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme change: cached strips carry the old base colours

    # -- size ------------------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size()

    def _apply_size(self) -> None:
        columns, rows = self.size
        if columns <= 0 or rows <= 0 or (columns, rows) == self._applied_size:
            return  # a hidden tab reports 0x0; the remote keeps its last real size
        self._applied_size = (columns, rows)
        self.backend.resize(columns, rows)
        self._strips.clear()
        self._scroll_offset = min(self._scroll_offset, self.backend.history_size)
        self.refresh()
        if self._on_resize is not None:
            self._on_resize(columns, rows)

    # -- keyboard --------------------------------------------------------------------------------------

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key not in self.RELEASE_FOCUS_KEYS

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        key = event.key
        if key in self.RELEASE_FOCUS_KEYS:
            self._release_focus()
            return
        if key == "escape":
            self._escape_pressed()
            return
        self._flush_escape()
        self._escape_at = None
        if key in ("shift+pageup", "shift+pagedown") and not self.backend.alternate_screen:
            page = max(self.size.height - 1, 1)
            self._scroll_by(page if key == "shift+pageup" else -page)
            return
        data = encode_key(key, event.character, application_cursor=self.backend.application_cursor)
        if data:
            self.send(data)

    def _escape_pressed(self) -> None:
        now = time.monotonic()
        if self._escape_at is not None and now - self._escape_at <= self.DOUBLE_ESCAPE_SECONDS:
            self._escape_at = None
            if self._escape_timer is not None:
                self._escape_timer.stop()  # the first Escape was a request to leave, not for the remote
                self._escape_timer = None
            self._release_focus()
            return
        self._escape_at = now
        if self.backend.alternate_screen:
            self.send(b"\x1b")
        else:
            self._escape_timer = self.set_timer(self.DOUBLE_ESCAPE_SECONDS, self._flush_escape)

    def _flush_escape(self) -> None:
        if self._escape_timer is not None:
            self._escape_timer.stop()
            self._escape_timer = None
            self.send(b"\x1b")

    def _release_focus(self) -> None:
        self.post_message(self.FocusReleased())
        self.blur()

    def send(self, data: bytes) -> None:
        """Write input to the remote; typing also returns a scrolled-back view to the live screen."""
        if self._scroll_offset:
            self._scroll_by(-self._scroll_offset)
        self._write(data)

    def _scroll_by(self, lines: int) -> None:
        offset = max(0, min(self._scroll_offset + lines, self.backend.history_size))
        if offset != self._scroll_offset:
            self._scroll_offset = offset
            self._history_mark = self.backend.history_pushed
            self.refresh()
            self._wake_refresh()

    @property
    def history_offset(self) -> int:
        """How many lines the view is scrolled back into the history (0: the live screen)."""
        return self._scroll_offset

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        self.send(encode_paste(event.text, bracketed=self.backend.bracketed_paste))

    def on_focus(self, event: events.Focus) -> None:
        self._focus_changed(True)

    def on_blur(self, event: events.Blur) -> None:
        self._focus_changed(False)

    def _focus_changed(self, focused: bool) -> None:
        if self.backend.focus_reporting:
            self._write(encode_focus(focused))
        self._wake_refresh()  # the cursor is drawn only while focused

    # -- mouse -----------------------------------------------------------------------------------------

    def _report_mouse(self, event: events.MouseEvent, action: MouseAction) -> bool:
        """Send a mouse report if the remote asked for this kind; True if the event was consumed."""
        tracking = self.backend.mouse_tracking
        if not tracking:
            return False
        if action is MouseAction.MOTION:
            if tracking == 1000 or (tracking == 1002 and not event.button):
                return True
            now = time.monotonic()
            if now - self._last_motion < self.MOTION_INTERVAL:
                return True  # throttled: a drag at 1 kHz would otherwise flood the link
            self._last_motion = now
        offset = event.get_content_offset(self)
        if offset is None:
            return True
        data = encode_mouse(
            action, event.button, offset.x, offset.y, shift=event.shift, alt=event.meta, ctrl=event.ctrl,
            sgr=self.backend.mouse_sgr,
        )
        if data:
            self._write(data)
        return True

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self._report_mouse(event, MouseAction.PRESS):
            event.stop()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._report_mouse(event, MouseAction.RELEASE):
            event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._report_mouse(event, MouseAction.MOTION):
            event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        if not self._report_mouse(event, MouseAction.WHEEL_UP):
            self._wheel(up=True)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        if not self._report_mouse(event, MouseAction.WHEEL_DOWN):
            self._wheel(up=False)

    def _wheel(self, *, up: bool) -> None:
        if self.backend.alternate_screen:
            # xterm's alternate scroll: a pager or editor without mouse support scrolls with arrows.
            key = encode_key("up" if up else "down", application_cursor=self.backend.application_cursor)
            if key:
                self._write(key * 3)
        else:
            self._scroll_by(3 if up else -3)


def _reraise(error: Exception) -> None:
    raise error
