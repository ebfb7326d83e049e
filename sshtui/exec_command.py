"""``sshtui exec DEST COMMAND``: run one remote command like ``ssh DEST COMMAND`` (RFC 4254 §6.5).

stdin, stdout and stderr are streamed as raw bytes with back-pressure both ways: stdin is read in
a thread and each chunk waits for the channel window; remote output is read from the channel
only as fast as it can be written locally, so unread data holds the remote back (RFC 4254 §5.2).
The exit status is the remote one (RFC 4254 §6.10); as with ssh(1), 255 means the connection or
authentication failed or the command was killed by a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import select
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sshtui.forward_command import start_exec_forwards
from sshtui.forward_spec import ForwardSpec, ForwardSpecError, forwards_from_args
from sshtui.net.channel import Channel, ExitInfo
from sshtui.net.client import SSHClient
from sshtui.net.jump import connect_through, hop_settings
from sshtui.options import ConnectionSettings, effective_jumps, resolve_settings
from sshtui.options_client import build_client_options
from sshtui.options_syntax import OptionError
from sshtui.prompts import Prompter
from sshtui.ssh.channels.channel import Channel as CoreChannel
from sshtui.ssh.channels.snapshot import ChannelSnapshot, snapshot_channel
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.errors import SSHError
from sshtui.ssh.snapshot import to_jsonable

STDIN_CHUNK = 256 * 1024
EXIT_CONNECTION = 255
DEFAULT_TERM = "xterm-256color"
DEFAULT_SIZE = (80, 24)


def error(message: str) -> None:
    """One line on stderr, however many lines the underlying message had."""
    text = " ".join(message.split())
    # Host names and server text may carry terminal escapes: show them, never let them act.
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    print(f"sshtui: {text}", file=sys.stderr, flush=True)


@dataclass
class ExecRequest:
    settings: ConnectionSettings
    command: str
    pty: bool = False
    stats_json: Path | None = None
    forwards: tuple[ForwardSpec, ...] = ()  # -L/-R/-D, alive while the command runs
    jumps: tuple[str, ...] = ()  # every hop in connection order, nested ones included


def request_from_args(args: argparse.Namespace) -> ExecRequest:
    words = list(args.command)
    if words and words[0] == "--":
        words.pop(0)
    if not words:
        raise OptionError("no command given (usage: sshtui exec [options] DEST COMMAND...)")
    settings = resolve_settings(
        args.destination,
        port=args.port,
        user=args.login_name,
        identity_files=args.identity_file or (),
        options=args.option or (),
        config_file=args.config_file,
    )
    # Several words are joined with spaces and interpreted by the remote shell, as ssh does.
    stats = Path(args.stats_json) if args.stats_json else None
    forwards, problems = forwards_from_args(args)
    for problem in problems:  # reported, and the command runs without that forward
        error(problem)
    jumps = tuple(effective_jumps(settings, getattr(args, "jump_hosts", None)))
    return ExecRequest(settings, " ".join(words), bool(args.tty), stats, tuple(forwards), jumps)


def main(args: argparse.Namespace) -> int:
    try:
        request = request_from_args(args)
    except (OptionError, ForwardSpecError) as exc:
        error(str(exc))
        return EXIT_CONNECTION
    return asyncio.run(run(request))


async def run(request: ExecRequest) -> int:
    prompter = Prompter.from_environment(batch_mode=request.settings.batch_mode)
    try:
        options = build_client_options(request.settings, prompter)
        # Each hop is looked up in the same hosts.toml and ssh_config files (-F) as the destination.
        hops = [build_client_options(hop_settings(request.settings, hop), prompter) for hop in request.jumps]
    except (OptionError, SSHError, OSError) as exc:
        return _failed_before_session(request, None, exc.message if isinstance(exc, SSHError) else str(exc))
    # The destination's client as soon as it exists: when connecting fails, its timeline and
    # negotiated algorithms still go into --stats-json.
    started: list[SSHClient] = []
    options = dataclasses.replace(options, on_client=started.append)
    try:
        client = await connect_through(hops, options)
    except SSHError as exc:
        return _failed_before_session(request, started[-1] if started else None, exc.message)
    except OSError as exc:
        reason = f"connect to host {options.host} port {options.port}: {exc.strerror or exc}"
        return _failed_before_session(request, started[-1] if started else None, reason)
    forwards = await start_exec_forwards(client, request.forwards)
    session = _Session(client, request)
    try:
        return await session.run()
    finally:
        if forwards is not None:
            await forwards.finish()  # as ssh(1): open forwarded connections run to their end
        await client.close()
        if request.stats_json is not None:
            write_stats(
                request.stats_json, client.snapshot(), session.channel_snapshots(), session.exit_info,
                session.failure,
            )


def _failed_before_session(request: ExecRequest, client: SSHClient | None, message: str) -> int:
    """Report a failure to set up the connection; the stats file gets what was known by then."""
    error(message)
    if request.stats_json is not None:
        snapshot = client.snapshot() if client is not None else None
        write_stats(request.stats_json, snapshot, (), None, message)
    return EXIT_CONNECTION


class _Session:
    def __init__(self, client: SSHClient, request: ExecRequest) -> None:
        self.client = client
        self.request = request
        self.exit_info: ExitInfo | None = None
        self.failure: str | None = None  # what was reported when the session ended in a failure
        self._core: CoreChannel | None = None

    def _fail(self, message: str) -> int:
        error(message)
        self.failure = message
        return EXIT_CONNECTION

    def channel_snapshots(self) -> tuple[ChannelSnapshot, ...]:
        """Final counters of our channel: the core object outlives its removal from the
        connection layer, so the numbers are complete even after the peer's CLOSE."""
        if self._core is None:
            return ()
        return (snapshot_channel(self._core, asyncio.get_running_loop().time()),)

    async def run(self) -> int:
        host = self.request.settings.host
        with _local_terminal(self.request.pty) as (term, size):
            try:
                command, pty = self.request.command, self.request.pty
                channel = await self.client.exec(command, pty=pty, term=term, size=size)
            except SSHError as exc:
                return self._fail(f"{host}: {exc.message}")
            self._core = channel.core
            with _window_resizes(channel, self.request.pty):
                return await self._stream(channel)

    async def _stream(self, channel: Channel) -> int:
        stdin = asyncio.create_task(_forward_stdin(channel, sys.stdin.fileno()))
        try:
            # Both remote streams share one window: drain them together or one could stall the other.
            await asyncio.gather(
                _copy_output(channel, channel.read, sys.stdout.fileno()),
                _copy_output(channel, channel.read_stderr, sys.stderr.fileno()),
            )
            try:
                self.exit_info = await channel.exit
            except SSHError as exc:
                return self._fail(f"connection to {self.request.settings.host} closed: {exc.message}")
        finally:
            stdin.cancel()
        info = self.exit_info
        if info.status is not None:
            return info.status
        if info.signal is None and self.client.error is not None:
            return self._fail(f"connection to {self.request.settings.host} closed: {self.client.error}")
        return EXIT_CONNECTION  # killed by a signal, or no exit status at all: ssh exits 255 too


