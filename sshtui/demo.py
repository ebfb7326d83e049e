"""``sshtui demo``: our SSH client talking to our SSH server on this machine, nothing to set up.

It starts the embedded server on a free 127.0.0.1 port with a throwaway host key and user key
in a temporary directory, writes a known_hosts line there (the user's own files are never
touched) and starts a tiny local web page. In a terminal it then runs the app connected to that
server: a shell tab with the side panel open and a ``-L`` forward (RFC 4254 §7.2) to the web page
through our client; leaving the app (ctrl+q) stops it all. Without a terminal it runs one command
through our client instead. A report from the client's connection snapshot follows (RFC 4253 §7
key exchange, the negotiated algorithms, rekeys, bytes, the handshake timeline), and everything
the demo started is stopped and removed. ``--in-memory`` only prints a handshake done in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sshtui.ssh.config import server_config
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.events import HostKeyReceived, TransportEvent
from sshtui.ssh.snapshot import TransportSnapshot
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_machine import Role

if TYPE_CHECKING:
    from sshtui.net.client import SSHClient

NON_INTERACTIVE_COMMAND = "uname -a; echo demo-ok"
TIMELINE_LIMIT = 40
_PAGE = b"<!doctype html><title>sshtui demo</title><p>Hello from the sshtui demo web server.</p>\n"


# --- the live demo -------------------------------------------------------------------------------


def main(args: argparse.Namespace | None = None) -> int:
    if args is not None and getattr(args, "in_memory", False):
        print(run_in_memory_demo())
        return 0
    return asyncio.run(run_demo())


async def run_demo() -> int:
    from sshtui.net.auth import AuthOptions
    from sshtui.net.client import ClientOptions
    from sshtui.net.client_connect import connect
    from sshtui.net.trust import TrustPolicy
    from sshtui.store import known_hosts

    out = sys.stdout
    interactive = sys.stdin.isatty()
    if interactive and sys.stdout.isatty():
        return await run_app_demo()
    async with _demo_environment() as env:
        policy = TrustPolicy([env.known_hosts], strict="yes")
        options = ClientOptions(
            "127.0.0.1", env.port, env.user, auth=AuthOptions(keys=[env.user_key], identities_only=True),
            verify_host_key=policy.verify, connect_timeout=20,
        )
        known_hosts.add(env.known_hosts, "127.0.0.1", env.port, env.host_key.public_blob, hashed=False)
        client = await connect(options)
        try:
            print(summary(env, client.snapshot().transport, interactive), file=out, flush=True)
            status = await _run_session(client, interactive)
            snapshot = client.snapshot()
        finally:
            await client.close()
        print(report(snapshot, status), file=out, flush=True)
    return 0


async def run_app_demo() -> int:
    """The app on the embedded server: a shell tab, the side panel and a -L forward to the web page."""
    from sshtui.store import known_hosts
    from sshtui.ui.app import SshtuiApp, settle_heap
    from sshtui.ui.models import ConnectTarget

    async with _demo_environment() as env:
        known_hosts.add(env.known_hosts, "127.0.0.1", env.port, env.host_key.public_blob, hashed=False)
        forward_port = _free_port()
        web_port = int(env.web_url.rstrip("/").rsplit(":", 1)[1])
        target = ConnectTarget("demo", "127.0.0.1", env.port, env.user, options=(
            f"IdentityFile={env.directory / 'id_ed25519'}", "IdentitiesOnly=yes",
            f"UserKnownHostsFile={env.known_hosts}", "StrictHostKeyChecking=yes", "ServerAliveInterval=5",
        ))
        app = SshtuiApp(
            hosts_path=env.directory / "hosts.toml", show_panel=True, start_target=target,
            open_forwards=[f"-L {forward_port}:127.0.0.1:{web_port}"],
        )
        settle_heap()
        await app.run_async()
        conn = app.driver.connections.get(1)
        snapshot = conn.snapshot if conn is not None else None
    print(f"sshtui demo: the web page was forwarded from http://127.0.0.1:{forward_port}/ to {env.web_url}")
    if snapshot is not None:
        print(report(snapshot, "the app was closed"), flush=True)
    return 0


def _free_port() -> int:
    """A loopback port free right now, for a forward the user can type (the dashboard shows it too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _run_session(client: SSHClient, interactive: bool) -> str:
    from sshtui.net.channel import ExitInfo
    from sshtui.net.interactive import run_shell

    if interactive:
        result = await run_shell(client)
        if result.escaped:
            return "disconnected with ~."
        info = result.exit
    else:
        run = await client.run(NON_INTERACTIVE_COMMAND)
        sys.stdout.write(f"$ {NON_INTERACTIVE_COMMAND}\n")
        sys.stdout.write(run.stdout.decode("utf-8", "replace"))
        sys.stderr.write(run.stderr.decode("utf-8", "replace"))
        info = ExitInfo(run.exit_status, run.exit_signal)
    if info.signal:
        return f"the shell was killed by signal {info.signal}"
    if info.status is None:
        return "no exit status"
    return f"the remote program exited with status {info.status}"


class _Environment:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.known_hosts = directory / "known_hosts"
        self.host_key = PrivateKey.generate("ed25519")
        self.user_key = PrivateKey.generate("ed25519")
        self.user = _user_name()
        self.port = 0
        self.web_url = ""


@contextlib.asynccontextmanager
async def _demo_environment() -> AsyncIterator[_Environment]:
    """Keys, server and web page; all stopped and deleted on the way out, whatever happened."""
    from sshtui.net.server import ServerOptions, start_server
    from sshtui.net.server_auth import AuthorizedKeys
    from sshtui.ssh.crypto.hostkeys import openssh_public_line

    directory = Path(tempfile.mkdtemp(prefix="sshtui-demo-"))
    try:
        with _quiet_server_log(), _web_server() as web_url:
            env = _Environment(directory)
            env.web_url = web_url
            public_line = openssh_public_line(env.user_key.public_blob, "sshtui-demo")
            _write_private(directory / "host_ed25519", env.host_key.to_openssh())
            _write_private(directory / "id_ed25519", env.user_key.to_openssh())
            (directory / "id_ed25519.pub").write_text(public_line + "\n")
            (directory / "authorized_keys").write_text(public_line + "\n")
            server = await start_server(ServerOptions(
                [env.host_key], port=0, authorized_keys=AuthorizedKeys.load(directory / "authorized_keys"),
                login_grace_time=30.0,
            ))
            try:
                env.port = server.port
                yield env
            finally:
                server.close()
                await server.wait_closed()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def _quiet_server_log() -> Iterator[None]:
    """Server log lines would scribble over the shell in raw mode; the report says what happened."""
    logger = logging.getLogger("sshtui.server")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(_PAGE)))
        self.end_headers()
        self.wfile.write(_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _web_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="sshtui-demo-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "demo"


# --- what the demo prints ------------------------------------------------------------------------


def summary(env: _Environment, t: TransportSnapshot, interactive: bool) -> str:
    d = env.directory
    pq = " (post-quantum hybrid)" if t.post_quantum else ""
    macs = _pair(t.mac_c2s, t.mac_s2c)
    lines = [
        "sshtui demo: our SSH client talking to our embedded SSH server, on this machine only",
        "",
        f"  server        127.0.0.1 port {env.port} (sshtui's embedded server, running as {env.user})",
        f"  host key      {t.host_key_algorithm} {t.host_key_fingerprint}",
        f"                verified against {d / 'known_hosts'}",
        f"  key exchange  {t.kex_algorithm}{pq}, strict kex {'on' if t.strict_kex else 'off'}",
        f"  cipher        {_pair(t.cipher_c2s, t.cipher_s2c)}",
        f"  MAC           {macs}{' (AEAD: integrity is part of the cipher)' if macs == 'implicit' else ''}",
        f"  web page      {env.web_url} (a tiny local server; in a terminal the app forwards a port to it)",
        f"  temporary dir {d} (keys and known_hosts; removed on exit)",
        f"  try also      ssh -i {d}/id_ed25519 -o UserKnownHostsFile={d}/known_hosts"
        f" -p {env.port} 127.0.0.1",
        "",
    ]
    if interactive:
        lines.append("Opening a shell on the embedded server. Leave with `exit`, or `~.` at a line's start.")
    else:
        lines.append("stdin is not a terminal: running one command instead of a shell.")
    return "\n".join(lines)


def report(snapshot: ConnectionSnapshot, status: str) -> str:
    t = snapshot.transport
    lines = [
        "",
        f"Connection report ({status})",
        f"  key exchange  {t.kex_algorithm}: {t.kex_count} exchange(s), {t.rekeys} rekey(s)",
        f"  host key      {t.host_key_algorithm} {t.host_key_fingerprint}",
        f"  cipher        {_pair(t.cipher_c2s, t.cipher_s2c)}",
        f"  MAC           {_pair(t.mac_c2s, t.mac_s2c)}",
        f"  sent          {_size(t.bytes_sent)} in {t.packets_sent} packets",
        f"  received      {_size(t.bytes_received)} in {t.packets_received} packets",
        f"  user          {snapshot.username} ({_attempts(snapshot)})",
    ]
    for record in t.kex_history:
        lines.append(
            f"  kex #{record.number}       by {record.initiated_by}, {record.kex_algorithm}, "
            f"{record.duration_ms:.1f} ms"
        )
    lines += ["", "Handshake timeline (ms since connect):"]
    for entry in t.timeline[:TIMELINE_LIMIT]:
        lines.append(f"  {entry.t_ms:9.3f}  {entry.direction:<8} {entry.event:<26} {entry.size:>6} B")
        if entry.event == "USERAUTH_SUCCESS":
            break
    return "\n".join(lines)


def _attempts(snapshot: ConnectionSnapshot) -> str:
    names = {"pk_ok": "key accepted", "failure": "refused", "success": "succeeded", "partial": "partial"}
    steps = [f"{a.method} {names.get(a.result, a.result)}" for a in snapshot.auth]
    return ", then ".join(steps) or "no attempts"


def _pair(c2s: str, s2c: str) -> str:
    return c2s if c2s == s2c else f"{c2s} (client to server), {s2c} (server to client)"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


# --- the in-memory handshake (sshtui demo --in-memory) ------------------------------------------


def _pump(client: Transport, server: Transport, log: list[str]) -> None:
    for _ in range(100):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            return
        if to_server:
            server.receive_data(to_server, time.monotonic())
        if to_client:
            events: list[TransportEvent] = client.receive_data(to_client, time.monotonic())
            for event in events:
                if isinstance(event, HostKeyReceived):
                    log.append(f"host key {event.algorithm} {event.fingerprint} (accepted for the demo)")
                    client.accept_host_key(time.monotonic())


def run_in_memory_demo() -> str:
    host_key = PrivateKey.generate("ed25519")
    client = Transport(Role.CLIENT, rng=os.urandom)
    server = Transport(Role.SERVER, server_config(), rng=os.urandom, host_keys=[host_key])
    log: list[str] = []
    client.start(time.monotonic())
    server.start(time.monotonic())
    _pump(client, server, log)
    client.request_service("ssh-userauth", time.monotonic())
    _pump(client, server, log)
    client.request_rekey(time.monotonic())
    _pump(client, server, log)
    snap = client.snapshot()
    lines = [
        "sshtui demo: our SSH client core talking to our SSH server core, in memory",
        "",
        f"  server version   {snap.peer_version}",
        f"  strict kex       {'yes' if snap.strict_kex else 'no'}",
        f"  post-quantum     {'yes' if snap.post_quantum else 'no'}",
        f"  session id       {snap.session_id_fingerprint}",
        *(f"  {entry}" for entry in log),
        "",
        "Negotiated algorithms (RFC 4253 §7.1: the client's first choice the server also offers):",
    ]
    for choice in snap.negotiation:
        lines.append(f"  {choice.category:<16} {choice.chosen:<34} {choice.reason}")
    lines += ["", "Timeline:"]
    for entry in snap.timeline:
        lines.append(f"  {entry.t_ms:9.3f} ms  {entry.direction:<8} {entry.event:<22} {entry.size:>6} B")
    lines += ["", f"Key exchanges: {snap.kex_count} ({snap.rekeys} rekey)"]
    for record in snap.kex_history:
        lines.append(
            f"  #{record.number} by {record.initiated_by:<5} {record.kex_algorithm}"
            f" in {record.duration_ms:.1f} ms"
        )
    return "\n".join(lines)
