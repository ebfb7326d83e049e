"""Encrypted identity files whose ``.pub`` is gone, against a real OpenSSH sshd: ``sshtui exec`` asks
for the passphrase (through ``SSHTUI_ASKPASS``), signs and logs in; wrong answers are asked again a
bounded number of times, cancelling moves on, and a refusal names the skipped keys and why."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from sshtui.net.auth import MAX_PASSPHRASE_TRIES
from tests.interop.test_exec_sshd import askpass_env, exec_argv, run, write_askpass

pytestmark = pytest.mark.interop


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def key_without_pub(server: Any, directory: Path, *keygen_args: str) -> tuple[Path, str]:
    """A key made by ``ssh-keygen -N passphrase``, authorized on ``server``, its ``.pub`` deleted."""
    key = directory / f"key_{uuid.uuid4().hex[:8]}"
    passphrase = "correct horse " + uuid.uuid4().hex
    subprocess.run(["ssh-keygen", "-q", *keygen_args, "-N", passphrase, "-f", str(key)], check=True)
    public = Path(f"{key}.pub")
    with server.authorized_keys.open("a") as handle:
        handle.write(public.read_text())
    public.unlink()
    return key, passphrase


def cancelling_askpass(directory: Path) -> Path:
    """An askpass program that logs the prompt and exits 1, as when the user presses Escape."""
    script = directory / "askpass_cancel"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$1" >> "$ASKPASS_LOG"\nexit 1\n')
    script.chmod(0o755)
    return script


def asked(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(
    "keygen_args", [("-t", "ed25519"), ("-t", "ecdsa", "-m", "PEM")], ids=["openssh", "pem"]
)
def test_encrypted_key_without_pub_logs_in(
    sshd_factory: Any, home: Path, tmp_path: Path, keygen_args: tuple[str, ...]
) -> None:
    server = sshd_factory()
    key, passphrase = key_without_pub(server, tmp_path, *keygen_args)
    askpass, log = write_askpass(tmp_path), tmp_path / "askpass.log"
    argv = exec_argv(server, "-i", str(key), "-o", "IdentitiesOnly=yes", server.host, "echo", "unlocked")
    result = run(argv, home, env=askpass_env(askpass, log, passphrase))
    assert (result.returncode, result.stdout) == (0, b"unlocked\n"), result.stderr
    assert asked(log) == [f"Enter passphrase for key '{key}': "]
    assert "Accepted publickey" in server.log_text()


def test_wrong_passphrase_is_asked_again_then_given_up(sshd_factory: Any, home: Path, tmp_path: Path) -> None:
    server = sshd_factory()
    key, _ = key_without_pub(server, tmp_path, "-t", "ed25519")
    askpass, log = write_askpass(tmp_path), tmp_path / "askpass.log"
    argv = exec_argv(server, "-i", str(key), "-o", "IdentitiesOnly=yes", server.host, "true")
    result = run(argv, home, env=askpass_env(askpass, log, "not it"))
    assert result.returncode == 255
    prompts = asked(log)
    assert len(prompts) == MAX_PASSPHRASE_TRIES
    assert prompts[1:] == [f"Bad passphrase, try again for key '{key}': "] * (MAX_PASSPHRASE_TRIES - 1)
    notice, refusal = result.stderr.splitlines()
    tries = MAX_PASSPHRASE_TRIES
    assert notice == f"sshtui: {key}: wrong passphrase {tries} times; going on without this key"
    assert "Permission denied" in refusal and f"{key}: wrong passphrase" in refusal


def test_cancelling_moves_on_and_is_reported(sshd_factory: Any, home: Path, tmp_path: Path) -> None:
    server = sshd_factory()
    key, _ = key_without_pub(server, tmp_path, "-t", "ed25519")
    log = tmp_path / "askpass.log"
    env = {"SSHTUI_ASKPASS": str(cancelling_askpass(tmp_path)), "ASKPASS_LOG": str(log)}
    argv = exec_argv(server, "-i", str(key), "-o", "IdentitiesOnly=yes", server.host, "true")
    result = run(argv, home, env=env)
    assert result.returncode == 255 and len(asked(log)) == 1
    assert "Permission denied" in result.stderr and f"{key}: passphrase entry cancelled" in result.stderr
    assert result.stderr.count("\n") == 1


def test_batch_mode_refusal_names_the_skipped_key(sshd_factory: Any, home: Path, tmp_path: Path) -> None:
    # A PEM key hides its public half too: in BatchMode nothing can be offered, and the error says why.
    server = sshd_factory()
    key, passphrase = key_without_pub(server, tmp_path, "-t", "ecdsa", "-m", "PEM")
    argv = exec_argv(
        server, "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", server.host, "true"
    )
    result = run(argv, home)
    assert result.returncode == 255 and result.stderr.count("\n") == 1
    assert "tried nothing" in result.stderr
    assert f"{key}: encrypted, and no passphrase can be asked for here (BatchMode)" in result.stderr
    assert passphrase not in result.stderr
