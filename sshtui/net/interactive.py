"""An interactive remote shell in the current terminal, through our client (RFC 4254 §6.2
pty-req, §6.5 shell, §6.7 window-change).

The local terminal is put in raw mode for the session and restored afterwards, whatever
happens. Keys go to the channel as typed, output comes back unchanged; SIGWINCH becomes a
window-change request. As in ssh(1), ``~`` right after a newline starts an escape: ``~.``
disconnects, ``~?`` lists the escapes, ``~~`` sends one ``~``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sshtui.net.channel import Channel, ChannelOpenError, ExitInfo
from sshtui.net.client import SSHClient
from sshtui.ssh.errors import SSHError
from sshtui.ssh.messages import channel_requests as m

DEFAULT_TERM = "xterm-256color"
DEFAULT_SIZE = (80, 24)
STDIN_CHUNK = 16 * 1024
# Like Debian's default "SendEnv LANG LC_*": the remote side gets the user's locale.
SENT_ENV_PREFIXES = ("LANG", "LC_")
ESCAPE_HELP = (
    "\r\nSupported escape sequences:\r\n"
    " ~.   - terminate connection\r\n"
    " ~?   - this message\r\n"
    " ~~   - send the escape character by typing it twice\r\n"
    "(Note that escapes are only recognized immediately after newline.)\r\n"
)
_CR, _LF = 13, 10


class EscapeFilter:
    """Finds ssh(1)-style escapes in typed bytes; everything else passes through unchanged."""

    def __init__(self, escape_char: str = "~") -> None:
        self._escape = ord(escape_char)
        self._at_line_start = True
        self._after_escape = False

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        """Bytes to send and the actions typed ("disconnect", "help"). After "disconnect"
        the rest of ``data`` is dropped: the session is over."""
        out = bytearray()
        actions: list[str] = []
        for byte in data:
            if self._after_escape:
                self._after_escape = False
                if byte == ord("."):
                    actions.append("disconnect")
                    return bytes(out), actions
                if byte == ord("?"):
                    actions.append("help")
                    continue
                out.append(self._escape)
                if byte == self._escape:
                    self._at_line_start = False
                    continue
            elif self._at_line_start and byte == self._escape:
                self._after_escape = True
                continue
            out.append(byte)
            self._at_line_start = byte in (_CR, _LF)
        return bytes(out), actions


@dataclass(frozen=True, slots=True)
class ShellResult:
    exit: ExitInfo
    escaped: bool  # the user typed ~. to disconnect


def terminal_size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return DEFAULT_SIZE
    return (size.columns or DEFAULT_SIZE[0], size.lines or DEFAULT_SIZE[1])


def locale_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(SENT_ENV_PREFIXES)}


async def open_shell(client: SSHClient, *, pty: bool, term: str, size: tuple[int, int]) -> Channel:
    channel = await client.open_session()
    for name, value in locale_env().items():
        await channel.request(m.Env(variable=name, value=value), want_reply=False)
    if pty:
        cols, rows = size
        if not await channel.request(m.PtyReq(term=term, cols=cols, rows=rows)):
            print("sshtui: the server refused a pseudo-terminal", file=sys.stderr)
    if not await channel.request(m.Shell()):
        channel.close()
        raise ChannelOpenError(0, "the server refused to start a shell")
    return channel


async def run_shell(
    client: SSHClient,
    *,
    stdin_fd: int | None = None,
    stdout_fd: int | None = None,
    stderr_fd: int | None = None,
    escape_char: str | None = "~",
) -> ShellResult:
    """Run a remote login shell on this terminal until it exits or the user types ``~.``."""
    stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    stdout_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    stderr_fd = sys.stderr.fileno() if stderr_fd is None else stderr_fd
    tty = os.isatty(stdin_fd)
    term = os.environ.get("TERM") or DEFAULT_TERM
    channel = await open_shell(client, pty=tty, term=term, size=terminal_size(stdout_fd))
    escapes = EscapeFilter(escape_char) if escape_char and tty else None
    with _raw_mode(stdin_fd, tty), _window_resizes(channel, stdout_fd, tty):
        typing = asyncio.create_task(_forward_input(channel, stdin_fd, stderr_fd, escapes))
        output = asyncio.ensure_future(asyncio.gather(
            _copy_output(channel.read, stdout_fd), _copy_output(channel.read_stderr, stderr_fd)
        ))
        escaped = False
        waiting: set[asyncio.Future[Any]] = {output, typing}
        try:
            while not output.done():
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if typing in done:
                    waiting.discard(typing)  # input ended (EOF sent) or ~. was typed
                    if not typing.cancelled() and typing.exception() is None and typing.result():
                        escaped = True
                        break
        finally:
            typing.cancel()
            if not output.done():
                output.cancel()
            with contextlib.suppress(asyncio.CancelledError, SSHError, OSError):
                await output
    if escaped:
        channel.close()
        await client.close()
        return ShellResult(ExitInfo(None, None), escaped=True)
    try:
        info = await asyncio.wait_for(asyncio.shield(channel.exit), timeout=5.0)
    except (TimeoutError, SSHError):
        info = ExitInfo(None, None)
    channel.close()
    return ShellResult(info, escaped=False)


async def _forward_input(channel: Channel, fd: int, stderr_fd: int, escapes: EscapeFilter | None) -> bool:
    """Typed bytes to the channel, at the pace its window allows; True after ``~.``."""
    try:
        while True:
            await _readable(fd)
            try:
                data = os.read(fd, STDIN_CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                await channel.write_eof()
                return False
            if escapes is not None:
                data, actions = escapes.feed(data)
                if "help" in actions:
                    _write_all(stderr_fd, ESCAPE_HELP.encode())
                if "disconnect" in actions:
                    return True
            if data:
                await channel.write(data)
    except SSHError:
        return False  # the channel closed: the output side ends the session


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _copy_output(read: Callable[[], Awaitable[bytes]], fd: int) -> None:
    while data := await read():
        _write_all(fd, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


@contextlib.contextmanager
def _raw_mode(fd: int, tty: bool) -> Iterator[None]:
    if not tty:
        yield
        return
    import termios
    import tty as ttymod

    saved = termios.tcgetattr(fd)
    ttymod.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _window_resizes(channel: Channel, fd: int, tty: bool) -> Iterator[None]:
    if not tty or not hasattr(signal, "SIGWINCH"):
        yield
        return
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def resized() -> None:
        cols, rows = terminal_size(fd)
        task = loop.create_task(_resize(channel, cols, rows))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGWINCH, resized)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread: no resizes
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


async def _resize(channel: Channel, cols: int, rows: int) -> None:
    with contextlib.suppress(SSHError):
        await channel.resize(cols, rows)
