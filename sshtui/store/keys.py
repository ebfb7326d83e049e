"""The user's key files: listing, generating, changing passphrases, exporting public keys.

Private keys are written in the OpenSSH format (OpenSSH PROTOCOL.key: ``openssh-key-v1``, bcrypt KDF
with 16 rounds and aes256-ctr when a passphrase is set), as ``ssh-keygen`` writes them, comment
included, with the ``.pub`` line (RFC 4253 §6.6 key blob, base64) beside the private file. The key
arithmetic is the ``cryptography`` package's; this module only wraps its output in the container,
so that the comment survives (the library always writes an empty one).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import os
import socket
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sshtui.ssh.crypto.hostkeys import (
    MAX_RSA_BITS,
    KeyFormatError,
    PrivateKey,
    fingerprint_md5,
    fingerprint_sha256,
    openssh_public_line,
    public_key_type,
)
from sshtui.ssh.crypto.randomart import key_bits, key_label
from sshtui.ssh.crypto.userkeys import PassphraseRequired, is_encrypted, load_private_key
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.wire import WireReader, string, uint32
from sshtui.store import paths
from sshtui.store.atomic import atomic_write
from sshtui.store.keyfiles import (
    MAX_KEY_FILE_BYTES,
    OPENSSH_MAGIC,
    OPENSSH_PEM_BEGIN,
    OPENSSH_PEM_END,
    OpenSSHContainer,
    openssh_der,
    parse_openssh_container,
    read_private_key,
    read_public_key,
)

KEY_KINDS = ("ed25519", "ecdsa", "rsa")
ECDSA_SIZES = (256, 384, 521)
# NIST SP 800-57 puts 3072-bit RSA at the 128-bit level of the other two key kinds.
MIN_GENERATED_RSA_BITS = 3072
BCRYPT_ROUNDS = 16  # ssh-keygen's default (-a)
SALT_BYTES = 16
PUBLIC_FILE_MODE = 0o644
PRIVATE_FILE_MODE = 0o600

_PEM_LINE = 70  # ssh-keygen's base64 line length
_AES_KEY, _AES_BLOCK = 32, 16
_READABLE_CIPHERS = ("aes256-ctr", "aes256-cbc")
# How many length-prefixed fields follow the key type in the private section, per key type.
_PRIVATE_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 6} | {f"ecdsa-sha2-nistp{n}": 3 for n in ECDSA_SIZES}
# Files a ~/.ssh commonly holds that are not keys: skipped without a note.
_NOT_KEYS = frozenset(
    {"known_hosts", "known_hosts2", "known_hosts.old", "authorized_keys", "authorized_keys2", "config",
     "environment", "rc", "allowed_signers"}
)


class KeyStoreError(KeyFormatError):
    """A key could not be generated, re-encrypted or exported; the message says why."""


class KeyExists(KeyStoreError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; not overwriting it (choose another file with -f)")
        self.path = path


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key as found on disk. ``encrypted`` is None when only the public key file exists."""

    path: Path
    public_blob: bytes = field(repr=False)
    comment: str = ""
    encrypted: bool | None = None
    public_path: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def key_type(self) -> str:
        return public_key_type(self.public_blob)

    @property
    def label(self) -> str:
        return key_label(self.public_blob)

    @property
    def bits(self) -> int:
        return key_bits(self.public_blob)

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.public_blob)

    @property
    def fingerprint_md5(self) -> str:
        return fingerprint_md5(self.public_blob)

    @property
    def has_private(self) -> bool:
        return self.encrypted is not None

    @property
    def public_line(self) -> str:
        return openssh_public_line(self.public_blob, self.comment)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: tuple[KeyInfo, ...]
    skipped: tuple[SkippedFile, ...]


def app_key_dir() -> Path:
    """sshtui's own key directory, ``keys`` under the data directory (``$XDG_DATA_HOME/sshtui``)."""
    return paths.data_dir() / "keys"


def default_key_dirs(home: Path | None = None) -> list[Path]:
    return [_home(home) / ".ssh", app_key_dir()]


def default_key_path(kind: str, home: Path | None = None) -> Path:
    """Where ``ssh-keygen -t kind`` puts a new key, so ssh and sshtui both try it by default."""
    return _home(home) / ".ssh" / f"id_{kind}"


def default_comment() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _home(home: Path | None) -> Path:
    return home if home is not None else Path(os.path.expanduser("~"))


# --- the OpenSSH private key container -----------------------------------------------------------


def _aes_key_iv(passphrase: bytes, kdf_options: bytes) -> tuple[algorithms.AES, bytes]:
    r = WireReader(kdf_options, "bcrypt KDF options")
    salt, rounds = r.string("salt"), r.uint32("rounds")
    r.check_end()
    secret = bcrypt.kdf(passphrase, salt, _AES_KEY + _AES_BLOCK, rounds, ignore_few_rounds=True)
    return algorithms.AES(secret[:_AES_KEY]), secret[_AES_KEY:]


