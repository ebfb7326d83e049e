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
HANDSHAKE_SAMPLES = 3  # connects used to take the handshake out of the OpenSSH client's numbers
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


@dataclass
class Sample:
    """One transfer: wall seconds and CPU seconds of the client, and of the whole machine."""

    received: int
    seconds: float
    cpu: float
    machine_cpu: float | None  # all cores, from /proc/stat: client + sshd + everything else


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


def machine_cpu() -> float | None:
    """Busy CPU seconds of all cores since boot, or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(result: dict[str, float], who: int = resource.RUSAGE_SELF) -> Iterator[None]:
    cpu0, machine0, wall0 = own_cpu(who), machine_cpu(), time.perf_counter()
    yield
    wall1, cpu1, machine1 = time.perf_counter(), own_cpu(who), machine_cpu()
    result["seconds"] = wall1 - wall0
    result["cpu"] = cpu1 - cpu0
    if machine0 is not None and machine1 is not None:
        result["machine_cpu"] = machine1 - machine0


def command(size: int) -> str:
    return f"head -c {size} /dev/zero"


# ----------------------------------------------------------------------------- clients


async def sshtui_connect(job: Job) -> Any:
    from sshtui.net.auth import AuthOptions
    from sshtui.net.client import ClientOptions, connect
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
    with measured(result) if result is not None else _nothing():
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
    with measured(result) if result is not None else _nothing():
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
    with measured(result) if result is not None else _nothing():
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
    with measured(result, resource.RUSAGE_CHILDREN) if result is not None else _nothing():
        done = subprocess.run(openssh_argv(job, cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=3600, check=False)
    if done.returncode != 0:
        complaint = done.stderr.decode(errors="replace")[-300:]
        raise RuntimeError(f"ssh exited with {done.returncode}: {complaint}")
    return job.size if cmd == command(job.size) else 0


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
    result: dict[str, float] = {}
    if job.client == "openssh":
        return openssh_transfer(job)
    received = run_client(job, command(job.size), result)
    if received != job.size:
        raise RuntimeError(f"received {received} bytes, expected {job.size}")
    return asdict(Sample(received, result["seconds"], result["cpu"], result.get("machine_cpu")))


def openssh_transfer(job: Job) -> dict[str, Any]:
    """The ssh process's whole life is measured, so its median handshake is taken back out."""
    handshakes = []
    for _ in range(HANDSHAKE_SAMPLES):
        probe: dict[str, float] = {}
        run_client(job, "true", probe)
        handshakes.append(probe)
    result: dict[str, float] = {}
    run_client(job, command(job.size), result)
    seconds = statistics.median(h["seconds"] for h in handshakes)
    cpu = statistics.median(h["cpu"] for h in handshakes)
    machine = [h["machine_cpu"] for h in handshakes if "machine_cpu" in h]
    sample = Sample(job.size, max(result["seconds"] - seconds, 1e-9), max(result["cpu"] - cpu, 0.0),
                    result["machine_cpu"] - statistics.median(machine) if machine else None)
    return {**asdict(sample), "handshake_seconds": seconds, "handshake_cpu": cpu}


def latency_worker(job: Job) -> dict[str, Any]:
    """Connect, authenticate, exec ``true``, read to EOF, close; a fresh connection each time."""
    run_client(job, "true", None)  # warm-up: imports, key parsing, first-use caches
    times = []
    for _ in range(job.runs):
        start = time.perf_counter()
        run_client(job, "true", None)
        times.append(time.perf_counter() - start)
    return {"milliseconds": [t * 1000 for t in times], "median_ms": statistics.median(times) * 1000}


def worker_main(job: Job) -> None:
    warnings.simplefilter("ignore")
    outcome = transfer_worker(job) if job.kind == "transfer" else latency_worker(job)
    print(json.dumps(outcome))


def spawn(job: Job, timeout: float) -> dict[str, Any]:
    """One measurement in a fresh interpreter; an error dict instead of an exception."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(job))]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


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
            samples = {c: transfers[c].get(cipher, {"error": "not run"}) for c in clients}
            rows[short_cipher(cipher)] = {c: None if "error" in s else pick(s) for c, s in samples.items()}
        return rows

    def other_cpu(sample: dict[str, Any]) -> float | None:
        if sample.get("machine_cpu") is None:
            return None
        other = max(float(sample["machine_cpu"]) - float(sample["cpu"]), 0.0)
        return other / (int(sample["received"]) / GB)

    latency = {"connect+auth+exec(true)": {c: results["latency"][c].get("median_ms") for c in clients}}
    env = results["environment"]
    parts = [
        f"bench/bulk.py  size={results['size']} bytes  {env['date']}",
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
        table("Rest of the machine (mostly sshd), CPU seconds per GB", metric(other_cpu), clients, ".2f",
              "same sshd for all; differences come from packet and window sizes"),
        table(f"Connect latency, median of {results['latency_runs']} runs, ms, lower is better", latency,
              clients, ".1f", "X/sshtui > 1: X is slower"),
    ]
    errors = [f"  {c} {cipher}: {r['error']}" for c in clients for cipher, r in transfers[c].items()
              if "error" in r]
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

    results: dict[str, Any] = {"size": args.size, "latency_runs": args.runs, "environment": environment(),
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
            for client in clients:
                base = Job("latency", client, server.port, server.user, str(server.client_key), "", args.size,
                           args.runs)
                print(f"{client}: latency", file=sys.stderr, flush=True)
                results["latency"][client] = spawn(base, timeout=60.0 + 5.0 * args.runs)
                results["transfer"][client] = {}
                for cipher in ciphers:
                    if (client, cipher) in UNSUPPORTED:
                        results["transfer"][client][cipher] = {"error": "cipher not supported by the client"}
                        continue
                    print(f"{client}: {short_cipher(cipher)}", file=sys.stderr, flush=True)
                    job = Job("transfer", client, server.port, server.user, str(server.client_key), cipher,
                              args.size)
                    results["transfer"][client][cipher] = spawn(job, timeout)
        finally:
            server.stop()
    print(report(results, clients, ciphers))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
