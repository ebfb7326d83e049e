"""Local port forwarding (``-L``, RFC 4254 §7.2 direct-tcpip): throughput, client CPU per GB and
short connections per second through sshtui's ``LocalForward``, asyncssh's ``forward_local_port``
and OpenSSH's ``ssh -N -L``, all against the same OpenSSH sshd on 127.0.0.1.

    python bench/forward.py [--size 256M] [--clients sshtui,openssh] [--connections 500] [--json FILE]

This process runs the sink (an asyncio server that counts and discards bytes) and the senders;
each forwarding client runs in a fresh ``--worker`` child process that sets up the forward to the
sink, reports its port, and answers CPU readings on request. Not a test: numbers depend on the
machine and its load; run it by hand on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bulk  # bench/bulk.py: sits next to this script, which is on sys.path when run as a script

HOST = bulk.HOST
CLIENTS = ("sshtui", "asyncssh", "openssh")
DEFAULT_CIPHER = "aes128-gcm@openssh.com"
CONNECTIONS = 500
SHORT_PAYLOAD = 16
SEND_BLOCK = 1 << 20
READY_TIMEOUT = 30.0  # connect, authenticate and listen
CONNECTION_TIMEOUT = 10.0  # one short connection, end to end
STOP_TIMEOUT = 10.0
MB = bulk.MB
GB = bulk.GB


@dataclass
class Job:
    """What one worker process does; serialised onto its command line."""

    client: str
    port: int
    user: str
    key: str
    cipher: str
    sink_port: int


# ----------------------------------------------------------------------------- the worker side


def bulk_job(job: Job) -> bulk.Job:
    return bulk.Job("forward", job.client, job.port, job.user, job.key, job.cipher, 0)


def answer_requests(cpu_seconds: Any) -> None:
    """Serve ``cpu`` lines on stdin until ``stop`` or EOF; blocking, so run it in a thread."""
    for line in sys.stdin:
        if line.strip() != "cpu":
            return
        print(json.dumps({"cpu": cpu_seconds()}), flush=True)


def announce(port: int, pid: int) -> None:
    print(json.dumps({"port": port, "pid": pid}), flush=True)


async def sshtui_forward(job: Job) -> None:
    from sshtui.forward_spec import parse_forward
    from sshtui.net.forward_local import LocalForward
    from sshtui.net.reconnect import FixedClient

    client = await bulk.sshtui_connect(bulk_job(job))
    forward = LocalForward(parse_forward("local", f"{HOST}:0:{HOST}:{job.sink_port}"), FixedClient(client))
    await forward.start()
    announce(forward.port, os.getpid())
    await asyncio.to_thread(answer_requests, bulk.own_cpu)
    await forward.close()
    await client.close()


async def asyncssh_forward(job: Job) -> None:
    conn = await bulk.asyncssh_connect(bulk_job(job))
    listener = await conn.forward_local_port(HOST, 0, HOST, job.sink_port)
    announce(listener.get_port(), os.getpid())
    await asyncio.to_thread(answer_requests, bulk.own_cpu)
    listener.close()
    conn.close()
    await conn.wait_closed()


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, without connecting (a connection to a forward
    would open a channel to the sink). Linux only."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(f[1] == wanted and f[3] == "0A" for f in (row.split() for row in table) if len(f) > 3)


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def openssh_forward(job: Job) -> dict[str, float]:
    """``ssh -N -L``; its CPU while running comes from /proc (the same clock getrusage reads), and
    after it exits, from RUSAGE_CHILDREN as a check on the whole life."""
    port = _free_port()
    argv = bulk.openssh_argv(bulk_job(job), "")[:-2]  # without user@host and the command
    argv += ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{HOST}:{port}:{HOST}:{job.sink_port}",
             f"{job.user}@{HOST}"]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as ssh:
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while not listening(port):
                if ssh.poll() is not None or time.monotonic() > deadline:
                    ssh.terminate()
                    assert ssh.stderr is not None
                    complaint = ssh.stderr.read().decode(errors="replace").strip()[-300:]
                    raise RuntimeError(f"ssh -L did not start listening on {port}: {complaint}")
                time.sleep(0.02)
            announce(port, ssh.pid)
            answer_requests(lambda: process_cpu(ssh.pid))
        finally:
            ssh.terminate()
            try:
                ssh.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                ssh.kill()
                ssh.wait()
    return {"ssh_lifetime_cpu": bulk.own_cpu(resource.RUSAGE_CHILDREN)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def worker_main(job: Job) -> None:
    warnings.simplefilter("ignore")
    if job.client == "sshtui":
        asyncio.run(sshtui_forward(job))
    elif job.client == "asyncssh":
        asyncio.run(asyncssh_forward(job))
    else:
        print(json.dumps(openssh_forward(job)), flush=True)


# ----------------------------------------------------------------------------- the sink


class SinkConnection(asyncio.BufferedProtocol):
    """Counts and discards; closes its side once the sender has finished (EOF)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.received = 0
        self.buffer = bytearray(SEND_BLOCK)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sink.connections += 1

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        self.sink.total += nbytes
        if self.sink.waiter is not None and self.sink.total >= self.sink.target:
            waiter, self.sink.waiter = self.sink.waiter, None
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # close: the forward's channel then closes too


