"""known_hosts files as OpenSSH reads and writes them (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").

Interop: files we write are searched with ``ssh-keygen -F`` and used by the real ``ssh`` client; files
written by ``ssh-keygen -H``, ``ssh-keyscan`` and ``ssh`` itself are read by us; ``ssh-keygen -R`` and
our ``remove`` must leave byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.crypto.hostkeys import PrivateKey, fingerprint_sha256
from sshtui.store.known_hosts import KnownHosts
from sshtui.store.known_hosts_edit import add, entry_line, remove
from sshtui.store.known_hosts_format import KnownHostsError, host_lookup_name, split_host_port
from tests.sshd_fixture import SshdServer, ssh_client_binary

SSH_KEYGEN = shutil.which("ssh-keygen")
SSH_KEYSCAN = shutil.which("ssh-keyscan")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH ssh-keygen not installed")

ED_A = PrivateKey.generate("ed25519").public_blob
ED_B = PrivateKey.generate("ed25519").public_blob
ED_C = PrivateKey.generate("ed25519").public_blob
EC_A = PrivateKey.generate("ecdsa").public_blob


def b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def key_text(blob: bytes) -> str:
    key_type = "ssh-ed25519" if blob in (ED_A, ED_B, ED_C) else "ecdsa-sha2-nistp256"
    return f"{key_type} {b64(blob)}"


def hashed_name(name: str, salt: bytes) -> str:
    """The hashed host field, computed here from the format's definition (HMAC-SHA1 keyed by the salt)."""
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{b64(salt)}|{b64(digest)}"


def load_text(tmp_path: Path, text: str, name: str = "known_hosts") -> tuple[KnownHosts, Path]:
    path = tmp_path / name
    path.write_text(text)
    return KnownHosts.load([path]), path


# --- matching ----------------------------------------------------------------------------------


def test_plain_entry_is_trusted_with_its_location(tmp_path: Path) -> None:
    known, path = load_text(tmp_path, f"# my hosts\n\nalpha,beta {key_text(ED_A)} comment here\n")
    decision = known.check("beta", 22, ED_A)
    assert decision.status == "trusted"
    assert decision.matched is not None
    assert decision.matched.location == f"{path}:3"
    assert decision.matched.comment == "comment here"
    assert decision.fingerprint == fingerprint_sha256(ED_A)
    assert known.warnings == ()


def test_wildcards_and_negation(tmp_path: Path) -> None:
    known, _ = load_text(
        tmp_path, f"*.example.com,!bad.example.com {key_text(ED_A)}\nhost?.lan {key_text(ED_B)}\n"
    )
    assert known.check("www.example.com", 22, ED_A).status == "trusted"
    assert known.check("a.b.example.com", 22, ED_A).status == "trusted"
    assert known.check("bad.example.com", 22, ED_A).status == "unknown"
    assert known.check("example.com", 22, ED_A).status == "unknown"
    assert known.check("host1.lan", 22, ED_B).status == "trusted"
    assert known.check("host12.lan", 22, ED_B).status == "unknown"


def test_negation_alone_matches_nothing(tmp_path: Path) -> None:
    known, _ = load_text(tmp_path, f"!bad.example.com {key_text(ED_A)}\n")
    assert known.check("good.example.com", 22, ED_A).status == "unknown"


def test_non_standard_ports_use_the_bracketed_form(tmp_path: Path) -> None:
    known, _ = load_text(
        tmp_path,
        f"[server]:2222 {key_text(ED_A)}\nserver {key_text(ED_B)}\n[*.lan]:2200 {key_text(ED_C)}\n",
    )
    assert known.check("server", 2222, ED_A).status == "trusted"
    assert known.check("server", 22, ED_B).status == "trusted"
    # Port 22 and other ports are separate identities, as in OpenSSH.
    assert known.check("server", 22, ED_A).status == "changed"
    assert known.check("server", 2223, ED_A).status == "unknown"
    assert known.check("box.lan", 2200, ED_C).status == "trusted"
    assert known.check("box.lan", 22, ED_C).status == "unknown"


