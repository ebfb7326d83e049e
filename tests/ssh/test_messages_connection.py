"""Connection protocol messages (RFC 4254, OpenSSH PROTOCOL): byte layouts written out
from the RFC and cross-checked with paramiko, typed request bodies, bounds on what a peer
may send, and decoders that only ever return a message or raise DecodeError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paramiko.message import Message  # type: ignore[import-untyped]

from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages import connection as c
from sshtui.ssh.messages.terminal_modes import TerminalMode as Mode


def paramiko_bytes(msg_type: int, *fields: Any) -> bytes:
    """The same fields laid out by paramiko's independent encoder."""
    m = Message()
    m.add_byte(bytes([msg_type]))
    for value in fields:
        if isinstance(value, bool):
            m.add_boolean(value)
        elif isinstance(value, int):
            m.add_int(value)
        else:
            m.add_string(value)
    return bytes(m.asbytes())


# --- Known answers, written out field by field from RFC 4254 -------------------------------


def test_channel_open_session_bytes() -> None:
    by_hand = bytes.fromhex(
        "5a"  # SSH_MSG_CHANNEL_OPEN (90)
        "00000007" "73657373696f6e"  # string "session"
        "00000000"  # sender channel 0
        "00200000"  # initial window 2 MiB
        "00008000"  # maximum packet 32 KiB
    )
    assert by_hand == paramiko_bytes(90, "session", 0, 2 * 1024 * 1024, 32768)
    msg = c.ChannelOpen.of(c.Session(), sender_channel=0, initial_window=2 * 1024 * 1024, max_packet=32768)
    assert msg.encode() == by_hand
    decoded = c.ChannelOpen.decode(by_hand)
    assert decoded == msg
    assert decoded.body() == c.Session()


def test_exit_status_request_bytes() -> None:
    by_hand = bytes.fromhex(
        "62"  # SSH_MSG_CHANNEL_REQUEST (98)
        "00000003"  # recipient channel 3
        "0000000b" "657869742d737461747573"  # string "exit-status"
        "00"  # want reply FALSE
        "0000007f"  # exit status 127
    )
    assert by_hand == paramiko_bytes(98, 3, "exit-status", False, 127)
    msg = c.ChannelRequest.of(3, c.ExitStatus(127), want_reply=False)
    assert msg.encode() == by_hand
    assert c.ChannelRequest.decode(by_hand).body() == c.ExitStatus(127)


def test_window_adjust_and_data_bytes() -> None:
    adjust = bytes.fromhex("5d" "00000001" "00100000")
    assert adjust == paramiko_bytes(93, 1, 0x100000)
    assert c.ChannelWindowAdjust(1, 0x100000).encode() == adjust
    assert c.ChannelWindowAdjust.decode(adjust) == c.ChannelWindowAdjust(1, 0x100000)
    data = bytes.fromhex("5e" "00000002" "00000005") + b"hello"
    assert data == paramiko_bytes(94, 2, b"hello")
    assert c.encode_channel_data(2, b"hello") == data
    assert c.ChannelData.decode(data) == c.ChannelData(2, b"hello")
    stderr = paramiko_bytes(95, 2, 1, b"oops")
    assert c.ChannelExtendedData(2, 1, b"oops").encode() == stderr
    assert c.ChannelExtendedData.decode(stderr) == c.ChannelExtendedData(2, 1, b"oops")


def test_pty_request_matches_paramiko_get_pty_layout() -> None:
    modes = c.encode_terminal_modes({Mode.ECHO: 1, Mode.TTY_OP_OSPEED: 38400})
    # RFC 4254 §8: opcode byte, uint32 argument, ..., TTY_OP_END.
    assert modes == bytes.fromhex("35" "00000001" "81" "00009600" "00")
    wire = paramiko_bytes(98, 0, "pty-req", True, "xterm-256color", 120, 40, 960, 640, modes)
    msg = c.ChannelRequest.of(0, c.PtyReq("xterm-256color", 120, 40, 960, 640, modes), want_reply=True)
    assert msg.encode() == wire
    body = c.ChannelRequest.decode(wire).body()
    assert isinstance(body, c.PtyReq)
    assert c.decode_terminal_modes(body.modes) == {Mode.ECHO: 1, Mode.TTY_OP_OSPEED: 38400}


