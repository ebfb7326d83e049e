"""The real-sshd fixture itself, checked with the OpenSSH client (RFC 4253 peers on 127.0.0.1 only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.sshd_fixture import SshdFactory, SshdServer, ssh_client_binary

REPO_ROOT = Path(__file__).resolve().parents[2]

needs_ssh_client = pytest.mark.skipif(
    ssh_client_binary() is None, reason="OpenSSH client `ssh` not installed (package openssh-client)"
)


def run_ssh(
    server: SshdServer, command: str, *options: str, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [
        "ssh", "-F", "/dev/null",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={server.known_hosts_file}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "ConnectTimeout=10",
        "-i", str(key or server.client_key),
        "-p", str(server.port),
        "-l", server.user,
        *options,
        server.host,
        command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@needs_ssh_client
def test_openssh_client_runs_a_command(sshd: SshdServer) -> None:
    result = run_ssh(sshd, "echo hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"


@needs_ssh_client
def test_extra_config_restricts_the_server(sshd_factory: SshdFactory) -> None:
    server = sshd_factory(extra_config=["Ciphers aes128-ctr"])

    allowed = run_ssh(server, "echo ok", "-o", "Ciphers=aes128-ctr")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == "ok\n"

    refused = run_ssh(server, "echo ok", "-o", "Ciphers=aes256-ctr")
    assert refused.returncode == 255
    assert "no matching cipher" in refused.stderr
    assert refused.stdout == ""


@needs_ssh_client
@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_every_client_key_is_authorized(sshd_module: SshdServer, key_type: str) -> None:
    result = run_ssh(sshd_module, "echo authorized", key=sshd_module.client_keys[key_type])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "authorized\n"


@needs_ssh_client
@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [("ed25519", "ssh-ed25519"), ("ecdsa", "ecdsa-sha2-nistp256"), ("rsa", "rsa-sha2-256")],
)
def test_known_hosts_file_pins_every_host_key(sshd_module: SshdServer, key_type: str, algorithm: str) -> None:
    assert sshd_module.host_public_keys[key_type].split()[1] in sshd_module.known_hosts_file.read_bytes()
    result = run_ssh(sshd_module, "true", "-o", f"HostKeyAlgorithms={algorithm}")
    assert result.returncode == 0, result.stderr


@needs_ssh_client
def test_a_stranger_host_key_is_rejected(sshd_factory: SshdFactory) -> None:
    only_ed25519 = sshd_factory(host_key_types=("ed25519",))
    other = sshd_factory(host_key_types=("ecdsa",))
    only_ed25519.known_hosts_file.write_text(
        other.known_hosts_line("ecdsa").replace(str(other.port), str(only_ed25519.port)) + "\n"
    )
    result = run_ssh(only_ed25519, "true", "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256,ssh-ed25519")
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


@needs_ssh_client
def test_stop_and_restart_keep_port_and_host_keys(sshd: SshdServer) -> None:
    port = sshd.port
    sshd.stop()
    assert not sshd.running
    down = run_ssh(sshd, "true")
    assert down.returncode == 255
    assert "Connection refused" in down.stderr

    sshd.restart()
    assert sshd.port == port
    up = run_ssh(sshd, "echo back")
    assert up.returncode == 0, up.stderr
    assert up.stdout == "back\n"


def test_defaults_survive_overrides_and_match_blocks(sshd_factory: SshdFactory) -> None:
    server = sshd_factory(extra_config=["MaxSessions 7", "Match User nobody", "    X11Forwarding yes"])
    effective = subprocess.run(
        [str(server.sshd), "-T", "-f", str(server.config_path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()
    assert "maxsessions 7" in effective
    # Had the defaults landed inside the Match block, the global value would be sshd's own "yes".
    assert "passwordauthentication no" in effective
    assert f"port {server.port}" in effective


def test_failure_report_carries_the_sshd_log(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        def test_fails_on_purpose(sshd):
            assert sshd.port == 0

        def test_passes(sshd):
            assert sshd.port > 0
    """))
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "sshd log 127.0.0.1:" in result.stdout
    assert "Server listening on 127.0.0.1 port" in result.stdout
    assert result.stdout.count("sshd log 127.0.0.1:") == 1
