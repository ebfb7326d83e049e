"""Host key rotation against a real OpenSSH sshd (``hostkeys-00@openssh.com`` / ``hostkeys-prove-00``):
with UpdateHostKeys=yes the keys sshd has but known_hosts lacks are proven and learned (``ssh-keygen -F``
finds them afterwards), keys it no longer has are dropped, and with ``no`` the file is left alone. A proof
that does not verify is rejected: those signatures are made here with ``cryptography`` directly.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sshtui.net.client_connect import connect
from sshtui.net.hostkey_rotation import (
    HostKeyProofError,
    HostKeyUpdater,
    LearnedRotation,
    plan_rotation,
    verify_proofs,
)
from sshtui.options import resolve_settings
from sshtui.options_client import build_client_options
from sshtui.prompts import Prompter
from sshtui.ssh.crypto.hostkeys import public_blob_of
from sshtui.store.known_hosts import KnownHosts
from tests.sshd_fixture import SshdFactory, SshdServer

pytestmark = pytest.mark.interop


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def blob_of(pub_line: bytes) -> bytes:
    return base64.b64decode(pub_line.split()[1])


async def session(server: SshdServer, known_hosts: Path, home: Path, *options: str) -> HostKeyUpdater | None:
    """Connect, run a command, close; the UpdateHostKeys handler the connection used (ssh_config
    files of the machine apply as for any user, hence the explicit options)."""
    settings = resolve_settings(
        server.host,
        port=str(server.port),
        identity_files=[str(server.client_key)],
        options=[  # the first value of an option wins, so the test's own come first
            *options,
            f"UserKnownHostsFile={known_hosts}",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=15",
        ],
        home=home,
    )
    client_options = build_client_options(settings, Prompter(batch_mode=True))
    client = await connect(client_options)
    result = await client.run("echo rotated")
    assert result.stdout == b"rotated\n"
    await client.close()  # waits for an update under way
    handler = client_options.on_host_keys
    assert handler is None or isinstance(handler, HostKeyUpdater)
    return handler


def keygen_find(known_hosts: Path, server: SshdServer) -> list[bytes]:
    """The key blobs ``ssh-keygen -F`` finds for the server in ``known_hosts``."""
    done = subprocess.run(
        ["ssh-keygen", "-F", f"[{server.host}]:{server.port}", "-f", str(known_hosts)],
        capture_output=True, timeout=30, check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith(b"#")]
    return [base64.b64decode(line.split()[2]) for line in lines]


def _fingerprint(server: SshdServer, key_type: str) -> str:
    """As OpenSSH's own ssh-keygen computes it."""
    pub = f"{server.host_key_paths[key_type]}.pub"
    done = subprocess.run(["ssh-keygen", "-lf", pub], capture_output=True, text=True, check=True)
    return done.stdout.split()[1]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def two_key_server(sshd_factory: SshdFactory) -> SshdServer:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH ssh-keygen not installed")
    return sshd_factory(host_key_types=("ed25519", "ecdsa"))


@pytest.mark.parametrize("hashed", [False, True])
async def test_update_host_keys_yes_proves_and_learns_the_missing_key(
    two_key_server: SshdServer, tmp_path: Path, home: Path, hashed: bool
) -> None:
    server = two_key_server
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line("ed25519") + "\n")
    options = ["UpdateHostKeys=yes", f"HashKnownHosts={'yes' if hashed else 'no'}"]
    updater = await session(server, known, home, *options)

    keys = server.host_public_keys
    assert sorted(keygen_find(known, server)) == sorted([blob_of(keys["ed25519"]), blob_of(keys["ecdsa"])])
    new_line = known.read_text().splitlines()[1]
    assert new_line.startswith("|1|") == hashed
    assert updater is not None and updater.refused == []
    assert [record.added for record in updater.learned] == [
        (("ecdsa-sha2-nistp256", _fingerprint(server, "ecdsa")),)
    ]
    # The learned key is now trusted on its own: a connection offering only ECDSA succeeds.
    again = await session(server, known, home, "HostKeyAlgorithms=ecdsa-sha2-nistp256", "UpdateHostKeys=no")
    assert again is None


async def test_update_host_keys_no_leaves_the_file_alone(
    two_key_server: SshdServer, tmp_path: Path, home: Path
) -> None:
    known = tmp_path / "known_hosts"
    content = two_key_server.known_hosts_line("ed25519") + "\n"
    known.write_text(content)
    assert await session(two_key_server, known, home, "UpdateHostKeys=no") is None
    assert known.read_text() == content
    # Batch mode's default is "no" too (interactive sessions default to asking).
    assert await session(two_key_server, known, home) is None
    assert known.read_text() == content


@pytest.mark.parametrize("answer", [False, True])
async def test_update_host_keys_ask_shows_the_new_keys_and_obeys_the_answer(
    two_key_server: SshdServer, tmp_path: Path, home: Path, answer: bool
) -> None:
    server = two_key_server
    known = tmp_path / "known_hosts"
    content = server.known_hosts_line("ed25519") + "\n"
    known.write_text(content)
    questions: list[str] = []

    async def confirm(question: str) -> bool:
        questions.append(question)
        return answer

    settings = resolve_settings(
        server.host, port=str(server.port), identity_files=[str(server.client_key)],
        options=[f"UserKnownHostsFile={known}", "BatchMode=yes", "IdentitiesOnly=yes", "HashKnownHosts=no"],
        home=home,
    )
    options = build_client_options(settings, Prompter(batch_mode=True))
    updater = HostKeyUpdater([known], "ask", accepted_key_types={"ssh-ed25519", "ecdsa-sha2-nistp256"},
                             confirm=confirm)
    options.on_host_keys = updater
    client = await connect(options)
    await client.run("true")
    await client.close()

    assert len(questions) == 1
    assert f"new ecdsa-sha2-nistp256 key {_fingerprint(server, 'ecdsa')}" in questions[0]
    assert f"Update {known}" in questions[0]
    if answer:
        assert blob_of(server.host_public_keys["ecdsa"]) in keygen_find(known, server)
    else:
        assert known.read_text() == content and updater.learned == []


