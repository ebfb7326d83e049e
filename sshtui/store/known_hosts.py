"""OpenSSH known_hosts files: reading them and judging host keys and host certificates by them.

``KnownHosts`` holds the entries of one or more files in order (sshd(8) "SSH_KNOWN_HOSTS FILE
FORMAT", parsed in ``known_hosts_format``) and says whether a host key is trusted, unknown, changed
or revoked. A host certificate (OpenSSH PROTOCOL.certkeys) is trusted through the
``@cert-authority`` line of its CA: ``check_certificate``. Adding and removing lines is in
``known_hosts_edit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sshtui.ssh.crypto.certificates import Certificate, CertificateError, check_host_certificate
from sshtui.ssh.crypto.hostkeys import fingerprint_sha256, public_key_type

# Re-exported: sshtui.net.trust, sshtui.net.hostkey_rotation, the UI and the demo use ``known_hosts.NAME``.
from sshtui.store.known_hosts_edit import add as add
from sshtui.store.known_hosts_edit import remove as remove
from sshtui.store.known_hosts_edit import remove_entry as remove_entry
from sshtui.store.known_hosts_edit import remove_keys as remove_keys
from sshtui.store.known_hosts_format import CERT_AUTHORITY, parse_entries
from sshtui.store.known_hosts_format import DEFAULT_PORT as DEFAULT_PORT
from sshtui.store.known_hosts_format import REVOKED as REVOKED
from sshtui.store.known_hosts_format import KnownHostEntry as KnownHostEntry
from sshtui.store.known_hosts_format import KnownHostsError as KnownHostsError
from sshtui.store.known_hosts_format import KnownHostsWarning as KnownHostsWarning
from sshtui.store.known_hosts_format import host_lookup_name as host_lookup_name
from sshtui.store.known_hosts_format import split_host_port as split_host_port

# Far beyond any real known_hosts file; keeps a mistaken path (a device, a huge log) from eating memory.
MAX_FILE_BYTES = 16 * 1024 * 1024

TrustStatus = Literal["trusted", "unknown", "changed", "revoked"]
# no-authority: no @cert-authority line for this host names the certificate's CA.
CertificateStatus = Literal["trusted", "invalid", "revoked", "no-authority"]


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
            parse_entries(data, path, entries, warnings)
        return cls(entries, warnings)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> KnownHosts:
        """Entries of file content already in memory; ``path`` is only used to name lines."""
        entries: list[KnownHostEntry] = []
        warnings: list[KnownHostsWarning] = []
        parse_entries(data, path, entries, warnings)
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
