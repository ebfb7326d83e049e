"""Micro-benchmark of the binary packet layer: encodes and decodes a volume of data (256 MiB by
default) in 32 KiB payloads under each cipher and prints the throughput in MB/s (10**6 bytes).

    python bench/packet_throughput.py [--mib 256] [--payload 32768] [--only chacha] [--compare]

``--compare`` also runs asyncssh's packet encryption with the same framing, as a reference.
Not a test: numbers depend on the machine (AES-NI, SHA extensions) and its load.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.packet import DirectionKeys, PacketReader, PacketWriter

CASES: list[tuple[str, str | None]] = [
    ("chacha20-poly1305@openssh.com", None),
    ("aes256-gcm@openssh.com", None),
    ("aes128-gcm@openssh.com", None),
    ("aes256-ctr", "hmac-sha2-256-etm@openssh.com"),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
    ("aes128-ctr", "hmac-sha2-256"),
    ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
    ("aes128-ctr", "hmac-sha1-etm@openssh.com"),
]


def make_keys(cipher: str, mac: str | None) -> DirectionKeys:
    spec = CIPHERS[cipher]
    mac_key = os.urandom(MACS[mac].key_size) if mac else b""
    return DirectionKeys(cipher, mac, os.urandom(spec.key_size), os.urandom(spec.iv_size), mac_key)


def run_ours(keys: DirectionKeys, payload: bytes, count: int) -> tuple[float, float]:
    writer, reader = PacketWriter(os.urandom), PacketReader()
    writer.set_keys(keys)
    reader.set_keys(keys)
    clock = time.perf_counter
    encode_time = decode_time = 0.0
    for _ in range(count):
        start = clock()
        wire = writer.encode(payload)
        middle = clock()
        reader.feed(wire)
        received = reader.next_payload()
        end = clock()
        encode_time += middle - start
        decode_time += end - middle
    assert received == payload
    return encode_time, decode_time


def run_asyncssh(keys: DirectionKeys, payload: bytes, count: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from asyncssh.encryption import get_encryption
    spec = CIPHERS[keys.cipher]
    etm = spec.is_aead or MACS[keys.mac or ""].etm
    mac = b"" if spec.is_aead or keys.mac is None else keys.mac.encode()
    mac_size = spec.tag_size if spec.is_aead else MACS[keys.mac or ""].digest_size

    def encryption() -> object:
        return get_encryption(keys.cipher.encode(), keys.key, keys.iv, mac, keys.mac_key, etm)

    sender, receiver = encryption(), encryption()
    block = max(8, spec.block_size)
    header = 1 if etm else 5
    clock = time.perf_counter
    encode_time = decode_time = 0.0
    for sequence in range(count):
        start = clock()
        padding = -(header + len(payload)) % block
        padding += block if padding < 4 else 0
        packet = bytes([padding]) + payload + os.urandom(padding)
        body, tag = sender.encrypt_packet(sequence, struct.pack(">I", len(packet)), packet)  # type: ignore[attr-defined]
        wire = body + tag
        middle = clock()
        first, length = receiver.decrypt_header(sequence, wire[:block], 4)  # type: ignore[attr-defined]
        end_of_packet = 4 + int.from_bytes(length, "big")
        data = receiver.decrypt_packet(  # type: ignore[attr-defined]
            sequence, first, wire[block:end_of_packet], 4, wire[end_of_packet : end_of_packet + mac_size]
        )
        received = data[1 : len(data) - data[0]]
        end = clock()
        encode_time += middle - start
        decode_time += end - middle
    assert received == payload
    return encode_time, decode_time


def report(
    label: str,
    runner: Callable[[DirectionKeys, bytes, int], tuple[float, float]],
    keys: DirectionKeys,
    payload: bytes,
    count: int,
) -> None:
    encode_time, decode_time = runner(keys, payload, count)
    megabytes = len(payload) * count / 1e6
    print(
        f"{label:<48} encode {megabytes / encode_time:8.0f} MB/s   decode {megabytes / decode_time:8.0f} MB/s"
        f"   both {megabytes / (encode_time + decode_time):8.0f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="data volume per cipher in MiB")
    parser.add_argument("--payload", type=int, default=32 * 1024, help="payload size in bytes")
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    parser.add_argument("--compare", action="store_true", help="also time asyncssh with the same keys")
    args = parser.parse_args()
    payload = os.urandom(args.payload)
    count = args.mib * 1024 * 1024 // args.payload
    print(f"{args.mib} MiB in {count} payloads of {args.payload} bytes per case")
    for cipher, mac in CASES:
        label = f"{cipher} + {mac}" if mac else cipher
        if args.only not in label:
            continue
        keys = make_keys(cipher, mac)
        report(label, run_ours, keys, payload, count)
        if args.compare:
            report("  asyncssh", run_asyncssh, keys, payload, count)


if __name__ == "__main__":
    main()
