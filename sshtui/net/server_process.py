"""The programs behind server sessions: started in a pseudo-terminal (RFC 4254 §6.2, terminal
modes §8, window size §6.7) or on pipes, signalled (§6.9), and reaped as soon as they exit.

Each program leads a new session and process group, so a signal or a hang-up reaches
everything it started; in a pty it also gets the terminal as its controlling terminal, so
job control and ^C work as on a console.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sshtui.ssh.messages import terminal_modes as m

# RFC 4254 §6.10 signal names (without "SIG").
SIGNAL_NAMES = (
    "ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2",
)
_WINSIZE = struct.Struct("HHHH")


@dataclass(frozen=True, slots=True)
class Terminal:
    """What a pty-req asked for, with the size the latest window-change set."""

    term: str
    cols: int
    rows: int
    width_px: int
    height_px: int
    modes: bytes


@dataclass(slots=True)
class Program:
    """A started program and our ends of its input and output."""

    proc: subprocess.Popen[bytes]
    stdin: int  # where client data goes: the pty master or a pipe
    outputs: dict[int, int | None] = field(default_factory=dict)  # fd -> extended data type (None: stdout)
    master: int | None = None  # the pty master, which is both stdin and the one output


def start_program(
    shell: str, args: list[str], env: dict[str, str], cwd: str | None, terminal: Terminal | None
) -> Program:
    """Start ``args`` (``args[0]`` is argv[0]; ``shell`` is executed). Our ends are non-blocking."""
    if terminal is not None:
        return _start_in_pty(shell, args, env, cwd, terminal)
    pipes = [os.pipe() for _ in range(3)]
    child_ends = (pipes[0][0], pipes[1][1], pipes[2][1])
    ours = (pipes[0][1], pipes[1][0], pipes[2][0])
    try:
        proc = subprocess.Popen(
            args, executable=shell, stdin=child_ends[0], stdout=child_ends[1], stderr=child_ends[2],
            cwd=cwd, env=env, start_new_session=True,
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
    return Program(proc, ours[0], {ours[1]: None, ours[2]: 1})


def _start_in_pty(
    shell: str, args: list[str], env: dict[str, str], cwd: str | None, terminal: Terminal
) -> Program:
    master, slave = pty.openpty()
    try:
        set_window_size(master, terminal)
        apply_terminal_modes(slave, m.decode_terminal_modes(terminal.modes))
        env["SSH_TTY"] = os.ttyname(slave)
        proc = subprocess.Popen(
            args, executable=shell, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True, preexec_fn=_take_controlling_terminal,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return Program(proc, master, {master: None}, master)


def _take_controlling_terminal() -> None:
    # Runs in the child between fork and exec, after setsid(): stdin is the pty slave.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, terminal: Terminal) -> None:
    """TIOCSWINSZ; the kernel sends SIGWINCH to the terminal's foreground process group."""
    size = _WINSIZE.pack(terminal.rows, terminal.cols, terminal.width_px, terminal.height_px)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, size)


def kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_by_name(name: str) -> signal.Signals | None:
    """An RFC 4254 signal name ("TERM") as a signal; None for names outside the RFC's list."""
    return signal.Signals["SIG" + name] if name in SIGNAL_NAMES else None


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return f"SIG{number}@openssh.com"  # RFC 4254 §6.10: local names take an @domain suffix


def describe_exit(returncode: int) -> str:
    return f"status {returncode}" if returncode >= 0 else f"signal {signal_name(-returncode)}"


def watch_exit(
    loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], on_exit: Callable[[], None]
) -> None:
    """Reap ``proc`` as soon as it exits: a pidfd on Linux, a waiting thread elsewhere."""
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
_MODE_CHARS: dict[int, int] = {
    m.TerminalMode[name]: getattr(termios, name) for name in _CHARS if hasattr(termios, name)
}
_DISABLED_CHAR = 255  # RFC 4254 §8: 255 means "not used"


def apply_terminal_modes(fd: int, modes: Mapping[int, int]) -> None:
    """Apply the client's modes that map onto termios; others (speeds, parity) keep the defaults."""
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
