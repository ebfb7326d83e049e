"""Session channels of the embedded server (RFC 4254 §6): a shell or command in a real
pseudo-terminal (§6.2 pty-req, §6.7 window-change, §8 terminal modes) or on pipes, with
environment (§6.4), signals (§6.9) and exit status or signal (§6.10).

Flow control is end to end: process output is read only while the client's window is open,
so a slow client stalls the process rather than our memory; client data is credited back
(WINDOW_ADJUST) only once the process has taken it from us.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import fnmatch
import logging
import os
import pty
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages import connection as m

log = logging.getLogger("sshtui.server")

READ_CHUNK = 256 * 1024
MAX_PTY_CELLS = 1000  # columns or rows; the wire decoder's own cap (10 000) is far above any screen
MAX_PTY_PIXELS = 65535
MAX_TERM_NAME = 64
MAX_ENV_VARS = 64
MAX_ENV_VALUE = 8192
KILL_GRACE_SECONDS = 2.0
DEFAULT_ACCEPT_ENV = ("LANG", "LC_*", "TERM")
# RFC 4254 §6.10 signal names (without "SIG").
SIGNAL_NAMES = ("ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2")
_WINSIZE = struct.Struct("HHHH")


class ChannelLink:
    """One channel as a handler sees it. Every call tolerates a channel the peer already
    closed: the handler learns of that through ``on_closed`` and must not crash before."""

    __slots__ = ("layer", "local_id", "flush", "label")

    def __init__(self, layer: ConnectionLayer, local_id: int, flush: Callable[[], None], label: str) -> None:
        self.layer = layer
        self.local_id = local_id
        self.flush = flush
        self.label = label

    def writable(self) -> int:
        try:
            return self.layer.writable(self.local_id)
        except LocalProtocolError:
            return 0

    def send(self, data: bytes | bytearray | memoryview, data_type: int | None = None) -> int:
        try:
            if data_type is None:
                return self.layer.send_data(self.local_id, data)
            return self.layer.send_extended_data(self.local_id, data, data_type)
        except LocalProtocolError:
            return 0

    def consumed(self, size: int) -> None:
        if size:
            with contextlib.suppress(LocalProtocolError):
                self.layer.consumed(self.local_id, size)

    def send_eof(self) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.send_eof(self.local_id)

    def request(self, body: m.TypedData) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.send_request(self.local_id, body, False)

    def close(self) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.layer.close(self.local_id)


@dataclass(frozen=True)
class SessionPolicy:
    """What sessions of one server may do, and the account they run as."""

    shell: str
    home: str
    user: str
    accept_env: tuple[str, ...] = DEFAULT_ACCEPT_ENV
    path: str = "/usr/local/bin:/usr/bin:/bin"
    connection_env: Mapping[str, str] = field(default_factory=dict)  # SSH_CONNECTION, SSH_CLIENT

    def env_allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.accept_env)


@dataclass(frozen=True, slots=True)
class _Pty:
    term: str
    cols: int
    rows: int
    width_px: int
    height_px: int
    modes: bytes


class SessionHandler:
    """One "session" channel: requests before the program starts, then the process I/O."""

    def __init__(self, link: ChannelLink, policy: SessionPolicy) -> None:
        self.link = link
        self.policy = policy
        self._loop = asyncio.get_running_loop()
        self._pty: _Pty | None = None
        self._env: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._master: int | None = None
        self._stdin: int | None = None  # where client data goes: the pty master or a pipe
        self._outputs: dict[int, int | None] = {}  # fd -> extended data type (None: stdout)
        self._reading = False
        self._pending = bytearray()  # client data the process has not taken yet
        self._close_stdin_when_drained = False
        self._exited = False
        self._finished = False
        self._closed = False
        self._kill_timer: asyncio.TimerHandle | None = None
        self.reaped: asyncio.Future[None] = self._loop.create_future()

    # -- requests (RFC 4254 §6.2-§6.10)

    def on_request(self, body: m.TypedData) -> bool:
        if isinstance(body, m.PtyReq):
            return self._on_pty_req(body)
        if isinstance(body, m.Env):
            return self._on_env(body)
        if isinstance(body, m.Shell):
            return self._start(None)
        if isinstance(body, m.Exec):
            return self._start(body.command)
        if isinstance(body, m.WindowChange):
            return self._on_window_change(body)
        if isinstance(body, m.Signal):
            return self._on_signal(body.signal)
        if isinstance(body, m.Subsystem):
            log.info("%s: subsystem %r refused: no subsystems are available", self.link.label, body.subsystem[:64])
            return False
        return False

    def _on_pty_req(self, req: m.PtyReq) -> bool:
        label = self.link.label
        if self.proc is not None or self._pty is not None:
            log.info("%s: pty-req refused: %s", label, "the program already runs" if self.proc else "a second pty")
            return False
        problem = _size_problem(req.cols, req.rows, req.width_px, req.height_px)
        if problem is None and (len(req.term) > MAX_TERM_NAME or not req.term.isprintable()):
            problem = f"terminal name of {len(req.term)} characters or with control characters"
        if problem is None:
            try:
                m.decode_terminal_modes(req.modes)
            except DecodeError as exc:
                problem = exc.message
        if problem is not None:
            log.info("%s: pty-req refused: %s", label, problem)
            return False
        self._pty = _Pty(req.term, req.cols, req.rows, req.width_px, req.height_px, req.modes)
        return True

    def _on_env(self, req: m.Env) -> bool:
        name, value = req.variable, req.value
        label = self.link.label
        if self.proc is not None:
            log.info("%s: env %.64r refused: the program already runs", label, name)
            return False
        if not name or "=" in name or "\0" in name or not name.isprintable():
            log.info("%s: env request refused: invalid variable name %.64r", label, name)
            return False
        if not self.policy.env_allowed(name):
            log.info("%s: env %.64r refused: not in the allow-list (%s)", label, name, ", ".join(self.policy.accept_env))
            return False
        if "\0" in value or len(value) > MAX_ENV_VALUE or len(self._env) >= MAX_ENV_VARS:
            log.info("%s: env %.64r refused: value too long, NUL in it, or too many variables", label, name)
            return False
        self._env[name] = value
        return True

    def _on_window_change(self, req: m.WindowChange) -> bool:
        problem = _size_problem(req.cols, req.rows, req.width_px, req.height_px)
        if problem is not None or self._pty is None:
            log.info("%s: window-change ignored: %s", self.link.label, problem or "no pty was requested")
            return False
        self._pty = _Pty(self._pty.term, req.cols, req.rows, req.width_px, req.height_px, self._pty.modes)
        if self._master is not None:
            _set_window_size(self._master, self._pty)
        return True

    def _on_signal(self, name: str) -> bool:
        if name not in SIGNAL_NAMES:
            log.info("%s: signal %.32r refused: not one of %s", self.link.label, name, " ".join(SIGNAL_NAMES))
            return False
        if self.proc is None or self._exited:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, getattr(signal, "SIG" + name))
        return True

    # -- starting the program

    def _start(self, command: bytes | None) -> bool:
        label = self.link.label
        if self.proc is not None:
            log.info("%s: %s refused: a program already runs on this channel", label, "exec" if command else "shell")
            return False
        shell = self.policy.shell
        if command is None:
            args = ["-" + os.path.basename(shell)]  # a leading "-" makes it a login shell, as sshd does
        else:
            args = [shell, "-c", os.fsdecode(command)]  # fsdecode/fsencode round-trip any bytes
        env = self._environment()
        try:
            if self._pty is not None:
                self._spawn_pty(shell, args, env)
            else:
                self._spawn_pipes(shell, args, env)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("%s: cannot start %s: %s", label, shell, exc)
            return False
        assert self.proc is not None
        what = "shell" if command is None else f"exec ({len(command)} bytes)"
        log.info("%s: %s started, pid %d%s", label, what, self.proc.pid, " with a pty" if self._pty else "")
        _watch_exit(self._loop, self.proc, self._on_exit)
        self._resume_reading()
        return True

    def _environment(self) -> dict[str, str]:
        policy = self.policy
        env = {
            "HOME": policy.home, "USER": policy.user, "LOGNAME": policy.user,
            "SHELL": policy.shell, "PATH": policy.path, **policy.connection_env, **self._env,
        }
        if self._pty is not None:
            env["TERM"] = self._pty.term
        return env

    def _spawn_pty(self, shell: str, args: list[str], env: dict[str, str]) -> None:
        assert self._pty is not None
        master, slave = pty.openpty()
        try:
            _set_window_size(master, self._pty)
            _apply_modes(slave, m.decode_terminal_modes(self._pty.modes))
            env["SSH_TTY"] = os.ttyname(slave)
            self.proc = subprocess.Popen(
                args, executable=shell, stdin=slave, stdout=slave, stderr=slave, cwd=self._cwd(), env=env,
                start_new_session=True, preexec_fn=_take_controlling_terminal,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self._master = self._stdin = master
        self._outputs = {master: None}

    def _spawn_pipes(self, shell: str, args: list[str], env: dict[str, str]) -> None:
        pipes = [os.pipe() for _ in range(3)]
        child_ends = (pipes[0][0], pipes[1][1], pipes[2][1])
        ours = (pipes[0][1], pipes[1][0], pipes[2][0])
        try:
            self.proc = subprocess.Popen(
                args, executable=shell, stdin=child_ends[0], stdout=child_ends[1], stderr=child_ends[2],
                cwd=self._cwd(), env=env, start_new_session=True,
            )
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in child_ends:
                os.close(fd)
        for fd in ours:
            os.set_blocking(fd, False)
        self._stdin = ours[0]
        self._outputs = {ours[1]: None, ours[2]: 1}

    def _cwd(self) -> str | None:
        return self.policy.home if os.path.isdir(self.policy.home) else None

    # -- process output to the client, never more than the window

    def _resume_reading(self) -> None:
        if self._reading or self._closed:
            return
        self._reading = True
        for fd in self._outputs:
            self._loop.add_reader(fd, self._on_readable, fd)

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            for fd in self._outputs:
                self._loop.remove_reader(fd)

    def _on_readable(self, fd: int) -> None:
        self._read_once(fd)
        self.link.flush()

    def _read_once(self, fd: int) -> bool:
        """Move one chunk; False when nothing more can move now (no window, no data, EOF)."""
        room = self.link.writable()
        if room <= 0:
            self._pause_reading()
            return False
        try:
            data = os.read(fd, min(room, READ_CHUNK))
        except BlockingIOError:
            if self._exited and fd == self._master:
                self._output_done(fd)  # the program is gone and its terminal output all read
            return False
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: every slave side of the pty is closed
                log.warning("%s: reading program output failed: %s", self.link.label, exc)
            data = b""
        if not data:
            self._output_done(fd)
            return False
        self.link.send(data, self._outputs[fd])
        return True

    def _output_done(self, fd: int) -> None:
        self._outputs.pop(fd, None)
        if self._reading:
            self._loop.remove_reader(fd)
        if fd != self._master:
            os.close(fd)
        self._maybe_finish()

    def on_window(self) -> None:
        if self._reading or self._closed or not self._outputs:
            return
        self._resume_reading()
        if self._exited and self._master is not None:
            self._drain_pty()

    # -- client data to the process

    def on_data(self, data: bytes, data_type: int | None) -> None:
        if data_type is not None or self._stdin is None:
            self.link.consumed(len(data))  # nobody reads it: credit it back so the window never jams
            return
        if self._pending:
            self._pending += data
            return
        written = self._write_stdin(data)
        if written < len(data):
            self._pending += data[written:]
            self._loop.add_writer(self._stdin, self._on_stdin_writable)

    def _write_stdin(self, data: bytes | memoryview) -> int:
        assert self._stdin is not None
        try:
            written = os.write(self._stdin, data)
        except BlockingIOError:
            return 0
        except OSError:  # the program closed its input: drop what it will never read
            written = len(data)
            self._close_stdin()
        self.link.consumed(written)
        return written

    def _on_stdin_writable(self) -> None:
        if self._stdin is None:
            return
        written = self._write_stdin(memoryview(self._pending))
        del self._pending[:written]
        if not self._pending and self._stdin is not None:
            self._loop.remove_writer(self._stdin)
            if self._close_stdin_when_drained:
                self._close_stdin()
        self.link.flush()

    def on_eof(self) -> None:
        if self._master is not None:
            return  # a terminal has no end of input; the user types ^D if the program wants one
        if self._pending:
            self._close_stdin_when_drained = True
        else:
            self._close_stdin()

    def _close_stdin(self) -> None:
        fd, self._stdin = self._stdin, None
        if fd is None:
            return
        self.link.consumed(len(self._pending))
        self._pending.clear()
        self._loop.remove_writer(fd)
        if fd != self._master:
            os.close(fd)

    # -- the end

    def _on_exit(self) -> None:
        self._exited = True
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        if not self.reaped.done():
            self.reaped.set_result(None)
        if self._closed:
            return
        if self._master is not None:
            self._drain_pty()
        self._maybe_finish()
        self.link.flush()

    def _drain_pty(self) -> None:
        """After the program exits, what it wrote is in the pty already: read it all."""
        master = self._master
        while master is not None and master in self._outputs and self._read_once(master):
            pass

    def _maybe_finish(self) -> None:
        if self._finished or self._closed or not self._exited or self._outputs:
            return
        self._finished = True
        proc = self.proc
        assert proc is not None and proc.returncode is not None
        self.link.send_eof()
        if proc.returncode >= 0:
            self.link.request(m.ExitStatus(proc.returncode))
        else:
            self.link.request(m.ExitSignal(_signal_name(-proc.returncode), False))
        self.link.close()
        log.info("%s: program exited with %s", self.link.label, _describe_exit(proc.returncode))

    def on_closed(self) -> None:
        """The channel is gone: release descriptors and end the program's process group."""
        if self._closed:
            return
        self._closed = True
        self._pause_reading()
        self._close_stdin()
        for fd in list(self._outputs):
            if fd != self._master:
                os.close(fd)
        self._outputs.clear()
        if self._master is not None:
            os.close(self._master)  # the kernel hangs up the terminal's session (SIGHUP)
            self._master = None
        proc = self.proc
        if proc is None:
            if not self.reaped.done():
                self.reaped.set_result(None)
        elif not self._exited:
            _kill_group(proc.pid, signal.SIGHUP)
            self._kill_timer = self._loop.call_later(KILL_GRACE_SECONDS, _kill_group, proc.pid, signal.SIGKILL)


