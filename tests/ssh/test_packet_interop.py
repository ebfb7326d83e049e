"""Interoperability of our packet layer with two independent implementations that share the
same keys: asyncssh's per-packet encryption objects (every cipher and MAC) and paramiko's
``Packetizer`` (AES-CTR with classic and ETM MACs, AES-GCM). Both directions each time."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import warnings

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.errors import MacError
from sshtui.ssh.packet import DirectionKeys, PacketReader, PacketWriter

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # asyncssh warns about DSA support on import
    from asyncssh.encryption import Encryption, get_encryption
    from paramiko.message import Message  # type: ignore[import-untyped]
    from paramiko.packet import Packetizer  # type: ignore[import-untyped]

CONFIGS: list[tuple[str, str | None]] = [
    (cipher, mac) for cipher, spec in CIPHERS.items() for mac in ([None] if spec.is_aead else list(MACS))
]
CONFIG_IDS = [f"{cipher}+{mac}" if mac else cipher for cipher, mac in CONFIGS]


def make_keys(cipher: str, mac: str | None, seed: int) -> DirectionKeys:
    gen = random.Random(seed)
    spec = CIPHERS[cipher]
    mac_key = gen.randbytes(MACS[mac].key_size) if mac else b""
    return DirectionKeys(cipher, mac, gen.randbytes(spec.key_size), gen.randbytes(spec.iv_size), mac_key)


def sample_payloads(seed: int) -> list[bytes]:
    gen = random.Random(seed)
    sizes = [1, 2, 15, 16, 17, 255, 1000, 32768, 35000] + [gen.randrange(1, 3000) for _ in range(20)]
    # The first byte is a message number; avoid NEWKEYS, which would pause our reader.
    return [bytes([gen.randrange(22, 256)]) + gen.randbytes(size - 1) for size in sizes]


# ---------------------------------------------------------------- asyncssh


class AsyncsshDirection:
    """Drives asyncssh's Encryption object the way asyncssh's connection frames packets."""

    def __init__(self, keys: DirectionKeys):
        spec = CIPHERS[keys.cipher]
        mac = b"" if spec.is_aead or keys.mac is None else keys.mac.encode()
        etm = spec.is_aead or MACS[keys.mac or ""].etm
        self.encryption: Encryption = get_encryption(
            keys.cipher.encode(), keys.key, keys.iv, mac, keys.mac_key, etm
        )
        self.block_size = max(8, spec.block_size)
        self.header_length = 1 if etm else 5  # bytes of header inside the padding alignment
        self.mac_size = spec.tag_size if spec.is_aead else MACS[keys.mac or ""].digest_size
        self.sequence = 0

    def encode(self, payload: bytes) -> bytes:
        padding = -(self.header_length + len(payload)) % self.block_size
        if padding < 4:
            padding += self.block_size
        packet = bytes([padding]) + payload + os.urandom(padding)
        wire, mac = self.encryption.encrypt_packet(self.sequence, struct.pack(">I", len(packet)), packet)
        self.sequence += 1
        return bytes(wire) + bytes(mac)

    def decode_all(self, stream: bytes) -> list[bytes]:
        payloads, position = [], 0
        while position < len(stream):
            first = stream[position : position + self.block_size]
            first, length_field = self.encryption.decrypt_header(self.sequence, first, 4)
            length = int.from_bytes(length_field, "big")
            rest_start = position + self.block_size
            rest_end = position + 4 + length
            mac = stream[rest_end : rest_end + self.mac_size]
            data = self.encryption.decrypt_packet(self.sequence, first, stream[rest_start:rest_end], 4, mac)
            assert data is not None, "asyncssh refused our packet"
            payloads.append(bytes(data[1 : len(data) - data[0]]))
            position = rest_end + self.mac_size
            self.sequence += 1
        return payloads


@pytest.mark.parametrize(("cipher", "mac"), CONFIGS, ids=CONFIG_IDS)
def test_asyncssh_reads_our_packets(cipher: str, mac: str | None) -> None:
    keys = make_keys(cipher, mac, 11)
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    payloads = sample_payloads(1)
    stream = b"".join(writer.encode(payload) for payload in payloads)
    assert AsyncsshDirection(keys).decode_all(stream) == payloads


@pytest.mark.parametrize(("cipher", "mac"), CONFIGS, ids=CONFIG_IDS)
def test_we_read_asyncssh_packets(cipher: str, mac: str | None) -> None:
    keys = make_keys(cipher, mac, 12)
    theirs = AsyncsshDirection(keys)
    payloads = sample_payloads(2)
    reader = PacketReader()
    reader.set_keys(keys)
    reader.feed(b"".join(theirs.encode(payload) for payload in payloads))
    received = []
    while (payload := reader.next_payload()) is not None:
        received.append(payload)
    assert received == payloads
    assert reader.buffered == 0


@pytest.mark.parametrize(("cipher", "mac"), CONFIGS, ids=CONFIG_IDS)
def test_asyncssh_packet_with_a_flipped_bit_is_refused(cipher: str, mac: str | None) -> None:
    keys = make_keys(cipher, mac, 13)
    wire = bytearray(AsyncsshDirection(keys).encode(b"\x5e" + bytes(40)))
    wire[-1] ^= 0x01  # the last MAC or tag byte
    reader = PacketReader()
    reader.set_keys(keys)
    reader.feed(wire)
    with pytest.raises(MacError):
        reader.next_payload()


# ---------------------------------------------------------------- paramiko

PARAMIKO_CONFIGS = [
    ("aes128-ctr", "hmac-sha2-256"),
    ("aes256-ctr", "hmac-sha2-512"),
    ("aes192-ctr", "hmac-sha2-256-etm@openssh.com"),
    ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
    ("aes128-ctr", "hmac-sha1"),
    ("aes128-gcm@openssh.com", None),
    ("aes256-gcm@openssh.com", None),
]


class MemorySocket:
    """Just enough of a socket for paramiko's Packetizer; no network involved."""

    def __init__(self, data: bytes = b""):
        self.data = bytearray(data)

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def recv(self, count: int) -> bytes:
        chunk = bytes(self.data[:count])
        del self.data[:count]
        return chunk


