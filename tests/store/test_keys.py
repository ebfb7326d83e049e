"""Key files on disk: what we generate OpenSSH reads, what OpenSSH generates we read, passphrase
changes, export, and listings that survive odd files."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sshtui.ssh.crypto.hostkeys import parse_openssh_public_line
from sshtui.ssh.crypto.userkeys import PassphraseRequired, WrongPassphrase
from sshtui.store.keyfiles import (
    MAX_KEY_FILE_BYTES,
    KeyFilePermissions,
    private_key_is_encrypted,
    read_private_key,
    read_public_half,
)
from sshtui.store.keys import (
    KeyExists,
    KeyStoreError,
    app_key_dir,
    change_passphrase,
    default_key_dirs,
    export_public_key,
    generate_key,
    inspect_key,
    list_keys,
)

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH ssh-keygen is not installed")

GENERATED = [
    ("ed25519", None, None),
    ("ed25519", None, b"correct horse"),
    ("ecdsa", 256, None),
    ("ecdsa", 384, b"p384 pass"),
    ("ecdsa", 521, None),
    ("rsa", 3072, b"rsa pass"),
]


def keygen(*args: str) -> subprocess.CompletedProcess[str]:
    assert SSH_KEYGEN is not None
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, text=True, check=False)


def openssh_public(path: Path, passphrase: str = "") -> str:
    """``ssh-keygen -y``: the public key line OpenSSH derives from the private key file alone."""
    result = keygen("-y", "-P", passphrase, "-f", str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def openssh_fingerprint(path: Path) -> str:
    result = keygen("-l", "-f", str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- generation ----------------------------------------------------------------------------------


@needs_keygen
@pytest.mark.parametrize(("kind", "bits", "passphrase"), GENERATED)
def test_generated_keys_load_in_ssh_keygen(
    tmp_path: Path, kind: str, bits: int | None, passphrase: bytes | None
) -> None:
    path = tmp_path / f"id_{kind}"
    info = generate_key(path, kind, bits, f"me@{kind}", passphrase)
    pub_line = (tmp_path / f"id_{kind}.pub").read_text().strip()
    (tmp_path / f"id_{kind}.pub").rename(tmp_path / "moved.pub")  # so ssh-keygen reads the private file only

    derived = openssh_public(path, (passphrase or b"").decode())

    assert derived == pub_line == info.public_line
    assert derived.endswith(f" me@{kind}")  # the comment lives in the private key too
    if bits:
        assert keygen("-l", "-f", str(tmp_path / "moved.pub")).stdout.split()[0] == str(bits)
    if passphrase:
        assert keygen("-y", "-P", "wrong", "-f", str(path)).returncode != 0
        assert private_key_is_encrypted(path)
    assert read_private_key(path, passphrase).public_blob == info.public_blob


def test_private_file_is_0600_from_its_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real_write = os.write

    def watching_write(fd: int, data: bytes | memoryview) -> int:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", watching_write)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail("the key file must not need a chmod"))
    old_umask = os.umask(0)  # a permissive umask must not widen the private key
    try:
        generate_key(tmp_path / "key", "ed25519")
    finally:
        os.umask(old_umask)
    assert modes[0] == 0o600
    assert mode_of(tmp_path / "key") == 0o600
    assert mode_of(tmp_path / "key.pub") == 0o644


@pytest.mark.parametrize("existing", ["key", "key.pub"])
def test_never_overwrites(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("precious")
    with pytest.raises(KeyExists, match="already exists"):
        generate_key(tmp_path / "key", "ed25519")
    assert (tmp_path / existing).read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


@pytest.mark.parametrize(
    ("kind", "bits", "message"),
    [
        ("rsa", 2048, "3072"),
        ("rsa", 1024, "3072"),
        ("ecdsa", 300, "256, 384 or 521"),
        ("dsa", None, "unknown"),
    ],
)
def test_weak_or_unknown_keys_are_refused(tmp_path: Path, kind: str, bits: int | None, message: str) -> None:
    with pytest.raises(KeyStoreError, match=message):
        generate_key(tmp_path / "key", kind, bits)
    assert not any(tmp_path.iterdir())


def test_missing_directory_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "id_ed25519"
    generate_key(path, "ed25519")
    assert mode_of(path.parent) == 0o700


# --- passphrases ---------------------------------------------------------------------------------


@needs_keygen
def test_change_passphrase_old_fails_new_works(tmp_path: Path) -> None:
    path = tmp_path / "id_ecdsa"
    generate_key(path, "ecdsa", 256, "keep me", b"old pass")
    path.chmod(0o400)
    os.unlink(f"{path}.pub")

    change_passphrase(path, b"old pass", b"new pass")

    with pytest.raises(WrongPassphrase):
        read_private_key(path, b"old pass")
    read_private_key(path, b"new pass")
    assert keygen("-y", "-P", "old pass", "-f", str(path)).returncode != 0
    assert openssh_public(path, "new pass").endswith(" keep me")
    assert mode_of(path) == 0o400


def test_wrong_old_passphrase_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    generate_key(path, "ed25519", passphrase=b"right")
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        change_passphrase(path, b"wrong", b"new")
    assert path.read_bytes() == before


@needs_keygen
def test_passphrase_of_an_ssh_keygen_key_can_be_removed(tmp_path: Path) -> None:
    path = tmp_path / "id_rsa"
    made = keygen("-q", "-t", "rsa", "-b", "3072", "-N", "theirs", "-C", "made by openssh", "-f", str(path))
    assert made.returncode == 0
    os.unlink(f"{path}.pub")

    change_passphrase(path, b"theirs", None)

    assert not private_key_is_encrypted(path)
    assert openssh_public(path).endswith(" made by openssh")


# --- reading what OpenSSH wrote ------------------------------------------------------------------


@needs_keygen
@pytest.mark.parametrize(
    ("kind", "bits", "passphrase", "pem"),
    [
        ("ed25519", None, "", False),
        ("ecdsa", 384, "secret", False),
        ("ecdsa", 521, "", True),
        ("rsa", 3072, "secret", False),
        ("rsa", 3072, "", True),
    ],
)
def test_ssh_keygen_keys_load_in_ours(
    tmp_path: Path, kind: str, bits: int | None, passphrase: str, pem: bool
) -> None:
    path = tmp_path / "key"
    args = ["-q", "-t", kind, "-N", passphrase, "-C", "theirs", "-f", str(path)]
    args += ["-b", str(bits)] if bits else []
    args += ["-m", "PEM"] if pem else []
    assert keygen(*args).returncode == 0
    expected = openssh_fingerprint(Path(f"{path}.pub"))

    key = read_private_key(path, passphrase.encode() or None)
    info = inspect_key(path)

    assert key.fingerprint == info.fingerprint == expected
    assert info.encrypted is bool(passphrase)
    assert info.comment == "theirs"


@needs_keygen
def test_export_equals_ssh_keygen_y(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert keygen("-q", "-t", "ed25519", "-N", "", "-C", "exported", "-f", str(path)).returncode == 0
    os.unlink(f"{path}.pub")
    assert export_public_key(path) == openssh_public(path)


@needs_keygen
def test_encrypted_pem_without_pub_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert keygen("-q", "-t", "ecdsa", "-m", "PEM", "-N", "pem-pass", "-f", str(path)).returncode == 0
    expected = openssh_fingerprint(Path(f"{path}.pub"))
    os.unlink(f"{path}.pub")
    with pytest.raises(PassphraseRequired):
        export_public_key(path)
    assert inspect_key(path, b"pem-pass").fingerprint == expected


@needs_keygen
@pytest.mark.parametrize("passphrase", ["", "the passphrase"])
def test_public_half_of_an_openssh_key_needs_no_passphrase(tmp_path: Path, passphrase: str) -> None:
    # What ssh(1) offers for a key whose .pub is gone: the public key stored in the clear.
    path = tmp_path / "key"
    assert keygen("-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)).returncode == 0
    expected = parse_openssh_public_line(Path(f"{path}.pub").read_text())[0]
    os.unlink(f"{path}.pub")
    assert read_public_half(path) == expected


@needs_keygen
def test_public_half_of_an_encrypted_pem_key_is_hidden_and_loose_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert keygen("-q", "-t", "ecdsa", "-m", "PEM", "-N", "pem-pass", "-f", str(path)).returncode == 0
    with pytest.raises(PassphraseRequired):
        read_public_half(path)
    path.chmod(0o644)
    with pytest.raises(KeyFilePermissions):
        read_public_half(path)


# --- listing -------------------------------------------------------------------------------------


def test_listing_reports_keys_and_skips_junk_with_a_note(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    plain = generate_key(ssh / "id_ed25519", "ed25519", comment="plain")
    locked = generate_key(ssh / "id_ecdsa", "ecdsa", 384, "locked", b"pw")
    os.unlink(ssh / "id_ecdsa.pub")  # the fingerprint must still be found, without a passphrase
    lone = generate_key(tmp_path / "elsewhere", "ed25519", comment="lone")
    shutil.copy(tmp_path / "elsewhere.pub", ssh / "lone.pub")
    (ssh / "notes.txt").write_text("not a key\n")
    (ssh / "broken.pub").write_text("ssh-ed25519 !!!notbase64\n")
    (ssh / "huge").write_bytes(b"x" * (MAX_KEY_FILE_BYTES + 10))
    (ssh / "known_hosts").write_text("example.org ssh-ed25519 AAAA\n")
    (ssh / "config").write_text("Host *\n")
    (ssh / "sockets").mkdir()
    (ssh / "dangling").symlink_to(ssh / "nowhere")

    listing = list_keys([ssh, tmp_path / "missing"])

    found = {info.path.name: info for info in listing.keys}
    assert set(found) == {"id_ed25519", "id_ecdsa", "lone.pub"}
    assert found["id_ed25519"].fingerprint == plain.fingerprint and found["id_ed25519"].encrypted is False
    assert found["id_ecdsa"].fingerprint == locked.fingerprint and found["id_ecdsa"].encrypted is True
    assert found["id_ecdsa"].comment == ""  # sealed inside the encrypted key
    assert found["lone.pub"].fingerprint == lone.fingerprint and not found["lone.pub"].has_private
    assert found["lone.pub"].comment == "lone"
    assert (found["id_ecdsa"].bits, found["id_ed25519"].label) == (384, "ED25519")
    skipped = {s.path.name: s.reason for s in listing.skipped}
    assert set(skipped) == {"notes.txt", "broken.pub", "huge"}
    assert "larger than" in skipped["huge"]


def test_listing_flags_a_private_key_readable_by_others(tmp_path: Path) -> None:
    generate_key(tmp_path / "id_ed25519", "ed25519")
    (tmp_path / "id_ed25519").chmod(0o644)
    (info,) = list_keys([tmp_path]).keys
    assert any("too open" in note for note in info.notes)


def test_listing_ignores_a_pub_file_that_holds_another_key(tmp_path: Path) -> None:
    real = generate_key(tmp_path / "a", "ed25519", comment="a")
    generate_key(tmp_path / "b", "ed25519", comment="b")
    os.replace(tmp_path / "b.pub", tmp_path / "a.pub")
    os.unlink(tmp_path / "b")
    (info,) = list_keys([tmp_path]).keys
    assert info.fingerprint == real.fingerprint
    assert info.comment == "a" and info.public_path is None
    assert any("different key" in note for note in info.notes)


def test_app_key_directory_follows_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert app_key_dir() == tmp_path / "data" / "sshtui" / "keys"
    generated = generate_key(app_key_dir() / "work", "ed25519")
    home = tmp_path / "home"
    (info,) = list_keys(default_key_dirs(home)).keys
    assert info.fingerprint == generated.fingerprint


def test_public_line_round_trips(tmp_path: Path) -> None:
    info = generate_key(tmp_path / "k", "ecdsa", 521, "a comment with spaces")
    blob, comment = parse_openssh_public_line(export_public_key(tmp_path / "k"))
    assert (blob, comment) == (info.public_blob, "a comment with spaces")
