"""The binary packet protocol (RFC 4253 §6) under every cipher and MAC: round trips however the
bytes arrive, wire-format rules, tampering, limits, key changes and sequence numbers."""

from __future__ import annotations

import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.ssh.constants import DisconnectReason, MsgType
from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.errors import LocalProtocolError, MacError, ProtocolError, RemoteProtocolError
from sshtui.ssh.packet import DEFAULT_MAX_PACKET_LENGTH, DirectionKeys, PacketReader, PacketWriter

SIZES = (0, 1, 15, 16, 17, 255, 32768, 35000)

# Every cipher with every MAC; AEAD ciphers once, since they ignore the MAC.
CONFIGS: list[tuple[str, str | None]] = [
    (cipher, mac) for cipher, spec in CIPHERS.items() for mac in ([None] if spec.is_aead else list(MACS))
]
CONFIG_IDS = [f"{cipher}+{mac}" if mac else cipher for cipher, mac in CONFIGS]
FAMILIES: list[tuple[str, str | None]] = [
    ("aes128-ctr", "hmac-sha2-256"),
    ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
]
FAMILY_IDS = ["ctr+mac", "ctr+etm", "gcm", "chacha"]


def make_keys(cipher: str, mac: str | None, seed: int = 1) -> DirectionKeys:
    gen = random.Random(seed)
    spec = CIPHERS[cipher]
    mac_key = gen.randbytes(MACS[mac].key_size) if mac else b""
    return DirectionKeys(cipher, mac, gen.randbytes(spec.key_size), gen.randbytes(spec.iv_size), mac_key)


def pair(keys: DirectionKeys | None) -> tuple[PacketWriter, PacketReader]:
    writer, reader = PacketWriter(os.urandom), PacketReader()
    writer.set_keys(keys)
    reader.set_keys(keys)
    return writer, reader


def drain(reader: PacketReader) -> list[bytes]:
    payloads = []
    while (payload := reader.next_payload()) is not None:
        payloads.append(payload)
    return payloads


def not_newkeys(payload: bytes) -> bytes:
    """A NEWKEYS payload makes the reader wait for set_keys(); random payloads must not be one."""
    return b"\x00" + payload[1:] if payload[:1] == b"\x15" else payload


def some_payloads(seed: int) -> list[bytes]:
    gen = random.Random(seed)
    fixed = [gen.randbytes(size) for size in SIZES]
    varied = [gen.randbytes(gen.choice((gen.randrange(64), gen.randrange(2000)))) for _ in range(40)]
    return [not_newkeys(payload) for payload in fixed + varied]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("keys", [None, *(make_keys(c, m) for c, m in CONFIGS)], ids=["none", *CONFIG_IDS])
def test_round_trip_however_the_bytes_arrive(keys: DirectionKeys | None) -> None:
    payloads = some_payloads(7)
    writer, whole_reader = pair(keys)
    wires = [writer.encode(payload) for payload in payloads]

    received = []
    for wire in wires:
        whole_reader.feed(wire)
        received += drain(whole_reader)
    assert received == payloads

    _, trickle_reader = pair(keys)
    received = []
    for wire in wires:
        for i in range(len(wire)):
            trickle_reader.feed(wire[i : i + 1])
            received += drain(trickle_reader)
    assert received == payloads

    _, bulk_reader = pair(keys)
    bulk_reader.feed(b"".join(wires))
    assert drain(bulk_reader) == payloads
    assert bulk_reader.buffered == 0

    total = sum(len(wire) for wire in wires)
    for reader in (whole_reader, trickle_reader, bulk_reader):
        assert (reader.packets, reader.bytes) == (len(payloads), total)
        assert (reader.sequence, reader.last_sequence) == (len(payloads), len(payloads) - 1)
    assert (writer.packets, writer.bytes, writer.sequence) == (len(payloads), total, len(payloads))


def test_reader_accepts_any_bytes_like_input_and_writer_any_bytes_like_payload() -> None:
    writer, reader = pair(make_keys("aes128-ctr", "hmac-sha2-256"))
    wire = writer.encode(memoryview(b"xx" + b"payload")[2:]) + writer.encode(bytearray(b"second"))
    reader.feed(bytearray(wire[:10]))
    reader.feed(memoryview(wire)[10:])
    assert drain(reader) == [b"payload", b"second"]


