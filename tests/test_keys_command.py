"""``sshtui keys ...`` as a user runs it: generate, passphrase, export, randomart, list, and deploy
against a real sshd, with OpenSSH's own tools as the judge."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sshtui.cli import main
from sshtui.keys_command import deploy_command, deploy_input
from sshtui.ssh.crypto.hostkeys import parse_openssh_public_line
from sshtui.store.keyfiles import read_private_key
from sshtui.store.keys import generate_key
from tests.sshd_fixture import SshdServer

SSH_KEYGEN = shutil.which("ssh-keygen")
Capture = pytest.CaptureFixture[str]
SSH = shutil.which("ssh")
needs_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH ssh-keygen is not installed")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and data directory, and no agent or askpass from the machine running the tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS"):
        monkeypatch.delenv(name, raising=False)
    return home


def keygen(*args: str) -> subprocess.CompletedProcess[str]:
    assert SSH_KEYGEN is not None
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, text=True, check=False)


def use_askpass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """An askpass program answering ``old`` to the old-passphrase prompt and ``new`` to the others."""
    script = tmp_path / "askpass"
    script.write_text('#!/bin/sh\ncase "$1" in *old*) echo "$OLD" ;; *) echo "$NEW" ;; esac\n')
    script.chmod(0o755)
    monkeypatch.setenv("SSHTUI_ASKPASS", str(script))
    monkeypatch.setenv("OLD", old)
    monkeypatch.setenv("NEW", new)


# --- generate, passphrase, export, randomart, list -----------------------------------------------


@needs_keygen
def test_generate_prints_what_ssh_keygen_sees(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "id_ecdsa"
    assert main(["keys", "generate", "-t", "ecdsa", "-b", "384", "-C", "laptop", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    listed = keygen("-l", "-f", str(path)).stdout.split()
    assert listed[0] == "384" and listed[1] in out and "laptop" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_defaults_to_ed25519_in_dot_ssh(isolated: Path, capsys: Capture) -> None:
    assert main(["keys", "generate", "-C", "x"]) == 0
    blob, comment = parse_openssh_public_line((isolated / ".ssh" / "id_ed25519.pub").read_text())
    assert comment == "x" and blob.startswith(b"\x00\x00\x00\x0bssh-ed25519")


def test_generate_refuses_to_overwrite(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "key"
    assert main(["keys", "generate", "-f", str(path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["keys", "generate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sshtui: ") and "already exists" in err and err.count("\n") == 1
    assert path.read_bytes() == before


def test_generate_refuses_short_rsa(tmp_path: Path, capsys: Capture) -> None:
    assert main(["keys", "generate", "-t", "rsa", "-b", "2048", "-f", str(tmp_path / "k")]) == 1
    assert "3072" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


@needs_keygen
def test_generate_with_a_prompted_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    use_askpass(tmp_path, monkeypatch, old="", new="typed secret")
    path = tmp_path / "key"
    assert main(["keys", "generate", "-f", str(path), "--passphrase-prompt"]) == 0
    assert keygen("-y", "-P", "", "-f", str(path)).returncode != 0
    assert keygen("-y", "-P", "typed secret", "-f", str(path)).returncode == 0


@needs_keygen
def test_passphrase_command_changes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    path = tmp_path / "key"
    assert keygen("-q", "-t", "ed25519", "-N", "first pass", "-f", str(path)).returncode == 0
    use_askpass(tmp_path, monkeypatch, old="first pass", new="second pass")
    assert main(["keys", "passphrase", str(path)]) == 0
    assert keygen("-y", "-P", "first pass", "-f", str(path)).returncode != 0
    assert keygen("-y", "-P", "second pass", "-f", str(path)).returncode == 0

    use_askpass(tmp_path, monkeypatch, old="not it", new="third pass")
    capsys.readouterr()
    assert main(["keys", "passphrase", str(path)]) == 1
    assert "incorrect passphrase" in capsys.readouterr().err
    read_private_key(path, b"second pass")


def test_passphrase_without_anyone_to_ask_fails_cleanly(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_key(tmp_path / "key", "ed25519", passphrase=b"pw")
    monkeypatch.setattr("sshtui.prompts.TTY_PATH", str(tmp_path / "no-tty"))
    monkeypatch.setattr("sshtui.prompts.read_tty", lambda *a, **k: None)
    assert main(["keys", "passphrase", str(tmp_path / "key")]) == 1
    err = capsys.readouterr().err
    assert "no passphrase given" in err and err.count("\n") == 1


@needs_keygen
def test_export_prints_the_line_ssh_keygen_derives(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "key"
    assert keygen("-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "exp", "-f", str(path)).returncode == 0
    os.unlink(f"{path}.pub")
    assert main(["keys", "export", str(path)]) == 0
    assert capsys.readouterr().out.strip() == keygen("-y", "-f", str(path)).stdout.strip()


@needs_keygen
@pytest.mark.parametrize("md5", [False, True])
@pytest.mark.parametrize("target", ["private", "pub"])
def test_randomart_output_is_ssh_keygen_lv(
    tmp_path: Path, capsys: Capture, md5: bool, target: str
) -> None:
    path = tmp_path / "key"
    generate_key(path, "ecdsa", 521, "art comment")
    file = str(path) if target == "private" else f"{path}.pub"
    assert main(["keys", "randomart", file, *(["--md5"] if md5 else [])]) == 0
    expected = keygen("-lv", "-E", "md5" if md5 else "sha256", "-f", file).stdout
    assert capsys.readouterr().out == expected


@needs_keygen
def test_list_json_describes_each_key(
    isolated: Path, tmp_path: Path, capsys: Capture
) -> None:
    generate_key(isolated / ".ssh" / "id_ed25519", "ed25519", comment="in ssh dir")
    generate_key(tmp_path / "data" / "sshtui" / "keys" / "app", "rsa", 3072, "in app dir", b"pw")
    (isolated / ".ssh" / "junk").write_text("hello\n")

    assert main(["keys", "list", "--json", "--md5"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)

    by_comment = {key["comment"]: key for key in document["keys"]}
    assert set(by_comment) == {"in ssh dir", "in app dir"}
    for key in document["keys"]:
        pub = f"{key['path']}.pub"
        assert key["fingerprint"] == keygen("-l", "-f", pub).stdout.split()[1]
        assert key["fingerprint_md5"] == keygen("-l", "-E", "md5", "-f", pub).stdout.split()[1]
    assert by_comment["in app dir"]["encrypted"] is True and by_comment["in app dir"]["bits"] == 3072
    assert [s["path"] for s in document["skipped"]] == [str(isolated / ".ssh" / "junk")]
    assert "junk" in captured.err


def test_list_names_the_saved_hosts_using_a_key(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    used = generate_key(isolated / ".ssh" / "id_ed25519", "ed25519", comment="used")
    generate_key(isolated / ".ssh" / "id_ecdsa", "ecdsa", comment="unused")
    hosts = tmp_path / "config" / "sshtui" / "hosts.toml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(
        'version = 1\n\n[hosts.web]\nhostname = "web.example"\nidentity_files = ["~/.ssh/id_ed25519"]\n\n'
        f'[hosts.db]\nhostname = "db.example"\nidentity_files = ["{isolated}/.ssh/id_ed25519.pub"]\n'
    )

    assert main(["keys", "list", "--json"]) == 0
    by_comment = {key["comment"]: key for key in json.loads(capsys.readouterr().out)["keys"]}
    assert by_comment["used"]["used_by"] == ["web", "db"]
    assert by_comment["unused"]["used_by"] == []

    assert main(["keys", "list"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if used.fingerprint in line]
    assert row.endswith("used (used by web, db)")


def test_list_human_output(isolated: Path, capsys: Capture) -> None:
    info = generate_key(isolated / ".ssh" / "id_ed25519", "ed25519", comment="mine")
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if info.fingerprint in line]
    assert "ED25519" in row and "256" in row and row.endswith("mine")


# --- deploy: the remote script, run by a local sh ------------------------------------------------


def run_script(home: Path, blob: bytes, comment: str, target: str = ".ssh/authorized_keys") -> str:
    """Run the exact command line a deploy sends, as a login shell would, with HOME=home."""
    result = subprocess.run(
        ["sh", "-c", deploy_command(target)],
        input=deploy_input(blob, comment),
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd="/",
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def test_script_creates_dot_ssh_private_and_is_idempotent(isolated: Path, tmp_path: Path) -> None:
    info = generate_key(tmp_path / "k", "ed25519")
    assert run_script(isolated, info.public_blob, "first") == "added"
    assert run_script(isolated, info.public_blob, "again, other comment") == "present"
    authorized = isolated / ".ssh" / "authorized_keys"
    assert authorized.read_text() == f"{info.public_line} first\n"
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600
    assert stat.S_IMODE(authorized.parent.stat().st_mode) == 0o700


def test_script_fixes_an_open_dot_ssh_and_keeps_existing_lines(isolated: Path, tmp_path: Path) -> None:
    other = generate_key(tmp_path / "other", "ed25519")
    mine = generate_key(tmp_path / "mine", "ecdsa", 256)
    ssh = isolated / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    authorized = ssh / "authorized_keys"
    # No final newline, and the key only in a commented-out line: neither may confuse the append.
    existing = f"{other.public_line}\n# {mine.public_line}"
    authorized.write_text(existing)
    authorized.chmod(0o644)

    assert run_script(isolated, mine.public_blob, "mine") == "added"

    assert authorized.read_text() == f"{existing}\n{mine.public_line} mine\n"
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600


def test_script_sees_a_key_with_options_as_present(isolated: Path, tmp_path: Path) -> None:
    info = generate_key(tmp_path / "k", "ed25519")
    (isolated / ".ssh").mkdir()
    line = f'from="10.0.0.1",no-pty {info.public_line}\n'
    (isolated / ".ssh" / "authorized_keys").write_text(line)
    assert run_script(isolated, info.public_blob, "x") == "present"
    assert (isolated / ".ssh" / "authorized_keys").read_text() == line


def test_script_never_runs_the_comment(isolated: Path, tmp_path: Path) -> None:
    info = generate_key(tmp_path / "k", "ed25519")
    marker = tmp_path / "pwned"
    comment = f"$(touch {marker}) `touch {marker}` '; touch {marker}; ' \"$HOME\" \\ done"
    assert run_script(isolated, info.public_blob, comment) == "added"
    assert not marker.exists()
    stored = (isolated / ".ssh" / "authorized_keys").read_text().splitlines()
    assert stored == [f"{info.public_line} {comment}"]


def test_a_line_break_in_the_comment_cannot_add_a_second_entry(isolated: Path, tmp_path: Path) -> None:
    info = generate_key(tmp_path / "k", "ed25519")
    other = generate_key(tmp_path / "other", "ed25519")
    assert run_script(isolated, info.public_blob, f"c\n{other.public_line}") == "added"
    lines = (isolated / ".ssh" / "authorized_keys").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(info.public_line)


# --- deploy: against a real sshd -----------------------------------------------------------------


def openssh_login(server: SshdServer, key: Path) -> subprocess.CompletedProcess[str]:
    assert SSH is not None
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run(
        [SSH, "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={server.known_hosts_file}", "-o", "StrictHostKeyChecking=yes",
         "-p", str(server.port), f"{server.user}@{server.host}", "echo logged-in"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


@pytest.mark.skipif(SSH is None, reason="OpenSSH ssh is not installed")
def test_deploy_twice_leaves_one_line_and_the_key_logs_in(
    sshd: SshdServer, tmp_path: Path, capsys: Capture
) -> None:
    new_key = tmp_path / "new_key"
    marker = tmp_path / "pwned"
    info = generate_key(new_key, "ed25519", comment=f"deployed $(touch {marker})")
    assert openssh_login(sshd, new_key).returncode == 255  # not authorized yet
    connection = [
        sshd.host, "-p", str(sshd.port), "-i", str(sshd.client_key),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={sshd.known_hosts_file}", "-o", "StrictHostKeyChecking=yes",
        "--target", str(sshd.authorized_keys),
    ]

    assert main(["keys", "deploy", f"{new_key}.pub", *connection]) == 0
    assert "Added the key" in capsys.readouterr().out
    assert main(["keys", "deploy", str(new_key), *connection]) == 0
    assert "already" in capsys.readouterr().out

    encoded = info.public_line.split()[1]
    lines = [line for line in sshd.authorized_keys.read_text().splitlines() if encoded in line]
    assert lines == [info.public_line]
    assert not marker.exists()
    login = openssh_login(sshd, new_key)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "logged-in"


def test_deploy_to_an_unknown_host_is_refused_in_batch_mode(
    sshd: SshdServer, tmp_path: Path, capsys: Capture
) -> None:
    info = generate_key(tmp_path / "k", "ed25519")
    before = sshd.authorized_keys.read_bytes()
    argv = [
        "keys", "deploy", str(tmp_path / "k"), sshd.host, "-p", str(sshd.port), "-i", str(sshd.client_key),
        "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={tmp_path / 'empty'}",
        "--target", str(sshd.authorized_keys),
    ]
    assert main(argv) == 255
    err = capsys.readouterr().err
    assert err.startswith("sshtui: ") and err.count("\n") == 1 and "host key" in err.lower()
    assert sshd.authorized_keys.read_bytes() == before
    assert info.public_line.split()[1] not in before.decode()