def test_messages_decode_from_paramiko_bytes() -> None:
    failure = paramiko_bytes(92, 7, 2, "connect failed", "")
    assert c.ChannelOpenFailure.decode(failure) == c.ChannelOpenFailure(7, 2, "connect failed")
    direct = paramiko_bytes(90, "direct-tcpip", 4, 65536, 16384, "db.internal", 5432, "127.0.0.1", 50022)
    assert c.ChannelOpen.decode(direct).body() == c.DirectTcpip("db.internal", 5432, "127.0.0.1", 50022)
    forward = paramiko_bytes(80, "tcpip-forward", True, "0.0.0.0", 0)
    assert c.GlobalRequest.decode(forward).body() == c.TcpipForward("0.0.0.0", 0)
    keepalive = paramiko_bytes(80, "keepalive@openssh.com", True)
    assert c.GlobalRequest.decode(keepalive).body() == c.Keepalive()
    signal = paramiko_bytes(98, 1, "exit-signal", False, "KILL", True, "killed", "en")
    assert c.ChannelRequest.decode(signal).body() == c.ExitSignal("KILL", True, "killed", "en")
    confirm = paramiko_bytes(91, 1, 9, 2097152, 32768)
    assert c.ChannelOpenConfirmation.decode(confirm) == c.ChannelOpenConfirmation(1, 9, 2097152, 32768)


# --- Behaviour -----------------------------------------------------------------------------


def test_channel_data_decoding_does_not_copy() -> None:
    payload = c.encode_channel_data(11, b"x" * 1000)
    recipient, view = c.decode_channel_data(payload)
    assert recipient == 11
    assert view.obj is payload
    assert view == b"x" * 1000
    recipient, data_type, view = c.decode_channel_extended_data(c.ChannelExtendedData(4, 1, b"err").encode())
    assert (recipient, data_type, bytes(view)) == (4, 1, b"err")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", "empty payload"),
        (bytes.fromhex("5f00000001000000026869"), "expected CHANNEL_DATA"),
        (bytes.fromhex("5e000000"), "truncated"),
        (bytes.fromhex("5e0000000100000003" "6869"), "data length 3 but 2"),
        (bytes.fromhex("5e0000000100000001" "6869"), "data length 1 but 2"),
    ],
)
def test_malformed_channel_data_names_the_problem(payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        c.decode_channel_data(payload)


def test_unknown_request_and_channel_types_have_no_typed_body() -> None:
    assert c.ChannelRequest(0, "auth-agent-req@openssh.com", False).body() is None
    assert c.ChannelOpen("x11", 1, 100, 100, b"junk").body() is None
    assert c.GlobalRequest("no-more-sessions@openssh.com", False).body() is None


def test_malformed_known_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="exit-status"):
        c.ChannelRequest(0, "exit-status", False, b"\x00\x00").body()
    with pytest.raises(DecodeError, match="trailing"):
        c.ChannelRequest(0, "shell", True, b"\x00").body()


def test_absurd_terminal_sizes_from_the_peer_are_refused() -> None:
    wire = paramiko_bytes(98, 0, "pty-req", True, "xterm", 10_001, 24, 0, 0, b"\x00")
    with pytest.raises(DecodeError, match="terminal size"):
        c.ChannelRequest.decode(wire).body()
    resize = c.ChannelRequest.of(0, c.WindowChange(80, 2**32 - 1), want_reply=False)
    with pytest.raises(DecodeError, match="terminal size"):
        c.ChannelRequest.decode(resize.encode()).body()


def test_ports_beyond_65535_are_refused() -> None:
    wire = paramiko_bytes(90, "forwarded-tcpip", 1, 100, 100, "0.0.0.0", 70000, "10.0.0.1", 22)
    with pytest.raises(DecodeError, match="not a TCP port"):
        c.ChannelOpen.decode(wire).body()
    with pytest.raises(LocalProtocolError, match="port 70000"):
        c.TcpipForward("", 70000).encode_data()


def test_tcpip_forward_reply_carries_the_allocated_port() -> None:
    reply = c.RequestSuccess.decode(paramiko_bytes(81, 40123))
    assert reply.bound_port() == 40123
    assert c.RequestSuccess.decode(bytes([81])).data == b""


