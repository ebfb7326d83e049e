"""Fault injection between our client and a real sshd (tests/net/fault_proxy.py), after OpenSSH's
regress/integrity.sh and keyscan.sh: cuts at each phase, stalls, one flipped byte after NEWKEYS for
every MAC and AEAD cipher, one-byte delivery, a server that stops reading, a peer that never opens
its window, and SIGKILL during known_hosts writes. Every case is bounded in time.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import ConnectTimeout, connect
from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.config import TransportConfig
from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import connection as mc
from sshtui.ssh.transport_keys import AEAD_CIPHERS
from sshtui.store.known_hosts import KnownHosts
from tests.net.fault_proxy import CUT_PHASES, FaultProxy, Plan
from tests.sshd_fixture import SshdServer

pytestmark = pytest.mark.interop

GCM = "aes128-gcm@openssh.com"
GCM_TAG = 16
REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def options(server: SshdServer, port: int, *, transport: TransportConfig | None = None,
            timeout: float = 10.0) -> ClientOptions:
    return ClientOptions(
        host="127.0.0.1",
        port=port,
        username=server.user,
        transport=transport or TransportConfig(),
        auth=AuthOptions(identity_files=[server.client_key], identities_only=True),
        connect_timeout=timeout,
    )


async def connect_and_run(opts: ClientOptions, command: str) -> bytes:
    client = await connect(opts)
    try:
        result = await client.run(command)
        return result.stdout
    finally:
        await client.close()


# --- the connection is cut ------------------------------------------------------------------------

PHASE_WORDS = {
    "version": "version exchange",
    "kexinit": "kexinit",
    "kex_reply": "key exchange",
    "newkeys": "newkeys",
    "userauth": "authentication",
    "channel": "session",
}


@pytest.mark.parametrize("phase", CUT_PHASES)
async def test_a_cut_connection_fails_fast_naming_the_phase(sshd_module: SshdServer, phase: str) -> None:
    # AES-GCM leaves packet lengths in clear, so the proxy can count packets after NEWKEYS.
    plan = Plan(cut_at=phase, encrypted_tag_size=GCM_TAG)  # type: ignore[arg-type]
    async with FaultProxy(sshd_module.port, plan) as proxy:
        started = time.monotonic()
        with pytest.raises(SSHError) as failure:
            await connect_and_run(options(sshd_module, proxy.port, transport=TransportConfig(ciphers=(GCM,))),
                                  "true")
        elapsed = time.monotonic() - started
    assert proxy.stats.faults == [f"cut:{proxy.stats.faults[0].split(':', 1)[1]}"]
    assert "closed" in str(failure.value)
    assert PHASE_WORDS[phase] in str(failure.value), str(failure.value)
    assert elapsed < 3.0, f"took {elapsed:.1f} s to notice"


# --- the server stalls ----------------------------------------------------------------------------


@pytest.mark.parametrize(("stall_at", "after", "phase"), [
    ("banner", 0, "version exchange"),  # accepts TCP, never says a word
    ("banner", 5, "version exchange"),  # "SSH-2" and then nothing (OpenSSH keyscan.sh, 2026)
    ("first_packet", 10, "kexinit"),  # half of the server's KEXINIT
])
async def test_a_stalled_server_hits_connect_timeout(
    sshd_module: SshdServer, stall_at: str, after: int, phase: str
) -> None:
    plan = Plan(stall_at=stall_at, stall_after=after)  # type: ignore[arg-type]
    async with FaultProxy(sshd_module.port, plan) as proxy:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as failure:
            await connect(options(sshd_module, proxy.port, timeout=1.0))
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.0
    assert "timed out" in str(failure.value) and phase in str(failure.value)


# --- one byte flipped after NEWKEYS (OpenSSH regress/integrity.sh) --------------------------------

# integrity.sh: every MAC (with a CTR cipher), and every AEAD cipher on its own.
INTEGRITY_SUITES = [
    *((f"aes128-ctr+{mac}", TransportConfig(ciphers=("aes128-ctr",), macs=(mac,))) for mac in MACS),
    *((name, TransportConfig(ciphers=(name,))) for name in CIPHERS if name in AEAD_CIPHERS),
]
# Offsets from the end of the server's NEWKEYS: the length field, padding length, the first
# encrypted payload (EXT_INFO), the MAC or tag, and bulk data further on.
FLIP_OFFSETS = (0, 3, 4, 9, 40, 130, 500, 1600, 7000, 30000)


@pytest.mark.parametrize(("suite", "config"), INTEGRITY_SUITES, ids=[name for name, _ in INTEGRITY_SUITES])
async def test_a_flipped_byte_is_never_accepted(sshd_module: SshdServer, suite: str,
                                                config: TransportConfig) -> None:
    async def one(offset: int) -> tuple[int, BaseException | None, float, list[str]]:
        async with FaultProxy(sshd_module.port, Plan(flip_at=offset)) as proxy:
            started = time.monotonic()
            try:
                # 200 kB of output: every offset lands inside the stream.
                opts = options(sshd_module, proxy.port, transport=config)
                await connect_and_run(opts, "head -c 200000 /dev/zero")
            except SSHError as exc:
                return offset, exc, time.monotonic() - started, proxy.stats.faults
            return offset, None, time.monotonic() - started, proxy.stats.faults

    results = await asyncio.wait_for(asyncio.gather(*(one(offset) for offset in FLIP_OFFSETS)), 60)
    summary: list[str] = []
    for offset, error, elapsed, faults in results:
        assert faults == [f"flip:{offset}"], f"{suite} offset {offset}: flip not injected ({faults})"
        assert error is not None, f"{suite}: a flipped byte at offset {offset} went unnoticed"
        text = str(error)
        # OpenSSH accepts "Corrupted MAC", "Bad packet length" or a padding error here: the same for us.
        assert any(word in text for word in ("mismatch", "packet length", "padding")), repr(error)
        summary.append(f"{offset}: {type(error).__name__}: {text}")
        assert elapsed < 10, f"{suite} offset {offset}: {elapsed:.1f} s"
    print(f"{suite}:", *summary, sep="\n  ")


async def test_the_client_tells_the_server_why_it_disconnects(sshd_factory: object) -> None:
    server = sshd_factory()  # type: ignore[operator]
    async with FaultProxy(server.port, Plan(flip_at=40, encrypted_tag_size=GCM_TAG)) as proxy:
        with pytest.raises(SSHError):
            gcm = TransportConfig(ciphers=(GCM,))
            await connect_and_run(options(server, proxy.port, transport=gcm), "true")
    # The flip only corrupts what the server sends: our DISCONNECT (reason 5, MAC error) reaches sshd.
    deadline = time.monotonic() + 5
    while "Received disconnect" not in server.log_text() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    line = next(line for line in server.log_text().splitlines() if "Received disconnect" in line)
    assert ":5:" in line.replace(" ", ""), line


# --- slow delivery ---------------------------------------------------------------------------------


async def test_one_byte_at_a_time_still_works(sshd_module: SshdServer) -> None:
    async with FaultProxy(sshd_module.port, Plan(chunk=1)) as proxy:
        out = await asyncio.wait_for(connect_and_run(options(sshd_module, proxy.port), "seq 1 500"), 60)
    assert out == "".join(f"{n}\n" for n in range(1, 501)).encode()
    assert proxy.stats.bytes_down > len(out)


# --- a server that stops reading, a client that stops reading --------------------------------------


async def test_writer_waits_with_bounded_memory_when_the_server_stops_reading(
    sshd_module: SshdServer,
) -> None:
    total = 64 * MIB
    async with FaultProxy(sshd_module.port) as proxy:
        client = await connect(options(sshd_module, proxy.port))
        try:
            channel = await client.exec("wc -c")
            proxy.pause_reading_from_client()
            block = b"x" * MIB

            async def upload() -> None:
                for _ in range(total // MIB):
                    await channel.write(block)
                await channel.write_eof()

            task = asyncio.ensure_future(upload())
            await asyncio.sleep(1.0)
            assert not task.done(), "64 MiB went out although nothing was read"
            assert client._sock is not None
            # What waits in our process: at most about one window (sshd's 2 MiB) plus a packet.
            assert client._sock.get_write_buffer_size() < 4 * MIB
            proxy.resume_reading_from_client()
            await asyncio.wait_for(task, 60)
            assert (await asyncio.wait_for(channel.read(), 30)).strip() == str(total).encode()
        finally:
            await client.close()


async def test_unread_output_is_held_to_one_window(sshd_module: SshdServer) -> None:
    async with FaultProxy(sshd_module.port) as proxy:
        client = await connect(options(sshd_module, proxy.port))
        try:
            channel = await client.exec("head -c 50000000 /dev/zero")
            await asyncio.sleep(1.0)  # we read nothing: the server must stop at our window
            buffered = channel.stdout.buffered
            assert 0 < buffered <= 2 * MIB + 256 * 1024
            size = 0
            while chunk := await asyncio.wait_for(channel.read(), 30):
                size += len(chunk)
            assert size == 50_000_000
        finally:
            await client.close()


def test_a_peer_that_never_adjusts_the_window_gets_no_more_than_it_allowed() -> None:
    sent: list[bytes] = []
    layer = ConnectionLayer(sent.append, is_client=True)
    local_id = layer.open_session(1.0)
    layer.handle(mc.ChannelOpenConfirmation(local_id, 5, 1000, 300).encode(), 1.0)
    accepted = [layer.send_data(local_id, b"y" * 700) for _ in range(3)]
    assert sum(accepted) == 1000  # the rest waits for WINDOW_ADJUST, which never comes
    assert layer.writable(local_id) == 0
    data_sizes = [len(mc.decode_channel_data(p)[1]) for p in sent if p[0] == 94]
    assert max(data_sizes) <= 300 and sum(data_sizes) == 1000


# --- SIGKILL while known_hosts is written ----------------------------------------------------------

WRITER = r"""
import sys, itertools
from pathlib import Path
from sshtui.store import known_hosts
path = Path(sys.argv[1]); blob = bytes.fromhex(sys.argv[2])
for i in itertools.count():
    known_hosts.add(path, f"host{i}.example", 22, blob, hashed=i % 2 == 1)
    known_hosts.remove(path, f"host{i}.example", 22)
"""


def test_sigkill_during_known_hosts_writes_never_corrupts_it(tmp_path: Path) -> None:
    from tests.fuzz.targets import _host_key

    blob = _host_key().public_blob
    path = tmp_path / "known_hosts"
    known_hosts_line = f"base.example {_line(blob)}\n"
    path.write_text(known_hosts_line)
    rng = random.Random(4253)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    kills = 0
    for _ in range(25):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), blob.hex()], env=env)
        time.sleep(0.25 + rng.random() * 0.1)  # start-up, then a random point in the write loop
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        kills += 1
        data = path.read_bytes()
        parsed = KnownHosts.parse(data, path)
        assert not parsed.warnings, (data, parsed.warnings)
        lines = data.decode().splitlines(keepends=True)
        # Old or new content: the base line, plus at most the one line being added or removed.
        assert lines[0] == known_hosts_line and len(lines) <= 2 and data.endswith(b"\n"), data
        path.write_text(known_hosts_line)
    assert kills == 25


def _line(blob: bytes) -> str:
    from sshtui.ssh.crypto.hostkeys import openssh_public_line

    return openssh_public_line(blob)

