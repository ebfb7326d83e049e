"""Reading socket bytes straight into the packet reader (RFC 4253 §6): ``receive_buffer`` and
``received`` / ``received_into`` must behave exactly like feeding the same bytes, however the
socket splits them, through every cipher family, the version exchange and EOF."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.ssh.errors import LocalProtocolError, MacError
from sshtui.ssh.events import HostKeyReceived, PayloadReceived
from sshtui.ssh.packet import DEFAULT_MAX_PACKET_LENGTH, RECEIVE_BUFFER_SIZE, PacketReader, PacketWriter
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Phase
from tests.ssh.pair import Pair, make_pair
from tests.ssh.test_packet import FAMILIES, FAMILY_IDS, make_keys, not_newkeys

KEYS = [None, *(make_keys(cipher, mac) for cipher, mac in FAMILIES)]
KEY_IDS = ["none", *FAMILY_IDS]


def read_into(reader: PacketReader, wire: bytes, sizes: list[int]) -> list[bytes]:
    """What a socket would do: write up to the next size into the buffer handed out."""
    payloads: list[bytes] = []
    offset, turn = 0, 0
    while offset < len(wire):
        buffer = reader.receive_buffer()
        count = min(len(buffer), len(wire) - offset, sizes[turn % len(sizes)])
        turn += 1
        buffer[:count] = wire[offset : offset + count]
        offset += count
        reader.received(count)
        while (payload := reader.next_payload()) is not None:
            payloads.append(payload)
    return payloads


@pytest.mark.parametrize("keys", KEYS, ids=KEY_IDS)
@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=6),
    lengths=st.lists(st.integers(0, 40_000), min_size=1, max_size=12),
)
def test_payloads_read_into_the_buffer_match_what_was_sent(keys, sizes, lengths) -> None:  # type: ignore[no-untyped-def]
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    reader = PacketReader()
    reader.set_keys(keys)
    gen = random.Random(len(lengths))
    sent = [not_newkeys(gen.randbytes(length)) for length in lengths]
    wire = b"".join(writer.encode(payload) for payload in sent)

    assert read_into(reader, wire, sizes) == sent
    assert reader.buffered == 0
    assert reader.bytes == len(wire)


@pytest.mark.parametrize("keys", KEYS, ids=KEY_IDS)
def test_a_packet_larger_than_the_buffer_still_arrives_whole(keys) -> None:  # type: ignore[no-untyped-def]
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    reader = PacketReader()
    reader.set_keys(keys)
    biggest = b"\x5e" + os.urandom(DEFAULT_MAX_PACKET_LENGTH - 65)  # CHANNEL_DATA: never NEWKEYS by chance
    small = b"\x5e" + os.urandom(100)
    wire = writer.encode(small) + writer.encode(biggest) + writer.encode(small)
    assert len(wire) > RECEIVE_BUFFER_SIZE

    assert read_into(reader, wire, [9_000]) == [small, biggest, small]


def test_feeding_and_reading_into_can_be_mixed() -> None:
    keys = make_keys("aes128-gcm@openssh.com", None)
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    reader = PacketReader()
    reader.set_keys(keys)
    sent = [b"\x5e" + bytes([n]) * (n * 1000) for n in range(1, 9)]
    wire = b"".join(writer.encode(payload) for payload in sent)
    half = len(wire) // 2 + 3

    reader.feed(wire[:half])
    got = []
    while (payload := reader.next_payload()) is not None:
        got.append(payload)
    got += read_into(reader, wire[half:], [4096])

    assert got == sent


def test_claiming_more_bytes_than_the_buffer_holds_is_refused() -> None:
    reader = PacketReader()
    buffer = reader.receive_buffer()
    with pytest.raises(LocalProtocolError, match="received"):
        reader.received(len(buffer) + 1)
    assert reader.buffered == 0


def test_a_failed_reader_ignores_bytes_read_into_it() -> None:
    keys = make_keys("chacha20-poly1305@openssh.com", None)
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    reader = PacketReader()
    reader.set_keys(keys)
    tampered = bytearray(writer.encode(b"\x5e" + b"payload" * 20))
    tampered[-1] ^= 1
    with pytest.raises(MacError):
        read_into(reader, bytes(tampered), [len(tampered)])
    before = reader.buffered

    buffer = reader.receive_buffer()
    buffer[:5] = b"later"
    reader.received(5)

    assert reader.buffered == before
    with pytest.raises(MacError):
        reader.next_payload()


def deliver_into(transport: Transport, data: bytes, chunk: int, now: float) -> list[object]:
    events: list[object] = []
    offset = 0
    while offset < len(data):
        buffer = transport.receive_buffer()
        count = min(len(buffer), chunk, len(data) - offset)
        buffer[:count] = data[offset : offset + count]
        offset += count
        events += transport.received_into(count, now)
    return events


def pump_into(pair: Pair, chunk: int) -> list[object]:
    """Like ``Pair.pump`` but the client reads through its receive buffer; returns its events."""
    events: list[object] = []
    for _ in range(50):
        to_server, to_client = pair.client.data_to_send(), pair.server.data_to_send()
        if not to_server and not to_client:
            break
        if to_server:
            pair.server.receive_data(to_server, pair.now)
        new = deliver_into(pair.client, to_client, chunk, pair.now)
        events += new
        if any(isinstance(event, HostKeyReceived) for event in new):
            events += pair.client.accept_host_key(pair.now)
    return events


@pytest.mark.parametrize("chunk", [1, 7, 1500, 1 << 20])
def test_a_connection_read_through_receive_buffers_behaves_like_receive_data(chunk: int) -> None:
    reference, tested = make_pair(), make_pair()
    reference.pump()
    events = pump_into(tested, chunk)

    assert tested.client.phase is Phase.ESTABLISHED
    assert [type(e) for e in events] == [type(e) for e in reference.client_events]

    tested.client.request_service("ssh-userauth")
    pump_into(tested, chunk)
    sent = [bytes([94]) + os.urandom(size) for size in (0, 1, 31, 5000, 120_000, 200_000)]
    for payload in sent:
        tested.server.send_payload(payload)
    received = pump_into(tested, chunk)

    assert [e.payload for e in received if isinstance(e, PayloadReceived)] == sent


def test_end_of_stream_through_received_into_closes_like_receive_data() -> None:
    reference, tested = make_pair(seed=3), make_pair(seed=3)
    reference.pump()
    tested.pump()

    tested.client.receive_buffer()
    got = tested.client.received_into(0, tested.now)
    expected = reference.client.receive_data(b"", reference.now)

    assert [type(e) for e in got] == [type(e) for e in expected]
    assert tested.client.is_closed


def test_end_of_stream_before_the_version_line_closes_too() -> None:
    tested = make_pair(seed=5, start=False)
    tested.client.start(tested.now)
    buffer = tested.client.receive_buffer()
    buffer[:8] = b"SSH-2.0-"
    assert tested.client.received_into(8, tested.now) == []

    tested.client.receive_buffer()
    events = tested.client.received_into(0, tested.now)

    assert tested.client.is_closed
    assert [type(e).__name__ for e in events] == ["Disconnected"]
