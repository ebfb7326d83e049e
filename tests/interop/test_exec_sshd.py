"""``sshtui exec`` as a user runs it (``python -m sshtui exec ...`` in a subprocess) against a real sshd:
exit codes, stream separation, stdin EOF, 64 MiB each way across dozens of rekeys, every way to
authenticate, host key trust, and a slow local reader that must not balloon memory.

Every run gets an empty HOME, no agent unless a test starts one, and no controlling terminal, so
nothing from the machine running the tests leaks in and no prompt can wait for a human.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sshd_fixture import SshdServer

pytestmark = pytest.mark.interop

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
BIG = 64 * MIB
RUN_TIMEOUT = 60
TEST_USER_PREFIX = "sshtui_test"


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def exec_argv(
    server: SshdServer, *args: str, known_hosts: Path | None = None, strict: str = "yes"
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sshtui",
        "exec",
        "-p",
        str(server.port),
        "-o",
        f"UserKnownHostsFile={known_hosts or server.known_hosts_file}",
        "-o",
        f"StrictHostKeyChecking={strict}",
        "-o",
        "ConnectTimeout=20",
        *args,
    ]


def exec_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS", "TERM")}
    env.update(
        HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    )
    env.update(extra)
    return env


def run(
    argv: Sequence[str], home: Path, *, stdin: bytes | Path = b"", env: Mapping[str, str] | None = None
) -> Result:
    """One sshtui run without a controlling terminal (a new session), so /dev/tty cannot be opened."""
    kwargs: dict[str, Any] = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin.open("rb")}
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=RUN_TIMEOUT,
            env=exec_env(home, **(env or {})),
            cwd=REPO_ROOT,
            start_new_session=True,
            check=False,
            **kwargs,
        )
    finally:
        if "stdin" in kwargs:
            kwargs["stdin"].close()
    return Result(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def key_args(server: SshdServer, key_type: str = "ed25519") -> list[str]:
    return ["-i", str(server.client_keys[key_type]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]


def run_key(
    server: SshdServer, home: Path, *command: str, stdin: bytes | Path = b"", extra: Sequence[str] = ()
) -> Result:
    return run(exec_argv(server, *key_args(server), *extra, server.host, *command), home, stdin=stdin)


def fingerprint(pub_file: Path) -> str:
    """The SHA256 fingerprint as OpenSSH's own ssh-keygen computes it."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(pub_file)], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


def write_askpass(directory: Path) -> Path:
    """An askpass program that logs each prompt and answers $ASKPASS_ANSWER."""
    script = directory / "askpass"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$1" >> "$ASKPASS_LOG"\nprintf "%s\\n" "$ASKPASS_ANSWER"\n')
    script.chmod(0o755)
    return script


def askpass_env(askpass: Path, log: Path, answer: str) -> dict[str, str]:
    return {"SSHTUI_ASKPASS": str(askpass), "ASKPASS_LOG": str(log), "ASKPASS_ANSWER": answer}


def load_stats(path: Path) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(path.read_text())
    return stats


# --- exit status and streams ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "status"), [("true", 0), ("exit 1", 1), ("exit 42", 42), ("kill -TERM $$", 255)]
)
def test_exit_status_is_the_remote_one(
    sshd_module: SshdServer, home: Path, command: str, status: int
) -> None:
    result = run_key(sshd_module, home, command)
    assert result.returncode == status, result.stderr
    # A signal ends the command with 255 and, as with OpenSSH, no message of our own.
    assert result.stderr == ""


def test_stdout_and_stderr_stay_apart(sshd_module: SshdServer, home: Path) -> None:
    result = run_key(sshd_module, home, "printf 'to stdout'; printf 'to stderr' >&2; printf ' more'")
    assert result.returncode == 0
    assert result.stdout == b"to stdout more"
    assert result.stderr == "to stderr"


def test_command_words_are_joined_with_spaces(sshd_module: SshdServer, home: Path) -> None:
    # As with ssh, the words become one string for the remote shell: "b c" splits there.
    result = run_key(sshd_module, home, "--", "printf", "%s,", "a", "b c")
    assert result.stdout == b"a,b,c,"


