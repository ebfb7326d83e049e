"""Bulk receive throughput, client CPU per GB and connect latency: sshtui against asyncssh,
paramiko and the OpenSSH ``ssh`` client, all talking to the same OpenSSH sshd on 127.0.0.1.

    python bench/bulk.py [--size 256M] [--clients sshtui,asyncssh] [--ciphers aes128-gcm] [--json FILE]

Each client receives ``head -c SIZE /dev/zero`` over an exec channel and throws the data away
(RFC 4254 §6.5 exec, §5.2 data). Every measurement runs in a fresh ``--worker`` child process,
so one library's imports, threads or garbage do not land on another's bill. Not a test:
numbers depend on the machine and its load; run it by hand on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"
CLIENTS = ("sshtui", "asyncssh", "paramiko", "openssh")
CIPHERS = ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr")
ETM_MAC = "hmac-sha2-256-etm@openssh.com"
# The same curve25519 exchange under the one name all four clients know (paramiko lacks the
# RFC 8731 alias), so latency compares implementations, not default algorithm choices.
KEX = "curve25519-sha256@libssh.org"
HOST_KEY = "ssh-ed25519"
UNSUPPORTED = {("paramiko", "chacha20-poly1305@openssh.com")}
READ_SIZE = 1 << 20
LATENCY_RUNS = 10
HANDSHAKE_SAMPLES = 3  # ``ssh ... true`` runs whose median CPU is taken out of ssh's transfer CPU
MB = 10**6
GB = 10**9


@dataclass
class Job:
    """What one worker process does; serialised onto its command line."""

    kind: str  # "transfer" or "latency"
    client: str
    port: int
    user: str
    key: str
    cipher: str
    size: int
    runs: int = LATENCY_RUNS
    server_pid: int = 0  # sshd's listener: its process tree is the server side of every connection


@dataclass
class Sample:
    """One transfer: wall seconds, CPU seconds of the client and of the server side."""

    received: int
    seconds: float
    cpu: float
    server_cpu: float | None  # sshd's processes and the command they ran; None off Linux


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = cleaned[-1:] if cleaned[-1:] in units else ""
    try:
        value = float(cleaned[: len(cleaned) - len(suffix)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not a number with K, M or G") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return int(value * units[suffix])


def mac_for(cipher: str) -> str:
    return ETM_MAC if cipher.endswith("-ctr") else ""


def short_cipher(cipher: str) -> str:
    return f"{cipher.split('@')[0]}+{ETM_MAC.split('@')[0]}" if mac_for(cipher) else cipher.split("@")[0]


# ----------------------------------------------------------------------------- measuring


def own_cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def process_tree_cpu(root: int) -> float | None:
    """CPU seconds used so far by ``root`` and all its descendants, living or reaped.

    A process's own time plus its reaped children's (cutime, cstime) counts every tick once:
    a finished child's time moves into its parent's children fields when it is waited for.
    Counting the whole tree keeps the number independent of other load on the machine.
    """
    if not root:
        return None
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile, or not Linux
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    if root not in times:
        return None
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(times[pid] for pid in tree) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(result: dict[str, float], server_pid: int, who: int = resource.RUSAGE_SELF) -> Iterator[None]:
    server0, cpu0, wall0 = process_tree_cpu(server_pid), own_cpu(who), time.perf_counter()
    yield
    wall1, cpu1, server1 = time.perf_counter(), own_cpu(who), process_tree_cpu(server_pid)
    result["seconds"] = wall1 - wall0
    result["cpu"] = cpu1 - cpu0
    if server0 is not None and server1 is not None:
        result["server_cpu"] = server1 - server0


def command(size: int) -> str:
    return f"head -c {size} /dev/zero"


# ----------------------------------------------------------------------------- clients


async def sshtui_connect(job: Job) -> Any:
    from sshtui.net.auth import AuthOptions
    from sshtui.net.client import ClientOptions
    from sshtui.net.client_connect import connect
    from sshtui.ssh.config import DEFAULT_CIPHERS, TransportConfig

    ciphers = (job.cipher,) if job.cipher else DEFAULT_CIPHERS
    macs = (mac_for(job.cipher),) if mac_for(job.cipher) else TransportConfig().macs
    config = TransportConfig(kex_algorithms=(KEX,), host_key_algorithms=(HOST_KEY,), ciphers=ciphers,
                             macs=macs)
    auth = AuthOptions(identity_files=[Path(job.key)], identities_only=True)
    return await connect(ClientOptions(HOST, job.port, job.user, transport=config, auth=auth))


async def sshtui_run(job: Job, cmd: str, result: dict[str, float] | None) -> int:
    client = await sshtui_connect(job)
    received = 0
    with measured(result, job.server_pid) if result is not None else _nothing():
        channel = await client.exec(cmd)
        while data := await channel.read():
            received += len(data)
    await client.close()
    return received


async def asyncssh_connect(job: Job) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import asyncssh
    algs: dict[str, Any] = {"encryption_algs": [job.cipher]} if job.cipher else {}
    if mac_for(job.cipher):
        algs["mac_algs"] = [mac_for(job.cipher)]
    return await asyncssh.connect(
        HOST, job.port, username=job.user, client_keys=[job.key], known_hosts=None, agent_path=None,
        config=None, kex_algs=[KEX], server_host_key_algs=[HOST_KEY], preferred_auth="publickey", **algs,
    )


async def asyncssh_run(job: Job, cmd: str, result: dict[str, float] | None) -> int:
    conn = await asyncssh_connect(job)
    received = 0
    with measured(result, job.server_pid) if result is not None else _nothing():
        process = await conn.create_process(cmd, encoding=None)
        while data := await process.stdout.read(READ_SIZE):
            received += len(data)
    conn.close()
    await conn.wait_closed()
    return received


def paramiko_run(job: Job, cmd: str, result: dict[str, float] | None) -> int:
    import paramiko  # type: ignore[import-untyped]

    transport_type = paramiko.Transport
    disabled = {
        "kex": [k for k in transport_type._preferred_kex if k != KEX],
        "keys": [k for k in transport_type._preferred_keys if k != HOST_KEY],
    }
    if job.cipher:
        disabled["ciphers"] = [c for c in transport_type._preferred_ciphers if c != job.cipher]
    if mac_for(job.cipher):
        disabled["macs"] = [m for m in transport_type._preferred_macs if m != mac_for(job.cipher)]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(HOST, job.port, job.user, key_filename=job.key, look_for_keys=False, allow_agent=False,
                   disabled_algorithms=disabled, timeout=30)
    received = 0
    with measured(result, job.server_pid) if result is not None else _nothing():
        _, stdout, _ = client.exec_command(cmd)
        channel = stdout.channel
        while data := channel.recv(READ_SIZE):
            received += len(data)
    client.close()
    return received


def openssh_argv(job: Job, cmd: str) -> list[str]:
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
            "-o", f"KexAlgorithms={KEX}", "-o", f"HostKeyAlgorithms={HOST_KEY}",
            "-i", job.key, "-p", str(job.port)]
    if job.cipher:
        argv += ["-c", job.cipher]
    if mac_for(job.cipher):
        argv += ["-m", mac_for(job.cipher)]
    return [*argv, f"{job.user}@{HOST}", cmd]


def openssh_run(job: Job, cmd: str, result: dict[str, float] | None) -> int:
    """Run ``ssh`` to completion; ``result`` gets its whole life (wall and CPU, handshake included)."""
    with measured(result, 0, resource.RUSAGE_CHILDREN) if result is not None else _nothing():
        done = subprocess.run(openssh_argv(job, cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=3600, check=False)
    check_ssh_exit(done.returncode, done.stderr)
    return 0


def check_ssh_exit(returncode: int, stderr: bytes) -> None:
    if returncode != 0:
        complaint = stderr.decode(errors="replace")[-300:]
        raise RuntimeError(f"ssh exited with {returncode}: {complaint}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def run_client(job: Job, cmd: str, result: dict[str, float] | None) -> int:
    if job.client == "sshtui":
        return asyncio.run(sshtui_run(job, cmd, result))
    if job.client == "asyncssh":
        return asyncio.run(asyncssh_run(job, cmd, result))
    if job.client == "paramiko":
        return paramiko_run(job, cmd, result)
    return openssh_run(job, cmd, result)


# ----------------------------------------------------------------------------- workers


def transfer_worker(job: Job) -> dict[str, Any]:
    if job.client == "openssh":
        return openssh_transfer(job)
    result: dict[str, float] = {}
    received = run_client(job, command(job.size), result)
    if received != job.size:
        raise RuntimeError(f"received {received} bytes, expected {job.size}")
    return asdict(Sample(received, result["seconds"], result["cpu"], result.get("server_cpu")))


def openssh_transfer(job: Job) -> dict[str, Any]:
    """The clock starts when the command does, which it announces with a byte on stderr; the
    client CPU is the ssh process's whole life less the median of a few ``true`` runs."""
    handshakes = []
    for _ in range(HANDSHAKE_SAMPLES):
        probe: dict[str, float] = {}
        openssh_run(job, "true", probe)
        handshakes.append(probe["cpu"])
    handshake_cpu = statistics.median(handshakes)
    cpu0 = own_cpu(resource.RUSAGE_CHILDREN)
    argv = openssh_argv(job, f"echo >&2; {command(job.size)}")
    quiet = subprocess.DEVNULL
    with subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=subprocess.PIPE) as ssh:
        assert ssh.stderr is not None
        ssh.stderr.read(1)
        server0, wall0 = process_tree_cpu(job.server_pid), time.perf_counter()
        complaint = ssh.stderr.read()
        returncode = ssh.wait()
        wall1, server1 = time.perf_counter(), process_tree_cpu(job.server_pid)
    cpu = own_cpu(resource.RUSAGE_CHILDREN) - cpu0 - handshake_cpu
    check_ssh_exit(returncode, complaint)
    server = server1 - server0 if server0 is not None and server1 is not None else None
    return {**asdict(Sample(job.size, wall1 - wall0, max(cpu, 0.0), server)), "handshake_cpu": handshake_cpu}


