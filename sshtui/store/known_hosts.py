"""OpenSSH known_hosts files: reading, host matching, trust decisions, adding and removing keys.

Format: sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" — optional ``@cert-authority`` / ``@revoked`` marker,
comma-separated host patterns (``*``, ``?``, ``!`` negation, ``[host]:port`` for ports other than 22)
or one hashed name ``|1|base64(salt)|base64(HMAC-SHA1(salt, name))`` (ssh_config(5) HashKnownHosts),
key type, base64 key blob, optional comment. Like OpenSSH, names are matched in lower case, and
``remove`` does what ``ssh-keygen -R`` does: whole lines go, marker lines stay, ``FILE.old`` keeps
the previous content. A host certificate (OpenSSH PROTOCOL.certkeys) is trusted through the
``@cert-authority`` line of its CA: ``check_certificate``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from sshtui.ssh.crypto.certificates import Certificate, CertificateError, check_host_certificate
from sshtui.ssh.crypto.hostkeys import fingerprint_sha256, openssh_public_line, public_key_type
from sshtui.ssh.errors import DecodeError, SSHError
from sshtui.store.atomic import append_line, atomic_write
from sshtui.store.patterns import match_host_pattern

DEFAULT_PORT = 22
CERT_AUTHORITY: Final = "@cert-authority"
REVOKED: Final = "@revoked"
HASH_MAGIC = "|1|"
HASH_SALT_BYTES = 20  # the HMAC-SHA1 output size, which OpenSSH also uses as the salt size
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")
# Far beyond any real known_hosts file; keeps a mistaken path (a device, a huge log) from eating memory.
MAX_FILE_BYTES = 16 * 1024 * 1024

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
# Characters that would change how a written host name reads back: separators, patterns, markers.
_UNSAFE_HOST_CHARS = re.compile(r"[\s,*?!\[\]#@|\x00-\x1f\x7f]")
_BRACKETED_HOST = re.compile(r"\[([^\[\]]+)\]:([0-9]{1,5})")

TrustStatus = Literal["trusted", "unknown", "changed", "revoked"]
# no-authority: no @cert-authority line for this host names the certificate's CA.
CertificateStatus = Literal["trusted", "invalid", "revoked", "no-authority"]
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
                raise _BadLine("hashed host name is not |1|salt|hash")
            salt = _b64decode(parts[2], "salt of the hashed host name")
            digest = _b64decode(parts[3], "hash of the hashed host name")
            if len(salt) != HASH_SALT_BYTES or len(digest) != HASH_SALT_BYTES:
                raise _BadLine(f"hashed host name needs a {HASH_SALT_BYTES}-byte salt and hash")
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


@dataclass(frozen=True, slots=True)
class TrustDecision:
    """What the known_hosts files say about one host key, with the lines that say it."""

    status: TrustStatus
    host: str
    port: int
    key_type: str
    fingerprint: str
    # trusted: the line holding this key; revoked: the @revoked line.
    matched: KnownHostEntry | None = None
    # changed: every line for this host holding another key of the same type.
    conflicts: tuple[KnownHostEntry, ...] = ()
    # lines for this host holding keys of other types (OpenSSH mentions them for unknown keys).
    other_types: tuple[KnownHostEntry, ...] = ()

    @property
    def lookup_name(self) -> str:
        return host_lookup_name(self.host, self.port)

    @property
    def known_types(self) -> frozenset[str]:
        """Every key type the files hold for this host."""
        types = {entry.key_type for entry in self.other_types}
        if self.status in ("trusted", "changed"):
            types.add(self.key_type)
        return frozenset(types)


@dataclass(frozen=True, slots=True)
class CertificateDecision:
    """What the known_hosts files say about a host certificate, with the lines that say it."""

    status: CertificateStatus
    host: str
    port: int
    certificate: Certificate
    authority: KnownHostEntry | None = None  # the @cert-authority line of the certificate's CA
    revoked_by: KnownHostEntry | None = None
    problem: str = ""  # why it is not trusted, in words

    @property
    def lookup_name(self) -> str:
        return host_lookup_name(self.host, self.port)

    def as_trust_decision(self) -> TrustDecision:
        """The same verdict in the form plain host keys get (certificate blob and fingerprint)."""
        cert = self.certificate
        status: TrustStatus = "unknown"
        if self.status in ("trusted", "revoked"):
            status = self.status
        matched = self.revoked_by if self.status == "revoked" else self.authority
        fingerprint = fingerprint_sha256(cert.blob)
        return TrustDecision(status, self.host, self.port, cert.key_type, fingerprint, matched)


class KnownHosts:
    """The entries of one or more known_hosts files, in file order, and the lines that were skipped."""

    def __init__(self, entries: Sequence[KnownHostEntry] = (), warnings: Sequence[KnownHostsWarning] = ()):
        self.entries: tuple[KnownHostEntry, ...] = tuple(entries)
        self.warnings: tuple[KnownHostsWarning, ...] = tuple(warnings)
        self._revoked = {e.key_blob: e for e in reversed(self.entries) if e.marker == REVOKED}

    @classmethod
    def load(cls, paths: Sequence[Path]) -> KnownHosts:
        """Read files in order; missing files are skipped silently, unreadable ones with a warning."""
        entries: list[KnownHostEntry] = []
        warnings: list[KnownHostsWarning] = []
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
            except FileNotFoundError:
                continue
            except OSError as exc:
                warnings.append(KnownHostsWarning(path, 0, f"cannot read: {exc.strerror or exc}"))
                continue
            if len(data) > MAX_FILE_BYTES:
                warnings.append(KnownHostsWarning(path, 0, f"larger than {MAX_FILE_BYTES} bytes; ignored"))
                continue
            _parse_into(data, path, entries, warnings)
        return cls(entries, warnings)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> KnownHosts:
        """Entries of file content already in memory; ``path`` is only used to name lines."""
        entries: list[KnownHostEntry] = []
        warnings: list[KnownHostsWarning] = []
        _parse_into(data, path, entries, warnings)
        return cls(entries, warnings)

    def entries_for(self, host: str, port: int) -> list[KnownHostEntry]:
        """Every line whose host field covers this host, markers included."""
        name = host_lookup_name(host, port)
        return [entry for entry in self.entries if entry.hosts.matches(name)]

    def known_key_types(self, host: str, port: int) -> set[str]:
        """Key types of the plain (unmarked) keys held for this host."""
        return {entry.key_type for entry in self.entries_for(host, port) if entry.marker is None}

    def has_cert_authority(self, host: str, port: int) -> bool:
        """Whether a ``@cert-authority`` line covers this host (ssh(1) then offers certificates first)."""
        return any(entry.marker == CERT_AUTHORITY for entry in self.entries_for(host, port))

    def check_certificate(self, host: str, port: int, cert: Certificate, now: float) -> CertificateDecision:
        """Judge a host certificate whose CA signature is already verified (``parse_certificate``).

        Trusted when a ``@cert-authority`` line for this host (``[host]:port`` lookup, as for plain
        keys) holds the CA key and the certificate is valid for ``host`` (the bare name) at ``now``;
        revoked when the CA key, the certified key or the certificate is on a ``@revoked`` line.
        """
        for blob, what in (
            (cert.signature_key, f"the certificate authority key {cert.ca_fingerprint}"),
            (cert.public_blob, f"the certified host key {cert.fingerprint}"),
            (cert.blob, "the certificate"),
        ):
            revoked = self._revoked.get(blob)
            if revoked is not None:
                problem = f"{what} is marked as revoked at {revoked.location}"
                return CertificateDecision("revoked", host, port, cert, revoked_by=revoked, problem=problem)
        authorities = [e for e in self.entries_for(host, port) if e.marker == CERT_AUTHORITY]
        authority = next((e for e in authorities if e.key_blob == cert.signature_key), None)
        if authority is None:
            problem = (
                f"no @cert-authority line for {host_lookup_name(host, port)} holds its CA key"
                f" {cert.ca_fingerprint}"
            )
            if authorities:
                problem += " (lines for other CAs: " + ", ".join(e.location for e in authorities[:4]) + ")"
            return CertificateDecision("no-authority", host, port, cert, problem=problem)
        try:
            check_host_certificate(cert, host, now)
        except CertificateError as exc:
            return CertificateDecision("invalid", host, port, cert, authority, problem=exc.message)
        return CertificateDecision("trusted", host, port, cert, authority)

    def check(self, host: str, port: int, key_blob: bytes) -> TrustDecision:
        key_type = public_key_type(key_blob)
        fingerprint = fingerprint_sha256(key_blob)
        revoked = self._revoked.get(key_blob)
        if revoked is not None:
            return TrustDecision("revoked", host, port, key_type, fingerprint, matched=revoked)
        conflicts: list[KnownHostEntry] = []
        others: list[KnownHostEntry] = []
        for entry in self.entries_for(host, port):
            if entry.marker is not None:
                continue  # CA lines vouch for certificates only, which are not plain keys
            if entry.key_type != key_type:
                others.append(entry)
            elif entry.key_blob == key_blob:
                return TrustDecision("trusted", host, port, key_type, fingerprint, matched=entry)
            else:
                conflicts.append(entry)
        status: TrustStatus = "changed" if conflicts else "unknown"
        return TrustDecision(
            status, host, port, key_type, fingerprint, conflicts=tuple(conflicts), other_types=tuple(others)
        )


def entry_line(
    host: str, port: int, key_blob: bytes, *, hashed: bool, rng: Callable[[int], bytes] = os.urandom
) -> str:
    """The line ssh would append for this host and key (no comment, as OpenSSH writes it)."""
    _check_storable_host(host, port)
    name = host_lookup_name(host, port)
    if hashed:
        name = hash_host_name(name, rng(HASH_SALT_BYTES))
    return f"{name} {openssh_public_line(key_blob)}"


def add(
    path: Path,
    host: str,
    port: int,
    key_blob: bytes,
    *,
    hashed: bool,
    rng: Callable[[int], bytes] = os.urandom,
) -> None:
    """Append a line for this host and key, creating the file (0600) and its directory (0700)."""
    line = entry_line(host, port, key_blob, hashed=hashed, rng=rng)
    try:
        append_line(path, line.encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot add the host key: {exc.strerror or exc}") from exc


def remove(path: Path, host: str, port: int) -> int:
    """Remove every unmarked line for this host, as ``ssh-keygen -R``; returns how many went.

    Other lines stay byte for byte (each ends with a newline afterwards, as ssh-keygen writes them);
    the previous content is kept as ``FILE.old``. Nothing is written when nothing matches.
    """
    name = host_lookup_name(host, port)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = _split_lines(data)
    kept = [line for line in lines if not _removable(line, name)]
    removed = len(lines) - len(kept)
    if removed:
        _rewrite(path, kept)
    return removed


def remove_keys(path: Path, host: str, port: int, key_blobs: Collection[bytes]) -> int:
    """Remove the unmarked lines naming only this host (plainly or hashed) whose key is one of
    ``key_blobs``; lines that also cover other names stay. Returns how many went (``FILE.old``
    keeps the previous content, as with ``remove``)."""
    name = host_lookup_name(host, port)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = _split_lines(data)
    kept = [line for line in lines if not _only_this_key(line, name, key_blobs)]
    removed = len(lines) - len(kept)
    if removed:
        _rewrite(path, kept)
    return removed


def remove_entry(entry: KnownHostEntry) -> bool:
    """Remove exactly the line ``entry`` was read from, marker lines included, when it still holds
    the same hosts, marker and key (the file may have changed since); ``FILE.old`` keeps the
    previous content. Returns whether the line went."""
    try:
        lines = _split_lines(entry.path.read_bytes())
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise KnownHostsError(f"{entry.path}: cannot read: {exc.strerror or exc}") from exc
    index = entry.line_number - 1
    if not 0 <= index < len(lines):
        return False
    try:
        fields = _split_fields(lines[index].decode("utf-8", "surrogateescape"))
        same = (
            fields is not None
            and (fields.marker, fields.hosts.text, fields.key_type)
            == (entry.marker, entry.hosts.text, entry.key_type)
            and _decode_key(fields.key_type, fields.key_data) == entry.key_blob
        )
    except _BadLine:
        return False
    if same:
        _rewrite(entry.path, lines[:index] + lines[index + 1 :])
    return same


def _rewrite(path: Path, kept: list[bytes]) -> None:
    backup = path.with_name(path.name + ".old")
    try:
        backup.unlink(missing_ok=True)
        try:
            os.link(os.path.realpath(path), backup)
        except OSError:
            shutil.copy2(path, backup)
        atomic_write(path, b"".join(line + b"\n" for line in kept))
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot rewrite: {exc.strerror or exc}") from exc


# --- parsing -----------------------------------------------------------------------------------


class _BadLine(Exception):
    """A line that is not a valid entry; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class _Fields:
    marker: Marker | None
    hosts: HostPatterns
    key_type: str
    key_data: str
    comment: str