async def test_keys_the_server_no_longer_has_are_removed(
    two_key_server: SshdServer, tmp_path: Path, home: Path
) -> None:
    server = two_key_server
    retired = ec.generate_private_key(ec.SECP384R1()).public_key()
    retired_line = f"[{server.host}]:{server.port} ecdsa-sha2-nistp384 " + base64.b64encode(
        public_blob_of(retired)
    ).decode()
    shared_line = f"[{server.host}]:{server.port},otherhost ecdsa-sha2-nistp384 " + base64.b64encode(
        public_blob_of(retired)
    ).decode()
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([server.known_hosts_line("ed25519"), retired_line, shared_line]) + "\n")
    updater = await session(server, known, home, "UpdateHostKeys=yes")

    lines = known.read_text().splitlines()
    assert retired_line not in lines
    assert shared_line in lines  # it also names another host: not ours to drop
    assert blob_of(server.host_public_keys["ecdsa"]) in keygen_find(known, server)
    assert (tmp_path / "known_hosts.old").read_text().splitlines()[1] == retired_line
    assert updater is not None and len(updater.learned) == 1
    record: LearnedRotation = updater.learned[0]
    assert [key_type for key_type, _ in record.removed] == ["ecdsa-sha2-nistp384"]
    assert "removed ecdsa-sha2-nistp384 key" in record.describe()


async def test_no_update_when_the_key_was_not_already_trusted(
    two_key_server: SshdServer, tmp_path: Path, home: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    # Learned just now (accept-new), the key cannot vouch for the server's other keys.
    await session(two_key_server, known, home, "UpdateHostKeys=yes", "StrictHostKeyChecking=accept-new")
    assert keygen_find(known, two_key_server) == [blob_of(two_key_server.host_public_keys["ed25519"])]


async def test_rsa_key_is_proven_with_a_sha2_signature(
    sshd_factory: SshdFactory, tmp_path: Path, home: Path
) -> None:
    server = sshd_factory(host_key_types=("ed25519", "rsa"))
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line("ed25519") + "\n")
    updater = await session(server, known, home, "UpdateHostKeys=yes")
    assert updater is not None and updater.refused == []
    assert blob_of(server.host_public_keys["rsa"]) in keygen_find(known, server)


# --- the proof verifier, with signatures made independently ------------------------------------------


def _ed25519_blob(key: ed25519.Ed25519PrivateKey) -> bytes:
    return _string(b"ssh-ed25519") + _string(key.public_key().public_bytes_raw())


def _proof(key: ed25519.Ed25519PrivateKey, session_id: bytes, key_blob: bytes) -> bytes:
    signed = _string(b"hostkeys-prove-00@openssh.com") + _string(session_id) + _string(key_blob)
    return _string(_string(b"ssh-ed25519") + _string(key.sign(signed)))


def test_valid_proofs_pass() -> None:
    session_id = os.urandom(32)
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(2)]
    blobs = [_ed25519_blob(k) for k in keys]
    verify_proofs(blobs, b"".join(_proof(k, session_id, b) for k, b in zip(keys, blobs, strict=True)),
                  session_id, "ssh-ed25519")


FORGERIES = ["wrong key", "other session", "other key blob", "swapped", "missing", "extra"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_proof_is_rejected(forgery: str) -> None:
    session_id = os.urandom(32)
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(2)]
    blobs = [_ed25519_blob(k) for k in keys]
    proofs = [_proof(k, session_id, b) for k, b in zip(keys, blobs, strict=True)]
    if forgery == "wrong key":
        proofs[1] = _proof(ed25519.Ed25519PrivateKey.generate(), session_id, blobs[1])
    elif forgery == "other session":
        proofs[1] = _proof(keys[1], os.urandom(32), blobs[1])
    elif forgery == "other key blob":
        proofs[1] = _proof(keys[1], session_id, blobs[0])
    elif forgery == "swapped":
        proofs.reverse()
    elif forgery == "missing":
        proofs.pop()
    else:
        proofs.append(proofs[0])
    with pytest.raises(HostKeyProofError):
        verify_proofs(blobs, b"".join(proofs), session_id, "ssh-ed25519")


def test_plan_only_offers_usable_unknown_keys(tmp_path: Path) -> None:
    known_key = _ed25519_blob(ed25519.Ed25519PrivateKey.generate())
    new_key = _ed25519_blob(ed25519.Ed25519PrivateKey.generate())
    revoked_key = _ed25519_blob(ed25519.Ed25519PrivateKey.generate())
    ecdsa_key = public_blob_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    path = tmp_path / "known_hosts"
    path.write_text(
        f"[h]:2222 ssh-ed25519 {base64.b64encode(known_key).decode()}\n"
        f"@revoked * ssh-ed25519 {base64.b64encode(revoked_key).decode()}\n"
    )
    known = KnownHosts.load([path])
    offered = [known_key, new_key, revoked_key, ecdsa_key, b"\x00\x00\x00\x03bad", new_key]
    plan = plan_rotation(known, path, "h", 2222, offered, {"ssh-ed25519"})
    assert plan.new_keys == (new_key,)  # no revoked, unparsable, duplicate or unaccepted (ECDSA) key
    assert plan.stale == ()