def latency_worker(job: Job) -> dict[str, Any]:
    """Connect, authenticate, exec ``true``, read to EOF, close; a fresh connection each time.
    The first connection warms up imports, key parsing and caches and is not counted."""

    async def in_one_loop() -> list[float]:
        run = sshtui_run if job.client == "sshtui" else asyncssh_run
        times = []
        for _ in range(job.runs + 1):
            start = time.perf_counter()
            await run(job, "true", None)
            times.append(time.perf_counter() - start)
        return times

    if job.client in ("sshtui", "asyncssh"):
        times = asyncio.run(in_one_loop())
    else:
        times = []
        for _ in range(job.runs + 1):
            start = time.perf_counter()
            run_client(job, "true", None)
            times.append(time.perf_counter() - start)
    counted = times[1:]
    return {"milliseconds": [t * 1000 for t in counted], "median_ms": statistics.median(counted) * 1000}


def worker_main(job: Job) -> None:
    warnings.simplefilter("ignore")
    outcome = transfer_worker(job) if job.kind == "transfer" else latency_worker(job)
    print(json.dumps(outcome))


def spawn(job: Job, timeout: float) -> dict[str, Any]:
    """One measurement in a fresh interpreter; an error dict instead of an exception."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(job))]
    # A session of its own, so a timeout also ends the ssh the worker may have started.
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as worker:
        try:
            stdout, stderr = worker.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            return {"error": f"timed out after {timeout:.0f} s"}
    if worker.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return dict(json.loads(stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- reporting


def version_of(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # a missing library is reported, not fatal
        return "not installed"


def environment() -> dict[str, str]:
    from sshtui import __version__

    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    memory = "unknown"
    cpu = platform.processor() or "unknown"
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        memory = f"{int(meminfo[0].split()[1]) / 1024**2:.1f} GiB"
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "openssh": ssh_version,
        "sshtui": __version__,
        "cryptography": version_of("cryptography"),
        "asyncssh": version_of("asyncssh"),
        "paramiko": version_of("paramiko"),
    }


def table(title: str, rows: dict[str, dict[str, float | None]], clients: list[str], fmt: str,
          ratio_label: str) -> str:
    others = [c for c in clients if c != "sshtui"]
    ratios = [f"{c}/sshtui" for c in others] if "sshtui" in clients else []
    header = ["", *clients, *ratios]
    lines = []
    for name, values in rows.items():
        cells = [name] + [format(values[c], fmt) if values.get(c) is not None else "n/a" for c in clients]
        base = values.get("sshtui")
        for c in others if ratios else []:
            value = values.get(c)
            cells.append(f"{value / base:.2f}x" if value is not None and base else "n/a")
        lines.append(cells)
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    render = [" | ".join(str(cell).rjust(w) if i else str(cell).ljust(w) for i, (cell, w) in
                         enumerate(zip(row, widths, strict=True))) for row in [header, *lines]]
    rule = "-" * len(render[0])
    note = f"  ({ratio_label})" if ratios else ""
    return "\n".join([f"{title}{note}", rule, render[0], rule, *render[1:], ""])


def report(results: dict[str, Any], clients: list[str], ciphers: list[str]) -> str:
    transfers = results["transfer"]

    def metric(pick: Callable[[dict[str, Any]], Any]) -> dict[str, dict[str, float | None]]:
        rows: dict[str, dict[str, float | None]] = {}
        for cipher in ciphers:
            row: dict[str, float | None] = {}
            for client in clients:
                values = [pick(s) for s in transfers[client].get(cipher, []) if "error" not in s]
                values = [v for v in values if v is not None]
                row[client] = statistics.median(values) if values else None
            rows[short_cipher(cipher)] = row
        return rows

    def server_cpu(sample: dict[str, Any]) -> float | None:
        if sample.get("server_cpu") is None:
            return None
        return float(sample["server_cpu"]) / (int(sample["received"]) / GB)

    latency = {"connect+auth+exec(true)": {c: results["latency"][c].get("median_ms") for c in clients}}
    env = results["environment"]
    parts = [
        f"bench/bulk.py  size={results['size']} bytes  repeat={results['repeat']}  kex={KEX}  "
        f"host key={HOST_KEY}  {env['date']}",
        f"nproc={env['nproc']}  cpu={env['cpu']}  memory={env['memory']}",
        f"Python {env['python']}  {env['openssh']}  sshtui {env['sshtui']}  cryptography "
        f"{env['cryptography']}  asyncssh {env['asyncssh']}  paramiko {env['paramiko']}",
        "",
        table("Throughput, MB/s (10**6 bytes/s), higher is better",
              metric(lambda s: s["received"] / s["seconds"] / MB), clients, ".0f",
              "X/sshtui > 1: X is faster"),
        table("Client CPU seconds per GB (10**9 bytes), lower is better",
              metric(lambda s: s["cpu"] / (s["received"] / GB)), clients, ".2f",
              "X/sshtui > 1: X uses more CPU"),
        table("Server side (sshd and head), CPU seconds per GB", metric(server_cpu), clients, ".2f",
              "the same sshd for all: differences come from the client's window and packet sizes"),
        table(f"Connect latency, median of {results['latency_runs']} runs, ms, lower is better", latency,
              clients, ".1f", "X/sshtui > 1: X is slower"),
    ]
    errors = [f"  {c} {cipher}: {r['error']}" for c in clients for cipher, runs in transfers[c].items()
              for r in runs if "error" in r]
    errors += [f"  {c} {cipher}: not supported by {c}" for c, cipher in sorted(UNSUPPORTED)
               if c in clients and cipher in ciphers]
    errors += [f"  {c} latency: {r['error']}" for c, r in results["latency"].items() if "error" in r]
    if errors:
        parts += ["Errors:", *errors, ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="bytes per transfer, e.g. 256M, 1G")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"subset of {','.join(CLIENTS)}")
    parser.add_argument("--ciphers", default=",".join(CIPHERS), help="subset, by name or prefix")
    parser.add_argument("--runs", type=int, default=LATENCY_RUNS, help="connections per latency median")
    parser.add_argument("--repeat", type=int, default=1, help="transfers per client and cipher (median)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(Job(**json.loads(args.worker)))
        return 0

    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    ciphers = [c for c in CIPHERS if any(c.startswith(p) for p in args.ciphers.split(","))]
    if not clients or not ciphers:
        parser.error("no client or cipher selected")
    # Generous: even a 20 MB/s client finishes; a hung one does not hold the run for long.
    timeout = args.timeout or 30.0 + args.size / (20 * MB)

    from tests.sshd_fixture import KeyCache, start_sshd

    results: dict[str, Any] = {"size": args.size, "repeat": args.repeat, "latency_runs": args.runs,
                               "environment": environment(),
                               "kex": KEX, "host_key": HOST_KEY, "transfer": {}, "latency": {}}
    with tempfile.TemporaryDirectory(prefix="sshtui-bench-") as tmp:
        keys_dir, server_dir = Path(tmp, "keys"), Path(tmp, "sshd")
        keys_dir.mkdir()
        server_dir.mkdir()
        # Quiet logging: sshd's DEBUG3 default for tests would log per packet and slow the server.
        server = start_sshd(KeyCache(keys_dir), server_dir, extra_config=["LogLevel ERROR"],
                            host_key_types=("ed25519",))
        try:
            print(f"sshd pid {server.pid} on {HOST}:{server.port}", file=sys.stderr)

            def job(kind: str, client: str, cipher: str) -> Job:
                return Job(kind, client, server.port, server.user, str(server.client_key), cipher, args.size,
                           args.runs, server.pid or 0)

            for client in clients:
                print(f"{client}: latency", file=sys.stderr, flush=True)
                results["latency"][client] = spawn(job("latency", client, ""), timeout=60.0 + 5.0 * args.runs)
                results["transfer"][client] = {cipher: [] for cipher in ciphers}
            # Rounds go through every client in turn, so a burst of other load hits all alike.
            for round_number in range(args.repeat):
                for cipher in ciphers:
                    for client in clients:
                        if (client, cipher) in UNSUPPORTED:
                            continue
                        print(f"round {round_number + 1}: {client} {short_cipher(cipher)}", file=sys.stderr,
                              flush=True)
                        sample = spawn(job("transfer", client, cipher), timeout)
                        results["transfer"][client][cipher].append(sample)
        finally:
            server.stop()
    print(report(results, clients, ciphers))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