def paramiko_arguments(keys: DirectionKeys, encrypt: bool) -> dict[str, object]:
    spec = CIPHERS[keys.cipher]
    if spec.is_aead:
        return {
            "block_engine": AESGCM(keys.key),
            "block_size": spec.block_size,
            "mac_engine": None,
            "mac_size": 16,
            "mac_key": None,
            "aead": True,
        }
    context = Cipher(algorithms.AES(keys.key), modes.CTR(keys.iv))
    mac = MACS[keys.mac or ""]
    return {
        "block_engine": context.encryptor() if encrypt else context.decryptor(),
        "block_size": spec.block_size,
        "mac_engine": getattr(hashlib, mac.hash_name),
        "mac_size": mac.digest_size,
        "mac_key": keys.mac_key,
        "etm": mac.etm,
    }


@pytest.mark.parametrize(("cipher", "mac"), PARAMIKO_CONFIGS)
def test_paramiko_reads_our_packets(cipher: str, mac: str | None) -> None:
    keys = make_keys(cipher, mac, 21)
    writer = PacketWriter(os.urandom)
    writer.set_keys(keys)
    payloads = sample_payloads(3)
    packetizer = Packetizer(MemorySocket(b"".join(writer.encode(payload) for payload in payloads)))
    arguments = paramiko_arguments(keys, encrypt=False)
    if CIPHERS[cipher].is_aead:
        arguments["iv_in"] = keys.iv
    packetizer.set_inbound_cipher(**arguments)
    for payload in payloads:
        command, message = packetizer.read_message()
        assert bytes([command]) + message.asbytes() == payload


@pytest.mark.parametrize(("cipher", "mac"), PARAMIKO_CONFIGS)
def test_we_read_paramiko_packets(cipher: str, mac: str | None) -> None:
    keys = make_keys(cipher, mac, 22)
    socket = MemorySocket()
    packetizer = Packetizer(socket)
    arguments = paramiko_arguments(keys, encrypt=True)
    if CIPHERS[cipher].is_aead:
        arguments["iv_out"] = keys.iv
    else:
        arguments["sdctr"] = True
    packetizer.set_outbound_cipher(**arguments)
    payloads = sample_payloads(4)
    for sent in payloads:
        message = Message()
        message.add_bytes(sent)
        packetizer.send_message(message)
    reader = PacketReader()
    reader.set_keys(keys)
    received = []
    for i in range(0, len(socket.data), 777):  # arbitrary chunking, as a socket would deliver
        reader.feed(socket.data[i : i + 777])
        while (payload := reader.next_payload()) is not None:
            received.append(payload)
    assert received == payloads