async def _copy_output(channel: Channel, read: Callable[[], Awaitable[bytes]], fd: int) -> None:
    """Copy one remote stream to a local fd, reading only after the previous write finished."""
    broken = False
    while data := await read():
        if broken:
            continue  # discard until the close completes, so the window never jams
        try:
            await asyncio.to_thread(_write_all, fd, data)
        except OSError:
            broken = True
            channel.close()  # nobody reads this output any more: stop the remote command


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # an fd the parent left non-blocking: wait instead of spinning
            select.select([], [fd], [])
            continue
        view = view[written:]


async def _forward_stdin(channel: Channel, fd: int) -> None:
    """stdin to the channel in chunks of up to 256 KiB; end of file becomes the channel's EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=2)
    # A daemon thread, not the default executor: a read blocked on a terminal or an idle pipe
    # must not keep the process alive once the remote command has finished.
    threading.Thread(target=_read_stdin, args=(fd, loop, queue), name="sshtui-stdin", daemon=True).start()
    try:
        while data := await queue.get():
            await channel.write(data)
        await channel.write_eof()
    except SSHError:
        pass  # the channel closed first: the remote command no longer wants input


def _read_stdin(fd: int, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, STDIN_CHUNK)
        except OSError:
            data = b""  # closed or unreadable stdin counts as end of file, as in ssh
        put = queue.put(data)
        try:
            asyncio.run_coroutine_threadsafe(put, loop).result()
        except (RuntimeError, asyncio.CancelledError, concurrent.futures.CancelledError):
            put.close()  # the loop is gone or shutting down: the session is over
            return
        if not data:
            return


@contextlib.contextmanager
def _local_terminal(pty: bool) -> Iterator[tuple[str, tuple[int, int]]]:
    """TERM and window size for a pty request; with a terminal on stdin, raw mode meanwhile."""
    term = os.environ.get("TERM") or DEFAULT_TERM
    fd = sys.stdin.fileno()
    if not pty or not os.isatty(fd):
        yield term, DEFAULT_SIZE
        return
    import termios
    import tty

    size = os.get_terminal_size(fd)
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield term, (size.columns, size.lines)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _window_resizes(channel: Channel, pty: bool) -> Iterator[None]:
    fd = sys.stdin.fileno()
    if not pty or not os.isatty(fd) or not hasattr(signal, "SIGWINCH"):
        yield
        return
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def resized() -> None:
        size = os.get_terminal_size(fd)
        task = loop.create_task(channel.resize(size.columns, size.lines))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGWINCH, resized)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


def stats_document(
    snapshot: ConnectionSnapshot | None,
    channels: tuple[ChannelSnapshot, ...],
    exit_info: ExitInfo | None,
    failure: str | None = None,
) -> dict[str, Any]:
    """The ``--stats-json`` document: transport, auth attempts, channels, the timeline and ``error``
    (what failed, as reported on stderr, else null). Without a snapshot (no connection to the
    destination was started) the transport is null and the lists are empty.

    Snapshots hold no key material by construction (the session id only as a fingerprint)."""
    transport = to_jsonable(snapshot.transport) if snapshot is not None else None
    timeline = transport.pop("timeline") if transport is not None else []
    by_id = {c.local_id: c for c in snapshot.channels} if snapshot is not None else {}
    by_id.update({c.local_id: c for c in channels})
    return {
        "transport": transport,
        "username": snapshot.username if snapshot is not None else None,
        "authenticated": snapshot.authenticated if snapshot is not None else False,
        "auth": to_jsonable(snapshot.auth) if snapshot is not None else [],
        "channels": to_jsonable([by_id[i] for i in sorted(by_id)]),
        "timeline": timeline,
        "exit": {
            "status": exit_info.status if exit_info else None,
            "signal": exit_info.signal if exit_info else None,
        },
        "error": failure,
    }


def write_stats(
    path: Path,
    snapshot: ConnectionSnapshot | None,
    channels: tuple[ChannelSnapshot, ...],
    exit_info: ExitInfo | None,
    failure: str | None = None,
) -> None:
    try:
        document = stats_document(snapshot, channels, exit_info, failure)
        path.write_text(json.dumps(document, indent=1) + "\n")
    except OSError as exc:
        error(f"cannot write --stats-json file {path}: {exc.strerror or exc}")