class Sink:
    def __init__(self) -> None:
        self.total = 0
        self.connections = 0
        self.target = 0
        self.waiter: asyncio.Future[None] | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SinkConnection(self), HOST, 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def expect(self, more: int) -> asyncio.Future[None]:
        """A future done once ``more`` bytes beyond what arrived so far have arrived."""
        self.target = self.total + more
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def send_all(port: int, size: int, block: bytes) -> None:
    """The bulk sender, blocking, in a thread: ``sendall`` releases the GIL while it waits."""
    view = memoryview(block)
    with socket.create_connection((HOST, port), timeout=CONNECTION_TIMEOUT) as conn:
        conn.settimeout(None)
        left = size
        while left > 0:
            chunk = view[: min(left, len(view))]
            conn.sendall(chunk)
            left -= len(chunk)
        conn.shutdown(socket.SHUT_WR)


async def short_connection(port: int, payload: bytes) -> None:
    """Connect, send, half-close, read to EOF: the EOF comes back only after the sink closed."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(payload)
        writer.write_eof()
        await writer.drain()
        while await reader.read(4096):
            pass
    finally:
        writer.close()


# ----------------------------------------------------------------------------- the orchestrator


class Worker:
    """One worker process in its own session, so stopping it also ends the ssh it started."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, job: Job) -> tuple[Worker, dict[str, Any]]:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(job))]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        worker = cls(process)
        try:
            ready = await asyncio.wait_for(worker.line(), READY_TIMEOUT)
        except BaseException:
            await worker.kill()
            raise
        return worker, ready

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        text = await self.process.stdout.readline()
        if not text:
            raise RuntimeError(f"worker ended: {await self.complaint()}")
        return dict(json.loads(text))

    async def complaint(self) -> str:
        assert self.process.stderr is not None
        with contextlib.suppress(TimeoutError):
            err = await asyncio.wait_for(self.process.stderr.read(), 5.0)
            lines = err.decode(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else "no output"
        return "no output"

    async def cpu(self) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(b"cpu\n")
        return float((await asyncio.wait_for(self.line(), 10.0))["cpu"])

    async def stop(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        self.process.stdin.close()
        try:
            out = await asyncio.wait_for(self.process.stdout.read(), STOP_TIMEOUT)
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            await self.kill()
            return {}
        lines = out.decode().strip().splitlines()
        return dict(json.loads(lines[-1])) if lines else {}

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)


async def measure(job: Job, sink: Sink, server_pid: int, size: int, connections: int,
                  timeout: float) -> dict[str, Any]:
    """One round for one client: a bulk transfer, then ``connections`` short ones."""
    worker, ready = await Worker.start(job)
    port = int(ready["port"])
    result: dict[str, Any] = {"forwarder_pid": ready["pid"]}
    try:
        # Warm-up: imports, the first channel, the sender's code paths.
        await asyncio.wait_for(short_connection(port, b"w" * SHORT_PAYLOAD), CONNECTION_TIMEOUT)

        block = os.urandom(SEND_BLOCK)  # incompressible, should any compression be negotiated
        arrived = sink.expect(size)
        cpu0, server0, wall0 = await worker.cpu(), bulk.process_tree_cpu(server_pid), time.perf_counter()
        sender = asyncio.create_task(asyncio.to_thread(send_all, port, size, block))
        await asyncio.wait_for(asyncio.gather(arrived, sender), timeout)
        wall1, server1, cpu1 = time.perf_counter(), bulk.process_tree_cpu(server_pid), await worker.cpu()
        result["transfer"] = {"bytes": size, "seconds": wall1 - wall0, "cpu": cpu1 - cpu0,
                              "server_cpu": server1 - server0 if server0 is not None and server1 is not None
                              else None}

        payload = b"x" * SHORT_PAYLOAD
        before = sink.total
        accepted = sink.connections
        cpu0, wall0 = await worker.cpu(), time.perf_counter()

        async def sequentially() -> None:
            for _ in range(connections):
                await asyncio.wait_for(short_connection(port, payload), CONNECTION_TIMEOUT)

        await asyncio.wait_for(sequentially(), timeout)
        wall1, cpu1 = time.perf_counter(), await worker.cpu()
        delivered = sink.total - before
        if delivered != connections * SHORT_PAYLOAD or sink.connections - accepted != connections:
            raise RuntimeError(f"the sink got {delivered} bytes on {sink.connections - accepted} connections")
        result["connections"] = {"count": connections, "seconds": wall1 - wall0, "cpu": cpu1 - cpu0}
        result.update(await worker.stop())
    except BaseException:
        await worker.kill()
        raise
    return result


async def run_all(
    args: argparse.Namespace, clients: list[str], server: Any
) -> dict[str, list[dict[str, Any]]]:
    sink = Sink()
    sink_port = await sink.start()
    samples: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
    try:
        for round_number in range(args.repeat):
            for client in clients:  # rounds go through every client in turn
                print(f"round {round_number + 1}: {client}", file=sys.stderr, flush=True)
                job = Job(client, server.port, server.user, str(server.client_key), args.cipher, sink_port)
                try:
                    sample = await measure(job, sink, server.pid or 0, args.size, args.connections,
                                           args.timeout)
                except TimeoutError:
                    sample = {"error": f"timed out (a phase is allowed {args.timeout:.0f} s)"}
                    sink.waiter = None
                except Exception as exc:
                    sample = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    sink.waiter = None
                samples[client].append(sample)
    finally:
        sink.close()
    return samples


# ----------------------------------------------------------------------------- reporting


def median_of(samples: list[dict[str, Any]], part: str, value: Any) -> float | None:
    values = [value(s[part]) for s in samples if part in s]
    return statistics.median(values) if values else None


def report(results: dict[str, Any], clients: list[str]) -> str:
    samples = results["samples"]
    env = results["environment"]
    n = results["connections"]

    def row(part: str, value: Any) -> dict[str, float | None]:
        return {client: median_of(samples[client], part, value) for client in clients}

    cipher = results["cipher"].split("@")[0]
    parts = [
        f"bench/forward.py  size={results['size']} bytes  connections={n}  repeat={results['repeat']}  "
        f"cipher={results['cipher']}  kex={bulk.KEX}  host key={bulk.HOST_KEY}  {env['date']}",
        f"nproc={env['nproc']}  cpu={env['cpu']}  memory={env['memory']}",
        f"Python {env['python']}  {env['openssh']}  sshtui {env['sshtui']}  cryptography "
        f"{env['cryptography']}  asyncssh {env['asyncssh']}",
        "",
        bulk.table("-L throughput, MB/s (10**6 bytes/s), higher is better",
                   {cipher: row("transfer", lambda t: t["bytes"] / t["seconds"] / MB)}, clients, ".0f",
                   "X/sshtui > 1: X is faster"),
        bulk.table("Forwarding client CPU seconds per GB (10**9 bytes), lower is better",
                   {cipher: row("transfer", lambda t: t["cpu"] / (t["bytes"] / GB))}, clients, ".2f",
                   "X/sshtui > 1: X uses more CPU"),
        bulk.table("Server side (sshd), CPU seconds per GB",
                   {cipher: row("transfer", lambda t: None if t["server_cpu"] is None
                                else t["server_cpu"] / (t["bytes"] / GB))}, clients, ".2f",
                   "the same sshd for all"),
        bulk.table(f"Short connections per second ({n} sequential connect, send {SHORT_PAYLOAD} B, close), "
                   "higher is better",
                   {"connections/s": row("connections", lambda c: c["count"] / c["seconds"])}, clients, ".0f",
                   "X/sshtui > 1: X is faster"),
        bulk.table("Forwarding client CPU ms per short connection, lower is better",
                   {"ms/connection": row("connections", lambda c: c["cpu"] * 1000 / c["count"])}, clients,
                   ".2f", "X/sshtui > 1: X uses more CPU"),
    ]
    errors = [f"  {client}: {s['error']}" for client in clients for s in samples[client] if "error" in s]
    if errors:
        parts += ["Errors:", *errors, ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=bulk.parse_size, default=1 << 30, help="bytes to send, e.g. 256M, 1G")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"subset of {','.join(CLIENTS)}")
    parser.add_argument("--cipher", default=DEFAULT_CIPHER, help="one cipher, used by every client")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="short connections per round")
    parser.add_argument("--repeat", type=int, default=1, help="rounds through all clients (medians)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per transfer or connection run")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(Job(**json.loads(args.worker)))
        return 0

    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    if not clients or args.connections < 1:
        parser.error("no client selected, or --connections below 1")
    # Generous: a 10 MB/s forward finishes; a hung one does not hold the run for long.
    args.timeout = args.timeout or 30.0 + max(args.size / (10 * MB), args.connections / 10)

    import tempfile

    from tests.sshd_fixture import KeyCache, start_sshd

    results: dict[str, Any] = {"size": args.size, "connections": args.connections, "repeat": args.repeat,
                               "cipher": args.cipher, "environment": bulk.environment()}
    with tempfile.TemporaryDirectory(prefix="sshtui-bench-") as tmp:
        keys_dir, server_dir = Path(tmp, "keys"), Path(tmp, "sshd")
        keys_dir.mkdir()
        server_dir.mkdir()
        # Quiet logging (the fixture's DEBUG3 logs per packet); no compression for anyone.
        server = start_sshd(KeyCache(keys_dir), server_dir, extra_config=["LogLevel ERROR", "Compression no"],
                            host_key_types=("ed25519",))
        try:
            print(f"sshd pid {server.pid} on {HOST}:{server.port}", file=sys.stderr)
            results["samples"] = asyncio.run(run_all(args, clients, server))
        finally:
            server.stop()
    print(report(results, clients))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
