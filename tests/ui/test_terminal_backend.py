"""The emulator backend: what a user of the terminal would see for a given stream of remote output."""

from __future__ import annotations

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyte.graphics import FG_BG_256
from rich.color import Color

from sshtui.ui.terminal.avt_backend import AvtBackend
from sshtui.ui.terminal.backend import PyteBackend

Backend = PyteBackend | AvtBackend
BackendClass = type[PyteBackend] | type[AvtBackend]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every behaviour here holds for both emulators the widget can run on.
    if "backend_class" in metafunc.fixturenames:
        metafunc.parametrize("backend_class", [AvtBackend, PyteBackend], ids=["avt", "pyte"])


def make(
    backend_class: BackendClass, columns: int = 20, rows: int = 5, **kwargs: object
) -> tuple[Backend, list[bytes]]:
    replies: list[bytes] = []
    backend = backend_class(columns, rows, on_reply=replies.append, **kwargs)  # type: ignore[arg-type]
    return backend, replies


def text_of(backend: Backend) -> list[str]:
    return [line.rstrip() for line in backend.display()]


def test_plain_text_lands_at_the_cursor_and_wraps_at_the_right_edge(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=3)
    backend.feed(b"hello\r\nabcdefghijKL")
    assert text_of(backend) == ["hello", "abcdefghij", "KL"]
    assert backend.cursor == (2, 2)


def test_sixteen_colours_map_to_rich_standard_colours_so_the_theme_can_recolour_them(
    backend_class: BackendClass
) -> None:
    backend, _ = make(backend_class)
    backend.feed(b"\x1b[31mR\x1b[92mG\x1b[44mB\x1b[0mN")
    assert backend.cell(0, 0)[1].color == Color.parse("red")
    assert backend.cell(1, 0)[1].color == Color.parse("bright_green")
    assert backend.cell(2, 0)[1].bgcolor == Color.parse("blue")
    assert backend.cell(2, 0)[1].color == Color.parse("bright_green")
    plain = backend.cell(3, 0)[1]
    assert plain.color is None and plain.bgcolor is None  # default colours come from the widget's theme
    assert Color.parse("red").is_system_defined


def test_256_colour_indices_follow_the_xterm_palette(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=260, rows=2)
    backend.feed("".join(f"\x1b[38;5;{index}mx" for index in range(256)).encode())
    for index in range(16, 256):
        colour = backend.cell(index, 0)[1].color
        assert colour is not None
        # pyte's own table of the xterm 256-colour cube and grey ramp is an independent reference.
        assert colour.get_truecolor().hex == "#" + FG_BG_256[index]
    assert backend.cell(1, 0)[1].color == Color.parse("red")  # palette 0-15 are the themable ANSI colours
    assert backend.cell(9, 0)[1].color == Color.parse("bright_red")


