"""Host key rotation, client side: OpenSSH's ``hostkeys-00@openssh.com`` and
``hostkeys-prove-00@openssh.com`` global requests (OpenSSH PROTOCOL §2.5) and ssh_config(5)
UpdateHostKeys.

After authentication the server lists every host key it has. When the key this connection was
verified with is trusted by a plain known_hosts line, the keys not known yet are sent back in a
``hostkeys-prove-00@openssh.com`` request; the server answers with one signature per key over
``string "hostkeys-prove-00@openssh.com" || string session_id || string key``. Proven keys are
appended to the user's known_hosts file (hashed per HashKnownHosts), and lines naming only this
host whose key the server no longer has are removed, as ssh(1) does.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sshtui.net.trust import TrustOutcome
from sshtui.ssh.crypto.certificates import is_certificate_type
from sshtui.ssh.crypto.hostkeys import (
    HOST_KEY_ALGORITHMS,
    SUPPORTED_HOST_KEY_ALGORITHMS,
    fingerprint_sha256,
    parse_signature_blob,
    public_key_from_blob,
    public_key_type,
    verify_signature,
)
from sshtui.ssh.errors import HostKeyError, LocalProtocolError, SSHError
from sshtui.ssh.messages import connection as m
from sshtui.ssh.wire import WireReader, string
from sshtui.store import known_hosts
from sshtui.store.known_hosts import KnownHostEntry, KnownHosts, KnownHostsError

if TYPE_CHECKING:
    from sshtui.net.client import SSHClient

UpdateMode = Literal["yes", "no", "ask"]
UPDATE_MODES: dict[str, UpdateMode] = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "ask": "ask"}
PROVE_REQUEST = m.HostkeysProve.NAME
# RSA keys prove themselves with SHA-2 signatures; SHA-1 only when the key exchange used it too.
_RSA_PROOF_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256")

Confirm = Callable[[str], Awaitable[bool]]


class HostKeyProofError(HostKeyError):
    """The server's answer to ``hostkeys-prove-00@openssh.com`` does not prove it holds the keys."""


@dataclass(frozen=True, slots=True)
class RotationPlan:
    """What the server's key list means for the known_hosts files."""

    host: str
    port: int
    new_keys: tuple[bytes, ...]  # offered, usable and not known yet: to be proven
    stale: tuple[KnownHostEntry, ...]  # user-file lines naming only this host, key no longer offered

    @property
    def empty(self) -> bool:
        return not self.new_keys and not self.stale


@dataclass(frozen=True, slots=True)
class LearnedRotation:
    """A change made to known_hosts, for the UI: ``(key type, fingerprint)`` added and removed."""

    host: str
    port: int
    path: Path
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        name = known_hosts.host_lookup_name(self.host, self.port)
        lines = [f"Updated the host keys of {name} in {self.path}:"]
        lines += [f"  learned {key_type} key {fingerprint}" for key_type, fingerprint in self.added]
        lines += [f"  removed {key_type} key {fingerprint}" for key_type, fingerprint in self.removed]
        return "\n".join(lines)


def prove_signed_data(session_id: bytes, key_blob: bytes) -> bytes:
    """What the server signs with each host key it is asked to prove."""
    return string(PROVE_REQUEST) + string(session_id) + string(key_blob)


def proof_algorithms(key_type: str, kex_algorithm: str) -> tuple[str, ...]:
    """The signature algorithms a proof by a ``key_type`` key may use, given the negotiated host
    key algorithm: for RSA the negotiated one when it was RSA, else SHA-2 either way."""
    if key_type != "ssh-rsa":
        return (key_type,)
    negotiated = HOST_KEY_ALGORITHMS.get(kex_algorithm)
    if negotiated is not None and negotiated.key_type == "ssh-rsa":
        return (kex_algorithm,)
    return _RSA_PROOF_ALGORITHMS


