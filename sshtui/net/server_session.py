"""Session channels of the embedded server (RFC 4254 §6): a shell or command in a real
pseudo-terminal (§6.2 pty-req, §6.7 window-change, §8 terminal modes) or on pipes, with
environment (§6.4), signals (§6.9) and exit status or signal (§6.10).

Flow control is end to end: process output is read only while the client's window is open,
so a slow client stalls the process rather than our memory; client data is credited back
(WINDOW_ADJUST) only once the process has taken it from us.
"""

from __future__ import annotations

import asyncio
import errno
import fnmatch
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from sshtui.net.server_channel import ChannelLink
from sshtui.net.server_process import (
    SIGNAL_NAMES,
    Program,
    Terminal,
    describe_exit,
    kill_group,
    set_window_size,
    signal_by_name,
    signal_name,
    start_program,
    watch_exit,
)
from sshtui.ssh.errors import DecodeError
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


class SessionHandler:
    """One "session" channel: requests before the program starts, then the process I/O."""

    def __init__(self, link: ChannelLink, policy: SessionPolicy) -> None:
        self.link = link
        self.policy = policy
        self._loop = asyncio.get_running_loop()
        self._pty: Terminal | None = None
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
            log.info("%s: subsystem %.64r refused: none is available", self.link.label, body.subsystem)
            return False
        return False

    def _on_pty_req(self, req: m.PtyReq) -> bool:
        label = self.link.label
        problem = _size_problem(req.cols, req.rows, req.width_px, req.height_px)
        if self.proc is not None or self._pty is not None:
            problem = "the program runs already" if self.proc else "a terminal was requested already"
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
        self._pty = Terminal(req.term, req.cols, req.rows, req.width_px, req.height_px, req.modes)
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
            allowed = ", ".join(self.policy.accept_env)
            log.info("%s: env %.64r refused: not in the allow-list (%s)", label, name, allowed)
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
        self._pty = Terminal(self._pty.term, req.cols, req.rows, req.width_px, req.height_px, self._pty.modes)
        if self._master is not None:
            set_window_size(self._master, self._pty)
        return True

    def _on_signal(self, name: str) -> bool:
        sig = signal_by_name(name)
        if sig is None:
            log.info("%s: signal %.32r refused: not one of %s", self.link.label, name, " ".join(SIGNAL_NAMES))
            return False
        if self.proc is None or self._exited:
            return False
        kill_group(self.proc.pid, sig)  # the whole group: a shell's children get it too
        return True

    # -- starting the program

    def _start(self, command: bytes | None) -> bool:
        label = self.link.label
        if self.proc is not None:
            log.info("%s: %s refused: a program already runs here", label, "exec" if command else "shell")
            return False
        shell = self.policy.shell
        # A leading "-" in argv[0] makes a login shell, as sshd does; fsdecode round-trips any bytes.
        args = ["-" + os.path.basename(shell)] if command is None else [shell, "-c", os.fsdecode(command)]
        cwd = self.policy.home if os.path.isdir(self.policy.home) else None
        try:
            program = start_program(shell, args, self._environment(), cwd, self._pty)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("%s: cannot start %s: %s", label, shell, exc)
            return False
        self._adopt(program)
        what = "shell" if command is None else f"exec ({len(command)} bytes)"
        pid, how = program.proc.pid, " with a pty" if self._pty else ""
        log.info("%s: %s started, pid %d%s", label, what, pid, how)
        watch_exit(self._loop, program.proc, self._on_exit)
        self._resume_reading()
        return True

    def _adopt(self, program: Program) -> None:
        self.proc = program.proc
        self._stdin, self._outputs, self._master = program.stdin, program.outputs, program.master

    def _environment(self) -> dict[str, str]:
        policy = self.policy
        env = {
            "HOME": policy.home, "USER": policy.user, "LOGNAME": policy.user,
            "SHELL": policy.shell, "PATH": policy.path, **policy.connection_env, **self._env,
        }
        if self._pty is not None:
            env["TERM"] = self._pty.term
        return env

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
        if written is None:
            self.link.consumed(len(data))
            self._close_stdin()
        elif written < len(data):
            self._pending += data[written:]
            self._loop.add_writer(self._stdin, self._on_stdin_writable)

    def _write_stdin(self, data: bytes | memoryview) -> int | None:
        """Bytes the program took (credited back to the client); None once it closed its input."""
        assert self._stdin is not None
        try:
            written = os.write(self._stdin, data)
        except BlockingIOError:
            return 0
        except OSError:
            return None
        self.link.consumed(written)
        return written

    def _on_stdin_writable(self) -> None:
        if self._stdin is None:
            return
        with memoryview(self._pending) as view:
            written = self._write_stdin(view)
        if written is None:
            self._close_stdin()  # drops, and credits back, what the program will never read
        else:
            del self._pending[:written]
            if not self._pending:
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
            self.link.request(m.ExitSignal(signal_name(-proc.returncode), False))
        self.link.close()
        log.info("%s: program exited with %s", self.link.label, describe_exit(proc.returncode))

    def kill(self) -> None:
        """SIGKILL the program's process group now (shutdown after the grace period)."""
        if self.proc is not None and not self._exited:
            kill_group(self.proc.pid, signal.SIGKILL)

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
            kill_group(proc.pid, signal.SIGHUP)
            self._kill_timer = self._loop.call_later(KILL_GRACE_SECONDS, kill_group, proc.pid, signal.SIGKILL)


def _size_problem(cols: int, rows: int, width_px: int, height_px: int) -> str | None:
    if cols > MAX_PTY_CELLS or rows > MAX_PTY_CELLS:
        return f"terminal size {cols}x{rows} exceeds {MAX_PTY_CELLS}x{MAX_PTY_CELLS}"
    if width_px > MAX_PTY_PIXELS or height_px > MAX_PTY_PIXELS:
        return f"pixel size {width_px}x{height_px} exceeds {MAX_PTY_PIXELS}"
    return None