def test_truecolour_in_semicolon_and_colon_forms(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    backend.feed(b"\x1b[38;2;10;20;30;48;2;200;100;0mA\x1b[38:2::1:2:3mB\x1b[38:5:196mC\x1b[4:3mD")
    style_a = backend.cell(0, 0)[1]
    assert style_a.color is not None and style_a.color.triplet == (10, 20, 30)
    assert style_a.bgcolor is not None and style_a.bgcolor.triplet == (200, 100, 0)
    style_b = backend.cell(1, 0)[1]
    assert style_b.color is not None and style_b.color.triplet == (1, 2, 3)
    assert backend.cell(2, 0)[1].color == Color.parse("color(196)")
    assert backend.cell(3, 0)[1].underline
    assert text_of(backend)[0] == "ABCD"  # no sub-parameter leaked onto the screen as text


def test_text_attributes_and_reset(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    backend.feed(b"\x1b[1;3;4;7;9mX\x1b[22;23mY\x1b[mZ")
    style_x = backend.cell(0, 0)[1]
    assert (style_x.bold, style_x.italic, style_x.underline, style_x.reverse, style_x.strike) == (
        True, True, True, True, True,
    )
    style_y = backend.cell(1, 0)[1]
    assert not style_y.bold and not style_y.italic and style_y.underline
    assert backend.cell(2, 0)[1] == backend.cell(10, 0)[1]


def test_leaving_the_alternate_screen_restores_the_shell_and_its_cursor(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=20, rows=4)
    backend.feed(b"$ ls\r\nfile1 file2\r\n$ vim")
    before, cursor_before = text_of(backend), backend.cursor
    backend.feed(b"\x1b[?1049h\x1b[H\x1b[2J~ vim buffer\r\n~\r\n~\x1b[4;1H-- INSERT --")
    assert backend.alternate_screen
    assert text_of(backend) == ["~ vim buffer", "~", "~", "-- INSERT --"]
    backend.feed(b"\x1b[?1049l")
    assert not backend.alternate_screen
    assert text_of(backend) == before
    assert backend.cursor == cursor_before


def test_full_screen_programs_do_not_fill_the_scrollback(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=3)
    backend.feed(b"\x1b[?1049h" + b"x\r\n" * 20 + b"\x1b[?1049l")
    assert backend.history_size == 0


@pytest.mark.parametrize("mode", [47, 1047])
def test_older_alternate_screen_modes_also_keep_the_primary_screen(
    backend_class: BackendClass, mode: int
) -> None:
    backend, _ = make(backend_class, columns=10, rows=2)
    backend.feed(b"shell")
    backend.feed(f"\x1b[?{mode}h\x1b[Hfull".encode())
    assert text_of(backend)[0] == "full"
    backend.feed(f"\x1b[?{mode}l".encode())
    assert text_of(backend)[0] == "shell"


def test_wide_characters_take_two_cells(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=2)
    backend.feed("中文x".encode())
    assert backend.cursor == (5, 0)
    assert backend.cell(0, 0)[0] == "中" and backend.cell(2, 0)[0] == "文" and backend.cell(4, 0)[0] == "x"
    assert text_of(backend)[0] == "中文x"


def test_a_wide_character_that_does_not_fit_wraps_to_the_next_line(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=5, rows=2)
    backend.feed("abcd中".encode())
    assert text_of(backend) == ["abcd", "中"]


def test_combining_characters_join_the_previous_cell(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    backend.feed("e\u0301x".encode())
    assert backend.cell(0, 0)[0] == "\u00e9"
    assert backend.cell(1, 0)[0] == "x"
    assert backend.cursor == (2, 0)


def test_a_utf8_character_split_across_reads_is_decoded_whole(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    encoded = "€ and 中".encode()
    for index in range(len(encoded)):
        backend.feed(encoded[index : index + 1])
    assert text_of(backend)[0] == "€ and 中"


def test_an_escape_sequence_split_across_reads_still_applies(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    backend.feed(b"\x1b[3")
    backend.feed(b"1mR\x1b]0;ti")
    backend.feed(b"tle\x07ok")
    assert text_of(backend)[0] == "Rok"
    assert backend.cell(0, 0)[1].color == Color.parse("red")
    assert backend.title == "title"


def test_cursor_position_report(backend_class: BackendClass) -> None:
    backend, replies = make(backend_class)
    backend.feed(b"\x1b[3;5H\x1b[6n")
    backend.feed(b"\x1b[1;1Habc\x1b[6n")
    assert replies == [b"\x1b[3;5R", b"\x1b[1;4R"]


def test_device_attribute_queries_are_answered(backend_class: BackendClass) -> None:
    backend, replies = make(backend_class)
    backend.feed(b"\x1b[c\x1b[>c")
    assert len(replies) == 2
    assert replies[0].startswith(b"\x1b[?") and replies[0].endswith(b"c")
    assert replies[1].startswith(b"\x1b[>") and replies[1].endswith(b"c")


def test_scrollback_keeps_the_newest_lines_up_to_its_bound(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=5, scrollback=50)
    backend.feed(b"".join(b"L%d\r\n" % index for index in range(200)))
    # 200 line feeds on a 5-row screen push L0..L195 off the top; the last 50 of them are kept.
    assert backend.history_size == 50
    history = ["".join(s.text for s in backend.history_segments(i)).rstrip() for i in range(50)]
    assert history == [f"L{index}" for index in range(146, 196)]
    assert text_of(backend) == ["L196", "L197", "L198", "L199", ""]


def test_clear_scrollback_sequence_empties_the_history(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=2)
    backend.feed(b"a\r\nb\r\nc\r\n")
    assert backend.history_size > 0
    backend.feed(b"\x1b[3J")
    assert backend.history_size == 0


def test_private_modes_are_tracked(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    assert not backend.application_cursor and not backend.bracketed_paste and backend.mouse_tracking == 0
    backend.feed(b"\x1b[?1h\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?1004h")
    assert backend.application_cursor and backend.bracketed_paste and backend.mouse_sgr
    assert backend.mouse_tracking == 1000 and backend.focus_reporting
    backend.feed(b"\x1b[?1003h")
    assert backend.mouse_tracking == 1003
    backend.feed(b"\x1b[?1003;1000l\x1b[?1l\x1b[?2004l\x1b[?25l")
    assert backend.mouse_tracking == 0 and not backend.application_cursor and not backend.bracketed_paste
    assert not backend.cursor_visible


def test_title_and_bell_reach_their_callbacks(backend_class: BackendClass) -> None:
    titles: list[str] = []
    bells: list[bool] = []
    backend = backend_class(10, 2, on_title=titles.append, on_bell=lambda: bells.append(True))
    backend.feed(b"\x1b]2;user@host: ~\x1b\\\x07")
    assert titles == ["user@host: ~"] and bells == [True]


def test_only_changed_rows_are_reported_dirty(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=5)
    backend.take_dirty()
    backend.feed(b"\x1b[3;1Hchanged")
    assert backend.take_dirty() == {2}
    assert backend.take_dirty() == set()


def test_background_colour_erase_fills_the_whole_line(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=6, rows=2)
    backend.feed(b"\x1b[44m\x1b[2J")
    assert all(backend.cell(x, 1)[1].bgcolor == Color.parse("blue") for x in range(6))


def test_repeat_and_scroll_sequences_used_by_ncurses(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=3)
    backend.feed(b"a\x1b[3b\x1b[2;1Hrow2\x1b[3;1Hrow3\x1b[1S")
    assert text_of(backend) == ["row2", "row3", ""]


def test_insert_and_delete_lines_move_the_rows_below_the_cursor(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=6, rows=4)
    backend.feed(b"one\r\ntwo\r\nthree\x1b[1;1H\x1b[M")
    assert text_of(backend) == ["two", "three", "", ""]
    backend.feed(b"\x1b[2;1H\x1b[2L")
    assert text_of(backend) == ["two", "", "", "three"]


def test_shrinking_keeps_the_cursor_line_and_saves_what_leaves_the_top(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class, columns=10, rows=5)
    backend.feed(b"one\r\ntwo\r\nthree\r\nfour\r\n$ ")
    backend.resize(8, 3)
    assert (backend.columns, backend.rows) == (8, 3)
    assert text_of(backend) == ["three", "four", "$"]
    assert backend.cursor == (2, 2)
    assert backend.history_size == 2


def test_shrinking_a_mostly_empty_screen_drops_blank_rows_from_the_bottom(
    backend_class: BackendClass
) -> None:
    backend, _ = make(backend_class, columns=10, rows=5)
    backend.feed(b"$ ")
    backend.resize(10, 2)
    assert text_of(backend) == ["$", ""]
    assert backend.history_size == 0


def test_reset_after_garbage_leaves_a_working_terminal(backend_class: BackendClass) -> None:
    backend, _ = make(backend_class)
    backend.feed(b"\x1b[?1049h\x1b[31m\x1b[99;99r\x1bP+q544e\x1b\\")
    backend.feed(b"\x1bcok")
    assert text_of(backend)[0] == "ok" and not backend.alternate_screen
    assert backend.cell(0, 0)[1].color is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_never_raise_and_keep_the_cursor_on_screen(
    backend_class: BackendClass, chunks: list[bytes]
) -> None:
    backend, _ = make(backend_class, columns=12, rows=4)
    for chunk in chunks:
        backend.feed(chunk)
        x, y = backend.cursor
        assert 0 <= x < 12 and 0 <= y < 4
    assert len(backend.display()) == 4


_FRAGMENTS = st.sampled_from(
    [
        "\x1b[", "\x1b]", "\x1bP", "\x1b(", "\x1b#", "\x1b", "?", ">", "<", "=", ";", ":", "$", " ", "!",
        "0", "1", "2", "3", "4", "5", "9", "38", "48", "1049", "2004", "9999", "99999",
        "A", "B", "C", "D", "G", "H", "J", "K", "L", "M", "P", "S", "T", "X", "b", "c", "d", "h", "l", "m",
        "n", "r", "s", "u", "@", "`", "q", "p", "t", "7", "8", "\x07", "\x1b\\", "\r", "\n", "\t", "\x08",
        "\x0e", "\x0f", "x", "中", "e\u0301", "\u200d", "\x9b", "\x7f",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=60), st.integers(min_value=1, max_value=6))
def test_control_sequence_soup_never_raises(
    backend_class: BackendClass, fragments: list[str], split: int
) -> None:
    backend, _ = make(backend_class, columns=8, rows=3)
    data = "".join(fragments).encode()
    for start in range(0, len(data), split):
        backend.feed(data[start : start + split])
    backend.resize(5, 2)
    backend.feed(b"\x1b[6n")
    x, y = backend.cursor
    assert 0 <= x < 5 and 0 <= y < 2
    for row in range(2):
        backend.row_segments(row)


_VT100_TOKENS = st.one_of(
    st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=12),
    st.sampled_from(["\r", "\n", "\x08", "\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[J", "\x1b[1J", "\x1b[2J"]),
    st.builds(lambda r, c: f"\x1b[{r};{c}H", st.integers(1, 8), st.integers(1, 14)),
    # IL and DL are left out: pyte's versions keep a line when its replacement was never written to.
    st.builds(lambda n, f: f"\x1b[{n}{f}", st.integers(0, 5), st.sampled_from("ABCDGPX@d")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_VT100_TOKENS, max_size=40))
def test_basic_vt100_output_matches_pytes_own_stream(tokens: list[str]) -> None:
    # pyte's original Stream and Screen serve as the reference for the plain VT100 subset of our pyte
    # parser. (avt differs from pyte, and agrees with xterm, where a cursor move cancels a pending wrap.)
    data = "".join(tokens)
    reference = pyte.Screen(12, 6)
    pyte.Stream(reference).feed(data)
    backend, _ = make(PyteBackend, columns=12, rows=6)
    backend.feed(data.encode())
    assert backend.display() == reference.display
    assert backend.cursor == (min(reference.cursor.x, 11), reference.cursor.y)
