"""The host key trust policy, as OpenSSH's ssh_config(5) StrictHostKeyChecking, UserKnownHostsFile
and HashKnownHosts (RFC 4251 §4.1: the client must check that the host key really belongs to the host).

A changed or revoked key always refuses the connection. An unknown key is refused (``yes``), learned
silently (``accept-new``, ``no``) or learned once the user agrees (``ask``). Learned keys are appended
to the first known_hosts file; the others (such as /etc/ssh/ssh_known_hosts) are only read.

A host certificate (OpenSSH PROTOCOL.certkeys) is trusted through the ``@cert-authority`` line of
its CA; an expired, misnamed or revoked one is refused. With no line for its CA, the certified key
is judged as a plain key, as ssh(1) does.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sshtui.ssh.config import ECDSA_HOST_KEY_ALGORITHMS
from sshtui.ssh.crypto.certificates import Certificate, is_certificate_type, parse_certificate
from sshtui.ssh.crypto.hostkeys import (
    CERTIFICATE_HOST_KEY_ALGORITHMS,
    SUPPORTED_HOST_KEY_ALGORITHMS,
    fingerprint_sha256,
    public_key_type,
)
from sshtui.ssh.errors import HostKeyError, HostKeyRejected, LocalProtocolError, SSHError
from sshtui.store import known_hosts
from sshtui.store.known_hosts import (
    CertificateDecision,
    KnownHosts,
    KnownHostsError,
    KnownHostsWarning,
    TrustDecision,
)

StrictMode = Literal["yes", "accept-new", "no", "ask"]
OutcomeStatus = Literal["trusted", "learned", "accepted-once"]

# OpenSSH's spellings of StrictHostKeyChecking (readconf.c accepts true/false and off as well).
_STRICT_VALUES: dict[str, StrictMode] = {
    "yes": "yes",
    "true": "yes",
    "accept-new": "accept-new",
    "no": "no",
    "off": "no",
    "false": "no",
    "ask": "ask",
}


class HostKeyTrustError(HostKeyRejected):
    """The host key was refused; ``decision`` holds the known_hosts lines behind the refusal."""

    def __init__(self, message: str, decision: TrustDecision):
        super().__init__(message)
        self.decision = decision


class HostKeyChanged(HostKeyTrustError):
    """known_hosts holds a different key of the same type for this host."""


class HostKeyRevoked(HostKeyTrustError):
    """The key is listed on a ``@revoked`` line."""


class HostKeyUnknown(HostKeyTrustError):
    """No key of this type is known for the host and the policy (or the user) did not accept it."""


class HostCertificateInvalid(HostKeyTrustError):
    """A host certificate from a trusted CA that is not valid here: expired, not yet valid, not
    naming this host, not a host certificate, or unreadable."""


@dataclass(frozen=True, slots=True)
class UnknownHostQuestion:
    """What to show the user before accepting a key seen for the first time."""

    host: str
    port: int
    key_type: str
    fingerprint: str
    known_types: tuple[str, ...] = ()  # other key types already known for this host

    @property
    def prompt(self) -> str:
        """The question in OpenSSH's words, ending with the yes/no question."""
        where = self.host if self.port == known_hosts.DEFAULT_PORT else f"{self.host} (port {self.port})"
        lines = [
            f"The authenticity of host '{where}' can't be established.",
            f"{self.key_type} key fingerprint is {self.fingerprint}.",
        ]
        if self.known_types:
            lines.append(
                f"Keys of other types are already known for this host ({', '.join(self.known_types)}),"
                " but not this one."
            )
        lines.append("Are you sure you want to continue connecting (yes/no)?")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TrustOutcome:
    """Why the connection may go on: the key was known, learned (written to ``written_to``), or
    accepted for this connection only because it could not be saved (``notice`` says why)."""

    status: OutcomeStatus
    decision: TrustDecision
    written_to: Path | None = None
    notice: str = ""
    warnings: tuple[KnownHostsWarning, ...] = ()
    certificate: Certificate | None = None  # set when a host certificate was trusted through its CA


AskUser = Callable[[UnknownHostQuestion], Awaitable[bool]]