# ---------------------------------------------------------------- wire format


def layout(keys: DirectionKeys | None) -> tuple[int, bool, int]:
    """(alignment block, whether the length field is outside the alignment, MAC or tag size)."""
    if keys is None:
        return 8, False, 0
    spec = CIPHERS[keys.cipher]
    if spec.is_aead:
        return max(8, spec.block_size), True, spec.tag_size
    mac = MACS[keys.mac or ""]
    return max(8, spec.block_size), mac.etm, mac.digest_size


@pytest.mark.parametrize("keys", [None, *(make_keys(c, m) for c, m in CONFIGS)], ids=["none", *CONFIG_IDS])
def test_padding_and_alignment_follow_rfc4253_and_openssh(keys: DirectionKeys | None) -> None:
    block, length_outside, tag_size = layout(keys)
    length_in_clear = keys is None or (length_outside and keys.cipher != "chacha20-poly1305@openssh.com")
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    assert writer.block_size == block
    for size in range(70):
        wire = writer.encode(bytes(size))
        packet_length = len(wire) - 4 - tag_size
        aligned = packet_length if length_outside else packet_length + 4
        assert aligned % block == 0
        assert 4 <= packet_length - 1 - size < 4 + block  # the padding: at least 4, at most one block more
        if length_in_clear:
            assert struct.unpack(">I", wire[:4])[0] == packet_length


def test_padding_comes_from_the_rng_and_is_never_reused() -> None:
    drawn = bytearray()

    def recording_rng(count: int) -> bytes:
        chunk = os.urandom(count)
        drawn.extend(chunk)
        return chunk

    writer = PacketWriter(recording_rng)
    position = 0
    for size in range(2000):
        wire = writer.encode(b"\x05" * (size % 50))
        padding = wire[5 + size % 50 :]
        assert len(padding) == wire[4]
        # Each padding is the next unused stretch of rng output (a pool's tail may be skipped).
        found = drawn.find(padding, position)
        assert found >= position
        position = found + len(padding)
    assert position > len(drawn) - 4096


def test_bad_rng_is_reported() -> None:
    writer = PacketWriter(lambda count: b"short")
    with pytest.raises(LocalProtocolError, match="rng"):
        writer.encode(b"x")


def test_keys_are_not_shown_in_repr() -> None:
    keys = DirectionKeys("aes128-ctr", "hmac-sha2-256", b"K" * 16, b"I" * 16, b"M" * 32)
    text = repr(keys)
    assert "aes128-ctr" in text and "KKKK" not in text and "IIII" not in text and "MMMM" not in text


# ---------------------------------------------------------------- malformed packets


def plaintext_packet(packet_length: int, padding_length: int, body: bytes = b"") -> bytes:
    body = body or bytes(packet_length - 1)
    return struct.pack(">IB", packet_length, padding_length) + body[: packet_length - 1]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (plaintext_packet(12, 3), "padding length 3"),
        (plaintext_packet(12, 12), "padding length 12"),
        (plaintext_packet(12, 200), "padding length 200"),
        (plaintext_packet(13, 4), "not aligned"),
        (plaintext_packet(4, 4, b"\0\0\0\0"), "too short"),
        (struct.pack(">I", 0) + bytes(4), "too short"),
    ],
)
def test_malformed_plaintext_packets_are_refused(wire: bytes, message: str) -> None:
    reader = PacketReader()
    reader.feed(wire)
    with pytest.raises(RemoteProtocolError, match=message) as caught:
        reader.next_payload()
    assert caught.value.reason is DisconnectReason.PROTOCOL_ERROR


def test_a_failed_reader_stays_failed() -> None:
    reader = PacketReader()
    reader.feed(plaintext_packet(12, 3))
    with pytest.raises(RemoteProtocolError):
        reader.next_payload()
    reader.feed(PacketWriter(os.urandom).encode(b"fine"))
    with pytest.raises(RemoteProtocolError):
        reader.next_payload()


