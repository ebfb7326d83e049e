"""The SOCKS handshake parser behind ``-D``: SOCKS4, SOCKS4a and SOCKS5 CONNECT requests, their replies,
and malformed or unsupported requests answered with the protocol's error reply.

Requests are built here byte by byte from RFC 1928 and the SOCKS4/4a protocol descriptions, never
with the parser's own helpers."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.net.socks import SocksError, SocksHandshake, SocksReply, SocksRequest, reply_for_open_failure
from sshtui.ssh.constants import OpenFailureReason


def socks4(ip: str, port: int, user: bytes = b"alice") -> bytes:
    return b"\x04\x01" + struct.pack(">H", port) + socket.inet_aton(ip) + user + b"\x00"


def socks4a(name: bytes, port: int, user: bytes = b"") -> bytes:
    return b"\x04\x01" + struct.pack(">H", port) + b"\x00\x00\x00\x07" + user + b"\x00" + name + b"\x00"


GREETING = b"\x05\x01\x00"  # version 5, one method: no authentication


def socks5(atyp: int, address: bytes, port: int, command: int = 1) -> bytes:
    return bytes((5, command, 0, atyp)) + address + struct.pack(">H", port)


def socks5_domain(name: bytes, port: int) -> bytes:
    return socks5(3, bytes((len(name),)) + name, port)


def run(data: bytes, chunk: int | None = None) -> tuple[SocksHandshake, bytes]:
    handshake = SocksHandshake()
    out = b""
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        out += handshake.feed(data[start : start + step])
    return handshake, out


# --- SOCKS4 and 4a ---------------------------------------------------------------------------------


def test_socks4_connect_to_an_ipv4_address() -> None:
    handshake, out = run(socks4("192.0.2.10", 8080))
    assert out == b""  # SOCKS4 has no greeting: the only reply comes after the connect attempt
    assert handshake.request == SocksRequest(4, "192.0.2.10", 8080, "ipv4")
    granted = handshake.success_reply()
    assert (len(granted), granted[0], granted[1]) == (8, 0, 90)
    rejected = handshake.failure_reply(SocksReply.CONNECTION_REFUSED)
    assert (len(rejected), rejected[0], rejected[1]) == (8, 0, 91)


def test_socks4a_names_the_host_for_the_server_to_resolve() -> None:
    handshake, _ = run(socks4a(b"db.internal", 5432, user=b"bob"))
    assert handshake.request == SocksRequest(4, "db.internal", 5432, "domain")


def test_socks4_request_split_into_single_bytes() -> None:
    data = socks4a(b"localhost", 22)
    handshake, _ = run(data, chunk=1)
    assert handshake.request == SocksRequest(4, "localhost", 22, "domain")


def test_socks4_bind_is_refused_with_a_rejection() -> None:
    with pytest.raises(SocksError, match="command 2") as caught:
        run(b"\x04\x02" + struct.pack(">H", 21) + socket.inet_aton("192.0.2.1") + b"\x00")
    assert caught.value.reply[:2] == b"\x00\x5b"


def test_socks4_endless_user_id_is_rejected() -> None:
    with pytest.raises(SocksError, match="user id") as caught:
        run(b"\x04\x01\x00\x50" + socket.inet_aton("192.0.2.1") + b"u" * 300)
    assert caught.value.reply[1] == 91


# --- SOCKS5 ----------------------------------------------------------------------------------------


def test_socks5_greeting_then_ipv4_connect() -> None:
    handshake = SocksHandshake()
    assert handshake.feed(GREETING) == b"\x05\x00"  # RFC 1928 §3: no authentication required
    assert handshake.request is None
    assert handshake.feed(socks5(1, socket.inet_aton("198.51.100.4"), 443)) == b""
    assert handshake.request == SocksRequest(5, "198.51.100.4", 443, "ipv4")
    reply = handshake.success_reply()
    assert reply[:4] == b"\x05\x00\x00\x01" and len(reply) == 10


def test_socks5_ipv6_connect() -> None:
    address = ipaddress.IPv6Address("2001:db8::1")
    handshake, out = run(GREETING + socks5(4, address.packed, 22))
    assert out == b"\x05\x00"
    assert handshake.request == SocksRequest(5, "2001:db8::1", 22, "ipv6")


def test_socks5_domain_name_is_passed_on_unresolved() -> None:
    handshake, _ = run(GREETING + socks5_domain(b"localhost", 80), chunk=3)
    assert handshake.request == SocksRequest(5, "localhost", 80, "domain")


def test_bytes_sent_after_the_request_are_kept_for_the_target() -> None:
    handshake, _ = run(GREETING + socks5_domain(b"example.org", 80) + b"GET / HTTP/1.0\r\n")
    assert handshake.leftover == b"GET / HTTP/1.0\r\n"
    four, _ = run(socks4("192.0.2.1", 80) + b"early")
    assert four.leftover == b"early"


def test_socks5_client_that_insists_on_authentication_is_turned_away() -> None:
    with pytest.raises(SocksError, match="authentication") as caught:
        run(b"\x05\x01\x02")  # username/password only
    assert caught.value.reply == b"\x05\xff"  # RFC 1928 §3: NO ACCEPTABLE METHODS


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (socks5(1, b"\x7f\x00\x00\x01", 80, command=2), 7),  # BIND: command not supported
        (socks5(1, b"\x7f\x00\x00\x01", 80, command=3), 7),  # UDP ASSOCIATE
        (bytes((5, 1, 0, 9)) + b"\x00" * 6, 8),  # unknown address type
        (socks5(3, b"\x00", 80), 4),  # empty host name
        (socks5_domain(b"bad\nname", 80), 4),
        (socks5_domain(b"\xff\xfe", 80), 4),  # not UTF-8
        (bytes((4, 1, 0, 1)) + b"\x7f\x00\x00\x01\x00\x50", 1),  # wrong version in the request
    ],
)
def test_malformed_socks5_requests_get_the_matching_error_reply(request_bytes: bytes, code: int) -> None:
    handshake = SocksHandshake()
    assert handshake.feed(GREETING) == b"\x05\x00"
    with pytest.raises(SocksError) as caught:
        handshake.feed(request_bytes)
    reply = caught.value.reply
    assert reply[:3] == bytes((5, code, 0)) and len(reply) == 10


def test_greeting_and_bad_request_in_one_read_get_both_answers() -> None:
    with pytest.raises(SocksError) as caught:
        run(GREETING + socks5(1, b"\x7f\x00\x00\x01", 80, command=2))
    assert caught.value.reply == b"\x05\x00" + bytes((5, 7, 0, 1, 0, 0, 0, 0, 0, 0))


def test_not_socks_at_all() -> None:
    with pytest.raises(SocksError, match="not a SOCKS4 or SOCKS5 client") as caught:
        run(b"GET / HTTP/1.1\r\n")
    assert caught.value.reply == b""


def test_no_more_input_after_the_request() -> None:
    handshake, _ = run(socks4("192.0.2.1", 80))
    with pytest.raises(SocksError):
        handshake.feed(b"x")


@pytest.mark.parametrize(
    ("reason", "description", "code"),
    [
        (OpenFailureReason.CONNECT_FAILED, "Connection refused", SocksReply.CONNECTION_REFUSED),
        (OpenFailureReason.CONNECT_FAILED, "No route to host", SocksReply.HOST_UNREACHABLE),
        (OpenFailureReason.CONNECT_FAILED, "Network is unreachable", SocksReply.NETWORK_UNREACHABLE),
        (OpenFailureReason.CONNECT_FAILED, "Connection timed out", SocksReply.TTL_EXPIRED),
        (OpenFailureReason.CONNECT_FAILED, "Name or service not known", SocksReply.HOST_UNREACHABLE),
        (OpenFailureReason.ADMINISTRATIVELY_PROHIBITED, "open failed", SocksReply.NOT_ALLOWED),
        (OpenFailureReason.RESOURCE_SHORTAGE, "", SocksReply.GENERAL_FAILURE),
    ],
)
def test_channel_open_failures_map_to_socks5_replies(reason: int, description: str, code: SocksReply) -> None:
    assert reply_for_open_failure(reason, description) is code


# --- properties ------------------------------------------------------------------------------------

ports = st.integers(min_value=0, max_value=65535)
names = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,60}", fullmatch=True)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, SocksRequest]:
    """A well-formed request of any kind, with the request it stands for."""
    port = draw(ports)
    kind = draw(st.sampled_from(["4", "4a", "5v4", "5v6", "5name"]))
    if kind == "4":
        ip = str(draw(st.ip_addresses(v=4).filter(lambda a: not str(a).startswith("0.0.0."))))
        return socks4(
            ip, port, draw(st.binary(max_size=50).map(lambda b: b.replace(b"\0", b"")))
        ), SocksRequest(4, ip, port, "ipv4")
    if kind == "4a":
        name = draw(names)
        return socks4a(name.encode(), port), SocksRequest(4, name, port, "domain")
    methods = bytes(sorted(set(draw(st.lists(st.integers(0, 255), max_size=10))) | {0}))
    greeting = bytes((5, len(methods))) + methods
    if kind == "5v4":
        ip = str(draw(st.ip_addresses(v=4)))
        return greeting + socks5(1, socket.inet_aton(ip), port), SocksRequest(5, ip, port, "ipv4")
    if kind == "5v6":
        address = ipaddress.IPv6Address(draw(st.ip_addresses(v=6)))
        return greeting + socks5(4, address.packed, port), SocksRequest(5, address.compressed, port, "ipv6")
    name = draw(names)
    return greeting + socks5_domain(name.encode(), port), SocksRequest(5, name, port, "domain")


@given(requests(), st.lists(st.integers(min_value=1, max_value=400), max_size=8), st.binary(max_size=20))
def test_any_split_of_a_valid_request_gives_the_same_request(
    case: tuple[bytes, SocksRequest], cuts: list[int], tail: bytes
) -> None:
    data, expected = case
    data += tail
    handshake = SocksHandshake()
    position = 0
    for size in [*cuts, len(data)]:
        if handshake.request is not None or position >= len(data):
            break
        handshake.feed(data[position : position + size])
        position += size
    assert handshake.request == expected
    assert handshake.leftover + data[position:] == tail


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_garbage_never_escapes_as_anything_but_socks_error(data: bytes, chunk: int) -> None:
    handshake = SocksHandshake()
    try:
        for start in range(0, len(data), chunk):
            handshake.feed(data[start : start + chunk])
            if handshake.request is not None:
                break
    except SocksError as exc:
        # Any reply is a whole reply of the client's own protocol version (or nothing at all).
        assert len(exc.reply) in (0, 2, 8, 10, 12)
        return
    if handshake.request is not None:
        assert handshake.request.version in (4, 5)
        assert 0 <= handshake.request.port <= 65535