@dataclass
class TrustPolicy:
    """StrictHostKeyChecking applied to the host keys servers present; see ``verify``."""

    known_hosts_files: Sequence[Path]
    strict: str = "ask"
    hash_known_hosts: bool = False
    ask: AskUser | None = None  # None behaves like strict="yes" (OpenSSH's BatchMode)
    clock: Callable[[], float] = field(default=time.time, repr=False)  # judges certificate validity

    def __post_init__(self) -> None:
        mode = _STRICT_VALUES.get(self.strict.lower())
        if mode is None:
            raise LocalProtocolError(
                f"StrictHostKeyChecking must be yes, accept-new, no, off or ask, not {self.strict!r:.40}"
            )
        self.strict = mode

    async def verify(self, host: str, port: int, algorithm: str, key_blob: bytes) -> TrustOutcome:
        """Decide on the server's host key; raises a HostKeyTrustError when it must not be used."""
        key_type = public_key_type(key_blob)
        spec = SUPPORTED_HOST_KEY_ALGORITHMS.get(algorithm)
        if spec is not None and spec.key_type != key_type:
            raise HostKeyError(f"host key is {key_type!r:.64} but {algorithm} was negotiated")
        if is_certificate_type(key_type):
            return await self._verify_certificate(host, port, key_blob)
        return await self._verify_key(host, port, key_blob)

    async def _verify_certificate(self, host: str, port: int, cert_blob: bytes) -> TrustOutcome:
        try:
            cert = parse_certificate(cert_blob)
        except SSHError as exc:
            decision = TrustDecision(
                "unknown", host, port, public_key_type(cert_blob), fingerprint_sha256(cert_blob)
            )
            message = _certificate_message(decision.lookup_name, exc.message)
            raise HostCertificateInvalid(message, decision) from None
        known = KnownHosts.load(self.known_hosts_files)
        verdict = known.check_certificate(host, port, cert, self.clock())
        if verdict.status == "trusted":
            decision = verdict.as_trust_decision()
            return TrustOutcome("trusted", decision, warnings=known.warnings, certificate=cert)
        if verdict.status == "revoked":
            raise HostKeyRevoked(_revoked_certificate_message(verdict), verdict.as_trust_decision())
        if verdict.status == "invalid":
            # ssh(1) retries with the certified key as a plain key: a known_hosts line for it still counts.
            plain = known.check(host, port, cert.public_blob)
            if plain.status == "trusted":
                notice = f"host certificate refused ({verdict.problem}); the key itself is known."
                return TrustOutcome("trusted", plain, notice=notice, warnings=known.warnings)
            message = _certificate_message(verdict.lookup_name, verdict.problem, verdict)
            raise HostCertificateInvalid(message, verdict.as_trust_decision())
        return await self._verify_key(host, port, cert.public_blob)

    async def _verify_key(self, host: str, port: int, key_blob: bytes) -> TrustOutcome:
        known = KnownHosts.load(self.known_hosts_files)
        decision = self._refuse_if_bad(known.check(host, port, key_blob))
        if decision.status == "trusted":
            return TrustOutcome("trusted", decision, warnings=known.warnings)
        mode = self.strict
        if mode == "ask" and self.ask is None:
            mode = "yes"  # nobody to ask, as in OpenSSH's BatchMode
        if mode == "yes":
            raise HostKeyUnknown(_unknown_message(decision, asked=False), decision)
        if mode == "ask":
            assert self.ask is not None
            question = UnknownHostQuestion(
                host, port, decision.key_type, decision.fingerprint, tuple(sorted(decision.known_types))
            )
            if not await self.ask(question):
                raise HostKeyUnknown(_unknown_message(decision, asked=True), decision)
            # The files may have changed while the user was thinking (another connection, an edit).
            known = KnownHosts.load(self.known_hosts_files)
            decision = self._refuse_if_bad(known.check(host, port, key_blob))
            if decision.status == "trusted":
                return TrustOutcome("trusted", decision, warnings=known.warnings)
        return self._learn(decision, key_blob, known.warnings)

    def _refuse_if_bad(self, decision: TrustDecision) -> TrustDecision:
        if decision.status == "revoked":
            raise HostKeyRevoked(_revoked_message(decision), decision)
        if decision.status == "changed":
            raise HostKeyChanged(_changed_message(decision), decision)
        return decision

    def _learn(
        self, decision: TrustDecision, key_blob: bytes, warnings: tuple[KnownHostsWarning, ...]
    ) -> TrustOutcome:
        what = f"'{decision.lookup_name}' ({decision.key_type})"
        if not self.known_hosts_files:
            notice = f"Accepted {what} for this connection only: no known_hosts file is configured."
            return TrustOutcome("accepted-once", decision, notice=notice, warnings=warnings)
        target = Path(self.known_hosts_files[0])
        try:
            known_hosts.add(target, decision.host, decision.port, key_blob, hashed=self.hash_known_hosts)
        except KnownHostsError as exc:
            notice = f"Accepted {what} for this connection only: failed to add it to {target}: {exc}"
            return TrustOutcome("accepted-once", decision, notice=notice, warnings=warnings)
        notice = f"Permanently added {what} to the list of known hosts ({target})."
        return TrustOutcome("learned", decision, written_to=target, notice=notice, warnings=warnings)


