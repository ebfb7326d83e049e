"""``sshtui demo`` end to end: in a pipe (one command and a report) and in a real terminal (tmux).

Each run gets its own $HOME and $TMPDIR, so "nothing left behind" can be checked exactly: the
temporary directory is gone and no process anywhere still has that $HOME in its environment
(every program the embedded server starts gets $HOME from it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TMUX = shutil.which("tmux")


def demo_env(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmpdir), "PYTHONPATH": python_path}
    return env, home, tmpdir


def processes_with_home(home: Path, ignore: int | None = None) -> list[int]:
    """Pids of processes whose environment has HOME=home (Linux /proc; empty elsewhere)."""
    marker = b"\0HOME=" + os.fsencode(home) + b"\0"
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and int(entry.name) not in (os.getpid(), ignore):
            found.append(int(entry.name))
    return found


def wait_until_gone(home: Path, timeout: float = 10, ignore: int | None = None) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_with_home(home, ignore)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.timeout(60)
def test_demo_without_a_terminal_runs_one_command_and_reports(tmp_path: Path) -> None:
    env, home, tmpdir = demo_env(tmp_path)
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "-m", "sshtui", "demo"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT, start_new_session=True,
    )
    try:
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert time.monotonic() - started < 30
    assert demo.returncode == 0, err
    assert "\ndemo-ok\n" in out
    assert "Connection report (the remote program exited with status 0)" in out
    assert "USERAUTH_SUCCESS" in out  # the handshake timeline
    assert re.search(r"host key +ssh-ed25519 SHA256:\S+", out)
    used = re.search(r"temporary dir (\S+)", out)
    assert used and Path(used.group(1)).parent == tmpdir
    assert list(tmpdir.iterdir()) == []  # the temporary directory is gone
    assert wait_until_gone(home) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.pid, 0)  # nothing is left in the demo's process group either


class Tmux:
    def __init__(self, socket_path: Path, env: dict[str, str]) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-S", str(socket_path), "-f", "/dev/null"]
        self.env = env
        self.server_pid: int | None = None

    def run(self, *args: str) -> str:
        result = subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env, timeout=10)
        return result.stdout

    def start(self, command: str) -> None:
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "demo", "-x", "200", "-y", "50", command],
            check=True, env=self.env, cwd=REPO_ROOT, timeout=10,
        )
        self.run("set-option", "-g", "remain-on-exit", "on")  # keep the report readable after exit
        self.server_pid = int(self.run("display-message", "-p", "#{pid}").strip())

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-S", "-200", "-t", "demo")

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"{pattern!r} never appeared; the screen was:\n{self.screen()}")

    def pane_dead(self) -> bool:
        return self.run("display-message", "-p", "-t", "demo", "#{pane_dead}").strip() == "1"

    def stop(self) -> None:
        if self.server_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.server_pid, signal.SIGTERM)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
@pytest.mark.timeout(90)
def test_demo_in_a_terminal_runs_the_app(tmp_path: Path) -> None:
    env, home, tmpdir = demo_env(tmp_path)
    tmux = Tmux(tmp_path / "tmux.sock", env)
    try:
        tmux.start(f"{sys.executable} -m sshtui demo")
        screen = tmux.wait_for(r"(?m)^[^\s▏]*[$#] ", timeout=30)  # the shell's prompt in its tab
        assert "demo #1" in screen  # the tab
        tmux.wait_for(r"Negotiated(.|\n)*cipher c→s +\S+")  # the side panel is open
        tmux.run("send-keys", "-t", "demo", "echo tmux-$((6*7))", "Enter")
        tmux.wait_for(r"(?m)^tmux-42\s")
        # The shell keeps every key: ctrl+] gives the keyboard back to the app, whose quit key is ctrl+q.
        tmux.run("send-keys", "-t", "demo", "C-]")
        time.sleep(0.3)
        tmux.run("send-keys", "-t", "demo", "C-q")
        screen = tmux.wait_for(re.escape("Connection report (the app was closed)"))
        assert "USERAUTH_SUCCESS" in screen
        assert re.search(r"forwarded from http://127\.0\.0\.1:\d+/", screen)
        deadline = time.monotonic() + 10
        while not tmux.pane_dead() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tmux.pane_dead()
        assert wait_until_gone(home, ignore=tmux.server_pid) == []
        assert list(tmpdir.iterdir()) == []
    finally:
        tmux.stop()


VIM = shutil.which("vim") or shutil.which("vi")
STTY_SIZE = r"(?m)^(\d+) (\d+)(?=\s)"  # `stty size` output; the side panel may follow on the line


@pytest.mark.skipif(TMUX is None or VIM is None, reason="needs tmux and vim")
@pytest.mark.timeout(120)
def test_vim_restores_the_shell_and_resizes_reach_the_remote_pty(tmp_path: Path) -> None:
    """In the app's shell tab: a full-screen program and its exit, then a pane resize."""
    env, home, _tmpdir = demo_env(tmp_path)
    tmux = Tmux(tmp_path / "tmux.sock", env)
    try:
        tmux.start(f"{sys.executable} -m sshtui demo")
        tmux.wait_for(r"(?m)^[^\s▏]*[$#] ", timeout=30)
        tmux.run("send-keys", "-t", "demo", "echo before-vim-$((2*21))", "Enter")
        tmux.wait_for(r"(?m)^before-vim-42\s")
        # vim takes the alternate screen; its own status line proves it drew there.
        tmux.run("send-keys", "-t", "demo", f"{VIM} -u NONE -N {home}/notes.txt", "Enter")
        tmux.wait_for(r"notes\.txt", timeout=20)
        tmux.wait_for(r"(?m)^~", timeout=20)
        tmux.run("send-keys", "-t", "demo", "Escape", ":q!", "Enter")
        # The shell's earlier output is back once vim leaves the alternate screen.
        screen = tmux.wait_for(r"(?m)^before-vim-42\s")
        assert not re.search(r"(?m)^~\s*$", screen)
        # The terminal tab's size follows the pane (the remote pty gets window-change).
        tmux.run("send-keys", "-t", "demo", "stty size", "Enter")
        first = tmux.wait_for(STTY_SIZE)
        rows1, cols1 = map(int, re.findall(STTY_SIZE, first)[-1])
        tmux.run("resize-window", "-t", "demo", "-x", "160", "-y", "40")
        time.sleep(1.0)
        tmux.run("send-keys", "-t", "demo", "clear; stty size", "Enter")
        deadline = time.monotonic() + 20
        sizes: list[tuple[int, int]] = []
        while time.monotonic() < deadline:
            sizes = [(int(r), int(c)) for r, c in re.findall(STTY_SIZE, tmux.screen())]
            if sizes and sizes[-1] != (rows1, cols1):
                break
            time.sleep(0.2)
        assert sizes and sizes[-1][1] < cols1 and sizes[-1][0] < rows1, (rows1, cols1, sizes)
        tmux.run("send-keys", "-t", "demo", "C-]")
        tmux.run("send-keys", "-t", "demo", "C-q")
        tmux.wait_for(re.escape("Connection report (the app was closed)"))
        assert wait_until_gone(home, ignore=tmux.server_pid) == []
    finally:
        tmux.stop()