def test_stdin_and_its_end_reach_the_remote_command(
    sshd_module: SshdServer, home: Path, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 1000
    assert run_key(sshd_module, home, "wc -c", stdin=data).stdout.strip() == str(len(data)).encode()
    assert run_key(sshd_module, home, "cat", stdin=data).stdout == data
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    # `cat` only ends when it sees end of file: this would hang if the EOF were not forwarded.
    result = run_key(sshd_module, home, "cat; echo done", stdin=empty)
    assert (result.returncode, result.stdout) == (0, b"done\n")


def test_exits_when_the_command_ends_even_if_stdin_stays_open(sshd_module: SshdServer, home: Path) -> None:
    argv = exec_argv(sshd_module, *key_args(sshd_module), sshd_module.host, "echo", "finished")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=exec_env(home),
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        assert proc.wait(timeout=20) == 0  # stdin is still open here: like ssh, do not wait for it
        assert proc.stdout is not None and proc.stdout.read() == b"finished\n"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_stats_are_written_when_the_command_fails(
    sshd_module: SshdServer, home: Path, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    for command, status, signal in (("exit 42", 42, None), ("kill -TERM $$", None, "TERM")):
        result = run_key(sshd_module, home, command, extra=["--stats-json", str(stats_file)])
        assert result.returncode == (status if status is not None else 255)
        stats = load_stats(stats_file)
        assert stats["exit"] == {"status": status, "signal": signal}
        [channel] = stats["channels"]
        assert (channel["exit_status"], channel["exit_signal"]) == (status, signal)
        stats_file.unlink()


def test_pty_on_request_only(sshd_module: SshdServer, home: Path) -> None:
    with_pty = run(
        exec_argv(sshd_module, *key_args(sshd_module), "-t", sshd_module.host, "tty; echo $TERM"),
        home,
        env={"TERM": "vt220"},
    )
    lines = with_pty.stdout.decode().split()
    assert with_pty.returncode == 0 and lines[0].startswith("/dev/pts/") and lines[1] == "vt220"
    without = run(exec_argv(sshd_module, *key_args(sshd_module), "-T", sshd_module.host, "tty"), home)
    assert without.returncode == 1 and b"not a tty" in without.stdout


def test_exec_does_not_load_the_ui_toolkit(sshd_module: SshdServer, home: Path, tmp_path: Path) -> None:
    report = tmp_path / "modules.json"
    probe = (
        "import json, sys\nfrom sshtui.cli import main\nrc = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        f"json.dump(loaded, open({str(report)!r}, 'w'))\n"
        "sys.exit(rc)\n"
    )
    argv = exec_argv(sshd_module, *key_args(sshd_module), sshd_module.host, "echo", "ok")
    result = run([sys.executable, "-c", probe, *argv[3:]], home)
    assert (result.returncode, result.stdout) == (0, b"ok\n")
    assert json.loads(report.read_text()) == []


def test_connection_refused_is_one_line_and_255(home: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(
        [sys.executable, "-m", "sshtui", "exec", "-p", str(port), "-o", "BatchMode=yes", "127.0.0.1", "true"],
        home,
    )
    assert result.returncode == 255
    assert result.stderr == f"sshtui: connect to host 127.0.0.1 port {port}: Connection refused\n"


# --- bulk data and rekeying ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("bulk") / "random.bin"
    data = os.urandom(BIG)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def check_stats_shape(stats: dict[str, Any]) -> None:
    transport = stats["transport"]
    for key in (
        "kex_algorithm",
        "host_key_algorithm",
        "cipher_c2s",
        "cipher_s2c",
        "mac_c2s",
        "mac_s2c",
        "strict_kex",
        "kex_count",
        "rekeys",
        "bytes_sent",
        "bytes_received",
        "packets_sent",
        "packets_received",
    ):
        assert key in transport, key
    assert transport["strict_kex"] is True
    if transport["cipher_c2s"].endswith("@openssh.com") and "ctr" not in transport["cipher_c2s"]:
        assert transport["mac_c2s"] == transport["mac_s2c"] == "implicit"
    [channel] = stats["channels"]
    for key in ("local_window", "remote_window", "bytes_sent", "bytes_received"):
        assert isinstance(channel[key], int), key
    assert stats["auth"] and all({"method", "result"} <= set(a) for a in stats["auth"])
    assert stats["auth"][-1]["result"] == "success"
    assert stats["timeline"] and all({"t_ms", "event"} <= set(e) for e in stats["timeline"])


def test_64_mib_each_way_with_client_rekeys_every_megabyte(
    sshd_module: SshdServer, home: Path, tmp_path: Path, big_file: tuple[Path, str]
) -> None:
    path, digest = big_file
    stats_file = tmp_path / "down.json"
    down = run_key(
        sshd_module, home, f"cat {path}", extra=["-o", "RekeyLimit=1M", "--stats-json", str(stats_file)]
    )
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(down.stdout).hexdigest() == digest
    stats = load_stats(stats_file)
    check_stats_shape(stats)
    assert stats["transport"]["rekeys"] >= 20
    assert stats["channels"][0]["bytes_received"] == BIG
    assert stats["exit"]["status"] == 0

    stats_file = tmp_path / "up.json"
    up = run_key(
        sshd_module,
        home,
        "sha256sum",
        stdin=path,
        extra=["-o", "RekeyLimit=1M", "--stats-json", str(stats_file)],
    )
    assert up.returncode == 0, up.stderr
    assert up.stdout.split()[0].decode() == digest
    stats = load_stats(stats_file)
    assert stats["transport"]["rekeys"] >= 20
    assert stats["channels"][0]["bytes_sent"] == BIG
    assert stats["transport"]["bytes_sent"] > BIG


def test_64_mib_each_way_while_sshd_rekeys(
    sshd_factory: Any, home: Path, tmp_path: Path, big_file: tuple[Path, str]
) -> None:
    server = sshd_factory(extra_config=["RekeyLimit 1M"])
    path, digest = big_file
    for direction in ("down", "up"):
        stats_file = tmp_path / f"{direction}.json"
        extra = [
            "-o",
            "Ciphers=aes128-ctr",
            "-o",
            "MACs=hmac-sha2-256-etm@openssh.com",
            "--stats-json",
            str(stats_file),
        ]
        if direction == "down":
            result = run_key(server, home, f"cat {path}", extra=extra)
            assert hashlib.sha256(result.stdout).hexdigest() == digest
        else:
            result = run_key(server, home, "sha256sum", stdin=path, extra=extra)
            assert result.stdout.split()[0].decode() == digest
        assert result.returncode == 0, result.stderr
        stats = load_stats(stats_file)
        check_stats_shape(stats)
        assert stats["transport"]["mac_c2s"] == "hmac-sha2-256-etm@openssh.com"
        by_peer = [r for r in stats["transport"]["kex_history"][1:] if r["initiated_by"] == "peer"]
        assert len(by_peer) >= 20, stats["transport"]["kex_history"]


def test_slow_reader_holds_the_remote_back(sshd_module: SshdServer, home: Path) -> None:
    size = 256 * MIB
    argv = exec_argv(sshd_module, *key_args(sshd_module), sshd_module.host, f"head -c {size} /dev/zero")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=exec_env(home),
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    received = hashlib.sha256()
    total = 0
    peak_kib = 0

    def sample() -> None:
        nonlocal peak_kib
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except FileNotFoundError:
            return
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                peak_kib = max(peak_kib, int(line.split()[1]))

    try:
        slow_until = time.monotonic() + 8
        while time.monotonic() < slow_until:
            chunk = os.read(proc.stdout.fileno(), 4096)
            received.update(chunk)
            total += len(chunk)
            sample()
            time.sleep(0.01)
        while chunk := os.read(proc.stdout.fileno(), MIB):
            received.update(chunk)
            total += len(chunk)
            if total % (32 * MIB) < MIB:
                sample()
        assert proc.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert total == size
    assert received.hexdigest() == hashlib.sha256(bytes(size)).hexdigest()
    assert 0 < peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_publickey_with_each_key_type(
    sshd_module: SshdServer, home: Path, tmp_path: Path, key_type: str
) -> None:
    stats_file = tmp_path / "stats.json"
    argv = exec_argv(
        sshd_module,
        *key_args(sshd_module, key_type),
        "--stats-json",
        str(stats_file),
        sshd_module.host,
        "echo",
        key_type,
    )
    result = run(argv, home)
    assert (result.returncode, result.stdout) == (0, f"{key_type}\n".encode()), result.stderr
    last = load_stats(stats_file)["auth"][-1]
    assert (last["method"], last["result"]) == ("publickey", "success")
    assert last["fingerprint"] == fingerprint(Path(f"{sshd_module.client_keys[key_type]}.pub"))


def test_pubkey_accepted_algorithms_limits_what_keys_may_sign(sshd_factory: Any, home: Path) -> None:
    server = sshd_factory()

    def publickey_lines() -> list[str]:
        time.sleep(0.3)  # sshd's children write the log after we hung up
        return [line for line in server.log_text().splitlines() if "pkalg" in line]

    excluded = run(
        exec_argv(
            server, *key_args(server), "-o", "PubkeyAcceptedAlgorithms=-ssh-ed25519", server.host, "true"
        ),
        home,
    )
    assert excluded.returncode == 255 and "Permission denied" in excluded.stderr
    assert "userauth-request" in server.log_text()
    assert publickey_lines() == []  # the ed25519 key was never offered

    sha256_only = run(
        exec_argv(
            server,
            *key_args(server, "rsa"),
            "-o",
            "PubkeyAcceptedAlgorithms=rsa-sha2-256",
            server.host,
            "echo",
            "rsa",
        ),
        home,
    )
    assert (sha256_only.returncode, sha256_only.stdout) == (0, b"rsa\n"), sha256_only.stderr
    lines = publickey_lines()
    assert lines and all("rsa-sha2-256" in line for line in lines)


def test_encrypted_key_asks_for_its_passphrase(sshd_factory: Any, home: Path, tmp_path: Path) -> None:
    server = sshd_factory()
    key = tmp_path / "encrypted"
    passphrase = "correct horse " + uuid.uuid4().hex
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(key)], check=True)
    with server.authorized_keys.open("a") as handle:
        handle.write(Path(f"{key}.pub").read_text())
    askpass, log = write_askpass(tmp_path), tmp_path / "askpass.log"
    argv = exec_argv(server, "-i", str(key), "-o", "IdentitiesOnly=yes", server.host, "echo", "unlocked")
    result = run(argv, home, env=askpass_env(askpass, log, passphrase))
    assert (result.returncode, result.stdout) == (0, b"unlocked\n"), result.stderr
    assert str(key) in log.read_text()

    wrong = run(argv, home, env=askpass_env(askpass, log, "not it"))
    assert wrong.returncode == 255
    # One line says the key was given up on after the wrong answers, one that login failed.
    given_up, refused = wrong.stderr.splitlines()
    assert "wrong passphrase" in given_up and "Permission denied" in refused


def test_keys_from_a_running_ssh_agent(sshd_module: SshdServer, home: Path, tmp_path: Path) -> None:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("ssh-agent is not installed")
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(
            ["ssh-add", str(sshd_module.client_keys["ecdsa"])],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        stats_file = tmp_path / "stats.json"
        argv = exec_argv(
            sshd_module,
            "-o",
            "IdentitiesOnly=no",
            "-o",
            "BatchMode=yes",
            "--stats-json",
            str(stats_file),
            sshd_module.host,
            "echo",
            "agent",
        )
        result = run(argv, home, env=env)
        assert (result.returncode, result.stdout) == (0, b"agent\n"), result.stderr
        last = load_stats(stats_file)["auth"][-1]
        assert last["key_type"] == "ecdsa-sha2-nistp256" and last["result"] == "success"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_wrong_key_is_permission_denied(sshd_module: SshdServer, home: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    argv = exec_argv(
        sshd_module,
        "-i",
        str(stranger),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        sshd_module.host,
        "true",
    )
    result = run(argv, home)
    assert result.returncode == 255 and result.stdout == b""
    assert result.stderr.startswith("sshtui: ") and "Permission denied" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_key_file_is_named(sshd_module: SshdServer, home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_key"
    result = run(exec_argv(sshd_module, "-i", str(missing), sshd_module.host, "true"), home)
    assert result.returncode == 255
    assert str(missing) in result.stderr and result.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def password_user() -> Iterator[tuple[str, str]]:
    """A local account with a known password, for password and keyboard-interactive logins.

    Its name carries our pid, so test runs going on at the same time never share (or delete) each
    other's account; accounts left by runs that were killed are removed first.
    """
    useradd, chpasswd, userdel = (
        shutil.which(t) or f"/usr/sbin/{t}" for t in ("useradd", "chpasswd", "userdel")
    )
    if os.geteuid() != 0:
        pytest.skip("creating a user with a password needs root")
    if not (os.access(useradd, os.X_OK) and os.access(chpasswd, os.X_OK)):
        pytest.skip("useradd/chpasswd are not installed")
    for entry in pwd.getpwall():
        pid = entry.pw_name.removeprefix(TEST_USER_PREFIX)
        if pid != entry.pw_name and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run([userdel, "-r", entry.pw_name], capture_output=True, check=False)
    user = f"{TEST_USER_PREFIX}{os.getpid()}"
    password = "pw-" + uuid.uuid4().hex
    subprocess.run([useradd, "-m", "-s", "/bin/sh", user], check=True, capture_output=True)
    try:
        subprocess.run([chpasswd], input=f"{user}:{password}\n".encode(), check=True, capture_output=True)
        yield user, password
    finally:
        subprocess.run([userdel, "-r", user], capture_output=True, check=False)


def password_run(
    server: SshdServer, home: Path, tmp_path: Path, user: str, answer: str, stats: Path
) -> Result:
    askpass, log = write_askpass(tmp_path), tmp_path / "askpass.log"
    argv = exec_argv(server, "-l", user, "--stats-json", str(stats), server.host, "id -un")
    return run(argv, home, env=askpass_env(askpass, log, answer))


def test_password_login(
    sshd_factory: Any, home: Path, tmp_path: Path, password_user: tuple[str, str]
) -> None:
    user, password = password_user
    server = sshd_factory(extra_config=["PasswordAuthentication yes", "KbdInteractiveAuthentication no"])
    stats_file = tmp_path / "stats.json"
    result = password_run(server, home, tmp_path, user, password, stats_file)
    assert (result.returncode, result.stdout) == (0, f"{user}\n".encode()), result.stderr
    assert f"{user}'s password" in (tmp_path / "askpass.log").read_text()
    text = stats_file.read_text()
    assert password not in text  # never a secret in the statistics
    last = json.loads(text)["auth"][-1]
    assert (last["method"], last["result"]) == ("password", "success")

    wrong = password_run(server, home, tmp_path, user, "not-" + password, stats_file)
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr
    assert wrong.stderr.count("\n") == 1


def test_keyboard_interactive_login(
    sshd_factory: Any, home: Path, tmp_path: Path, password_user: tuple[str, str]
) -> None:
    user, password = password_user
    # Without PAM, OpenSSH on Linux has no keyboard-interactive device; the fixture's default is UsePAM no.
    server = sshd_factory(
        extra_config=["UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no"]
    )
    stats_file = tmp_path / "stats.json"
    result = password_run(server, home, tmp_path, user, password, stats_file)
    if result.returncode == 255 and "keyboard-interactive" not in result.stderr:
        pytest.skip(f"this sshd does not offer keyboard-interactive with PAM: {result.stderr.strip()}")
    assert (result.returncode, result.stdout) == (0, f"{user}\n".encode()), result.stderr
    last = load_stats(stats_file)["auth"][-1]
    assert (last["method"], last["result"]) == ("keyboard-interactive", "success")
    assert password not in stats_file.read_text()


# --- host key trust ------------------------------------------------------------------------------


def test_unknown_host_is_refused_when_strict(sshd_module: SshdServer, home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = run(
        exec_argv(sshd_module, *key_args(sshd_module), sshd_module.host, "true", known_hosts=empty), home
    )
    assert result.returncode == 255 and result.stderr.count("\n") == 1
    assert fingerprint(Path(f"{sshd_module.host_key_paths['ed25519']}.pub")) in result.stderr
    assert empty.read_text() == ""


def test_accept_new_learns_the_key_then_trusts_it(
    sshd_module: SshdServer, home: Path, tmp_path: Path
) -> None:
    learned = tmp_path / "learned_hosts"
    first = run(
        exec_argv(
            sshd_module,
            *key_args(sshd_module),
            sshd_module.host,
            "echo",
            "first",
            known_hosts=learned,
            strict="accept-new",
        ),
        home,
    )
    assert (first.returncode, first.stdout) == (0, b"first\n"), first.stderr
    blob = sshd_module.host_public_keys["ed25519"].split()[1].decode()
    assert blob in learned.read_text()
    again = run(
        exec_argv(
            sshd_module,
            *key_args(sshd_module),
            sshd_module.host,
            "echo",
            "again",
            known_hosts=learned,
            strict="yes",
        ),
        home,
    )
    assert (again.returncode, again.stdout) == (0, b"again\n"), again.stderr


def test_changed_host_key_refuses_before_authentication(
    sshd_factory: Any, home: Path, tmp_path: Path
) -> None:
    server = sshd_factory()
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    known = tmp_path / "known_hosts"
    algorithm, blob = Path(f"{impostor}.pub").read_text().split()[:2]
    known.write_text(f"# a comment line first\n[{server.host}]:{server.port} {algorithm} {blob}\n")
    result = run(
        exec_argv(
            server,
            *key_args(server),
            server.host,
            "touch",
            str(tmp_path / "ran"),
            known_hosts=known,
            strict="no",
        ),
        home,
    )
    assert result.returncode == 255 and result.stderr.count("\n") == 1
    assert f"{known}:2" in result.stderr  # names the offending line
    assert "ssh-keygen -R" in result.stderr  # and how to fix it
    assert not (tmp_path / "ran").exists()
    time.sleep(0.3)  # sshd's children write the log after we hung up
    log = server.log_text()
    assert "Connection from 127.0.0.1" in log
    assert "userauth-request" not in log and "Accepted" not in log


# --- on a terminal -------------------------------------------------------------------------------


def spawn_on_terminal(argv: Sequence[str], home: Path, **env: str) -> Any:
    pexpect = pytest.importorskip("pexpect")
    return pexpect.spawn(
        argv[0],
        list(argv[1:]),
        env=exec_env(home, TERM="xterm", **env),
        cwd=str(REPO_ROOT),
        dimensions=(33, 111),
        timeout=20,
    )


def test_pty_gets_the_terminal_size_and_raw_keystrokes(sshd_module: SshdServer, home: Path) -> None:
    command = "stty size; read line; echo got:$line"
    child = spawn_on_terminal(
        exec_argv(sshd_module, *key_args(sshd_module), "-t", sshd_module.host, command), home
    )
    try:
        child.expect("33 111")
        child.send("typed\r")
        child.expect("got:typed")
        child.expect(pytest.importorskip("pexpect").EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_password_is_asked_on_the_terminal_without_echo(
    sshd_factory: Any, home: Path, password_user: tuple[str, str]
) -> None:
    user, password = password_user
    server = sshd_factory(extra_config=["PasswordAuthentication yes", "KbdInteractiveAuthentication no"])
    child = spawn_on_terminal(exec_argv(server, "-l", user, server.host, "echo", "logged-in"), home)
    try:
        child.expect(f"{user}'s password: ")
        child.sendline(password)
        child.expect("logged-in")
        shown = child.before + child.after
        child.expect(pytest.importorskip("pexpect").EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert password.encode() not in shown
