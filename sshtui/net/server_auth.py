"""Credential checks for the embedded server (RFC 4252 §7 publickey, §8 password).

authorized_keys is read as sshd(8) documents it ("AUTHORIZED_KEYS FILE FORMAT"), but only
for plain keys: a key with options (``from=``, ``command=``, ``restrict``...) would have to
be honoured with its restrictions, which we do not implement, so such a line is refused
with a log line rather than silently granting more than it says.

Passwords are never stored: the password file holds ``user:scrypt$LOG2N$R$P$SALT$HASH``
lines (RFC 7914 scrypt, base64 salt and hash), made with ``sshtui serve --hash-password``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import (
    KeyFormatError,
    fingerprint_sha256,
    parse_openssh_public_line,
    public_key_type,
)
from sshtui.ssh.errors import SSHError
from sshtui.ssh.userauth_events import (
    KeyboardInteractiveResponse,
    KeyboardInteractiveStart,
    NoneAttempt,
    PasswordAttempt,
    PublicKeyAttempt,
    PublicKeyQuery,
)

log = logging.getLogger("sshtui.server")

KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-sha2-", "sk-")
MAX_AUTH_FILE_BYTES = 1024 * 1024
SCRYPT_LOG2_N = 14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_KEY_BYTES = 32
# Bounds what a hand-edited password file can make each login attempt cost (memory is 128*r*n).
_MAX_LOG2_N, _MAX_R, _MAX_P = 20, 32, 16
_SCRYPT_MAXMEM = 1 << 30
_OPTION_NAME = re.compile(r'(?:^|,)\s*([A-Za-z][A-Za-z0-9-]*)')


class ServerConfigError(SSHError):
    """A server configuration file cannot be used; the message names the file and line."""


def read_auth_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_AUTH_FILE_BYTES + 1)
    except OSError as exc:
        raise ServerConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_AUTH_FILE_BYTES:
        raise ServerConfigError(f"{what} {path} is larger than {MAX_AUTH_FILE_BYTES} bytes")
    return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class AuthorizedKeys:
    """The plain public keys of an authorized_keys file; any user name may use them, since
    every session runs as the account that runs the server."""

    blobs: frozenset[bytes]
    source: str = "authorized_keys"

    @classmethod
    def load(cls, path: Path) -> AuthorizedKeys:
        return cls.parse(read_auth_file(path, "authorized_keys file"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "authorized_keys") -> AuthorizedKeys:
        blobs: set[bytes] = set()
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{source} line {number}"
            if not line.startswith(KEY_TYPE_PREFIXES):
                names = ", ".join(dict.fromkeys(_OPTION_NAME.findall(line.split(None, 1)[0]))) or "unknown"
                log.warning("%s: key options (%s) are not supported; this key is refused", where, names)
                continue
            try:
                blob, _ = parse_openssh_public_line(line)
            except KeyFormatError as exc:
                log.warning("%s: skipped: %s", where, exc.message)
                continue
            blobs.add(blob)
        return cls(frozenset(blobs), source)

    def allows(self, blob: bytes) -> bool:
        return blob in self.blobs

    def __len__(self) -> int:
        return len(self.blobs)


def hash_password(password: str, rng: Callable[[int], bytes] = os.urandom) -> str:
    """A password file entry's hash part for ``password``, with a fresh random salt."""
    salt = rng(SCRYPT_SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(SCRYPT_LOG2_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=SCRYPT_KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True, slots=True)
class _Scrypt:
    log2_n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    key: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> _Scrypt:
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected scrypt$LOG2N$R$P$SALT$HASH")
        log2_n, r, p = (int(x) for x in parts[1:4])
        if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
            limits = f"log2 N <= {_MAX_LOG2_N}, r <= {_MAX_R}, p <= {_MAX_P}"
            raise ValueError(f"scrypt parameters out of range ({limits})")
        try:
            salt, key = _unb64(parts[4]), _unb64(parts[5])
        except (binascii.Error, ValueError):
            raise ValueError("salt or hash is not base64") from None
        if not salt or len(key) < 16:
            raise ValueError("salt is empty or hash shorter than 16 bytes")
        return cls(log2_n, r, p, salt, key)

    def matches(self, password: str) -> bool:
        candidate = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"), salt=self.salt, n=1 << self.log2_n,
            r=self.r, p=self.p, maxmem=_SCRYPT_MAXMEM, dklen=len(self.key),
        )
        return hmac.compare_digest(candidate, self.key)


