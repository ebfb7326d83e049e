"""A bounded soak, run by hand: one exec streaming GiBs through our client with a rekey every few MiB,
while N forwarded (direct-tcpip) connections echo data through the same connection, recording the
process RSS over time. Everything stays on 127.0.0.1.

    python bench/soak.py --gib 2 --minutes 10 --forwards 8 --rekey-mib 8 [--json out.json]

Without ``--port`` a throwaway OpenSSH sshd is started (tests/sshd_fixture.py); with ``--port`` (and
``--user``/``--identity``) an existing server on 127.0.0.1 is used. The run stops at ``--gib`` or
``--minutes``, whichever comes first, and fails if RSS grows past ``--max-rss-growth-mib``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.ssh.config import TransportConfig

MIB = 1024 * 1024
GIB = 1024 * MIB
HOST = "127.0.0.1"


@dataclass
class Report:
    target_bytes: int
    exec_bytes: int = 0
    forwarded_bytes: int = 0
    forwards: int = 0
    seconds: float = 0.0
    rekeys: int = 0
    rss_mib: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)
    errors: list[str] = field(default_factory=list)

    @property
    def rss_growth_mib(self) -> float:
        if len(self.rss_mib) < 2:
            return 0.0
        settled = self.rss_mib[min(2, len(self.rss_mib) - 1)][1]  # after start-up allocations
        return max(mib for _, mib in self.rss_mib) - settled


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, HOST, 0)


async def forward_loop(client: SSHClient, port: int, stop: asyncio.Event, report: Report) -> None:
    channel = await client.open_direct_tcpip(HOST, port)
    block = bytes(range(256)) * 128  # 32 KiB
    while not stop.is_set():
        await channel.write(block)
        received = 0
        while received < len(block):
            chunk = await channel.read(len(block) - received)
            if not chunk:
                raise ConnectionError("forwarded connection closed early")
            received += len(chunk)
        report.forwarded_bytes += len(block)
    channel.close()


async def soak(args: argparse.Namespace, port: int, user: str, identity: Path) -> Report:
    report = Report(target_bytes=int(args.gib * GIB), forwards=args.forwards)
    config = TransportConfig(rekey_bytes=args.rekey_mib * MIB)
    options = ClientOptions(host=HOST, port=port, username=user, transport=config, connect_timeout=20,
                            auth=AuthOptions(identity_files=[identity], identities_only=True))
    echo = await echo_server()
    echo_port = echo.sockets[0].getsockname()[1]
    client = await connect(options)
    stop = asyncio.Event()
    started = time.monotonic()
    deadline = started + args.minutes * 60

    async def sample() -> None:
        while not stop.is_set():
            report.rss_mib.append((round(time.monotonic() - started, 1), round(rss_mib(), 1)))
            await asyncio.sleep(1.0)

    sampler = asyncio.ensure_future(sample())
    forwards = [asyncio.ensure_future(forward_loop(client, echo_port, stop, report))
                for _ in range(args.forwards)]
    try:
        channel = await client.exec(f"head -c {report.target_bytes} /dev/zero")
        while time.monotonic() < deadline:
            chunk = await channel.read(1 << 20)
            if not chunk:
                break
            report.exec_bytes += len(chunk)
        channel.close()
    except Exception as exc:  # recorded, the report is still written
        report.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        stop.set()
        for task in forwards:
            try:
                await asyncio.wait_for(task, 10)
            except Exception as exc:
                report.errors.append(f"forward: {type(exc).__name__}: {exc}")
        await sampler
        report.seconds = round(time.monotonic() - started, 2)
        report.rekeys = max(0, client.conn.transport.kex_count - 1)
        await client.close()
        echo.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="bytes the exec streams (GiB)")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long in any case")
    parser.add_argument("--forwards", type=int, default=8, help="forwarded echo connections alongside")
    parser.add_argument("--rekey-mib", type=int, default=8, help="our RekeyLimit in MiB")
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--port", type=int, help="an existing sshd on 127.0.0.1 (default: start one)")
    parser.add_argument("--user", default=getpass.getuser())
    parser.add_argument("--identity", type=Path)
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    args = parser.parse_args()

    server = None
    if args.port is None:
        from tests.sshd_fixture import KeyCache, start_sshd

        directory = Path(tempfile.mkdtemp(prefix="sshtui-soak-"))
        (directory / "server").mkdir()
        server = start_sshd(KeyCache(directory), directory / "server")
        port, user, identity = server.port, server.user, server.client_key
    else:
        if args.identity is None:
            parser.error("--identity is required with --port")
        port, user, identity = args.port, args.user, args.identity
    try:
        report = asyncio.run(soak(args, port, user, identity))
    finally:
        if server is not None:
            server.stop()
    rate = report.exec_bytes / MIB / report.seconds if report.seconds else 0.0
    rss = [mib for _, mib in report.rss_mib]
    print(f"exec: {report.exec_bytes / GIB:.2f} GiB in {report.seconds:.1f} s ({rate:.0f} MiB/s), "
          f"{report.rekeys} rekeys; forwards: {report.forwards} moving "
          f"{report.forwarded_bytes / MIB:.0f} MiB; RSS {min(rss, default=0):.0f}..{max(rss, default=0):.0f} "
          f"MiB (growth {report.rss_growth_mib:.1f})")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.json is not None:
        summary = {**asdict(report), "rss_growth_mib": report.rss_growth_mib}
        args.json.write_text(json.dumps(summary, indent=2))
    ok = not report.errors and report.rss_growth_mib <= args.max_rss_growth_mib
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
