"""A loopback TCP proxy between our client and a real sshd that injects faults, in the spirit of
OpenSSH's ``regress/modpipe.c`` (integrity.sh) and asyncssh's split-connection tests.

It follows the server-to-client stream well enough to place faults by protocol position: the
version line, then cleartext packets up to and including NEWKEYS (RFC 4253 §6), and afterwards,
when the negotiated cipher leaves the length in clear (AES-GCM, EtM MACs), encrypted packet
boundaries too. Faults (a ``Plan``) apply to the server-to-client direction:

- ``cut_at``: close both sides when the client reaches a phase (see ``CUT_PHASES``);
- ``stall_after``: forward that many bytes of a position, then hold everything (mid-banner,
  mid-packet);
- ``flip_at``: XOR one byte at an offset counted from the end of the server's NEWKEYS packet;
- ``chunk``: deliver the stream this many bytes per write, yielding between writes;
- ``inject_ignore``: add a cleartext IGNORE packet right after the version line or right before
  NEWKEYS (the Terrapin prefix manipulation), optionally dropping the first packet after NEWKEYS.

``pause_reading_from_client()`` stops reading the client's bytes (a server that stops reading).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from typing import Literal

from sshtui.ssh.packet import PacketWriter
from sshtui.ssh.wire import byte, string

HOST = "127.0.0.1"
MSG_KEXINIT, MSG_NEWKEYS = 20, 21
CUT_PHASES = ("version", "kexinit", "kex_reply", "newkeys", "userauth", "channel")
Phase = Literal["version", "kexinit", "kex_reply", "newkeys", "userauth", "channel"]
StallPoint = Literal["banner", "first_packet"]


@dataclass
class Plan:
    cut_at: Phase | None = None
    stall_at: StallPoint | None = None
    stall_after: int = 0  # bytes of the stall point that still get through
    flip_at: int | None = None  # offset after the server's NEWKEYS packet
    flip_mask: int = 0x01
    chunk: int | None = None
    inject_ignore: Literal["after_version", "before_newkeys"] | None = None
    drop_first_encrypted: bool = False
    # For positions past NEWKEYS: the tag size of an AEAD cipher or EtM MAC (length in clear).
    encrypted_tag_size: int | None = None


@dataclass
class Stats:
    connections: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    faults: list[str] = field(default_factory=list)


class _Follower:
    """Where we are in the server's stream: returns how to treat each new chunk of bytes."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.buffer = bytearray()
        self.version_done = False
        self.newkeys_seen = False
        self.packets_after_newkeys = 0
        self.offset_after_newkeys = 0
        self.cleartext_types: list[int] = []
        self.authenticated = False  # USERAUTH_SUCCESS went through (only tracked for cut_at="channel")

    def split(self, data: bytes) -> list[tuple[str, bytes]]:
        """Cut incoming bytes into labelled pieces: ("version"|"packet:N"|"enc:N"|"raw", bytes)."""
        self.buffer += data
        pieces: list[tuple[str, bytes]] = []
        while self.buffer:
            if not self.version_done:
                end = self.buffer.find(b"\n")
                if end < 0:
                    if self.plan.stall_at == "banner":
                        pieces.append(("partial-version", bytes(self.buffer)))
                        self.buffer.clear()
                    break
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                pieces.append(("version" if line.startswith(b"SSH-") else "preamble", line))
                self.version_done = line.startswith(b"SSH-")
                continue
            if not self.newkeys_seen:
                if len(self.buffer) < 6:
                    break
                length = struct.unpack(">I", self.buffer[:4])[0]
                if len(self.buffer) < 4 + length:
                    break
                packet = bytes(self.buffer[: 4 + length])
                del self.buffer[: 4 + length]
                msg_type = packet[5]
                self.cleartext_types.append(msg_type)
                pieces.append((f"packet:{msg_type}", packet))
                self.newkeys_seen = msg_type == MSG_NEWKEYS
                continue
            tag = self.plan.encrypted_tag_size
            if tag is None:
                pieces.append(("raw", bytes(self.buffer)))
                self.buffer.clear()
                break
            if len(self.buffer) < 4:
                break
            length = struct.unpack(">I", self.buffer[:4])[0]
            total = 4 + length + tag
            if len(self.buffer) < total:
                break
            packet = bytes(self.buffer[:total])
            del self.buffer[:total]
            self.packets_after_newkeys += 1
            pieces.append((f"enc:{self.packets_after_newkeys}", packet))
        return pieces


def cleartext_ignore() -> bytes:
    """An unencrypted SSH_MSG_IGNORE packet, as a man in the middle can add before NEWKEYS."""
    return PacketWriter(lambda n: b"\x00" * n).encode(byte(2) + string(b"terrapin"))