def test_hostkeys_announcement_round_trips_and_is_bounded() -> None:
    keys = (b"key-one", b"key-two")
    request = c.GlobalRequest.of(c.Hostkeys(keys), want_reply=False)
    assert request.data == paramiko_bytes(0, b"key-one", b"key-two")[1:]
    assert c.GlobalRequest.decode(request.encode()).body() == c.Hostkeys(keys)
    too_many = c.Hostkeys(tuple(b"k" for _ in range(c.MAX_HOSTKEYS + 1))).encode_data()
    with pytest.raises(DecodeError, match="host keys"):
        c.Hostkeys.decode_data(too_many)


def test_out_of_range_fields_are_refused_on_encode() -> None:
    with pytest.raises(LocalProtocolError, match="sender_channel"):
        c.ChannelOpen("session", 2**32, 0, 0).encode()
    with pytest.raises(LocalProtocolError):
        c.ChannelWindowAdjust(0, 2**32).encode()
    with pytest.raises(LocalProtocolError):
        c.encode_channel_data(-1, b"")
    with pytest.raises(LocalProtocolError, match="not ASCII"):
        c.ChannelRequest(0, "ſhell", False).encode()


def test_terminal_modes_parsing_stops_at_end_or_undefined_opcode() -> None:
    assert c.decode_terminal_modes(b"") == {}
    assert c.decode_terminal_modes(bytes.fromhex("01" "00000003" "00" "02" "00000004")) == {Mode.VINTR: 3}
    assert c.decode_terminal_modes(bytes.fromhex("33" "00000000" "a0" "ffff")) == {Mode.ICANON: 0}
    with pytest.raises(DecodeError, match="value of mode 53"):
        c.decode_terminal_modes(bytes.fromhex("35" "0000"))
    with pytest.raises(LocalProtocolError, match="opcode 160"):
        c.encode_terminal_modes({160: 1})
    with pytest.raises(LocalProtocolError, match="opcode 0"):
        c.encode_terminal_modes({Mode.TTY_OP_END: 1})


def test_terminal_mode_numbers_follow_rfc4254_section_8() -> None:
    expected = {
        "VINTR": 1, "VERASE": 3, "VEOF": 5, "ICRNL": 36, "IXON": 38, "IUTF8": 42, "ISIG": 50,
        "ICANON": 51, "ECHO": 53, "OPOST": 70, "ONLCR": 72, "CS8": 91, "TTY_OP_ISPEED": 128,
        "TTY_OP_OSPEED": 129,
    }
    assert {name: Mode[name].value for name in expected} == expected


# --- Round trips and fuzzing ---------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
ports = st.integers(0, 65535)
cells = st.integers(0, c.MAX_TERMINAL_CELLS)
texts = st.text(max_size=30)
ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=30)
blobs = st.binary(max_size=64)
mode_maps = st.dictionaries(st.integers(1, 159), u32, max_size=8)

global_bodies = st.one_of(
    st.builds(c.TcpipForward, texts, ports),
    st.builds(c.CancelTcpipForward, texts, ports),
    st.builds(c.StreamlocalForward, texts),
    st.builds(c.CancelStreamlocalForward, texts),
    st.builds(c.Keepalive),
    st.builds(c.Hostkeys, st.lists(blobs, max_size=4).map(tuple)),
    st.builds(c.HostkeysProve, st.lists(blobs, max_size=4).map(tuple)),
)
open_bodies = st.one_of(
    st.builds(c.Session),
    st.builds(c.DirectTcpip, texts, ports, texts, ports),
    st.builds(c.ForwardedTcpip, texts, ports, texts, ports),
    st.builds(c.DirectStreamlocal, texts, texts, u32),
    st.builds(c.ForwardedStreamlocal, texts, texts),
)
request_bodies = st.one_of(
    st.builds(c.PtyReq, texts, cells, cells, u32, u32, mode_maps.map(c.encode_terminal_modes)),
    st.builds(c.Shell),
    st.builds(c.Exec, blobs),
    st.builds(c.Subsystem, texts),
    st.builds(c.Env, texts, texts),
    st.builds(c.WindowChange, cells, cells, u32, u32),
    st.builds(c.Signal, ascii_text),
    st.builds(c.ExitStatus, u32),
    st.builds(c.ExitSignal, ascii_text, st.booleans(), texts, ascii_text),
    st.builds(c.XonXoff, st.booleans()),
    st.builds(c.Keepalive),
    st.builds(c.Eow),
)
messages = st.one_of(
    st.builds(c.GlobalRequest.of, global_bodies, st.booleans()),
    st.builds(c.RequestSuccess, blobs),
    st.builds(c.RequestFailure),
    st.builds(c.ChannelOpen.of, open_bodies, u32, u32, u32),
    st.builds(c.ChannelOpenConfirmation, u32, u32, u32, u32, blobs),
    st.builds(c.ChannelOpenFailure, u32, u32, texts, ascii_text),
    st.builds(c.ChannelWindowAdjust, u32, u32),
    st.builds(c.ChannelData, u32, blobs),
    st.builds(c.ChannelExtendedData, u32, u32, blobs),
    st.builds(c.ChannelEof, u32),
    st.builds(c.ChannelClose, u32),
    st.builds(c.ChannelRequest.of, u32, request_bodies, st.booleans()),
    st.builds(c.ChannelSuccess, u32),
    st.builds(c.ChannelFailure, u32),
)