def certificates_first(offer: Sequence[str]) -> tuple[str, ...]:
    """The host key algorithms to offer when a ``@cert-authority`` line covers the host: the
    certificate forms of the offered algorithms (and of ECDSA, common for host certificates) go
    first, as ssh(1) orders them, so that the server presents its certificate."""
    plain = (*offer, *(a for a in ECDSA_HOST_KEY_ALGORITHMS if a not in offer))
    certs = [f"{a}-cert-v01@openssh.com" for a in plain]
    certs = [a for a in certs if a in CERTIFICATE_HOST_KEY_ALGORITHMS and a not in offer]
    return (*certs, *offer)


# --- messages ----------------------------------------------------------------------------------


def _certificate_message(name: str, problem: str, verdict: CertificateDecision | None = None) -> str:
    lines = [f"The host certificate of {name} was refused: {problem}."]
    if verdict is not None:
        cert = verdict.certificate
        lines.append(
            f"Certificate {cert.key_id!r:.80} (serial {cert.serial}) for {', '.join(cert.principals)[:200]},"
            f" valid {cert.validity}, signed by CA {cert.ca_fingerprint}"
            + (f" ({verdict.authority.location})." if verdict.authority is not None else ".")
        )
    lines.append("Host key verification failed.")
    return "\n".join(lines)


def _revoked_certificate_message(verdict: CertificateDecision) -> str:
    return (
        f"WARNING: REVOKED HOST CERTIFICATE DETECTED for {verdict.lookup_name}!\n"
        f"The {verdict.certificate.key_type} certificate was refused: {verdict.problem}.\n"
        "This could mean that a stolen key is being used to impersonate this host.\n"
        "Host key verification failed."
    )


def _remove_commands(decision: TrustDecision, entries: Sequence[known_hosts.KnownHostEntry]) -> list[str]:
    name = shlex.quote(decision.lookup_name)
    files = dict.fromkeys(str(entry.path) for entry in entries)
    commands = [f"  ssh-keygen -R {name} -f {shlex.quote(path)}" for path in files]
    commands.append(f"  sshtui known-hosts remove {name}")
    return commands


def _changed_message(decision: TrustDecision) -> str:
    lines = [
        f"WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for {decision.lookup_name}!",
        "Someone could be eavesdropping on you right now (man-in-the-middle attack),"
        " or the host key has just been changed.",
        f"The {decision.key_type} key sent by the remote host is {decision.fingerprint}.",
    ]
    lines += [
        f"Offending {entry.key_type} key in {entry.location} ({entry.fingerprint})"
        for entry in decision.conflicts
    ]
    lines.append("If you are sure the new key is right, remove the old one, then connect again:")
    lines += _remove_commands(decision, decision.conflicts)
    lines.append("Host key verification failed.")
    return "\n".join(lines)


def _revoked_message(decision: TrustDecision) -> str:
    where = f" at {decision.matched.location}" if decision.matched is not None else ""
    return (
        f"WARNING: REVOKED HOST KEY DETECTED for {decision.lookup_name}!\n"
        f"The {decision.key_type} key {decision.fingerprint} is marked as revoked{where}.\n"
        "This could mean that a stolen key is being used to impersonate this host.\n"
        "Host key verification failed."
    )


def _unknown_message(decision: TrustDecision, *, asked: bool) -> str:
    if asked:
        lines = [
            f"The {decision.key_type} key {decision.fingerprint} of {decision.lookup_name} was not accepted."
        ]
    else:
        lines = [
            f"No {decision.key_type} host key is known for {decision.lookup_name} and strict host key"
            " checking (StrictHostKeyChecking=yes or batch mode) forbids adding one.",
            f"The server's {decision.key_type} key fingerprint is {decision.fingerprint}; check it with the"
            " server's administrator, then add it (for example by connecting once with"
            " StrictHostKeyChecking=accept-new).",
        ]
    if decision.other_types:
        known = ", ".join(f"{entry.key_type} in {entry.location}" for entry in decision.other_types)
        lines.append(f"Keys of other types are already known for this host: {known}.")
    lines.append("Host key verification failed.")
    return "\n".join(lines)