def _split_lines(data: bytes) -> list[bytes]:
    # As getline(3): the text after the last newline is a line only when it is not empty.
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _parse_into(
    data: bytes, path: Path, entries: list[KnownHostEntry], warnings: list[KnownHostsWarning]
) -> None:
    for number, raw in enumerate(_split_lines(data), start=1):
        try:
            fields = _split_fields(raw.decode("utf-8", "surrogateescape"))
            if fields is None:
                continue
            blob = _decode_key(fields.key_type, fields.key_data)
        except _BadLine as bad:
            warnings.append(KnownHostsWarning(path, number, str(bad)))
            continue
        entries.append(
            KnownHostEntry(path, number, fields.marker, fields.hosts, fields.key_type, blob, fields.comment)
        )


def _split_fields(text: str) -> _Fields | None:
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
            raise _BadLine(f"unknown marker {parts[0]!r:.40} (expected {CERT_AUTHORITY} or {REVOKED})")
        if len(parts) < 2:
            raise _BadLine(f"{marker} line has no host names or key")
        parts = _FIELD_SEPARATOR.split(parts[1], maxsplit=1)
    hosts = HostPatterns.parse(parts[0])
    if len(parts) < 2:
        raise _BadLine("missing key type and key after the host names")
    key_type, *rest = _FIELD_SEPARATOR.split(parts[1], maxsplit=2)
    if not rest:
        raise _BadLine(f"missing key data after key type {key_type!r:.40}")
    if not key_type.startswith(KEY_TYPE_PREFIXES):
        if key_type.isdigit():
            raise _BadLine("SSH protocol 1 RSA key (no longer supported)")
        raise _BadLine(f"unknown key type {key_type!r:.40}")
    return _Fields(marker, hosts, key_type, rest[0], rest[1] if len(rest) > 1 else "")