@pytest.mark.parametrize("keys", [make_keys(c, m) for c, m in CONFIGS], ids=CONFIG_IDS)
def test_a_flipped_bit_anywhere_never_yields_data(keys: DirectionKeys) -> None:
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    wire = writer.encode(b"\x5e" + b"secret payload" * 3)
    for bit in range(len(wire) * 8):
        tampered = bytearray(wire)
        tampered[bit // 8] ^= 1 << (bit % 8)
        reader = PacketReader()
        reader.set_keys(keys)
        reader.feed(tampered)
        # A flipped length bit may make the reader wait for more; more bytes must end in an error.
        with pytest.raises(RemoteProtocolError) as caught:
            for _ in range(6):
                assert reader.next_payload() is None
                reader.feed(bytes(65536))
        if isinstance(caught.value, MacError):
            assert caught.value.reason is DisconnectReason.MAC_ERROR


@pytest.mark.parametrize("keys", [None, *(make_keys(c, m) for c, m in CONFIGS)], ids=["none", *CONFIG_IDS])
def test_oversized_length_is_refused_from_the_first_block(keys: DirectionKeys | None) -> None:
    big_writer = PacketWriter(os.urandom, max_packet_length=1 << 20)
    big_writer.set_keys(keys)
    wire = big_writer.encode(bytes(DEFAULT_MAX_PACKET_LENGTH))
    reader = PacketReader()
    reader.set_keys(keys)
    reader.feed(wire[:16])
    with pytest.raises(RemoteProtocolError, match=r"packet length 26\d{4} exceeds") as caught:
        reader.next_payload()
    assert caught.value.reason is DisconnectReason.PROTOCOL_ERROR
    assert reader.buffered == 16


@pytest.mark.parametrize("keys", [None, *(make_keys(c, m) for c, m in FAMILIES)], ids=["none", *FAMILY_IDS])
def test_packets_up_to_the_limit_pass(keys: DirectionKeys | None) -> None:
    writer, reader = pair(keys)
    overhead = 1 + 4 + 16  # padding length byte, minimum padding, up to one block of extra padding
    payload = os.urandom(DEFAULT_MAX_PACKET_LENGTH - overhead)
    reader.feed(writer.encode(payload))
    assert reader.next_payload() == payload
    with pytest.raises(LocalProtocolError, match="exceeds the packet limit"):
        writer.encode(bytes(DEFAULT_MAX_PACKET_LENGTH))


def test_smaller_limit_is_honoured() -> None:
    writer = PacketWriter(os.urandom)
    reader = PacketReader(max_packet_length=1024)
    reader.feed(writer.encode(bytes(1000)))
    assert reader.next_payload() == bytes(1000)
    reader.feed(writer.encode(bytes(1100))[:8])
    with pytest.raises(RemoteProtocolError, match="limit of 1024"):
        reader.next_payload()


# ---------------------------------------------------------------- key changes and sequence numbers


@pytest.mark.parametrize("keys", [make_keys(c, m) for c, m in FAMILIES], ids=FAMILY_IDS)
def test_newkeys_switch_with_packets_already_buffered(keys: DirectionKeys) -> None:
    writer = PacketWriter(os.urandom)
    newkeys = bytes((MsgType.NEWKEYS,))
    stream = writer.encode(b"\x14kexinit") + writer.encode(newkeys)
    writer.set_keys(keys)
    stream += writer.encode(b"\x05after") + writer.encode(b"\x05more")

    reader = PacketReader()
    reader.feed(stream)
    assert reader.next_payload() == b"\x14kexinit"
    assert reader.next_payload() == newkeys
    with pytest.raises(LocalProtocolError, match="set_keys"):
        reader.next_payload()
    reader.set_keys(keys)
    assert drain(reader) == [b"\x05after", b"\x05more"]
    assert reader.block_size == writer.block_size


def test_rekey_from_one_cipher_to_another() -> None:
    first, second = make_keys("chacha20-poly1305@openssh.com", None), make_keys("aes256-ctr", "hmac-sha1", 2)
    writer, reader = pair(first)
    stream = writer.encode(b"\x15")
    writer.set_keys(second)
    stream += writer.encode(b"\x5eon the new keys")
    received = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        if (payload := reader.next_payload()) is not None:
            received.append(payload)
            if payload == b"\x15":
                reader.set_keys(second)
    assert received == [b"\x15", b"\x5eon the new keys"]


@pytest.mark.parametrize("keys", [None, *(make_keys(c, m) for c, m in FAMILIES)], ids=["none", *FAMILY_IDS])
def test_sequence_numbers_wrap_at_2_32(keys: DirectionKeys | None) -> None:
    writer, reader = pair(keys)
    writer._sequence = reader._sequence = 0xFFFFFFFF  # 2**32 packets are too many to send here
    reader.feed(b"".join(writer.encode(bytes([n])) for n in range(3)))
    assert reader.next_payload() == b"\x00"
    assert reader.last_sequence == 0xFFFFFFFF
    assert reader.next_payload() == b"\x01"
    assert (reader.last_sequence, reader.sequence, writer.sequence) == (0, 1, 2)
    assert reader.next_payload() == b"\x02"


@pytest.mark.parametrize("keys", [make_keys(c, m) for c, m in FAMILIES], ids=FAMILY_IDS)
def test_strict_kex_sequence_reset(keys: DirectionKeys) -> None:
    writer, reader = pair(keys)
    reader.feed(writer.encode(b"\x01") + writer.encode(b"\x02"))
    assert drain(reader) == [b"\x01", b"\x02"]
    writer.reset_sequence()
    reader.reset_sequence()
    assert writer.sequence == reader.sequence == 0
    reader.feed(writer.encode(b"\x03"))
    assert reader.next_payload() == b"\x03"
    assert reader.last_sequence == 0


@pytest.mark.parametrize(
    "keys",
    [make_keys(c, m) for c, m in FAMILIES if "gcm" not in c],
    ids=[str(f) for f in FAMILIES if "gcm" not in f[0]],
)
def test_sequence_mismatch_fails_authentication(keys: DirectionKeys) -> None:
    # GCM's nonce is its own counter, so only the MAC and chacha modes see the sequence number.
    writer, reader = pair(keys)
    reader.feed(writer.encode(b"\x01"))
    assert reader.next_payload() == b"\x01"
    writer.reset_sequence()
    reader.feed(writer.encode(b"\x02"))
    with pytest.raises(RemoteProtocolError):
        reader.next_payload()


def test_set_keys_validates_what_it_is_given() -> None:
    writer = PacketWriter(os.urandom)
    with pytest.raises(LocalProtocolError, match="aes128-cbc"):
        writer.set_keys(DirectionKeys("aes128-cbc", "hmac-sha1", bytes(16), bytes(16), bytes(20)))
    with pytest.raises(LocalProtocolError, match="needs a MAC"):
        writer.set_keys(DirectionKeys("aes128-ctr", None, bytes(16), bytes(16)))
    with pytest.raises(LocalProtocolError, match="64-byte key"):
        writer.set_keys(DirectionKeys("chacha20-poly1305@openssh.com", None, bytes(32), b""))
    with pytest.raises(LocalProtocolError, match="20-byte key"):
        PacketReader().set_keys(DirectionKeys("aes128-ctr", "hmac-sha1", bytes(16), bytes(16), bytes(32)))
    # An AEAD cipher ignores a MAC name, as negotiation says it must.
    writer.set_keys(DirectionKeys("aes128-gcm@openssh.com", "hmac-sha1", bytes(16), bytes(12)))


# ---------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=8),
    keys_index=st.integers(min_value=-1, max_value=len(FAMILIES) - 1),
)
def test_random_bytes_give_payloads_none_or_protocol_errors(chunks: list[bytes], keys_index: int) -> None:
    reader = PacketReader(max_packet_length=4096)
    if keys_index >= 0:
        reader.set_keys(make_keys(*FAMILIES[keys_index]))
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (payload := reader.next_payload()) is not None:
                assert isinstance(payload, bytes)
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=600).map(not_newkeys), max_size=12),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
)
def test_round_trip_with_arbitrary_split_points(payloads: list[bytes], cuts: list[int]) -> None:
    writer, reader = pair(make_keys("aes128-ctr", "hmac-sha2-256-etm@openssh.com"))
    stream = b"".join(writer.encode(payload) for payload in payloads)
    received: list[bytes] = []
    previous = 0
    for cut in [*sorted(min(c, len(stream)) for c in cuts), len(stream)]:
        reader.feed(stream[previous:cut])
        previous = cut
        received += drain(reader)
    assert received == payloads
