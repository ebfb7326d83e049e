"""The host key trust policy, as OpenSSH's ssh_config(5) StrictHostKeyChecking, UserKnownHostsFile
and HashKnownHosts (RFC 4251 §4.1: the client must check that the host key really belongs to the host).

A changed or revoked key always refuses the connection. An unknown key is refused (``yes``), learned
silently (``accept-new``, ``no``) or learned once the user agrees (``ask``). Learned keys are appended
to the first known_hosts file; the others (such as /etc/ssh/ssh_known_hosts) are only read.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sshtui.ssh.crypto.hostkeys import HOST_KEY_ALGORITHMS, public_key_type
from sshtui.ssh.errors import HostKeyError, HostKeyRejected, LocalProtocolError
from sshtui.store import known_hosts
from sshtui.store.known_hosts import KnownHosts, KnownHostsError, KnownHostsWarning, TrustDecision

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


AskUser = Callable[[UnknownHostQuestion], Awaitable[bool]]


@dataclass
class TrustPolicy:
    """StrictHostKeyChecking applied to the host keys servers present; see ``verify``."""

    known_hosts_files: Sequence[Path]
    strict: str = "ask"
    hash_known_hosts: bool = False
    ask: AskUser | None = None  # None behaves like strict="yes" (OpenSSH's BatchMode)

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
        spec = HOST_KEY_ALGORITHMS.get(algorithm)
        if spec is not None and spec.key_type != key_type:
            raise HostKeyError(f"host key is {key_type!r:.64} but {algorithm} was negotiated")
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


# --- messages ----------------------------------------------------------------------------------


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