def _decode_key(key_type: str, key_data: str) -> bytes:
    blob = _b64decode(key_data, "key")
    try:
        inner_type = public_key_type(blob)
    except DecodeError:
        raise _BadLine("key data does not hold an SSH public key") from None
    if inner_type != key_type:
        raise _BadLine(f"line says {key_type!r:.40} but the key is {inner_type!r:.40}")
    return blob


def _removable(raw: bytes, name: str) -> bool:
    # ssh-keygen -R judges lines by their host field and key type only, so do the same.
    try:
        fields = _split_fields(raw.decode("utf-8", "surrogateescape"))
    except _BadLine:
        return False
    return fields is not None and fields.marker is None and fields.hosts.matches(name)


def _only_this_key(raw: bytes, name: str, key_blobs: Collection[bytes]) -> bool:
    try:
        fields = _split_fields(raw.decode("utf-8", "surrogateescape"))
        if fields is None or fields.marker is not None:
            return False
        hosts = fields.hosts
        single = hosts.hashed or (len(hosts.patterns) == 1 and hosts.patterns[0] == (False, name, False))
        return single and hosts.matches(name) and _decode_key(fields.key_type, fields.key_data) in key_blobs
    except _BadLine:
        return False


def _name_mac(salt: bytes, name: str) -> bytes:
    return hmac.new(salt, name.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _BadLine(f"invalid base64 in the {what}") from None


def _check_storable_host(host: str, port: int) -> None:
    if not host:
        raise KnownHostsError("cannot store an empty host name in known_hosts")
    bad = _UNSAFE_HOST_CHARS.search(host)
    if bad is not None:
        raise KnownHostsError(
            f"cannot store host name {host!r:.80} in known_hosts: it contains {bad.group()!r}"
        )
    if not 0 < port < 65536:
        raise KnownHostsError(f"cannot store port {port} in known_hosts: out of range")
