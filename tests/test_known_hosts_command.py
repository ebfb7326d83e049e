"""``sshtui known-hosts ...`` against a real sshd: learn a host key, check it (trusted, unknown,
changed), list and remove entries, with OpenSSH's ssh-keygen as the judge of fingerprints."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sshtui.cli import main
from sshtui.ssh.crypto.hostkeys import parse_openssh_public_line
from sshtui.store.known_hosts import KnownHosts
from tests.sshd_fixture import SshdServer

SSH_KEYGEN = shutil.which("ssh-keygen")
Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSHTUI_ASKPASS", raising=False)
    return home


def name_of(server: SshdServer) -> str:
    return f"[{server.host}]:{server.port}"


def host_blobs(server: SshdServer) -> dict[bytes, str]:
    """Each host key blob of the server, with ssh-keygen's fingerprint of it."""
    assert SSH_KEYGEN is not None
    found = {}
    for path in server.host_key_paths.values():
        blob, _ = parse_openssh_public_line(Path(f"{path}.pub").read_text())
        command = [SSH_KEYGEN, "-l", "-f", f"{path}.pub"]
        listed = subprocess.run(command, capture_output=True, text=True, check=True)
        found[blob] = listed.stdout.split()[1]
    return found


def test_learn_then_check_is_trusted(sshd: SshdServer, tmp_path: Path, capsys: Capture) -> None:
    known = tmp_path / "known_hosts"

    assert main(["known-hosts", "learn", name_of(sshd), "-f", str(known)]) == 0
    out = capsys.readouterr().out

    (entry,) = KnownHosts.load([known]).entries
    fingerprints = host_blobs(sshd)
    assert entry.key_blob in fingerprints  # the server's own key, nothing else
    assert fingerprints[entry.key_blob] in out and "Added" in out
    assert entry.matches(sshd.host, sshd.port)

    assert main(["known-hosts", "check", name_of(sshd), "-f", str(known)]) == 0
    out = capsys.readouterr().out
    assert "TRUSTED" in out and f"{known}:1" in out and fingerprints[entry.key_blob] in out

    assert main(["known-hosts", "learn", name_of(sshd), "-f", str(known)]) == 0
    assert "Already known" in capsys.readouterr().out
    assert len(KnownHosts.load([known]).entries) == 1


def test_learn_hashed(sshd: SshdServer, tmp_path: Path, capsys: Capture) -> None:
    known = tmp_path / "known_hosts"
    assert main(["known-hosts", "learn", f"{sshd.host}:{sshd.port}", "-f", str(known), "--hash"]) == 0
    assert known.read_text().startswith("|1|") and sshd.host not in known.read_text()
    assert main(["known-hosts", "check", f"{sshd.host}:{sshd.port}", "-f", str(known)]) == 0


def test_check_unknown_host(sshd: SshdServer, tmp_path: Path, capsys: Capture) -> None:
    empty = tmp_path / "known_hosts"
    assert main(["known-hosts", "check", name_of(sshd), "-f", str(empty), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "unknown" and report["port"] == sshd.port
    assert report["fingerprint"] in host_blobs(sshd).values()
    assert not empty.exists()  # checking never writes


def test_check_changed_key_names_the_offending_line(
    sshd: SshdServer, tmp_path: Path, capsys: Capture
) -> None:
    known = tmp_path / "known_hosts"
    impostor = Path(f"{sshd.client_key}.pub").read_text().split()[:2]  # an ed25519 key that is not the host's
    known.write_text(f"# header\n{name_of(sshd)} {' '.join(impostor)}\n")

    assert main(["known-hosts", "check", name_of(sshd), "-f", str(known)]) == 2
    out = capsys.readouterr().out
    assert "CHANGED" in out and f"{known}:2" in out

    assert main(["known-hosts", "check", name_of(sshd), "-f", str(known), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "changed" and report["key_type"] == "ssh-ed25519"
    assert [c["line"] for c in report["conflicts"]] == [2]

    before = known.read_bytes()
    assert main(["known-hosts", "learn", name_of(sshd), "-f", str(known)]) == 2
    assert "changed" in capsys.readouterr().err
    assert known.read_bytes() == before


def test_remove_then_check_is_unknown(sshd: SshdServer, tmp_path: Path, capsys: Capture) -> None:
    known = tmp_path / "known_hosts"
    other = "other.example ssh-ed25519 " + Path(f"{sshd.client_key}.pub").read_text().split()[1]
    known.write_text(sshd.known_hosts_line() + "\n" + other + "\n")
    before = known.read_text()

    assert main(["known-hosts", "remove", name_of(sshd), "-f", str(known)]) == 0
    assert "Removed 3 entries" in capsys.readouterr().out
    assert known.read_text() == other + "\n"
    assert Path(f"{known}.old").read_text() == before

    assert main(["known-hosts", "check", name_of(sshd), "-f", str(known)]) == 1
    assert main(["known-hosts", "remove", name_of(sshd), "-f", str(known)]) == 1
    assert "no entries" in capsys.readouterr().err


def test_list_shows_every_entry(sshd: SshdServer, tmp_path: Path, capsys: Capture) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line() + "\nnot a valid line\n")

    assert main(["known-hosts", "list", "-f", str(known), "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert {e["fingerprint"] for e in document["entries"]} == set(host_blobs(sshd).values())
    assert {e["hosts"] for e in document["entries"]} == {name_of(sshd)}
    assert [w.split(": ", 1)[0] for w in document["warnings"]] == [f"{known}:4"]
    assert f"{known}:4" in captured.err

    assert main(["known-hosts", "list", "-f", str(known)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(name_of(sshd) in line for line in lines)


def test_list_defaults_to_the_users_files(isolated: Path, capsys: Capture) -> None:
    (isolated / ".ssh").mkdir()
    (isolated / ".ssh" / "known_hosts2").write_text(
        "example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    assert main(["known-hosts", "list"]) == 0
    out = capsys.readouterr().out
    assert "example.org" in out and "known_hosts2:1" in out


def test_check_connection_refused_is_one_line(tmp_path: Path, capsys: Capture) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["known-hosts", "check", f"127.0.0.1:{port}", "-f", str(tmp_path / "kh")]) == 255
    err = capsys.readouterr().err
    assert err.startswith("sshtui: ") and err.count("\n") == 1 and str(port) in err
