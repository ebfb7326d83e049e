"""Authentication tells a prompter what each secret is for (the key file, ``user@host:port``) and then
whether it worked: a passphrase when the key decrypts or not, a password when the server answers that
attempt. The app's keyring memory relies on this; plain prompt callbacks see no change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sshtui.net.auth import AuthenticationFailed, AuthOptions
from sshtui.net.client import ClientOptions
from sshtui.net.client_connect import connect
from sshtui.net.server import ServerOptions, SSHServer, start_server
from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, hash_password
from sshtui.prompts import Prompter
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.store.keys import encode_private_key

pytestmark = pytest.mark.timeout(60)

HOST_KEY = PrivateKey.generate("ed25519")
USER_KEY = PrivateKey.generate("ed25519")
PASSPHRASE = "open sesame"
PASSWORD = "correct horse battery staple"


class ScriptedPrompter(Prompter):
    """Answers from a script; notes the context of each question and every verdict."""

    def __init__(self, answers: list[str | None]) -> None:
        super().__init__()
        self.answers = answers
        self.contexts: list[dict[str, object]] = []
        self.results: list[tuple[str, bool]] = []

    async def ask(self, prompt: str, *, echo: bool) -> str | None:
        return self.answers.pop(0) if self.answers else None

    async def passphrase(self, prompt: str, *, key_path: Path | None = None) -> str | None:
        self.contexts.append({"key_path": key_path})
        return await super().passphrase(prompt, key_path=key_path)

    async def password(self, prompt: str, *, account: str | None = None) -> str | None:
        self.contexts.append({"account": account})
        return await super().password(prompt, account=account)

    async def secret_result(self, secret_id: str, ok: bool) -> None:
        self.results.append((secret_id, ok))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_bytes(encode_private_key(USER_KEY, "test", PASSPHRASE.encode()))
    path.chmod(0o600)
    path.with_name("id_ed25519.pub").write_text(openssh_public_line(USER_KEY.public_blob) + "\n")
    return path


@pytest.fixture
async def server() -> AsyncIterator[SSHServer]:
    options = ServerOptions(
        [HOST_KEY],
        port=0,
        authorized_keys=AuthorizedKeys.parse(openssh_public_line(USER_KEY.public_blob) + "\n"),
        passwords=PasswordFile.parse(f"tester:{hash_password(PASSWORD)}"),
        auth_failure_delay=0.01,
        shell="/bin/sh",
    )
    async with await start_server(options) as srv:
        yield srv


def options_for(server: SSHServer, prompter: Prompter, *, keys: tuple[Path, ...] = (),
                batch_mode: bool = False) -> ClientOptions:
    auth = AuthOptions(
        identity_files=keys,
        identities_only=True,
        password_prompt=None if batch_mode else prompter.password,
        passphrase_prompt=None if batch_mode else prompter.passphrase,
        secret_prompter=prompter,
        destination=("127.0.0.1", server.port),
    )
    return ClientOptions("127.0.0.1", server.port, "tester", auth=auth, connect_timeout=20)


async def test_passphrase_prompts_name_the_key_and_each_passphrase_gets_a_verdict(
    server: SSHServer, key_path: Path
) -> None:
    prompter = ScriptedPrompter(["wrong", PASSPHRASE])
    async with await connect(options_for(server, prompter, keys=(key_path,))):
        pass
    assert prompter.contexts == [{"key_path": key_path}] * 2
    secret_id = f"passphrase:{key_path}"
    assert prompter.results == [(secret_id, False), (secret_id, True)]


async def test_password_prompts_name_the_account_and_the_server_answer_is_the_verdict(
    server: SSHServer,
) -> None:
    prompter = ScriptedPrompter(["wrong", PASSWORD])
    async with await connect(options_for(server, prompter)):
        pass
    account = f"tester@127.0.0.1:{server.port}"
    assert prompter.contexts == [{"account": account}] * 2
    assert prompter.results == [(f"password:{account}", False), (f"password:{account}", True)]


async def test_a_cancelled_prompt_gets_no_verdict(server: SSHServer, key_path: Path) -> None:
    prompter = ScriptedPrompter([None, PASSWORD])  # passphrase cancelled, then the password
    async with await connect(options_for(server, prompter, keys=(key_path,))):
        pass
    account = f"tester@127.0.0.1:{server.port}"
    assert prompter.contexts == [{"key_path": key_path}, {"account": account}]
    assert prompter.results == [(f"password:{account}", True)]


async def test_batch_mode_asks_nothing_even_with_a_secret_prompter(
    server: SSHServer, key_path: Path
) -> None:
    prompter = ScriptedPrompter([PASSPHRASE, PASSWORD])
    with pytest.raises(AuthenticationFailed):
        await connect(options_for(server, prompter, keys=(key_path,), batch_mode=True))
    assert prompter.contexts == [] and prompter.results == []

