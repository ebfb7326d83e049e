"""The mode scanner beside the native emulator: modes, queries, titles and bells, however reads split them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.ui.terminal.avt_backend import AvtBackend
from sshtui.ui.terminal.mode_scanner import Action, ModeScanner


def scan_all(chunks: list[str]) -> tuple[set[int], list[Action], list[str], int]:
    scanner = ModeScanner()
    actions: list[Action] = []
    titles: list[str] = []
    bells = 0
    for chunk in chunks:
        found = scanner.scan(chunk)
        for anchored in found.actions:
            assert 0 < anchored.end <= len(chunk)  # an answer is due at a point of the text just read
        actions.extend(anchored.action for anchored in found.actions)
        titles.extend(found.titles)
        bells += found.bells
    return scanner.modes, actions, titles, bells


def test_mouse_paste_focus_and_synchronized_modes_follow_set_and_reset() -> None:
    modes, *_ = scan_all(["\x1b[?1000;1006h\x1b[?2004h\x1b[?1004h\x1b[?2026h"])
    assert modes == {1000, 1006, 2004, 1004, 2026}
    modes, *_ = scan_all(["\x1b[?1000;1006h\x1b[?2004h", "\x1b[?1000l\x1b[?2004l"])
    assert modes == {1006}


def test_reset_clears_every_mode() -> None:
    modes, *_ = scan_all(["\x1b[?1049h\x1b[?2004h", "\x1bc"])
    assert modes == set()


def test_queries_are_found_in_order() -> None:
    _, actions, _, _ = scan_all(["\x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b[?6n\x1b[?2004$p\x1b[3J"])
    assert actions == [
        Action.CURSOR, Action.PRIMARY_ATTRIBUTES, Action.SECONDARY_ATTRIBUTES, Action.STATUS,
        Action.CURSOR_EXTENDED, Action.MODE, Action.CLEAR_HISTORY,
    ]


def test_a_bell_inside_a_title_or_device_control_string_is_not_a_bell() -> None:
    _, _, titles, bells = scan_all(["\x1b]0;build done\x07", "\x1bPtmux;\x07\x1b\\", "ring\x07"])
    assert titles == ["build done"] and bells == 1


def test_ordinary_coloured_output_is_not_mistaken_for_anything() -> None:
    modes, actions, titles, bells = scan_all(["\x1b[38;5;196mnc\x1b[0m \x1b[1;31mcn\x1b[m"] * 50)
    assert (modes, actions, titles, bells) == (set(), [], [], 0)


_PIECES = st.sampled_from(
    [
        "\x1b[?1000h", "\x1b[?1000l", "\x1b[?1006h", "\x1b[?2004h", "\x1b[?2004l", "\x1b[?1049h",
        "\x1b[?1049l",
        "\x1b[?2026h", "\x1b[?2026l", "\x1b[6n", "\x1b[5n", "\x1b[c", "\x1b[>c", "\x1b[?1$p", "\x1b[3J",
        "\x1b]2;title one\x07", "\x1b]0;t2\x1b\\", "\x1b]8;;http://x\x07", "\x07", "\x1bc", "\x1b[31m",
        "\x1b[38;5;2m", "plain text ", "\r\n", "\x1bP+q\x07\x1b\\", "n", "c",
        "\x1bPq#0;2;0;0;0#1~~\x07~~~~~~~~~~~~~~~~~~~~~\x1b\\",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=30), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_split_reads_find_exactly_what_one_read_finds(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    points = sorted({min(cut, len(text)) for cut in cuts})
    chunks = [text[start:end] for start, end in zip([0, *points], [*points, len(text)], strict=True)]
    assert scan_all(chunks) == scan_all([text])


def test_cursor_reports_give_the_position_where_the_query_was_written() -> None:
    replies: list[bytes] = []
    backend = AvtBackend(20, 5, on_reply=replies.append)
    backend.feed(b"\x1b[2;3H\x1b[6")  # the query is cut by the read; it is answered once it is whole
    backend.feed(b"n\x1b[5;10H\x1b[?6n")
    assert replies == [b"\x1b[2;3R", b"\x1b[?5;10R"]


def test_mode_queries_report_the_modes_in_force() -> None:
    replies: list[bytes] = []
    backend = AvtBackend(20, 5, on_reply=replies.append)
    backend.feed(b"\x1b[?2004h\x1b[?2004$p\x1b[?1000$p\x1b[?1h\x1b[?1$p\x1b[?9999$p")
    assert replies == [b"\x1b[?2004;1$y", b"\x1b[?1000;2$y", b"\x1b[?1;1$y", b"\x1b[?9999;0$y"]


def test_clearing_the_scrollback_keeps_lines_that_scroll_off_after_it() -> None:
    backend = AvtBackend(10, 2, scrollback=100)
    backend.feed(b"old1\r\nold2\r\nold3\r\n\x1b[3Jnew1\r\nnew2\r\n")
    history = [
        "".join(segment.text for segment in backend.history_segments(index)).rstrip()
        for index in range(backend.history_size)
    ]
    # old1 and old2 had scrolled off and are dropped; old3 was still on screen, so it scrolls off later.
    assert history == ["old3", "new1"]


def test_resizing_smaller_moves_the_top_rows_into_the_scrollback() -> None:
    backend = AvtBackend(10, 4, scrollback=100)
    backend.feed(b"a\r\nb\r\nc\r\nd")
    backend.resize(10, 2)
    assert backend.history_size == 2 and backend.history_pushed == 2
    assert [line.rstrip() for line in backend.display()] == ["c", "d"]