def _split_private_section(section: bytes) -> tuple[bytes, str]:
    """The check words and key fields (everything before the comment), and the comment."""
    r = WireReader(section, "private key section")
    if r.uint32("check word") != r.uint32("check word"):
        raise DecodeError("private key section: check words differ (wrong passphrase?)")
    key_type = r.ascii("key type")
    count = _PRIVATE_FIELDS.get(key_type)
    if count is None:
        raise DecodeError(f"private key section: unsupported key type {key_type!r:.40}")
    for _ in range(count):
        r.string_view("key field")
    head = section[: len(section) - r.remaining]
    comment = r.text("comment")
    padding = r.rest()
    if padding != bytes(range(1, len(padding) + 1)):
        raise DecodeError("private key section: bad padding")
    return head, comment


def encode_private_key(
    key: PrivateKey,
    comment: str = "",
    passphrase: bytes | None = None,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """The OpenSSH private key file for ``key``: aes256-ctr and bcrypt when a passphrase is given."""
    container = parse_openssh_container(openssh_der(key.to_openssh()) or b"")
    head, _ = _split_private_section(container.private_section)
    section = head + string(comment.encode("utf-8"))
    block = _AES_BLOCK if passphrase else 8
    section += bytes(range(1, 1 + -len(section) % block))
    cipher = kdf = "none"
    kdf_options = b""
    if passphrase:
        cipher, kdf = "aes256-ctr", "bcrypt"
        kdf_options = string(rng(SALT_BYTES)) + uint32(BCRYPT_ROUNDS)
        aes, iv = _aes_key_iv(passphrase, kdf_options)
        encryptor = Cipher(aes, modes.CTR(iv)).encryptor()
        section = encryptor.update(section) + encryptor.finalize()
    der = (OPENSSH_MAGIC + string(cipher) + string(kdf) + string(kdf_options) + uint32(1)
           + string(key.public_blob) + string(section))
    text = base64.b64encode(der)
    lines = [text[i : i + _PEM_LINE] for i in range(0, len(text), _PEM_LINE)]
    return b"\n".join([OPENSSH_PEM_BEGIN, *lines, OPENSSH_PEM_END]) + b"\n"


def _stored_comment(container: OpenSSHContainer, passphrase: bytes | None) -> str | None:
    """The comment inside an OpenSSH private key, when it can be read (None otherwise)."""
    section = container.private_section
    try:
        if container.cipher != "none":
            if not passphrase or container.kdf != "bcrypt" or container.cipher not in _READABLE_CIPHERS:
                return None
            aes, iv = _aes_key_iv(passphrase, container.kdf_options)
            mode = modes.CTR(iv) if container.cipher == "aes256-ctr" else modes.CBC(iv)
            decryptor = Cipher(aes, mode).decryptor()
            section = decryptor.update(section) + decryptor.finalize()
        return _split_private_section(section)[1]
    except (DecodeError, ValueError):
        return None


# --- reading -------------------------------------------------------------------------------------


def _read_small(path: Path) -> tuple[bytes, int]:
    """Content and permission bits of a regular file no larger than any key file."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreError(f"{path}: not a regular file")
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyStoreError(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes, so not a key file")
    return data, stat.S_IMODE(info.st_mode)


def public_path_of(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def inspect_key(path: Path, passphrase: bytes | None = None) -> KeyInfo:
    """What a private key file (or a lone ``.pub`` file) holds, without needing a passphrase
    except for an encrypted PEM key that has no ``.pub`` beside it. Raises ``KeyFormatError``."""
    if path.name.endswith(".pub"):
        blob, comment = read_public_key(path)
        return KeyInfo(path, blob, comment, None, path)
    try:
        data, mode = _read_small(path)
    except FileNotFoundError:
        raise KeyStoreError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyStoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    encrypted = is_encrypted(data, source=str(path))
    notes: list[str] = []
    if os.name != "nt" and mode & 0o077:
        notes.append(f"permissions {mode:04o} are too open for a private key (chmod 600 it)")
    public_path = public_path_of(path)
    public = _read_companion(public_path, notes)
    stored: str | None = None  # the comment inside the private key, when it can be read
    der = openssh_der(data)
    if der is not None:
        try:
            container = parse_openssh_container(der)
        except DecodeError as exc:
            raise KeyStoreError(f"{path}: {exc.message}") from None
        blob = container.public_blob
        stored = _stored_comment(container, passphrase)
    elif not encrypted or passphrase:
        blob = load_private_key(data, passphrase, source=str(path)).public_blob
    elif public is not None:
        blob = public[0]
    else:
        raise PassphraseRequired(str(path))  # an encrypted PEM key keeps even its public half secret
    if public is not None and public[0] != blob:
        notes.append(f"{public_path.name} holds a different key; ignoring it")
        public = None
    # Keys written by other tools often carry the comment only in the .pub file.
    comment = stored or (public[1] if public is not None else "")
    return KeyInfo(path, blob, comment, encrypted, public_path if public else None, tuple(notes))


def _read_companion(public_path: Path, notes: list[str]) -> tuple[bytes, str] | None:
    if not os.path.lexists(public_path):
        return None
    try:
        return read_public_key(public_path)
    except KeyFormatError as exc:
        notes.append(f"ignoring {public_path.name}: {_reason(exc, public_path)}")
        return None


def list_keys(directories: Iterable[Path]) -> KeyListing:
    """Every key in ``directories`` (not recursive); files that are not usable keys are skipped
    with a reason, known non-key files (known_hosts, config, ...) silently."""
    keys: list[KeyInfo] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for directory in directories:
        real = os.path.realpath(directory)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(directory.iterdir())
        except FileNotFoundError:
            continue
        except OSError as exc:
            skipped.append(SkippedFile(directory, f"cannot list: {exc.strerror or exc}"))
            continue
        paired: set[Path] = set()
        for path in entries:
            if path.name in _NOT_KEYS or path.name.endswith(".pub") or not _is_regular(path):
                continue
            try:
                info = inspect_key(path)
            except (KeyFormatError, OSError) as exc:
                skipped.append(SkippedFile(path, _reason(exc, path)))
                continue
            keys.append(info)
            paired.add(public_path_of(path))
        for path in entries:
            if path.name.endswith(".pub") and path not in paired and _is_regular(path):
                try:
                    keys.append(inspect_key(path))
                except (KeyFormatError, OSError) as exc:
                    skipped.append(SkippedFile(path, _reason(exc, path)))
    return KeyListing(tuple(keys), tuple(skipped))


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _reason(exc: Exception, path: Path) -> str:
    text = exc.message if isinstance(exc, KeyFormatError) else (getattr(exc, "strerror", None) or str(exc))
    return text.removeprefix(f"{path}: ")


# --- writing -------------------------------------------------------------------------------------


def check_generation(kind: str, bits: int | None) -> int | None:
    """The size to generate (None for Ed25519); raises ``KeyStoreError`` for sizes we refuse."""
    if kind == "ed25519":
        if bits not in (None, 256):
            raise KeyStoreError(f"Ed25519 keys are always 256 bits, not {bits}")
        return None
    if kind == "ecdsa":
        bits = bits or ECDSA_SIZES[0]
        if bits not in ECDSA_SIZES:
            raise KeyStoreError(f"ECDSA keys are 256, 384 or 521 bits, not {bits}")
        return bits
    if kind == "rsa":
        bits = bits or MIN_GENERATED_RSA_BITS
        if not MIN_GENERATED_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise KeyStoreError(
                f"RSA keys must have {MIN_GENERATED_RSA_BITS} to {MAX_RSA_BITS} bits, not {bits}"
            )
        return bits
    raise KeyStoreError(f"unknown key type {kind!r:.40}: choose {', '.join(KEY_KINDS)}")


def generate_key(
    path: Path,
    kind: str = "ed25519",
    bits: int | None = None,
    comment: str = "",
    passphrase: bytes | None = None,
) -> KeyInfo:
    """Create ``path`` (mode 0600 from the first byte) and ``path.pub``; never overwrites either."""
    size = check_generation(kind, bits)
    public_path = public_path_of(path)
    for target in (path, public_path):
        if os.path.lexists(target):
            raise KeyExists(target)
    if not path.parent.is_dir():
        paths.ensure_private_dir(path.parent)
    key = PrivateKey.generate(kind, size)
    _create(path, encode_private_key(key, comment, passphrase), PRIVATE_FILE_MODE)
    try:
        public_line = openssh_public_line(key.public_blob, comment) + "\n"
        _create(public_path, public_line.encode("utf-8"), PUBLIC_FILE_MODE)
    except BaseException:
        path.unlink(missing_ok=True)  # no private key without its .pub: both or neither
        raise
    return KeyInfo(path, key.public_blob, comment, bool(passphrase), public_path)


def _create(path: Path, data: bytes, mode: int) -> None:
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise KeyExists(path) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def change_passphrase(path: Path, old: bytes | None, new: bytes | None) -> None:
    """Re-encrypt ``path`` with ``new`` (None or empty: no encryption), keeping its comment and
    permissions; the file is replaced atomically. ``WrongPassphrase`` when ``old`` is wrong."""
    key = read_private_key(path, old)
    comment = inspect_key(path, old).comment
    atomic_write(path, encode_private_key(key, comment, new or None))


def export_public_key(path: Path, passphrase: bytes | None = None) -> str:
    """The ``authorized_keys`` line of a key file, as ``ssh-keygen -y`` prints it."""
    return inspect_key(path, passphrase).public_line

