"""OpenSSH certificates: ``*-cert-v01@openssh.com`` key blobs (OpenSSH PROTOCOL.certkeys).

A certificate is a public key plus serial, type (user or host), key id, principals, a validity
window, critical options and extensions, signed by a certificate authority (CA) key. Parsing
checks the CA signature, so a ``Certificate`` never holds a forged or tampered blob; whether it
is good for a given host at a given time is ``check_host_certificate``, with ``now`` passed in.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from sshtui.ssh.crypto.hostkeys import (
    HOST_KEY_ALGORITHMS,
    fingerprint_sha256,
    parse_signature_blob,
    public_key_from_blob,
    public_key_type,
    verify_signature,
)
from sshtui.ssh.errors import DecodeError, HostKeyError, SSHError
from sshtui.ssh.wire import WireReader, mpint, string

CERT_TYPE_USER: Final = 1
CERT_TYPE_HOST: Final = 2
# valid_before of a certificate that never expires (ssh-keygen -V "always:forever").
FOREVER: Final = 0xFFFF_FFFF_FFFF_FFFF
# OpenSSH refuses more (SSHKEY_CERT_MAX_PRINCIPALS); bounds what a peer can make us allocate.
MAX_PRINCIPALS: Final = 256
MAX_OPTIONS: Final = 64

# Certificate key type -> the plain key type it certifies.
CERTIFIED_KEY_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "ssh-ed25519-cert-v01@openssh.com": "ssh-ed25519",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com": "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com": "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com": "ecdsa-sha2-nistp521",
        "ssh-rsa-cert-v01@openssh.com": "ssh-rsa",
    }
)

# As OpenSSH's CASignatureAlgorithms default: SHA-1 (ssh-rsa) CA signatures are refused.
DEFAULT_CA_SIGNATURE_ALGORITHMS: tuple[str, ...] = tuple(
    name for name, alg in HOST_KEY_ALGORITHMS.items() if not alg.opt_in
)


class CertificateError(HostKeyError):
    """A certificate is badly signed, or not valid for the use it was presented for."""


def is_certificate_type(key_type: str) -> bool:
    return key_type in CERTIFIED_KEY_TYPES


@dataclass(frozen=True, slots=True)
class Certificate:
    """A parsed certificate whose CA signature has been verified."""

    key_type: str  # e.g. ssh-ed25519-cert-v01@openssh.com
    serial: int
    cert_type: int  # CERT_TYPE_USER or CERT_TYPE_HOST
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    # (name, data) pairs in wire order; data is the raw option data (often an SSH string).
    critical_options: tuple[tuple[str, bytes], ...]
    extensions: tuple[tuple[str, bytes], ...]
    signature_algorithm: str  # the algorithm the CA signed with
    blob: bytes = field(repr=False)
    public_blob: bytes = field(repr=False)  # the certified key as a plain key blob
    signature_key: bytes = field(repr=False)  # the CA's public key blob
    nonce: bytes = field(repr=False)

    @property
    def is_host(self) -> bool:
        return self.cert_type == CERT_TYPE_HOST

    @property
    def kind(self) -> str:
        """``host`` or ``user``, as ``ssh-keygen -L`` prints the type."""
        return {CERT_TYPE_HOST: "host", CERT_TYPE_USER: "user"}.get(self.cert_type, f"type {self.cert_type}")

    @property
    def plain_key_type(self) -> str:
        return CERTIFIED_KEY_TYPES[self.key_type]

    @property
    def fingerprint(self) -> str:
        """The certified key's fingerprint (ssh-keygen -L "Public key"), not the blob's."""
        return fingerprint_sha256(self.public_blob)

    @property
    def ca_key_type(self) -> str:
        return public_key_type(self.signature_key)

    @property
    def ca_fingerprint(self) -> str:
        return fingerprint_sha256(self.signature_key)

    @property
    def validity(self) -> str:
        """The window in words: ``forever``, ``from X to Y``, ``after X`` or ``before Y`` (UTC)."""
        starts, ends = self.valid_after != 0, self.valid_before != FOREVER
        if not starts and not ends:
            return "forever"
        if not ends:
            return f"after {_utc(self.valid_after)}"
        if not starts:
            return f"before {_utc(self.valid_before)}"
        return f"from {_utc(self.valid_after)} to {_utc(self.valid_before)}"

    def valid_at(self, now: float) -> bool:
        return self.valid_after <= now < self.valid_before


def parse_certificate(
    blob: bytes, *, ca_algorithms: Collection[str] = DEFAULT_CA_SIGNATURE_ALGORITHMS
) -> Certificate:
    """Parse a certificate blob and verify its CA signature.

    Raises DecodeError for a malformed blob and CertificateError when the CA key or signature is
    unacceptable (unsupported or certificate CA key, disallowed algorithm, signature mismatch).
    """
    r = WireReader(blob, "certificate")
    key_type = r.ascii("key type")
    plain_type = CERTIFIED_KEY_TYPES.get(key_type)
    if plain_type is None:
        raise DecodeError(f"certificate: unsupported certificate type {key_type!r:.64}")
    nonce = r.string("nonce")
    public_blob = _read_certified_key(r, plain_type)
    serial = r.uint64("serial")
    cert_type = r.uint32("certificate type")
    if cert_type not in (CERT_TYPE_USER, CERT_TYPE_HOST):
        raise DecodeError(f"certificate: unknown certificate type {cert_type}")
    key_id = r.text("key id")
    principals = _read_principals(r.string_view("valid principals"))
    valid_after = r.uint64("valid after")
    valid_before = r.uint64("valid before")
    critical = _read_options(r.string_view("critical options"), "critical options")
    extensions = _read_options(r.string_view("extensions"), "extensions")
    r.string_view("reserved")
    signature_key = r.string("signature key")
    signature = r.string("signature")
    r.check_end()
    signed = blob[: len(blob) - 4 - len(signature)]
    algorithm = _check_ca_signature(signature_key, signature, signed, ca_algorithms)
    return Certificate(
        key_type=key_type,
        serial=serial,
        cert_type=cert_type,
        key_id=key_id,
        principals=principals,
        valid_after=valid_after,
        valid_before=valid_before,
        critical_options=critical,
        extensions=extensions,
        signature_algorithm=algorithm,
        blob=bytes(blob),
        public_blob=public_blob,
        signature_key=signature_key,
        nonce=nonce,
    )


def check_host_certificate(cert: Certificate, host_name: str, now: float) -> None:
    """Whether ``cert`` may vouch for ``host_name`` (the host as given, without the port) at ``now``.

    The checks and their order follow ssh(1); unlike it, a host certificate with no principals is
    refused, since it would vouch for every host the CA's ``@cert-authority`` line covers.
    """
    if not cert.is_host:
        raise CertificateError(f"certificate invalid: a {cert.kind} certificate, not a host certificate")
    if now < cert.valid_after:
        raise CertificateError(f"certificate invalid: not yet valid (valid {cert.validity})")
    if now >= cert.valid_before:
        raise CertificateError(f"certificate invalid: expired (valid {cert.validity})")
    if not cert.principals:
        raise CertificateError("certificate invalid: it lists no principals (host names)")
    name = host_name.lower()
    if name not in cert.principals:
        listed = ", ".join(repr(p) for p in cert.principals[:8])
        raise CertificateError(
            f"certificate invalid: {host_name!r:.80} is not a listed principal (it lists {listed:.300})"
        )
    if cert.critical_options:
        names = ", ".join(name for name, _ in cert.critical_options)
        raise CertificateError(f"certificate invalid: unsupported critical options ({names:.200})")


# --- parsing helpers ---------------------------------------------------------------------------


def _read_certified_key(r: WireReader, plain_type: str) -> bytes:
    """The certified key's fields, re-encoded as a plain key blob and validated."""
    if plain_type == "ssh-ed25519":
        fields = string(r.string("Ed25519 key"))
    elif plain_type == "ssh-rsa":
        exponent = r.mpint("RSA exponent")
        modulus = r.mpint("RSA modulus")
        fields = mpint(exponent) + mpint(modulus)
    else:
        fields = string(r.string("curve name")) + string(r.string("EC point"))
    blob = string(plain_type) + fields
    try:
        public_key_from_blob(blob)
    except SSHError as exc:
        raise DecodeError(f"certificate: the certified key is invalid: {exc.message}") from None
    return blob


