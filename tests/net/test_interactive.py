"""The ssh(1)-style escape handling of the interactive shell (ssh(1) ESCAPE CHARACTERS)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sshtui.net.interactive import EscapeFilter


def test_tilde_dot_at_the_start_disconnects() -> None:
    assert EscapeFilter().feed(b"~.") == (b"", ["disconnect"])


def test_tilde_dot_after_a_newline_disconnects_and_drops_the_rest() -> None:
    assert EscapeFilter().feed(b"ls\r~.more") == (b"ls\r", ["disconnect"])


def test_tilde_inside_a_line_is_ordinary_text() -> None:
    assert EscapeFilter().feed(b"cd ~.\r") == (b"cd ~.\r", [])


def test_double_tilde_sends_one_tilde() -> None:
    assert EscapeFilter().feed(b"~~.") == (b"~.", [])


def test_tilde_then_other_key_sends_both() -> None:
    assert EscapeFilter().feed(b"~x") == (b"~x", [])


def test_escape_split_across_reads() -> None:
    escapes = EscapeFilter()
    assert escapes.feed(b"echo\n~") == (b"echo\n", [])
    assert escapes.feed(b".") == (b"", ["disconnect"])


def test_help_is_shown_and_nothing_is_sent() -> None:
    assert EscapeFilter().feed(b"~?ls") == (b"ls", ["help"])


@given(st.binary(max_size=200).filter(lambda b: b"~" not in b))
def test_text_without_the_escape_character_passes_unchanged(data: bytes) -> None:
    assert EscapeFilter().feed(data) == (data, [])
