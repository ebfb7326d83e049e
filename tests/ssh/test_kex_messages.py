"""Key exchange method messages: wire layout per RFC 5656 §4, RFC 4253 §8 and RFC 4419 §3,
and decoders that turn any malformed input into a DecodeError."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.errors import DecodeError, RemoteProtocolError
from sshtui.ssh.messages.kex import (
    KexDhGexGroup,
    KexDhGexInit,
    KexDhGexReply,
    KexDhGexRequest,
    KexdhInit,
    KexdhReply,
    KexEcdhInit,
    KexEcdhReply,
    check_dh_public_value,
)

MESSAGES = (
    KexEcdhInit,
    KexEcdhReply,
    KexdhInit,
    KexdhReply,
    KexDhGexRequest,
    KexDhGexGroup,
    KexDhGexInit,
    KexDhGexReply,
)


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def mpint(value: int) -> bytes:
    # Written independently of sshtui.ssh.wire, from the examples of RFC 4251 §5.
    if value == 0:
        return string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return string(raw)


def test_mpint_helper_matches_rfc4251_examples() -> None:
    assert mpint(0x9A378F9B2E332A7) == bytes.fromhex("0000000809a378f9b2e332a7")
    assert mpint(0x80) == bytes.fromhex("000000020080")


def test_layouts_match_the_rfcs() -> None:
    assert KexEcdhInit(b"Q" * 32).encode() == b"\x1e" + string(b"Q" * 32)
    assert KexEcdhReply(b"KS", b"QS", b"SIG").encode() == b"\x1f" + string(b"KS") + string(b"QS") + string(
        b"SIG"
    )
    assert KexdhInit(0x80).encode() == b"\x1e" + mpint(0x80)
    assert KexdhReply(b"KS", 0x1234, b"SIG").encode() == b"\x1f" + string(b"KS") + mpint(0x1234) + string(
        b"SIG"
    )
    assert KexDhGexRequest(2048, 3072, 8192).encode() == b"\x22" + struct.pack(">III", 2048, 3072, 8192)
    assert KexDhGexGroup(0xFFFB, 2).encode() == b"\x1f" + mpint(0xFFFB) + mpint(2)
    assert KexDhGexInit(5).encode() == b"\x20" + mpint(5)
    assert KexDhGexReply(b"KS", 7, b"SIG").encode() == b"\x21" + string(b"KS") + mpint(7) + string(b"SIG")


@pytest.mark.parametrize(
    "message",
    [
        KexEcdhInit(bytes(range(32))),
        KexEcdhReply(b"host key", b"\x04" + b"\x02" * 64, b"signature"),
        KexdhInit(2**2047 + 12345),
        KexdhReply(b"host key", 2**4095 + 1, b"signature"),
        KexDhGexRequest(2048, 3072, 8192),
        KexDhGexGroup(2**2048 - 1, 2),
        KexDhGexInit(3),
        KexDhGexReply(b"k", 2**100, b"s"),
    ],
)
def test_round_trip(message: Any) -> None:
    encoded = message.encode()
    assert type(message).decode(encoded) == message
    assert type(message).decode(memoryview(encoded)) == message


@pytest.mark.parametrize("cls", MESSAGES)
def test_truncated_and_padded_messages_are_decode_errors(cls: Any) -> None:
    samples: dict[type, Any] = {
        KexEcdhInit: KexEcdhInit(b"q" * 32),
        KexEcdhReply: KexEcdhReply(b"k", b"q", b"s"),
        KexdhInit: KexdhInit(99),
        KexdhReply: KexdhReply(b"k", 99, b"s"),
        KexDhGexRequest: KexDhGexRequest(1, 2, 3),
        KexDhGexGroup: KexDhGexGroup(23, 5),
        KexDhGexInit: KexDhGexInit(4),
        KexDhGexReply: KexDhGexReply(b"k", 4, b"s"),
    }
    encoded = samples[cls].encode()
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            cls.decode(encoded[:cut])
    with pytest.raises(DecodeError, match="trailing"):
        cls.decode(encoded + b"\x00")


def test_wrong_message_number_is_named() -> None:
    with pytest.raises(DecodeError, match="KEX_DH_GEX_REPLY"):
        KexDhGexReply.decode(KexdhReply(b"k", 2, b"s").encode())


def test_non_minimal_mpint_is_refused() -> None:
    with pytest.raises(DecodeError, match="leading"):
        KexdhInit.decode(b"\x1e" + string(b"\x00\x01"))


@pytest.mark.parametrize("cls", MESSAGES)
@given(data=st.binary(max_size=300))
def test_random_bytes_decode_or_raise_decode_error(cls: Any, data: bytes) -> None:
    for payload in (data, bytes((cls.MSG,)) + data):
        try:
            message = cls.decode(payload)
        except DecodeError:
            continue
        assert cls.decode(message.encode()) == message


@given(st.lists(st.binary(max_size=40), max_size=4))
def test_well_framed_random_fields_decode_or_raise_decode_error(fields: list[bytes]) -> None:
    body = b"".join(string(f) for f in fields)
    for cls in MESSAGES:
        payload = bytes((cls.MSG,)) + body
        try:
            message = cls.decode(payload)
        except DecodeError:
            continue
        assert cls.decode(message.encode()) == message


P = 23


@pytest.mark.parametrize("value", [-5, 0, 1, P - 1, P, P + 1, 2**64])
def test_dh_public_values_outside_the_open_range_are_refused(value: int) -> None:
    with pytest.raises(RemoteProtocolError, match="1 < f < p-1"):
        check_dh_public_value(value, P, "f")


@pytest.mark.parametrize("value", [2, 11, P - 2])
def test_dh_public_values_inside_the_range_pass(value: int) -> None:
    check_dh_public_value(value, P, "e")
