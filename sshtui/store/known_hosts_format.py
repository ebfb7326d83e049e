"""The known_hosts line format: host names and patterns, hashed names, markers and key fields.

Format: sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" — optional ``@cert-authority`` / ``@revoked`` marker,
comma-separated host patterns (``*``, ``?``, ``!`` negation, ``[host]:port`` for ports other than 22)
or one hashed name ``|1|base64(salt)|base64(HMAC-SHA1(salt, name))`` (ssh_config(5) HashKnownHosts),
key type, base64 key blob, optional comment. Like OpenSSH, names are matched in lower case. A line
that is not an entry raises ``BadLine``; reading a whole file turns those into warnings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from sshtui.ssh.crypto.hostkeys import fingerprint_sha256, public_key_type
from sshtui.ssh.errors import DecodeError, SSHError
from sshtui.store.patterns import match_host_pattern

DEFAULT_PORT = 22
CERT_AUTHORITY: Final = "@cert-authority"
REVOKED: Final = "@revoked"
HASH_MAGIC = "|1|"
HASH_SALT_BYTES = 20  # the HMAC-SHA1 output size, which OpenSSH also uses as the salt size
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_BRACKETED_HOST = re.compile(r"\[([^\[\]]+)\]:([0-9]{1,5})")

Marker = Literal["@cert-authority", "@revoked"]


class KnownHostsError(SSHError):
    """A known_hosts file could not be updated, or a host name cannot be stored in one."""


@dataclass(frozen=True, slots=True)
class KnownHostsWarning:
    """A line that was skipped (or a file that could not be read), and why."""

    path: Path
    line_number: int  # 0 when the problem concerns the whole file
    problem: str

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line_number}" if self.line_number else str(self.path)

    def __str__(self) -> str:
        return f"{self.location}: {self.problem}"


def host_lookup_name(host: str, port: int) -> str:
    """The name OpenSSH looks up and stores: ``host`` for port 22, ``[host]:port`` otherwise."""
    name = host.lower()
    return name if port == DEFAULT_PORT else f"[{name}]:{port}"


def split_host_port(text: str) -> tuple[str, int]:
    """The inverse of ``host_lookup_name``: ``[host]:2222`` gives (host, 2222), ``host`` (host, 22)."""
    found = _BRACKETED_HOST.fullmatch(text)
    if found is None:
        return text, DEFAULT_PORT
    port = int(found.group(2))
    if not 0 < port < 65536:
        raise KnownHostsError(f"port {port} out of range in {text!r:.80}")
    return found.group(1), port


def hash_host_name(name: str, salt: bytes) -> str:
    """The hashed form of a host name, as written with HashKnownHosts=yes."""
    return f"{HASH_MAGIC}{_b64(salt)}|{_b64(_name_mac(salt, name))}"


@dataclass(frozen=True, slots=True)
class HostPatterns:
    """The host field of a line: a pattern list, or one hashed name."""

    text: str
    # (negated, lower-cased pattern, has wildcards) per comma-separated item; empty when hashed.
    patterns: tuple[tuple[bool, str, bool], ...] = field(repr=False, default=())
    salt: bytes = field(repr=False, default=b"")
    digest: bytes = field(repr=False, default=b"")

    @property
    def hashed(self) -> bool:
        return bool(self.salt)

    @classmethod
    def parse(cls, text: str) -> HostPatterns:
        if text.startswith("|"):
            parts = text.split("|")
            if len(parts) != 4 or parts[1] != "1":
                raise BadLine("hashed host name is not |1|salt|hash")
            salt = _b64decode(parts[2], "salt of the hashed host name")
            digest = _b64decode(parts[3], "hash of the hashed host name")
            if len(salt) != HASH_SALT_BYTES or len(digest) != HASH_SALT_BYTES:
                raise BadLine(f"hashed host name needs a {HASH_SALT_BYTES}-byte salt and hash")
            return cls(text, salt=salt, digest=digest)
        patterns = []
        for item in text.split(","):
            negated = item.startswith("!")
            pattern = (item[1:] if negated else item).lower()
            patterns.append((negated, pattern, "*" in pattern or "?" in pattern))
        return cls(text, tuple(patterns))

    def matches(self, name: str) -> bool:
        """Whether ``name`` (from ``host_lookup_name``) is covered: a negated match always wins."""
        if self.salt:
            return hmac.compare_digest(_name_mac(self.salt, name), self.digest)
        positive = False
        for negated, pattern, wild in self.patterns:
            if match_host_pattern(name, pattern) if wild else name == pattern:
                if negated:
                    return False
                positive = True
        return positive


@dataclass(frozen=True, slots=True)
class KnownHostEntry:
    """One key line of a known_hosts file."""

    path: Path
    line_number: int
    marker: Marker | None
    hosts: HostPatterns
    key_type: str
    key_blob: bytes = field(repr=False)
    comment: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line_number}"

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.key_blob)

    def matches(self, host: str, port: int) -> bool:
        return self.hosts.matches(host_lookup_name(host, port))


class BadLine(Exception):
    """A line that is not a valid entry; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class LineFields:
    marker: Marker | None
    hosts: HostPatterns
    key_type: str
    key_data: str
    comment: str