@dataclass(frozen=True)
class PasswordFile:
    """``user:scrypt$...`` lines; blank lines and ``#`` comments are allowed."""

    entries: dict[str, _Scrypt] = field(repr=False)
    source: str = "password file"

    @classmethod
    def load(cls, path: Path) -> PasswordFile:
        return cls.parse(read_auth_file(path, "password file"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "password file") -> PasswordFile:
        entries: dict[str, _Scrypt] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user:
                raise ServerConfigError(f"{source} line {number}: expected user:scrypt$... (no ':' found)")
            try:
                entries[user] = _Scrypt.parse(hashed)
            except ValueError as exc:
                # The message names the format problem only, never the line's content.
                raise ServerConfigError(f"{source} line {number} (user {user!r:.40}): {exc}") from None
        return cls(entries, source)

    def verify(self, user: str, password: str) -> bool:
        entry = self.entries.get(user)
        if entry is None:
            # Spend the same time as for a real user, so timing does not reveal which names exist.
            _DUMMY.matches(password)
            return False
        return entry.matches(password)

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(self.entries)


def describe_key(blob: bytes) -> str:
    try:
        return f"{public_key_type(blob)} {fingerprint_sha256(blob)}"
    except SSHError:
        return fingerprint_sha256(blob)


class Verdict(Enum):
    ACCEPT = "accept"
    KEY_OK = "key ok"  # a publickey query for a key that would be accepted: answer PK_OK
    REFUSE = "refuse"  # not a wrong credential ("none", a query for another key): answer at once
    FAIL = "fail"  # a wrong credential: counted, and answered only after a delay


AuthAttemptEvent = (
    NoneAttempt | PublicKeyQuery | PublicKeyAttempt | PasswordAttempt | KeyboardInteractiveStart
    | KeyboardInteractiveResponse
)


@dataclass(frozen=True)
class CredentialChecker:
    """Decides on each authentication attempt (RFC 4252 §5); knows nothing of the protocol."""

    authorized_keys: AuthorizedKeys | None
    passwords: PasswordFile | None

    def judge(self, event: AuthAttemptEvent) -> tuple[Verdict, str]:
        """The verdict and, for the log, what was accepted or why not (never a secret)."""
        if isinstance(event, PublicKeyQuery):
            if self._allows(event.public_blob):
                return Verdict.KEY_OK, ""
            key = describe_key(event.public_blob)
            return Verdict.REFUSE, f"key {key} for {event.user!r:.64} is not authorized"
        if isinstance(event, PublicKeyAttempt):
            key = describe_key(event.public_blob)
            if event.signature_valid and self._allows(event.public_blob):
                return Verdict.ACCEPT, f"publickey {key}"
            why = "is not authorized" if event.signature_valid else "made an invalid signature"
            return Verdict.FAIL, f"publickey for {event.user!r:.64} refused: {key} {why}"
        if isinstance(event, PasswordAttempt):
            passwords = self.passwords
            changing = event.new_password is not None  # password change is not supported
            if not changing and passwords is not None and passwords.verify(event.user, event.password):
                return Verdict.ACCEPT, "password"
            return Verdict.FAIL, f"failed password for {event.user!r:.64}"
        # "none" is how clients learn the methods; keyboard-interactive is never offered.
        return Verdict.REFUSE, ""

    def _allows(self, blob: bytes) -> bool:
        return self.authorized_keys is not None and self.authorized_keys.allows(blob)


_DUMMY = _Scrypt(SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, b"\x00" * SCRYPT_SALT_BYTES, b"\x01" * SCRYPT_KEY_BYTES)
