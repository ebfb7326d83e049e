"""Identity files against the embedded server: encrypted keys without their ``.pub`` are unlocked and
offered, wrong passphrases are asked again a bounded number of times, cancelling moves on, and a
failed authentication says which keys were skipped and why (RFC 4252 §7)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sshtui.net.auth import MAX_PASSPHRASE_TRIES, AuthenticationFailed, AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import connect
from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, hash_password
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.store.keyfiles import read_private_key
from sshtui.store.keys import encode_private_key

pytestmark = pytest.mark.timeout(60)

HOST_KEY = PrivateKey.generate("ed25519")
PASSPHRASE = "open sesame"
PASSWORD = "correct horse battery staple"


@dataclass
class Answers:
    """A prompt that gives the next scripted answer and remembers each question."""

    replies: list[str | None]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, prompt: str) -> str | None:
        self.asked.append(prompt)
        return self.replies.pop(0) if self.replies else None


def write_openssh_key(path: Path, passphrase: str | None) -> bytes:
    """An OpenSSH-format key file (public half readable without the passphrase), no ``.pub``."""
    key = PrivateKey.generate("ed25519")
    path.write_bytes(encode_private_key(key, "test", passphrase.encode() if passphrase else None))
    path.chmod(0o600)
    return key.public_blob


def write_pem_key(path: Path, passphrase: str) -> bytes:
    """A PEM (SEC1) key encrypted the traditional way: its public half is hidden too."""
    raw = ec.generate_private_key(ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(passphrase.encode())
    pem = serialization.Encoding.PEM
    path.write_bytes(raw.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, encryption))
    path.chmod(0o600)
    return read_private_key(path, passphrase.encode()).public_blob


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Two encrypted keys the server accepts (OpenSSH and PEM format), one it does not; no ``.pub``."""
    paths = {name: tmp_path / name for name in ("openssh", "pem", "stranger")}
    accepted = [write_openssh_key(paths["openssh"], PASSPHRASE), write_pem_key(paths["pem"], PASSPHRASE)]
    write_openssh_key(paths["stranger"], PASSPHRASE)
    authorized = "".join(openssh_public_line(blob, "test") + "\n" for blob in accepted)
    (tmp_path / "authorized").write_text(authorized)
    return paths


@pytest.fixture
async def server(home: Path, tmp_path: Path, keys: dict[str, Path]) -> AsyncIterator[SSHServer]:
    options = ServerOptions(
        [HOST_KEY],
        port=0,
        authorized_keys=AuthorizedKeys.parse((tmp_path / "authorized").read_text()),
        passwords=PasswordFile.parse(f"tester:{hash_password(PASSWORD)}"),
        auth_failure_delay=0.01,
        shell="/bin/sh",
    )
    async with await start_server(options) as srv:
        yield srv


async def authenticate(server: SSHServer, auth: AuthOptions) -> list[str]:
    """Connect and return the methods of the attempts the server answered, in order."""
    options = ClientOptions("127.0.0.1", server.port, "tester", auth=auth, connect_timeout=20)
    async with await connect(options) as client:
        return [f"{a.method}:{a.result}" for a in client.snapshot().auth]


def file_auth(paths: Sequence[Path], passphrase: Answers | None, **extra: Any) -> AuthOptions:
    return AuthOptions(
        identity_files=tuple(paths), identities_only=True, passphrase_prompt=passphrase, **extra
    )


@pytest.mark.parametrize("kind", ["openssh", "pem"])
async def test_encrypted_key_without_pub_is_unlocked_and_offered(
    server: SSHServer, keys: dict[str, Path], kind: str
) -> None:
    prompt = Answers([PASSPHRASE])
    attempts = await authenticate(server, file_auth([keys[kind]], prompt))
    assert attempts[-1] == "publickey:success"
    assert prompt.asked == [f"Enter passphrase for key '{keys[kind]}': "]


async def test_a_key_the_server_refuses_is_never_asked_about(
    server: SSHServer, keys: dict[str, Path]
) -> None:
    prompt = Answers([PASSPHRASE])
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticate(server, file_auth([keys["stranger"]], prompt))
    assert prompt.asked == []  # its public half was read from the file and the server said no
    assert f"publickey ssh-ed25519 ({keys['stranger']})" in failed.value.message


@pytest.mark.parametrize("kind", ["openssh", "pem"])
async def test_wrong_passphrase_is_asked_again_then_the_next_method_runs(
    server: SSHServer, keys: dict[str, Path], kind: str
) -> None:
    prompt = Answers(["wrong"] * 5)
    notices: list[str] = []
    password = Answers([PASSWORD])
    auth = file_auth([keys[kind]], prompt, password_prompt=password, notice_callback=notices.append)
    attempts = await authenticate(server, auth)
    assert attempts[-1] == "password:success"
    first = f"Enter passphrase for key '{keys[kind]}': "
    again = f"Bad passphrase, try again for key '{keys[kind]}': "
    assert prompt.asked == [first] + [again] * (MAX_PASSPHRASE_TRIES - 1)
    tries = MAX_PASSPHRASE_TRIES
    assert notices == [f"{keys[kind]}: wrong passphrase {tries} times; going on without this key"]


@pytest.mark.parametrize("answer", [None, ""])
async def test_cancelling_or_an_empty_answer_moves_on(
    server: SSHServer, keys: dict[str, Path], answer: str | None
) -> None:
    prompt = Answers([answer, PASSPHRASE])
    password = Answers([PASSWORD])
    auth = file_auth([keys["pem"], keys["openssh"]], prompt, password_prompt=password)
    attempts = await authenticate(server, auth)
    # The first key is left after one question; the second one is still offered and works.
    assert attempts[-1] == "publickey:success" and password.asked == []
    assert prompt.asked == [f"Enter passphrase for key '{keys[name]}': " for name in ("pem", "openssh")]


async def test_nothing_tried_names_the_skipped_keys_and_why(
    server: SSHServer, keys: dict[str, Path], tmp_path: Path
) -> None:
    loose = tmp_path / "loose"
    write_openssh_key(loose, None)
    loose.chmod(0o644)
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticate(server, file_auth([keys["pem"], loose], None, preferred=("publickey",)))
    message = failed.value.message
    assert "tried nothing" in message
    assert f"{keys['pem']}: encrypted, and no passphrase can be asked for here (BatchMode)" in message
    assert f"{loose}: permissions 0644 are too open" in message
    assert PASSPHRASE not in message


async def test_failure_after_cancelling_says_so(server: SSHServer, keys: dict[str, Path]) -> None:
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticate(server, file_auth([keys["openssh"]], Answers([None]), preferred=("publickey",)))
    assert f"{keys['openssh']}: passphrase entry cancelled" in failed.value.message


async def test_passphrase_is_asked_once_per_connection(server: SSHServer, keys: dict[str, Path]) -> None:
    # The same file named twice (as -i and IdentityFile can do) is unlocked once.
    prompt = Answers([PASSPHRASE, PASSPHRASE])
    attempts = await authenticate(server, file_auth([keys["pem"], keys["pem"]], prompt))
    assert attempts[-1] == "publickey:success" and len(prompt.asked) == 1
