"""User key files: keys written by OpenSSH's ssh-keygen (and OpenSSL) in every supported format
load, match their ``.pub`` file, and every way a load can fail has its own typed error that names
the file and never the passphrase. Also the on-disk checks of ``sshtui.store.keyfiles``."""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshtui.ssh.crypto.hostkeys import verify_signature
from sshtui.ssh.crypto.userkeys import (
    KeyLoadError,
    MalformedKey,
    PassphraseRequired,
    UnsupportedKeyEncryption,
    UnsupportedKeyType,
    WrongPassphrase,
    is_encrypted,
    load_private_key,
    load_public_key_file,
)
from sshtui.store.keyfiles import (
    DEFAULT_IDENTITY_NAMES,
    KeyFileMissing,
    KeyFilePermissions,
    KeyFileUnreadable,
    default_identity_files,
    read_private_key,
    read_public_key,
)

SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSL = shutil.which("openssl")
needs_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH ssh-keygen is not installed")

PASSPHRASE = b"secret passphrase"
KEY_SPECS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "2048"],
}
OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----\n"
FORMATS = {"openssh": [], "pem": ["-m", "PEM"], "pkcs8": ["-m", "PKCS8"]}


class KeyFactory:
    """Runs ssh-keygen once per distinct key and remembers the file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made: dict[tuple[str, ...], Path] = {}

    def __call__(self, spec: str, fmt: str = "openssh", encrypted: bool = False, *extra: str) -> Path:
        wanted = (spec, fmt, str(encrypted), *extra)
        if wanted not in self.made:
            assert SSH_KEYGEN is not None
            path = self.directory / "_".join(part.replace("@", "-") for part in wanted)
            passphrase = PASSPHRASE.decode() if encrypted else ""
            subprocess.run(
                [SSH_KEYGEN, "-q", *KEY_SPECS[spec], *FORMATS[fmt], "-N", passphrase, "-C", "test key",
                 "-a", "4", *extra, "-f", str(path)],
                check=True, capture_output=True, timeout=60,
            )
            self.made[wanted] = path
        return self.made[wanted]


@pytest.fixture(scope="module")
def keygen(tmp_path_factory: pytest.TempPathFactory) -> KeyFactory:
    if SSH_KEYGEN is None:
        pytest.skip("OpenSSH ssh-keygen is not installed")
    return KeyFactory(tmp_path_factory.mktemp("userkeys"))


def pub_file_blob(path: Path) -> bytes:
    """The key blob of an OpenSSH ``.pub`` line, decoded here without the code under test."""
    return base64.b64decode(Path(f"{path}.pub").read_text().split()[1])


def ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


# --- loading what ssh-keygen writes ------------------------------------------------------------


@needs_keygen
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("spec", list(KEY_SPECS))
def test_ssh_keygen_keys_load_and_match_their_pub_file(
    keygen: KeyFactory, spec: str, fmt: str, encrypted: bool
) -> None:
    path = keygen(spec, fmt, encrypted)
    data = path.read_bytes()
    assert is_encrypted(data) is encrypted
    key = load_private_key(data, PASSPHRASE if encrypted else None, source=str(path))
    assert key.public_blob == pub_file_blob(path)
    algorithm = "rsa-sha2-512" if key.key_type == "ssh-rsa" else key.key_type
    message = b"proof of possession"
    verify_signature(algorithm, key.public_blob, key.sign(algorithm, message), message)


@needs_keygen
@pytest.mark.parametrize("cipher", ["aes256-ctr", "aes256-gcm@openssh.com", "aes256-cbc"])
def test_openssh_key_ciphers_we_can_decrypt(keygen: KeyFactory, cipher: str) -> None:
    path = keygen("ed25519", "openssh", True, "-Z", cipher)
    assert load_private_key(path.read_bytes(), PASSPHRASE).public_blob == pub_file_blob(path)
    with pytest.raises(WrongPassphrase):
        load_private_key(path.read_bytes(), b"not it")


@needs_keygen
def test_a_key_cipher_we_cannot_decrypt_is_named_before_asking_for_a_passphrase(keygen: KeyFactory) -> None:
    path = keygen("ed25519", "openssh", True, "-Z", "chacha20-poly1305@openssh.com")
    for passphrase in (None, PASSPHRASE):
        with pytest.raises(UnsupportedKeyEncryption, match="chacha20-poly1305"):
            load_private_key(path.read_bytes(), passphrase)


@needs_keygen
def test_a_passphrase_for_an_unencrypted_key_is_ignored(keygen: KeyFactory) -> None:
    path = keygen("ed25519")
    assert load_private_key(path.read_bytes(), b"anything").public_blob == pub_file_blob(path)


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_openssl_ed25519_pkcs8(tmp_path: Path, encrypted: bool) -> None:
    assert OPENSSL is not None
    plain = tmp_path / "ed25519.pem"
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", str(plain)], check=True, timeout=60)
    public_der = subprocess.run(
        [OPENSSL, "pkey", "-in", str(plain), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    expected = ssh_string(b"ssh-ed25519") + ssh_string(public_der[-32:])  # RFC 8709 §4
    path = plain
    if encrypted:
        path = tmp_path / "ed25519-encrypted.pem"
        subprocess.run(
            [OPENSSL, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(plain), "-out", str(path),
             "-passout", f"pass:{PASSPHRASE.decode()}"],
            check=True, timeout=60,
        )
    assert is_encrypted(path.read_bytes()) is encrypted
    assert load_private_key(path.read_bytes(), PASSPHRASE if encrypted else None).public_blob == expected


# --- distinct failures -------------------------------------------------------------------------


@needs_keygen
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_missing_and_wrong_passphrases_are_distinct_and_never_echo_the_passphrase(
    keygen: KeyFactory, fmt: str
) -> None:
    path = keygen("ecdsa256", fmt, True)
    data = path.read_bytes()
    with pytest.raises(PassphraseRequired) as missing:
        load_private_key(data, None, source=str(path))
    with pytest.raises(WrongPassphrase) as wrong:
        load_private_key(data, b"Tr0ub4dor&3", source=str(path))
    for error in (missing.value, wrong.value):
        assert str(path) in str(error)
        assert "Tr0ub4dor" not in str(error) and PASSPHRASE.decode() not in str(error)
        assert "Tr0ub4dor" not in repr(error.args)


@needs_keygen
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_files_are_malformed(keygen: KeyFactory, fmt: str) -> None:
    data = keygen("rsa", fmt).read_bytes()
    with pytest.raises(MalformedKey, match="truncated"):
        load_private_key(data[: len(data) // 2], source="half.key")
    # Body lines lost but the END line intact: the structure inside no longer adds up.
    lines = data.splitlines(keepends=True)
    with pytest.raises(MalformedKey):
        load_private_key(b"".join(lines[:3] + lines[-1:]), source="gutted.key")


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "no -----BEGIN"),
        (b"hello, world\n", "no -----BEGIN"),
        (bytes(range(256)), "no -----BEGIN"),
        (OPENSSH_BEGIN + b"!!!!\n" + OPENSSH_END, "base64"),
        (OPENSSH_BEGIN + base64.encodebytes(b"not-an-openssh-key") + OPENSSH_END, "openssh-key-v1"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "CERTIFICATE"),
        (b"PuTTY-User-Key-File-3: ssh-ed25519\n", "PuTTY"),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== me@host\n", "public key"),
    ],
)
def test_garbage_is_malformed(data: bytes, detail: str) -> None:
    with pytest.raises(MalformedKey, match=detail) as caught:
        load_private_key(data, source="junk.key")
    assert str(caught.value).startswith("junk.key: ")


@needs_keygen
def test_unsupported_key_types(keygen: KeyFactory, tmp_path: Path) -> None:
    assert SSH_KEYGEN is not None
    dsa = tmp_path / "id_dsa"
    argv = [SSH_KEYGEN, "-q", "-t", "dsa", "-N", "", "-f", str(dsa)]
    made = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if made.returncode != 0:
        pytest.skip("this ssh-keygen no longer makes DSA keys")
    with pytest.raises(UnsupportedKeyType, match="ssh-dss"):
        load_private_key(dsa.read_bytes(), source=str(dsa))


def test_all_failure_kinds_are_distinct_types() -> None:
    kinds = {PassphraseRequired, WrongPassphrase, UnsupportedKeyType, UnsupportedKeyEncryption, MalformedKey}
    assert len(kinds) == 5
    assert all(issubclass(kind, KeyLoadError) for kind in kinds)
    assert not any(issubclass(a, b) for a in kinds for b in kinds if a is not b)


@needs_keygen
def test_public_key_files_in_openssh_and_rfc4716_form(keygen: KeyFactory, tmp_path: Path) -> None:
    assert SSH_KEYGEN is not None
    path = keygen("ecdsa384")
    blob, comment = load_public_key_file(Path(f"{path}.pub").read_bytes())
    assert (blob, comment) == (pub_file_blob(path), "test key")
    exported = subprocess.run([SSH_KEYGEN, "-e", "-f", f"{path}.pub"], check=True, capture_output=True).stdout
    assert exported.startswith(b"---- BEGIN SSH2 PUBLIC KEY ----")
    assert load_public_key_file(exported)[0] == blob
    with pytest.raises(MalformedKey):
        load_public_key_file(b"ssh-ed25519 not-base64!!\n")
    with pytest.raises(UnsupportedKeyType):
        dss_blob = ssh_string(b"ssh-dss") + ssh_string(b"x")
        load_public_key_file(b"ssh-dss " + base64.b64encode(dss_blob) + b"\n")


@needs_keygen
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_key_files_only_raise_key_load_errors(keygen: KeyFactory, data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(["ed25519", "ecdsa256", "rsa"]))
    fmt = data.draw(st.sampled_from(["openssh", "pem"]))
    text = keygen(spec, fmt).read_bytes()
    lines = text.splitlines()
    body = base64.b64decode(b"".join(line for line in lines[1:-1] if b":" not in line))
    index = data.draw(st.integers(0, len(body) - 1))
    damaged = body[:index] + bytes([data.draw(st.integers(0, 255))]) + body[index + 1 :]
    damaged = damaged[: data.draw(st.integers(index, len(damaged)))]
    rebuilt = lines[0] + b"\n" + base64.encodebytes(damaged) + lines[-1] + b"\n"
    try:
        load_private_key(rebuilt, source="damaged.key")
    except KeyLoadError as error:
        assert str(error).startswith("damaged.key: ")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_key_load_errors(data: bytes) -> None:
    with pytest.raises(KeyLoadError):
        load_private_key(OPENSSH_BEGIN + base64.encodebytes(data) + OPENSSH_END)


# --- key files on disk -------------------------------------------------------------------------


@needs_keygen
@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_private_key_readable_by_others_is_refused(keygen: KeyFactory, tmp_path: Path, mode: int) -> None:
    path = tmp_path / "id_ed25519"
    shutil.copyfile(keygen("ed25519"), path)
    path.chmod(mode)
    with pytest.raises(KeyFilePermissions) as caught:
        read_private_key(path)
    assert str(path) in str(caught.value) and f"{mode:04o}" in str(caught.value)
    path.chmod(0o600)
    assert read_private_key(path).public_blob == pub_file_blob(keygen("ed25519"))


def test_missing_key_file_and_directories(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissing, match="no such key file") as caught:
        read_private_key(tmp_path / "id_nothing")
    assert str(tmp_path / "id_nothing") in str(caught.value)
    with pytest.raises(KeyFileUnreadable):
        read_private_key(tmp_path)


@needs_keygen
def test_loading_errors_from_disk_name_the_path(keygen: KeyFactory) -> None:
    path = keygen("ed25519", "openssh", True)
    with pytest.raises(PassphraseRequired, match=str(path)):
        read_private_key(path)
    with pytest.raises(WrongPassphrase, match=str(path)):
        read_private_key(path, b"nope")
    assert read_private_key(path, PASSPHRASE).public_blob == read_public_key(Path(f"{path}.pub"))[0]


def test_default_identity_files_exist_and_follow_openssh_order(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    assert default_identity_files(tmp_path) == []
    for name in ("id_ed25519", "id_rsa", "id_dsa", "config"):
        (ssh_dir / name).write_bytes(b"")
    assert default_identity_files(tmp_path) == [ssh_dir / "id_rsa", ssh_dir / "id_ed25519"]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH ssh is not installed")
def test_default_identity_order_matches_the_installed_openssh_client() -> None:
    ssh = shutil.which("ssh")
    assert ssh is not None
    out = subprocess.run([ssh, "-G", "-F", "/dev/null", "example.invalid"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    paths = [line.split()[1] for line in out.splitlines() if line.startswith("identityfile ")]
    names = [path.rsplit("/", 1)[-1] for path in paths]
    assert [name for name in names if name in DEFAULT_IDENTITY_NAMES] == list(DEFAULT_IDENTITY_NAMES)