@settings(max_examples=300)
@given(messages)
def test_every_message_and_typed_body_round_trips(msg: Any) -> None:
    decoded = type(msg).decode(msg.encode())
    assert decoded == msg
    if hasattr(msg, "body"):
        body = decoded.body()
        assert body is not None
        assert type(body).decode_data(body.encode_data()) == body
        assert body.encode_data() == msg.data


@given(mode_maps)
def test_terminal_modes_round_trip(modes: dict[int, int]) -> None:
    assert c.decode_terminal_modes(c.encode_terminal_modes(modes)) == modes


DECODERS: list[Callable[[bytes], object]] = [
    c.GlobalRequest.decode, c.RequestSuccess.decode, c.RequestFailure.decode, c.ChannelOpen.decode,
    c.ChannelOpenConfirmation.decode, c.ChannelOpenFailure.decode, c.ChannelWindowAdjust.decode,
    c.ChannelData.decode, c.ChannelExtendedData.decode, c.ChannelEof.decode, c.ChannelClose.decode,
    c.ChannelRequest.decode, c.ChannelSuccess.decode, c.ChannelFailure.decode,
    c.decode_channel_data,
    c.decode_channel_extended_data,
    c.decode_terminal_modes,
    lambda p: c.GlobalRequest.decode(p).body(),
    lambda p: c.ChannelOpen.decode(p).body(),
    lambda p: c.ChannelRequest.decode(p).body(),
]
numbered_noise = st.builds(lambda n, rest: bytes([n]) + rest, st.integers(80, 100), st.binary(max_size=80))


@settings(max_examples=500)
@given(data=st.one_of(st.binary(max_size=100), numbered_noise), decoder=st.sampled_from(DECODERS))
def test_random_bytes_decode_or_raise_decode_error(data: bytes, decoder: Callable[[bytes], object]) -> None:
    with contextlib.suppress(DecodeError):
        decoder(data)


body_types = sorted(
    {*c.GLOBAL_REQUEST_BODIES.values(), *c.CHANNEL_OPEN_BODIES.values(), *c.CHANNEL_REQUEST_BODIES.values()},
    key=lambda cls: cls.NAME,
)


@settings(max_examples=500)
@given(data=st.binary(max_size=80), body=st.sampled_from(body_types))
def test_random_body_data_decodes_or_raises_decode_error(data: bytes, body: type[c.TypedData]) -> None:
    with contextlib.suppress(DecodeError):
        body.decode_data(data)


# These end in unframed type-specific data, so some of their prefixes are valid messages.
UNFRAMED_TAIL = (
    c.GlobalRequest, c.RequestSuccess, c.ChannelOpen, c.ChannelOpenConfirmation, c.ChannelRequest,
)


@given(messages.filter(lambda m: not isinstance(m, UNFRAMED_TAIL)), st.data())
def test_every_truncation_of_a_framed_message_is_rejected(msg: Any, data: st.DataObject) -> None:
    wire = msg.encode()
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(DecodeError):
        type(msg).decode(wire[:cut])