def split_lines(data: bytes) -> list[bytes]:
    # As getline(3): the text after the last newline is a line only when it is not empty.
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def parse_entries(
    data: bytes, path: Path, entries: list[KnownHostEntry], warnings: list[KnownHostsWarning]
) -> None:
    """Append the entries of file content to ``entries``, and a warning for each line skipped."""
    for number, raw in enumerate(split_lines(data), start=1):
        try:
            fields = split_fields(raw.decode("utf-8", "surrogateescape"))
            if fields is None:
                continue
            blob = decode_key(fields.key_type, fields.key_data)
        except BadLine as bad:
            warnings.append(KnownHostsWarning(path, number, str(bad)))
            continue
        entries.append(
            KnownHostEntry(path, number, fields.marker, fields.hosts, fields.key_type, blob, fields.comment)
        )


def split_fields(text: str) -> LineFields | None:
    """The fields of a line, or None for blank and comment lines; the key data is not decoded yet."""
    body = text.strip(" \t\r")
    if not body or body.startswith("#"):
        return None
    parts = _FIELD_SEPARATOR.split(body, maxsplit=1)
    marker: Marker | None = None
    if parts[0].startswith("@"):
        if parts[0] == CERT_AUTHORITY:
            marker = CERT_AUTHORITY
        elif parts[0] == REVOKED:
            marker = REVOKED
        else:
            raise BadLine(f"unknown marker {parts[0]!r:.40} (expected {CERT_AUTHORITY} or {REVOKED})")
        if len(parts) < 2:
            raise BadLine(f"{marker} line has no host names or key")
        parts = _FIELD_SEPARATOR.split(parts[1], maxsplit=1)
    hosts = HostPatterns.parse(parts[0])
    if len(parts) < 2:
        raise BadLine("missing key type and key after the host names")
    key_type, *rest = _FIELD_SEPARATOR.split(parts[1], maxsplit=2)
    if not rest:
        raise BadLine(f"missing key data after key type {key_type!r:.40}")
    if not key_type.startswith(KEY_TYPE_PREFIXES):
        if key_type.isdigit():
            raise BadLine("SSH protocol 1 RSA key (no longer supported)")
        raise BadLine(f"unknown key type {key_type!r:.40}")
    return LineFields(marker, hosts, key_type, rest[0], rest[1] if len(rest) > 1 else "")


def decode_key(key_type: str, key_data: str) -> bytes:
    blob = _b64decode(key_data, "key")
    try:
        inner_type = public_key_type(blob)
    except DecodeError:
        raise BadLine("key data does not hold an SSH public key") from None
    if inner_type != key_type:
        raise BadLine(f"line says {key_type!r:.40} but the key is {inner_type!r:.40}")
    return blob


def _name_mac(salt: bytes, name: str) -> bytes:
    return hmac.new(salt, name.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadLine(f"invalid base64 in the {what}") from None