def verify_proofs(keys: Sequence[bytes], reply: bytes, session_id: bytes, kex_algorithm: str) -> None:
    """Check the reply to ``hostkeys-prove-00@openssh.com``: one signature per key, in order.

    Raises HostKeyProofError naming the key whose proof is missing, malformed or wrong.
    """
    r = WireReader(reply, "hostkeys-prove-00@openssh.com reply")
    for key_blob in keys:
        key_type = public_key_type(key_blob)
        what = f"{key_type} key {fingerprint_sha256(key_blob)}"
        try:
            signature = r.string("signature")
            algorithm, _ = parse_signature_blob(signature)
            allowed = proof_algorithms(key_type, kex_algorithm)
            if algorithm not in allowed:
                expected = " or ".join(allowed)
                raise HostKeyProofError(f"{what}: proof signed with {algorithm!r:.64}, expected {expected}")
            verify_signature(algorithm, key_blob, signature, prove_signed_data(session_id, key_blob))
        except HostKeyProofError:
            raise
        except SSHError as exc:
            raise HostKeyProofError(f"the server did not prove it holds the {what}: {exc.message}") from None
    if r.remaining:
        raise HostKeyProofError(f"hostkeys-prove-00@openssh.com reply: {r.remaining} bytes after the proofs")


def plan_rotation(
    known: KnownHosts,
    user_file: Path,
    host: str,
    port: int,
    offered: Sequence[bytes],
    accepted_key_types: Collection[str],
) -> RotationPlan:
    """Compare the server's keys with known_hosts.

    Certificates, revoked keys, keys we cannot parse and types outside ``accepted_key_types``
    (from HostKeyAlgorithms) are ignored, as ssh(1) ignores them. Only ``user_file`` lines that
    name this host alone (plainly or hashed) are ever candidates for removal.
    """
    usable: list[bytes] = []
    for blob in dict.fromkeys(offered):
        try:
            key_type = public_key_type(blob)
            if is_certificate_type(key_type) or key_type not in accepted_key_types:
                continue
            public_key_from_blob(blob)
        except SSHError:
            continue
        if known.check(host, port, blob).status != "revoked":
            usable.append(blob)
    entries = [entry for entry in known.entries_for(host, port) if entry.marker is None]
    known_blobs = {entry.key_blob for entry in entries}
    new_keys = tuple(blob for blob in usable if blob not in known_blobs)
    offered_set = set(offered)
    stale = tuple(
        entry
        for entry in entries
        if entry.path == user_file and entry.key_blob not in offered_set and _names_only(entry, host, port)
    )
    return RotationPlan(host, port, new_keys, stale)


def _names_only(entry: KnownHostEntry, host: str, port: int) -> bool:
    hosts = entry.hosts
    name = known_hosts.host_lookup_name(host, port)
    return hosts.hashed or (len(hosts.patterns) == 1 and hosts.patterns[0] == (False, name, False))