def _size_problem(cols: int, rows: int, width_px: int, height_px: int) -> str | None:
    if cols > MAX_PTY_CELLS or rows > MAX_PTY_CELLS:
        return f"terminal size {cols}x{rows} exceeds {MAX_PTY_CELLS}x{MAX_PTY_CELLS}"
    if width_px > MAX_PTY_PIXELS or height_px > MAX_PTY_PIXELS:
        return f"pixel size {width_px}x{height_px} exceeds {MAX_PTY_PIXELS}"
    return None


def _set_window_size(fd: int, size: _Pty) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(size.rows, size.cols, size.width_px, size.height_px))


def _take_controlling_terminal() -> None:
    # Runs in the child between fork and exec, after setsid(): stdin is the pty slave.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return f"SIG{number}@openssh.com"


def _describe_exit(returncode: int) -> str:
    return f"status {returncode}" if returncode >= 0 else f"signal {_signal_name(-returncode)}"


def _watch_exit(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], on_exit: Callable[[], None]) -> None:
    """Reap ``proc`` as soon as it exits (a pidfd on Linux, a waiting thread elsewhere)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        future = loop.run_in_executor(None, proc.wait)
        future.add_done_callback(lambda _: on_exit())
        return

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        proc.wait()
        on_exit()

    loop.add_reader(pidfd, exited)


# RFC 4254 §8 opcodes to termios: (attribute index, flag) for flags, control-character index for chars.
_FLAG_ATTR = {"i": 0, "o": 1, "l": 3}
_FLAGS = {
    "i": ("IGNPAR", "PARMRK", "INPCK", "ISTRIP", "INLCR", "IGNCR", "ICRNL", "IUCLC", "IXON", "IXANY",
          "IXOFF", "IMAXBEL", "IUTF8"),
    "l": ("ISIG", "ICANON", "XCASE", "ECHO", "ECHOE", "ECHOK", "ECHONL", "NOFLSH", "TOSTOP", "IEXTEN",
          "ECHOCTL", "ECHOKE", "PENDIN"),
    "o": ("OPOST", "OLCUC", "ONLCR", "OCRNL", "ONOCR", "ONLRET"),
}
_CHARS = ("VINTR", "VQUIT", "VERASE", "VKILL", "VEOF", "VEOL", "VEOL2", "VSTART", "VSTOP", "VSUSP",
          "VREPRINT", "VWERASE", "VLNEXT", "VDISCARD")
_MODE_FLAGS: dict[int, tuple[int, int]] = {
    m.TerminalMode[name]: (_FLAG_ATTR[kind], getattr(termios, name))
    for kind, names in _FLAGS.items() for name in names if hasattr(termios, name)
}
_MODE_CHARS: dict[int, int] = {m.TerminalMode[name]: getattr(termios, name) for name in _CHARS if hasattr(termios, name)}
_DISABLED_CHAR = 255  # RFC 4254 §8: 255 means "not used"


def _apply_modes(fd: int, modes: Mapping[int, int]) -> None:
    """Apply the client's terminal modes we can map; others (speeds, parity) keep pty defaults."""
    if not modes:
        return
    attrs = termios.tcgetattr(fd)
    for opcode, value in modes.items():
        if opcode in _MODE_FLAGS:
            index, flag = _MODE_FLAGS[opcode]
            attrs[index] = attrs[index] | flag if value else attrs[index] & ~flag
        elif opcode in _MODE_CHARS:
            char = 0 if value == _DISABLED_CHAR else value & 0xFF
            attrs[6][_MODE_CHARS[opcode]] = bytes([char])
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