def test_host_names_match_case_insensitively(tmp_path: Path) -> None:
    known, _ = load_text(tmp_path, f"Server.Example.COM {key_text(ED_A)}\n")
    assert known.check("SERVER.example.com", 22, ED_A).status == "trusted"


def test_hashed_entries_match_the_name_and_the_port_form(tmp_path: Path) -> None:
    text = (
        f"{hashed_name('secret.example', b's' * 20)} {key_text(ED_A)}\n"
        f"{hashed_name('[secret.example]:2022', b't' * 20)} {key_text(ED_B)}\n"
    )
    known, _ = load_text(tmp_path, text)
    assert known.check("secret.example", 22, ED_A).status == "trusted"
    assert known.check("Secret.Example", 22, ED_A).status == "trusted"
    assert known.check("secret.example", 2022, ED_B).status == "trusted"
    assert known.check("other.example", 22, ED_A).status == "unknown"
    assert known.check("secret.example", 2022, ED_A).status == "changed"
    [entry] = known.entries_for("secret.example", 22)
    assert entry.hosts.hashed


def test_split_host_port_reads_the_bracketed_form() -> None:
    assert split_host_port("[db.lan]:2222") == ("db.lan", 2222)
    assert split_host_port("[::1]:2200") == ("::1", 2200)
    assert split_host_port("db.lan") == ("db.lan", 22)
    assert host_lookup_name("DB.lan", 2222) == "[db.lan]:2222"
    with pytest.raises(KnownHostsError, match="out of range"):
        split_host_port("[db.lan]:99999")


# --- markers and decisions ---------------------------------------------------------------------


def test_revoked_keys_are_revoked_for_every_host(tmp_path: Path) -> None:
    known, path = load_text(
        tmp_path, f"server {key_text(ED_A)}\n@revoked unrelated.example {key_text(ED_A)}\n"
    )
    decision = known.check("server", 22, ED_A)
    assert decision.status == "revoked"
    assert decision.matched is not None
    assert decision.matched.location == f"{path}:2"
    assert known.check("anything.else", 2222, ED_A).status == "revoked"


def test_cert_authority_lines_do_not_vouch_for_plain_keys(tmp_path: Path) -> None:
    known, _ = load_text(tmp_path, f"@cert-authority *.example.com {key_text(ED_A)}\n")
    assert known.check("www.example.com", 22, ED_A).status == "unknown"
    assert known.known_key_types("www.example.com", 22) == set()
    [entry] = known.entries_for("www.example.com", 22)
    assert entry.marker == "@cert-authority"


def test_changed_lists_every_conflicting_line_in_every_file(tmp_path: Path) -> None:
    user = tmp_path / "known_hosts"
    system = tmp_path / "ssh_known_hosts"
    user.write_text(f"server {key_text(ED_B)}\nserver {key_text(EC_A)}\nother {key_text(ED_A)}\n")
    system.write_text(f"# global\n*.lan,server {key_text(ED_C)}\n")
    decision = KnownHosts.load([user, system]).check("server", 22, ED_A)
    assert decision.status == "changed"
    assert [(e.location, e.key_type, e.fingerprint) for e in decision.conflicts] == [
        (f"{user}:1", "ssh-ed25519", fingerprint_sha256(ED_B)),
        (f"{system}:2", "ssh-ed25519", fingerprint_sha256(ED_C)),
    ]
    assert [e.location for e in decision.other_types] == [f"{user}:2"]


def test_a_host_known_only_by_other_key_types_is_unknown_but_says_so(tmp_path: Path) -> None:
    known, path = load_text(tmp_path, f"server {key_text(EC_A)}\n")
    decision = known.check("server", 22, ED_A)
    assert decision.status == "unknown"
    assert decision.known_types == {"ecdsa-sha2-nistp256"}
    assert [e.location for e in decision.other_types] == [f"{path}:1"]


def test_a_matching_key_wins_over_an_older_conflicting_line(tmp_path: Path) -> None:
    known, path = load_text(tmp_path, f"server {key_text(ED_B)}\nserver {key_text(ED_A)}\n")
    decision = known.check("server", 22, ED_A)
    assert decision.status == "trusted"
    assert decision.matched is not None and decision.matched.location == f"{path}:2"


