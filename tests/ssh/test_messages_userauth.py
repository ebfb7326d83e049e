"""User authentication messages (RFC 4252, RFC 4256): byte layouts agree with paramiko,
every decoder accepts only well-formed input, secrets stay out of reprs, and server
text is made harmless before it reaches a terminal."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paramiko.message import Message  # type: ignore[import-untyped]

from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages.userauth import (
    MAX_PROMPTS,
    TRUNCATION_MARKER,
    KeyboardInteractiveAuth,
    NoneAuth,
    PasswordAuth,
    Prompt,
    PublickeyAuth,
    UnknownAuth,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthInfoResponse,
    UserauthPasswdChangereq,
    UserauthPkOk,
    UserauthRequest,
    UserauthSuccess,
    decode_method_reply,
    escape_untrusted_text,
    publickey_signed_data,
)
from tests.ssh.paramiko_wire import paramiko_bytes

# --- Known answers -----------------------------------------------------------------------


def test_password_request_bytes_follow_rfc4252_section_8() -> None:
    msg = UserauthRequest.of("alice", "ssh-connection", PasswordAuth("hunter2"))
    by_hand = (
        b"\x32"
        + b"\x00\x00\x00\x05alice"
        + b"\x00\x00\x00\x0essh-connection"
        + b"\x00\x00\x00\x08password"
        + b"\x00"
        + b"\x00\x00\x00\x07hunter2"
    )
    assert msg.encode() == by_hand
    assert by_hand == paramiko_bytes(50, "alice", "ssh-connection", "password", False, "hunter2")
    assert UserauthRequest.decode(by_hand) == msg


def test_publickey_signed_data_matches_paramiko_layout() -> None:
    session_id = bytes(range(32))
    key_blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(32)
    expected = Message()
    expected.add_string(session_id)
    expected.add_byte(bytes([50]))
    expected.add_string("bob")
    expected.add_string("ssh-connection")
    expected.add_string("publickey")
    expected.add_boolean(True)
    expected.add_string("ssh-ed25519")
    expected.add_string(key_blob)
    assert publickey_signed_data(session_id, "bob", "ssh-connection", "ssh-ed25519", key_blob) == (
        expected.asbytes()
    )


def test_signed_publickey_request_decodes_from_paramiko_bytes() -> None:
    wire = paramiko_bytes(50, "bob", "ssh-connection", "publickey", True, "ssh-ed25519", b"KEY", b"SIG")
    msg = UserauthRequest.decode(wire)
    assert msg.body == PublickeyAuth("ssh-ed25519", b"KEY", b"SIG")
    assert msg.body.has_signature
    assert msg.encode() == wire


def test_failure_and_info_request_match_paramiko() -> None:
    failure = UserauthFailure(("publickey", "keyboard-interactive"), partial_success=True)
    assert failure.encode() == paramiko_bytes(51, ["publickey", "keyboard-interactive"], True)
    prompts = (Prompt("Password: ", False), Prompt("Code: ", True))
    info = UserauthInfoRequest("Login", "Answer please", prompts)
    wire = paramiko_bytes(60, "Login", "Answer please", "", 2, "Password: ", False, "Code: ", True)
    assert info.encode() == wire
    assert UserauthInfoRequest.decode(wire) == info


def test_info_response_matches_paramiko() -> None:
    wire = paramiko_bytes(61, 2, "secret", "123456")
    assert UserauthInfoResponse(("secret", "123456")).encode() == wire
    assert UserauthInfoResponse.decode(wire).responses == ("secret", "123456")


# --- Behaviour -----------------------------------------------------------------------------


def test_unknown_method_is_kept_verbatim() -> None:
    wire = paramiko_bytes(50, "carol", "ssh-connection", "hostbased", "ssh-rsa", b"blob")
    msg = UserauthRequest.decode(wire)
    assert msg.method == "hostbased"
    assert isinstance(msg.body, UnknownAuth)
    assert msg.encode() == wire


def test_method_and_body_must_agree() -> None:
    with pytest.raises(LocalProtocolError, match="does not match"):
        UserauthRequest("u", "ssh-connection", "password", NoneAuth())
    with pytest.raises(LocalProtocolError, match="does not match"):
        UserauthRequest("u", "ssh-connection", "publickey", UnknownAuth(b""))
    with pytest.raises(LocalProtocolError, match="does not match"):
        UserauthRequest("u", "ssh-connection", "hostbased", NoneAuth())


def test_secrets_do_not_appear_in_reprs() -> None:
    request = UserauthRequest.of("dave", "ssh-connection", PasswordAuth("old-s3cret", "new-s3cret"))
    response = UserauthInfoResponse(("otp-s3cret",))
    for text in (repr(request), str(request), repr(response), repr(request.body)):
        assert "s3cret" not in text
    assert "dave" in repr(request)


def test_message_60_is_decoded_in_the_meaning_of_the_method_in_progress() -> None:
    pk_ok = UserauthPkOk("ssh-ed25519", b"KEY").encode()
    assert decode_method_reply(pk_ok, "publickey") == UserauthPkOk("ssh-ed25519", b"KEY")
    change = UserauthPasswdChangereq("Password expired").encode()
    assert decode_method_reply(change, "password") == UserauthPasswdChangereq("Password expired")
    info = UserauthInfoRequest("", "", ()).encode()
    assert decode_method_reply(info, "keyboard-interactive") == UserauthInfoRequest("", "", ())
    with pytest.raises(DecodeError, match="defines none"):
        decode_method_reply(pk_ok, "none")


def test_too_many_prompts_are_refused() -> None:
    prompts = [v for _ in range(MAX_PROMPTS + 1) for v in ("p", True)]
    wire = paramiko_bytes(60, "", "", "", MAX_PROMPTS + 1, *prompts)
    with pytest.raises(DecodeError, match="prompts"):
        UserauthInfoRequest.decode(wire)
    responses = paramiko_bytes(61, MAX_PROMPTS + 1, *(["x"] * (MAX_PROMPTS + 1)))
    with pytest.raises(DecodeError, match="responses"):
        UserauthInfoResponse.decode(responses)


def test_count_larger_than_the_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        UserauthInfoResponse.decode(paramiko_bytes(61, 3, "only one"))


def test_trailing_bytes_are_rejected() -> None:
    wire = UserauthRequest.of("u", "ssh-connection", NoneAuth()).encode() + b"\x00"
    with pytest.raises(DecodeError, match="trailing"):
        UserauthRequest.decode(wire)


def test_wrong_message_number_is_rejected() -> None:
    with pytest.raises(DecodeError, match="expected USERAUTH_BANNER"):
        UserauthBanner.decode(UserauthSuccess().encode())


# --- Escaping untrusted text ---------------------------------------------------------------


def test_terminal_escape_sequences_become_visible() -> None:
    banner = "Welcome\x1b]0;pwned\x07\n\tline\x1b[2J\r\x9b\x7f"
    assert escape_untrusted_text(banner) == "Welcome\\x1b]0;pwned\\x07\n\tline\\x1b[2J\\x0d\\x9b\\x7f"


def test_bidi_overrides_become_visible() -> None:
    assert escape_untrusted_text("evil\u202etxt.exe\u2066") == "evil\\u202etxt.exe\\u2066"


def test_plain_text_including_non_ascii_is_unchanged() -> None:
    text = "Bienvenue à bord — 欢迎\n"
    assert escape_untrusted_text(text) == text


def test_long_text_is_truncated_with_a_marker_and_never_inside_an_escape() -> None:
    assert escape_untrusted_text("a" * 10, limit=4) == "aaaa" + TRUNCATION_MARKER
    assert escape_untrusted_text("ab\x1bcd", limit=5) == "ab" + TRUNCATION_MARKER
    assert escape_untrusted_text("abcd", limit=4) == "abcd"


# C0 but tab and newline, DEL, C1, Arabic letter mark, LRM/RLM, line/paragraph separators,
# bidi embeddings/overrides and isolates: written out independently of the module's table.
_UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


@given(text=st.text(), limit=st.integers(0, 200))
def test_escaped_text_never_contains_control_characters(text: str, limit: int) -> None:
    shown = escape_untrusted_text(text, limit)
    assert not _UNSAFE_CHARS.search(shown)
    body = shown.removesuffix(TRUNCATION_MARKER)
    assert len(body) <= limit
    if len(text) <= limit and not _UNSAFE_CHARS.search(text):
        assert shown == text


# --- Round trips and fuzzing ---------------------------------------------------------------

names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1,
                max_size=20)
ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=20)
texts = st.text(max_size=40)
blobs = st.binary(max_size=64)
bodies = st.one_of(
    st.builds(NoneAuth),
    st.builds(PublickeyAuth, names, blobs, st.none() | blobs),
    st.builds(PasswordAuth, texts, st.none() | texts),
    st.builds(KeyboardInteractiveAuth, ascii_text, texts),
)
messages = st.one_of(
    st.builds(UserauthRequest.of, texts, ascii_text, bodies),
    st.builds(UserauthFailure, st.lists(names, max_size=5).map(tuple), st.booleans()),
    st.builds(UserauthSuccess),
    st.builds(UserauthBanner, texts, ascii_text),
    st.builds(UserauthPkOk, names, blobs),
    st.builds(UserauthPasswdChangereq, texts, ascii_text),
    st.builds(
        UserauthInfoRequest, texts, texts,
        st.lists(st.builds(Prompt, texts, st.booleans()), max_size=5).map(tuple), ascii_text,
    ),
    st.builds(UserauthInfoResponse, st.lists(texts, max_size=5).map(tuple)),
)


@given(messages)
def test_every_message_round_trips(msg: Any) -> None:
    assert type(msg).decode(msg.encode()) == msg


DECODERS: list[Callable[[bytes], object]] = [
    UserauthRequest.decode,
    UserauthFailure.decode,
    UserauthSuccess.decode,
    UserauthBanner.decode,
    UserauthPkOk.decode,
    UserauthPasswdChangereq.decode,
    UserauthInfoRequest.decode,
    UserauthInfoResponse.decode,
    lambda p: decode_method_reply(p, "publickey"),
    lambda p: decode_method_reply(p, "password"),
    lambda p: decode_method_reply(p, "keyboard-interactive"),
]
numbered_noise = st.builds(
    lambda n, rest: bytes([n]) + rest, st.sampled_from([50, 51, 52, 53, 60, 61]), st.binary()
)


@settings(max_examples=300)
@given(data=st.one_of(st.binary(max_size=100), numbered_noise), decoder=st.sampled_from(DECODERS))
def test_random_bytes_decode_or_raise_decode_error(data: bytes, decoder: Callable[[bytes], object]) -> None:
    with contextlib.suppress(DecodeError):
        decoder(data)


@given(messages, st.data())
def test_every_truncation_of_a_message_is_rejected(msg: Any, data: st.DataObject) -> None:
    wire = msg.encode()
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(DecodeError):
        type(msg).decode(wire[:cut])