class FaultProxy:
    """``async with FaultProxy(port, plan) as proxy:`` then connect the client to ``proxy.port``."""

    def __init__(self, upstream_port: int, plan: Plan | None = None, upstream_host: str = HOST):
        self.upstream = (upstream_host, upstream_port)
        self.plan = plan or Plan()
        self.stats = Stats()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._up_tasks: set[asyncio.Future[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._client_readers: list[asyncio.StreamReader] = []
        self._reading_client = asyncio.Event()
        self._reading_client.set()
        self.cut = asyncio.Event()

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Let what the client sent last (its DISCONNECT) reach the server before tearing down.
        if self._up_tasks:
            await asyncio.wait(self._up_tasks, timeout=1.0)
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def pause_reading_from_client(self) -> None:
        self._reading_client.clear()

    def resume_reading_from_client(self) -> None:
        self._reading_client.set()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, server_writer]
        if self.plan.cut_at == "version":
            self._cut(client_writer, server_writer, phase="version")
            return
        follower = _Follower(self.plan)
        down = asyncio.ensure_future(self._down(server_reader, client_writer, server_writer, follower))
        up = asyncio.ensure_future(self._up(client_reader, server_writer, client_writer, follower))
        self._up_tasks.add(up)
        up.add_done_callback(self._up_tasks.discard)
        for task in (down, up):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _cut(self, *writers: asyncio.StreamWriter, phase: str) -> None:
        self.stats.faults.append(f"cut:{phase}")
        for writer in writers:
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # no FIN handshake games: the connection is simply gone
        self.cut.set()

    async def _up(
        self,
        reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
        client_writer: asyncio.StreamWriter,
        follower: _Follower,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                await self._reading_client.wait()
                data = await reader.read(65536)
                if not data:
                    break
                if follower.authenticated:  # the client's first request after authentication
                    self._cut(client_writer, server_writer, phase="channel")
                    return
                self.stats.bytes_up += len(data)
                server_writer.write(data)
                await server_writer.drain()
        with contextlib.suppress(OSError):
            if server_writer.can_write_eof():
                server_writer.write_eof()

    async def _down(
        self,
        reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_writer: asyncio.StreamWriter,
        follower: _Follower,
    ) -> None:
        stalled = False
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for label, piece in follower.split(data):
                    action = self._decide(label, piece, follower)
                    if action == "cut":
                        self._cut(client_writer, server_writer, phase=label)
                        return
                    if action == "drop":
                        continue
                    assert not isinstance(action, str)
                    if isinstance(action, tuple):  # (stall, bytes that still get through)
                        await self._send(client_writer, action[1])
                        stalled = True
                        break
                    await self._send(client_writer, action)
                if stalled:
                    self.stats.faults.append("stall")
                    await asyncio.Event().wait()  # hold the connection open, forward nothing more
        with contextlib.suppress(OSError):
            if client_writer.can_write_eof():
                client_writer.write_eof()

    def _decide(self, label: str, piece: bytes, follower: _Follower) -> str | bytes | tuple[str, bytes]:
        """The bytes to forward for one piece, "cut", "drop", or ("stall", bytes to forward first)."""
        plan = self.plan
        if plan.stall_at == "banner" and label == "partial-version":
            return ("stall", piece[: plan.stall_after])
        if plan.stall_at == "banner" and label == "version":
            return ("stall", piece[: min(plan.stall_after, len(piece) - 2)])
        if plan.stall_at == "first_packet" and label.startswith("packet:"):
            return ("stall", piece[: plan.stall_after])
        if label.startswith("packet:"):
            msg_type = int(label.split(":")[1])
            cut = {"kexinit": MSG_KEXINIT, "newkeys": MSG_NEWKEYS}.get(plan.cut_at or "")
            if cut == msg_type or (plan.cut_at == "kex_reply" and 30 <= msg_type < 50):
                return "cut"
            if msg_type == MSG_NEWKEYS and plan.inject_ignore == "before_newkeys":
                self.stats.faults.append("inject:before_newkeys")
                return cleartext_ignore() + piece
        if label == "version" and plan.inject_ignore == "after_version":
            self.stats.faults.append("inject:after_version")
            return piece + cleartext_ignore()
        if label.startswith("enc:"):
            number = int(label.split(":")[1])
            if plan.drop_first_encrypted and number == 1:
                self.stats.faults.append("drop:first_encrypted")
                return "drop"
            # EXT_INFO and SERVICE_ACCEPT come first; the next reply is to our first auth request.
            if plan.cut_at == "userauth" and number == 3:
                return "cut"
            # USERAUTH_SUCCESS is the only 1-byte payload: its padded length is one cipher block.
            one_block = 4 + 16 + (plan.encrypted_tag_size or 0)
            if plan.cut_at == "channel" and number > 2 and len(piece) <= one_block:
                follower.authenticated = True
        if label.startswith("enc:") or label == "raw":
            return self._maybe_flip(piece, follower)
        return piece

    def _maybe_flip(self, piece: bytes, follower: _Follower) -> bytes:
        plan = self.plan
        start = follower.offset_after_newkeys
        follower.offset_after_newkeys += len(piece)
        if plan.flip_at is None or not start <= plan.flip_at < start + len(piece):
            return piece
        flipped = bytearray(piece)
        flipped[plan.flip_at - start] ^= plan.flip_mask
        self.stats.faults.append(f"flip:{plan.flip_at}")
        return bytes(flipped)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        self.stats.bytes_down += len(data)
        step = self.plan.chunk
        if not step:
            writer.write(data)
            await writer.drain()
            return
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(0)