def test_known_key_types_per_host_and_port(tmp_path: Path) -> None:
    known, _ = load_text(
        tmp_path,
        f"server {key_text(ED_A)}\nserver {key_text(EC_A)}\n[server]:2222 {key_text(ED_B)}\n"
        f"@revoked server {key_text(ED_C)}\n",
    )
    assert known.known_key_types("server", 22) == {"ssh-ed25519", "ecdsa-sha2-nistp256"}
    assert known.known_key_types("server", 2222) == {"ssh-ed25519"}
    assert known.known_key_types("nobody", 22) == set()


def test_files_are_read_in_order_and_missing_ones_are_fine(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.write_text(f"server {key_text(ED_A)}\n")
    known = KnownHosts.load([tmp_path / "missing", present, tmp_path / "nope" / "missing"])
    assert known.check("server", 22, ED_A).status == "trusted"
    assert known.warnings == ()


def test_an_unreadable_file_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    directory = tmp_path / "a_directory"
    directory.mkdir()
    known = KnownHosts.load([directory])
    assert known.entries == ()
    [warning] = known.warnings
    assert str(directory) in str(warning)


# --- invalid lines -----------------------------------------------------------------------------


def test_invalid_lines_are_warnings_naming_file_and_line(tmp_path: Path) -> None:
    lines = [
        f"good {key_text(ED_A)}",
        "badb64 ssh-ed25519 AAAA!!!notbase64",
        "lonelyhost",
        "halfline ssh-ed25519",
        f"@trusted host {key_text(ED_B)}",
        f"host foo-key {b64(ED_B)}",
        f"mismatch ecdsa-sha2-nistp256 {b64(ED_B)}",
        f"|1|notsalt|nothash {key_text(ED_B)}",
        f"|2|{b64(b'x' * 20)}|{b64(b'y' * 20)} {key_text(ED_B)}",
        "rsa1host 1024 35 12345678901234567890",
        f"also-good {key_text(ED_C)}",
    ]
    known, path = load_text(tmp_path, "\n".join(lines) + "\n")
    assert [e.line_number for e in known.entries] == [1, 11]
    by_line = {w.line_number: str(w) for w in known.warnings}
    assert sorted(by_line) == list(range(2, 11))
    for number, text in by_line.items():
        assert text.startswith(f"{path}:{number}: ")
    assert "base64" in by_line[2]
    assert "missing key type" in by_line[3]
    assert "missing key data" in by_line[4]
    assert "unknown marker" in by_line[5]
    assert "unknown key type" in by_line[6]
    assert "ecdsa-sha2-nistp256" in by_line[7] and "ssh-ed25519" in by_line[7]
    assert "hashed host name" in by_line[8] or "base64" in by_line[8]
    assert "hashed host name" in by_line[9]
    assert "protocol 1" in by_line[10]


def test_crlf_line_endings_and_indentation_are_tolerated(tmp_path: Path) -> None:
    known, _ = load_text(tmp_path, f"  \tserver {key_text(ED_A)}\r\n\t# indented comment\r\n")
    assert known.check("server", 22, ED_A).status == "trusted"
    assert known.warnings == ()


line_parts = st.sampled_from(
    [
        "@revoked",
        "@cert-authority",
        "@",
        "#",
        "|1|",
        "|",
        "!",
        "*",
        "?",
        ",",
        "[h]:22",
        "host",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "sk-x",
        "AAAA",
        b64(ED_A),
        b64(ED_A)[:20],
        " ",
        "\t",
        "\r",
        "=",
        "é",
        "\x00",
    ]
)


@given(st.lists(st.one_of(st.text(max_size=40), st.lists(line_parts, max_size=8).map("".join)), max_size=12))
def test_random_lines_never_crash_the_parser(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    known = KnownHosts.parse(data, Path("random"))
    total = len(data.split(b"\n"))
    for warning in known.warnings:
        assert 1 <= warning.line_number <= total
        assert str(warning).startswith(f"random:{warning.line_number}: ")
    for entry in known.entries:
        assert 1 <= entry.line_number <= total
    assert known.check("host", 22, ED_A).status in ("trusted", "unknown", "changed", "revoked")


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    known = KnownHosts.parse(data, Path("bytes"))
    assert len(known.entries) + len(known.warnings) <= data.count(b"\n") + 1


# --- writing -----------------------------------------------------------------------------------


def test_added_entries_are_trusted_next_time(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    add(path, "Plain.Example", 22, ED_A, hashed=False)
    add(path, "hashed.example", 22, ED_B, hashed=True)
    add(path, "ported.example", 2222, ED_C, hashed=False)
    add(path, "both.example", 2200, EC_A, hashed=True)
    text = path.read_text()
    assert text.splitlines()[0] == f"plain.example {key_text(ED_A)}"
    assert text.splitlines()[2] == f"[ported.example]:2222 {key_text(ED_C)}"
    assert "hashed.example" not in text and "both.example" not in text
    known = KnownHosts.load([path])
    assert known.warnings == ()
    assert known.check("plain.example", 22, ED_A).status == "trusted"
    assert known.check("hashed.example", 22, ED_B).status == "trusted"
    assert known.check("ported.example", 2222, ED_C).status == "trusted"
    assert known.check("both.example", 2200, EC_A).status == "trusted"
    assert known.check("both.example", 22, EC_A).status == "unknown"


def test_hashed_line_uses_a_fresh_20_byte_salt() -> None:
    salt1, salt2 = b"\x01" * 20, b"\x02" * 20
    salts = iter([salt1, salt2])
    requested: list[int] = []

    def rng(size: int) -> bytes:
        requested.append(size)
        return next(salts)

    first = entry_line("host", 2222, ED_A, hashed=True, rng=rng)
    second = entry_line("host", 2222, ED_A, hashed=True, rng=rng)
    assert requested == [20, 20]
    assert first == f"{hashed_name('[host]:2222', salt1)} {key_text(ED_A)}"
    assert second.split()[0] == hashed_name("[host]:2222", salt2)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_add_creates_a_private_file_in_a_private_directory(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "home" / ".ssh" / "known_hosts"
        add(path, "server", 22, ED_A, hashed=False)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_add_keeps_every_existing_byte(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    original = b"# hand-edited\r\n\n   \nold " + key_text(ED_B).encode() + b" no newline"
    path.write_bytes(original)
    add(path, "new", 22, ED_A, hashed=False)
    assert path.read_bytes() == original + b"\nnew " + key_text(ED_A).encode() + b"\n"


@pytest.mark.parametrize("host", ["", "two words", "a,b", "*.lan", "!neg", "#x", "@revoked", "|1|x", "[x]:1"])
def test_host_names_that_would_corrupt_the_file_are_refused(tmp_path: Path, host: str) -> None:
    path = tmp_path / "known_hosts"
    with pytest.raises(KnownHostsError, match="host name"):
        add(path, host, 22, ED_A, hashed=False)
    assert not path.exists()


def test_remove_drops_whole_lines_keeps_the_rest_and_a_backup(tmp_path: Path) -> None:
    original = (
        "# header\n"
        "\n"
        f"target,alias {key_text(ED_A)}\n"
        f"keep {key_text(ED_B)}\n"
        f"{hashed_name('target', b'q' * 20)} {key_text(EC_A)}\n"
        f"[target]:2222 {key_text(ED_C)}\n"
        f"@revoked target {key_text(ED_C)}\n"
        "   # trailing comment\n"
    )
    path = tmp_path / "known_hosts"
    path.write_text(original)
    assert remove(path, "target", 22) == 2
    assert path.read_text() == (
        "# header\n"
        "\n"
        f"keep {key_text(ED_B)}\n"
        f"[target]:2222 {key_text(ED_C)}\n"
        f"@revoked target {key_text(ED_C)}\n"
        "   # trailing comment\n"
    )
    assert (tmp_path / "known_hosts.old").read_text() == original
    assert remove(path, "target", 2222) == 1
    assert KnownHosts.load([path]).known_key_types("target", 2222) == set()


def test_remove_without_a_match_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(b"keep " + key_text(ED_B).encode())
    assert remove(path, "absent", 22) == 0
    assert path.read_bytes() == b"keep " + key_text(ED_B).encode()
    assert not (tmp_path / "known_hosts.old").exists()
    assert remove(tmp_path / "missing", "absent", 22) == 0


# --- interop with OpenSSH's tools ----------------------------------------------------------------


def keygen(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert SSH_KEYGEN is not None
    return subprocess.run(
        [SSH_KEYGEN, *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


def found_lines(name: str, path: Path) -> list[int]:
    """Line numbers ``ssh-keygen -F`` reports for a name (it exits 1 when there are none)."""
    result = keygen("-F", name, "-f", path)
    numbers = [
        int(line.split("line ")[1].split()[0])
        for line in result.stdout.splitlines()
        if " found: line " in line
    ]
    assert (result.returncode == 0) == bool(numbers), result.stderr
    return numbers


@needs_ssh_keygen
def test_ssh_keygen_finds_the_entries_we_write(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("# first line is a comment\n")
    add(path, "plain.example", 22, ED_A, hashed=False)
    add(path, "hashed.example", 22, ED_B, hashed=True)
    add(path, "ported.example", 2222, ED_C, hashed=False)
    add(path, "hashedport.example", 2200, EC_A, hashed=True)
    assert found_lines("plain.example", path) == [2]
    assert found_lines("hashed.example", path) == [3]
    assert found_lines("[ported.example]:2222", path) == [4]
    assert found_lines("[hashedport.example]:2200", path) == [5]
    assert found_lines("ported.example", path) == []
    assert found_lines("hashedport.example", path) == []


@needs_ssh_keygen
def test_we_read_files_hashed_by_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(
        f"alpha.example,beta.example {key_text(ED_A)}\n[gamma.example]:2222 {key_text(ED_B)}\n"
        f"10.1.2.3 {key_text(EC_A)}\n"
    )
    result = keygen("-H", "-f", path)
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert "example" not in text and "10.1.2.3" not in text
    known = KnownHosts.load([path])
    assert known.warnings == ()
    assert all(entry.hosts.hashed for entry in known.entries)
    assert known.check("alpha.example", 22, ED_A).status == "trusted"
    assert known.check("beta.example", 22, ED_A).status == "trusted"
    assert known.check("gamma.example", 2222, ED_B).status == "trusted"
    assert known.check("10.1.2.3", 22, EC_A).status == "trusted"
    assert known.check("gamma.example", 22, ED_B).status == "unknown"


@needs_ssh_keygen
def test_we_read_keys_exported_by_ssh_keygen(tmp_path: Path) -> None:
    # ssh-keyscan prints "host <public key line>"; build the same from keys OpenSSH generated itself.
    lines = []
    blobs = {}
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = tmp_path / f"id_{kind}"
        assert keygen("-q", "-t", kind, "-N", "", "-f", key).returncode == 0
        public = (tmp_path / f"id_{kind}.pub").read_text().split()
        blobs[kind] = base64.b64decode(public[1])
        lines.append(f"[scan.example]:2022 {public[0]} {public[1]}")
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    known = KnownHosts.load([path])
    assert known.known_key_types("scan.example", 2022) == {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}
    for blob in blobs.values():
        assert known.check("scan.example", 2022, blob).status == "trusted"


def removal_fixture(directory: Path) -> bytes:
    lines = [
        "# personal known hosts",
        "",
        f"target {key_text(ED_A)}",
        f"other {key_text(ED_B)}",
        "   # indented comment",
        f"target,alias {key_text(EC_A)} added by hand",
        f"[target]:2222 {key_text(ED_A)}",
        f"{hashed_name('target', b'k' * 20)} {key_text(ED_C)}",
        f"{hashed_name('[target]:2222', b'm' * 20)} {key_text(ED_C)}",
        f"@revoked target {key_text(ED_B)}",
        f"@cert-authority *.example.com {key_text(ED_B)}",
        f"*.example.com,!bad.example.com {key_text(ED_C)}",
        "\t",
        f"last {key_text(ED_A)}",
    ]
    # No newline at the end: both tools must agree on how the last kept line ends.
    return "\n".join(lines).encode()


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("host", "port"),
    [("target", 22), ("target", 2222), ("x.example.com", 22), ("bad.example.com", 22), ("last", 22)],
)
def test_remove_matches_ssh_keygen_byte_for_byte(tmp_path: Path, host: str, port: int) -> None:
    ours = tmp_path / "ours" / "known_hosts"
    theirs = tmp_path / "theirs" / "known_hosts"
    for path in (ours, theirs):
        path.parent.mkdir()
        path.write_bytes(removal_fixture(tmp_path))
    count = remove(ours, host, port)
    result = keygen("-R", host_lookup_name(host, port), "-f", theirs)
    assert result.returncode == 0, result.stderr
    assert ours.read_bytes() == theirs.read_bytes()
    assert count == result.stdout.count(" found: line ")
    old = Path(f"{theirs}.old")
    assert Path(f"{ours}.old").exists() == old.exists()
    if old.exists():
        assert Path(f"{ours}.old").read_bytes() == old.read_bytes()


# --- interop with a real OpenSSH server and client -----------------------------------------------


needs_ssh_client = pytest.mark.skipif(
    ssh_client_binary() is None, reason="OpenSSH client `ssh` not installed"
)


def run_ssh(server: SshdServer, known_hosts: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "ConnectTimeout=10",
        "-i",
        str(server.client_key),
        "-p",
        str(server.port),
        "-l",
        server.user,
        *options,
        server.host,
        "true",
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def server_blobs(server: SshdServer) -> dict[str, bytes]:
    return {kind: base64.b64decode(line.split()[1]) for kind, line in server.host_public_keys.items()}


@needs_ssh_client
@pytest.mark.parametrize("hashed", [False, True])
def test_the_openssh_client_trusts_the_entries_we_write(
    sshd_module: SshdServer, tmp_path: Path, hashed: bool
) -> None:
    path = tmp_path / "known_hosts"
    for blob in server_blobs(sshd_module).values():
        add(path, sshd_module.host, sshd_module.port, blob, hashed=hashed)
    result = run_ssh(sshd_module, path, "-o", "StrictHostKeyChecking=yes")
    assert result.returncode == 0, result.stderr


@needs_ssh_client
def test_the_openssh_client_refuses_a_changed_key_we_recorded(
    sshd_module: SshdServer, tmp_path: Path
) -> None:
    path = tmp_path / "known_hosts"
    add(path, sshd_module.host, sshd_module.port, ED_A, hashed=False)
    result = run_ssh(
        sshd_module, path, "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlgorithms=ssh-ed25519"
    )
    assert result.returncode != 0
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr


@needs_ssh_client
def test_we_trust_what_the_openssh_client_learned(sshd_module: SshdServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    result = run_ssh(
        sshd_module,
        path,
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "HashKnownHosts=yes",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
    )
    assert result.returncode == 0, result.stderr
    known = KnownHosts.load([path])
    decision = known.check(sshd_module.host, sshd_module.port, server_blobs(sshd_module)["ed25519"])
    assert decision.status == "trusted"
    assert decision.matched is not None and decision.matched.hosts.hashed


@pytest.mark.skipif(SSH_KEYSCAN is None, reason="OpenSSH ssh-keyscan not installed")
@pytest.mark.parametrize("hashed", [False, True])
def test_we_read_what_ssh_keyscan_prints(sshd_module: SshdServer, tmp_path: Path, hashed: bool) -> None:
    assert SSH_KEYSCAN is not None
    argv = [
        SSH_KEYSCAN,
        "-T",
        "10",
        "-p",
        str(sshd_module.port),
        *(["-H"] if hashed else []),
        sshd_module.host,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    path = tmp_path / "known_hosts"
    path.write_text(result.stdout)
    known = KnownHosts.load([path])
    assert known.warnings == ()
    for kind, blob in server_blobs(sshd_module).items():
        assert known.check(sshd_module.host, sshd_module.port, blob).status == "trusted", kind
