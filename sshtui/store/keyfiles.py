"""Reading user key files from disk, with OpenSSH's private key permission rule.

Parsing lives in ``sshtui.ssh.crypto.userkeys``; this module only opens files, refuses a private
key that group or others may access (OpenSSH's "UNPROTECTED PRIVATE KEY FILE"), and makes every
error name the path. Loading errors keep their own types (``PassphraseRequired`` and friends),
with the path as their source; both families derive from ``KeyFormatError``.

The OpenSSH container (OpenSSH PROTOCOL.key, ``openssh-key-v1``) keeps the public key in the clear
even when the private part is encrypted, so such a key can be offered before its passphrase is
asked for, as ssh(1) does when the ``.pub`` file is missing.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import KeyFormatError, PrivateKey
from sshtui.ssh.crypto.userkeys import (
    PassphraseRequired,
    is_encrypted,
    load_private_key,
    load_public_key_file,
)
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.wire import WireReader

# Far above any real key file (a 16384-bit RSA key is about 12 KiB).
MAX_KEY_FILE_BYTES = 256 * 1024
# OpenSSH's default IdentityFile order (ssh_config(5)), restricted to the key types we support.
DEFAULT_IDENTITY_NAMES = ("id_rsa", "id_ecdsa", "id_ed25519")
_CHECK_PERMISSIONS = os.name != "nt"
OPENSSH_MAGIC = b"openssh-key-v1\x00"
OPENSSH_PEM_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
OPENSSH_PEM_END = b"-----END OPENSSH PRIVATE KEY-----"
_AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")


class KeyFileError(KeyFormatError):
    """A key file could not be read; ``path`` says which."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class KeyFileMissing(KeyFileError):
    def __init__(self, path: Path) -> None:
        super().__init__(path, "no such key file")


class KeyFilePermissions(KeyFileError):
    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(
            path,
            f"permissions {mode:04o} are too open: a private key must not be accessible by group or"
            " others (chmod 600 it)",
        )
        self.mode = mode


class KeyFileUnreadable(KeyFileError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"cannot read the key file: {reason}")
        self.detail = reason


def _read(path: Path, *, private: bool) -> bytes:
    try:
        # Checking the opened file, not the name, leaves no window to swap the file in between.
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileUnreadable(path, "not a regular file")
            mode = stat.S_IMODE(info.st_mode)
            if private and _CHECK_PERMISSIONS and mode & 0o077:
                raise KeyFilePermissions(path, mode)
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileMissing(path) from None
    except IsADirectoryError:
        raise KeyFileUnreadable(path, "it is a directory") from None
    except OSError as exc:
        raise KeyFileUnreadable(path, exc.strerror or type(exc).__name__) from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileUnreadable(path, f"larger than {MAX_KEY_FILE_BYTES} bytes, so not a key file")
    return data


def read_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Load a private key file. Raises ``KeyFileError`` subclasses for file problems and the
    ``userkeys`` loading errors (``PassphraseRequired``, ``WrongPassphrase``, ...) naming ``path``."""
    return load_private_key(_read(path, private=True), passphrase, source=str(path))


def read_public_key(path: Path) -> tuple[bytes, str]:
    """The blob and comment of a ``.pub`` file, so a key can be offered before it is decrypted."""
    return load_public_key_file(_read(path, private=False), source=str(path))


def read_public_half(path: Path) -> bytes:
    """The public key blob of a private key file, without its passphrase when the format allows:
    an OpenSSH key shows it in the clear. Raises ``PassphraseRequired`` for an encrypted PEM or
    PKCS#8 key, which hides it too, and the other loading errors like ``read_private_key``."""
    data = _read(path, private=True)
    if not is_encrypted(data, source=str(path)):  # also refuses what we could never decrypt
        return load_private_key(data, source=str(path)).public_blob
    der = openssh_der(data)
    if der is None:
        raise PassphraseRequired(str(path))
    try:
        return parse_openssh_container(der).public_blob
    except DecodeError as exc:
        raise KeyFileError(path, exc.message) from None


def private_key_is_encrypted(path: Path) -> bool:
    """Whether ``read_private_key`` will need a passphrase for this file."""
    return is_encrypted(_read(path, private=True), source=str(path))


def default_identity_files(home: Path) -> list[Path]:
    """The default identities under ``home/.ssh`` that exist, in the order OpenSSH tries them."""
    ssh_dir = home / ".ssh"
    return [ssh_dir / name for name in DEFAULT_IDENTITY_NAMES if (ssh_dir / name).is_file()]


# --- the OpenSSH private key container (PROTOCOL.key) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenSSHContainer:
    cipher: str
    kdf: str
    kdf_options: bytes
    public_blob: bytes
    private_section: bytes = field(repr=False)


def openssh_der(data: bytes) -> bytes | None:
    """The bytes inside an ``OPENSSH PRIVATE KEY`` block; None when ``data`` holds none."""
    start = data.find(OPENSSH_PEM_BEGIN)
    end = data.find(OPENSSH_PEM_END, start + 1)
    if start < 0 or end < 0:
        return None
    try:
        return base64.b64decode(b"".join(data[start + len(OPENSSH_PEM_BEGIN) : end].split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_openssh_container(der: bytes) -> OpenSSHContainer:
    """The fields of an ``openssh-key-v1`` container; raises ``DecodeError``."""
    r = WireReader(der, "OpenSSH private key")
    if r.fixed(len(OPENSSH_MAGIC), "magic") != OPENSSH_MAGIC:
        raise DecodeError("OpenSSH private key: no openssh-key-v1 magic")
    cipher, kdf, kdf_options = r.ascii("cipher name"), r.ascii("KDF name"), r.string("KDF options")
    if r.uint32("number of keys") != 1:
        raise DecodeError("OpenSSH private key: exactly one key per file is supported")
    public_blob = r.string("public key")
    private_section = r.string("private section")
    r.fixed(16 if cipher in _AEAD_CIPHERS else 0, "authentication tag")
    r.check_end()
    return OpenSSHContainer(cipher, kdf, kdf_options, public_blob, private_section)