class HostKeyUpdater:
    """``ClientOptions.on_host_keys``: handles ``hostkeys-00@openssh.com`` once per connection.

    ``mode`` is UpdateHostKeys: ``ask`` needs ``confirm`` (without it nothing changes). Each
    change made is appended to ``learned`` and passed to ``on_learned``.
    """

    def __init__(
        self,
        known_hosts_files: Sequence[Path],
        mode: str,
        *,
        accepted_key_types: Collection[str],
        hash_known_hosts: bool = False,
        confirm: Confirm | None = None,
        on_learned: Callable[[LearnedRotation], None] | None = None,
    ) -> None:
        update = UPDATE_MODES.get(mode.lower())
        if update is None:
            raise LocalProtocolError(f"UpdateHostKeys must be yes, no or ask, not {mode!r:.40}")
        self.mode: UpdateMode = update
        self.known_hosts_files = tuple(known_hosts_files)
        self.accepted_key_types = frozenset(accepted_key_types)
        self.hash_known_hosts = hash_known_hosts
        self.confirm = confirm
        self.on_learned = on_learned
        self.learned: list[LearnedRotation] = []
        self.refused: list[str] = []  # why a server's key list was not acted on, in words
        self._seen: weakref.WeakSet[SSHClient] = weakref.WeakSet()  # clients whose list was handled

    async def __call__(self, client: SSHClient, request: m.Hostkeys) -> LearnedRotation | None:
        if self.mode == "no" or not self.known_hosts_files or client in self._seen:
            return None
        self._seen.add(client)
        outcome = client.host_key_outcome
        current = client.server_host_key
        transport = client.conn.transport
        session_id, negotiated = transport.session_id, transport.negotiated
        if session_id is None or negotiated is None or current is None:
            return None
        if not isinstance(outcome, TrustOutcome) or outcome.status != "trusted" or outcome.certificate:
            return None  # only a key trusted by a plain known_hosts line may vouch for others
        if is_certificate_type(public_key_type(current)):
            return None  # as ssh(1): no updates while a host certificate is in use
        if current not in request.keys:
            self.refused.append("the server's key list does not include the key it authenticated with")
            return None
        host, port = client.options.host, client.options.port
        user_file = Path(self.known_hosts_files[0])
        known = KnownHosts.load(self.known_hosts_files)
        plan = plan_rotation(known, user_file, host, port, request.keys, self.accepted_key_types)
        if plan.empty:
            return None
        if plan.new_keys:
            prove = m.HostkeysProve(plan.new_keys).encode_data()
            ok, reply = await client.global_request(PROVE_REQUEST, prove)
            if not ok:
                self.refused.append("the server refused to prove its new host keys")
                return None
            try:
                verify_proofs(plan.new_keys, reply, session_id, negotiated.host_key)
            except HostKeyProofError as exc:
                self.refused.append(exc.message)
                return None
        if self.mode == "ask" and not await self._agreed(plan, user_file):
            return None
        return self._apply(plan, user_file)

    async def _agreed(self, plan: RotationPlan, user_file: Path) -> bool:
        if self.confirm is None:
            return False
        name = known_hosts.host_lookup_name(plan.host, plan.port)
        lines = [f"The server {name} proved it holds new host keys:" if plan.new_keys else ""]
        lines += [f"  new {public_key_type(b)} key {fingerprint_sha256(b)}" for b in plan.new_keys]
        if plan.stale:
            lines.append("It no longer has these keys, known from your known_hosts file:")
            lines += [f"  old {entry.key_type} key {entry.fingerprint}" for entry in plan.stale]
        lines.append(f"Update {user_file} accordingly? (yes/no)")
        return await self.confirm("\n".join(line for line in lines if line))

    def _apply(self, plan: RotationPlan, user_file: Path) -> LearnedRotation | None:
        # The file may have changed since the plan was made (another connection, an edit).
        known = KnownHosts.load(self.known_hosts_files)
        still_known = {entry.key_blob for entry in known.entries_for(plan.host, plan.port)}
        added: list[tuple[str, str]] = []
        try:
            for blob in plan.new_keys:
                if blob not in still_known:
                    known_hosts.add(user_file, plan.host, plan.port, blob, hashed=self.hash_known_hosts)
                    added.append((public_key_type(blob), fingerprint_sha256(blob)))
            stale_blobs = {entry.key_blob for entry in plan.stale}
            removed_count = known_hosts.remove_keys(user_file, plan.host, plan.port, stale_blobs)
        except KnownHostsError as exc:
            self.refused.append(exc.message)
            return None
        removed = tuple((e.key_type, e.fingerprint) for e in plan.stale) if removed_count else ()
        if not added and not removed:
            return None
        record = LearnedRotation(plan.host, plan.port, user_file, tuple(added), removed)
        self.learned.append(record)
        if self.on_learned is not None:
            self.on_learned(record)
        return record


def accepted_key_types(algorithms: Iterable[str]) -> frozenset[str]:
    """The plain key types that host key algorithms (certificate ones included) stand for."""
    types = set()
    for name in algorithms:
        spec = SUPPORTED_HOST_KEY_ALGORITHMS.get(name)
        if spec is not None:
            types.add(HOST_KEY_ALGORITHMS[spec.certified].key_type if spec.certified else spec.key_type)
    return frozenset(types)


def yes_no(ask: Callable[[str], Awaitable[str | None]]) -> Confirm:
    """A ``confirm`` from a prompt function: only an answer of "yes" agrees."""

    async def confirm(question: str) -> bool:
        answer = await ask(question + " ")
        return answer is not None and answer.strip().lower() == "yes"

    return confirm