def _read_principals(data: memoryview) -> tuple[str, ...]:
    r = WireReader(data, "certificate principals")
    principals: list[str] = []
    while r.remaining:
        if len(principals) == MAX_PRINCIPALS:
            raise DecodeError(f"certificate: more than {MAX_PRINCIPALS} principals")
        principals.append(r.text("principal"))
    r.check_end()
    return tuple(principals)


def _read_options(data: memoryview, what: str) -> tuple[tuple[str, bytes], ...]:
    r = WireReader(data, f"certificate {what}")
    options: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    while r.remaining:
        if len(options) == MAX_OPTIONS:
            raise DecodeError(f"certificate: more than {MAX_OPTIONS} {what}")
        name = r.ascii("option name")
        value = r.string("option data")
        if name in seen:
            raise DecodeError(f"certificate: {what} name {name!r:.64} appears twice")
        seen.add(name)
        options.append((name, value))
    r.check_end()
    return tuple(options)


def _check_ca_signature(
    signature_key: bytes, signature: bytes, signed: bytes, ca_algorithms: Collection[str]
) -> str:
    ca_type = public_key_type(signature_key)
    if ca_type in CERTIFIED_KEY_TYPES:
        raise CertificateError("certificate is signed by a certificate, not by a plain CA key")
    try:
        public_key_from_blob(signature_key)
    except SSHError as exc:
        raise CertificateError(f"certificate CA key is unusable: {exc.message}") from None
    algorithm, _ = parse_signature_blob(signature)
    if algorithm not in ca_algorithms:
        raise CertificateError(f"certificate is signed with disallowed algorithm {algorithm!r:.64}")
    try:
        verify_signature(algorithm, signature_key, signature, signed)
    except HostKeyError:
        raise CertificateError(
            f"certificate signature by CA {fingerprint_sha256(signature_key)} does not verify"
        ) from None
    return algorithm


def _utc(seconds: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (seconds since 1970)"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
