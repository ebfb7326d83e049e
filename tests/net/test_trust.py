"""The host key trust policy: OpenSSH's StrictHostKeyChecking values against known, unknown, changed and
revoked keys, and what ends up in the known_hosts files."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

import pytest

from sshtui.net.trust import (
    HostKeyChanged,
    HostKeyRevoked,
    HostKeyTrustError,
    HostKeyUnknown,
    TrustPolicy,
    UnknownHostQuestion,
)
from sshtui.ssh.constants import DisconnectReason
from sshtui.ssh.crypto.hostkeys import PrivateKey, fingerprint_sha256
from sshtui.ssh.errors import HostKeyError, HostKeyRejected, LocalProtocolError
from sshtui.store.known_hosts import KnownHosts

ED_NEW = PrivateKey.generate("ed25519").public_blob
ED_OLD = PrivateKey.generate("ed25519").public_blob
ED_OTHER = PrivateKey.generate("ed25519").public_blob
EC_KEY = PrivateKey.generate("ecdsa").public_blob

STRICT_VALUES = ["yes", "accept-new", "no", "off", "ask"]


def line(host: str, blob: bytes, key_type: str = "ssh-ed25519") -> str:
    return f"{host} {key_type} {base64.b64encode(blob).decode()}\n"


class Asker:
    """Stands in for the UI: records the questions and gives a fixed answer."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.questions: list[UnknownHostQuestion] = []

    async def __call__(self, question: UnknownHostQuestion) -> bool:
        self.questions.append(question)
        return self.answer


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".ssh" / "known_hosts"


@pytest.fixture
def system_file(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "ssh_known_hosts"
    path.parent.mkdir()
    path.write_text("# system-wide keys\n")
    return path


async def test_a_known_key_is_trusted_and_nothing_is_written(user_file: Path, system_file: Path) -> None:
    system_file.write_text(line("[db.lan]:2222", ED_NEW))
    policy = TrustPolicy([user_file, system_file], strict="yes")
    outcome = await policy.verify("db.lan", 2222, "ssh-ed25519", ED_NEW)
    assert outcome.status == "trusted"
    assert outcome.decision.matched is not None
    assert outcome.decision.matched.location == f"{system_file}:1"
    assert not user_file.exists()


async def test_strict_yes_refuses_an_unknown_key_and_gives_its_fingerprint(user_file: Path) -> None:
    policy = TrustPolicy([user_file], strict="yes", ask=Asker(True))
    with pytest.raises(HostKeyUnknown) as caught:
        await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert fingerprint_sha256(ED_NEW) in caught.value.message
    assert "new.lan" in caught.value.message
    assert not user_file.exists()


@pytest.mark.parametrize("strict", ["accept-new", "no", "off"])
async def test_lenient_values_learn_an_unknown_key(user_file: Path, system_file: Path, strict: str) -> None:
    asker = Asker(False)
    policy = TrustPolicy([user_file, system_file], strict=strict, ask=asker)
    outcome = await policy.verify("new.lan", 2200, "ssh-ed25519", ED_NEW)
    assert outcome.status == "learned"
    assert outcome.written_to == user_file
    assert "[new.lan]:2200" in outcome.notice
    assert asker.questions == []
    assert system_file.read_text() == "# system-wide keys\n"
    again = await policy.verify("new.lan", 2200, "ssh-ed25519", ED_NEW)
    assert again.status == "trusted"
    assert again.decision.matched is not None
    assert again.decision.matched.location == f"{user_file}:1"


async def test_ask_yes_shows_the_key_and_learns_it(user_file: Path) -> None:
    user_file.parent.mkdir(parents=True)
    user_file.write_text(line("[db.lan]:2222", EC_KEY, "ecdsa-sha2-nistp256"))
    asker = Asker(True)
    policy = TrustPolicy([user_file], strict="ask", ask=asker)
    outcome = await policy.verify("db.lan", 2222, "ssh-ed25519", ED_NEW)
    assert outcome.status == "learned"
    [question] = asker.questions
    assert question == UnknownHostQuestion(
        "db.lan", 2222, "ssh-ed25519", fingerprint_sha256(ED_NEW), ("ecdsa-sha2-nistp256",)
    )
    assert fingerprint_sha256(ED_NEW) in question.prompt
    assert "port 2222" in question.prompt
    assert KnownHosts.load([user_file]).check("db.lan", 2222, ED_NEW).status == "trusted"


async def test_ask_no_refuses_and_writes_nothing(user_file: Path) -> None:
    policy = TrustPolicy([user_file], strict="ask", ask=Asker(False))
    with pytest.raises(HostKeyUnknown, match="not accepted"):
        await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert not user_file.exists()


async def test_ask_without_anyone_to_ask_behaves_like_yes(user_file: Path) -> None:
    policy = TrustPolicy([user_file], strict="ask", ask=None)
    with pytest.raises(HostKeyUnknown, match="StrictHostKeyChecking=yes"):
        await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert not user_file.exists()


@pytest.mark.parametrize("strict", STRICT_VALUES)
async def test_a_changed_key_is_refused_whatever_strict_says(
    user_file: Path, system_file: Path, strict: str
) -> None:
    user_file.parent.mkdir(parents=True)
    user_file.write_text("# mine\n" + line("[db.lan]:2222", ED_OLD))
    system_file.write_text(line("*.lan", ED_OTHER) + line("[db.lan]:2222", EC_KEY, "ecdsa-sha2-nistp256"))
    before = (user_file.read_bytes(), system_file.read_bytes())
    asker = Asker(True)
    policy = TrustPolicy([user_file, system_file], strict=strict, ask=asker)
    with pytest.raises(HostKeyChanged) as caught:
        await policy.verify("db.lan", 2222, "ssh-ed25519", ED_NEW)
    message = caught.value.message
    assert "ssh-ed25519" in message
    assert fingerprint_sha256(ED_NEW) in message
    assert f"{user_file}:2" in message
    assert f"{system_file}:1" not in message  # "*.lan" is port 22 only
    assert f"ssh-keygen -R '[db.lan]:2222' -f {shlex.quote(str(user_file))}" in message
    assert "sshtui known-hosts remove '[db.lan]:2222'" in message
    assert [e.location for e in caught.value.decision.conflicts] == [f"{user_file}:2"]
    assert asker.questions == []
    assert (user_file.read_bytes(), system_file.read_bytes()) == before


async def test_every_conflicting_line_is_named(user_file: Path, system_file: Path) -> None:
    user_file.parent.mkdir(parents=True)
    user_file.write_text(line("db.lan", ED_OLD))
    system_file.write_text("# header\n" + line("*.lan", ED_OTHER))
    policy = TrustPolicy([user_file, system_file], strict="no")
    with pytest.raises(HostKeyChanged) as caught:
        await policy.verify("db.lan", 22, "ssh-ed25519", ED_NEW)
    assert f"{user_file}:1" in caught.value.message
    assert f"{system_file}:2" in caught.value.message
    assert fingerprint_sha256(ED_OLD) in caught.value.message
    assert fingerprint_sha256(ED_OTHER) in caught.value.message


@pytest.mark.parametrize("strict", STRICT_VALUES)
async def test_a_revoked_key_is_refused_whatever_strict_says(
    user_file: Path, system_file: Path, strict: str
) -> None:
    # Even a line that trusts the key cannot outweigh its revocation.
    user_file.parent.mkdir(parents=True)
    user_file.write_text(line("db.lan", ED_NEW))
    system_file.write_text("# revocations\n@revoked * " + line("", ED_NEW).lstrip())
    policy = TrustPolicy([user_file, system_file], strict=strict, ask=Asker(True))
    with pytest.raises(HostKeyRevoked) as caught:
        await policy.verify("db.lan", 22, "ssh-ed25519", ED_NEW)
    assert f"{system_file}:2" in caught.value.message
    assert fingerprint_sha256(ED_NEW) in caught.value.message
    assert user_file.read_text() == line("db.lan", ED_NEW)


async def test_refusals_are_host_key_rejections_with_the_decision(user_file: Path) -> None:
    policy = TrustPolicy([user_file], strict="yes")
    with pytest.raises(HostKeyRejected) as caught:
        await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert isinstance(caught.value, HostKeyTrustError)
    assert caught.value.reason == DisconnectReason.HOST_KEY_NOT_VERIFIABLE
    assert caught.value.decision.status == "unknown"


async def test_unknown_key_message_mentions_keys_of_other_types(user_file: Path) -> None:
    user_file.parent.mkdir(parents=True)
    user_file.write_text(line("db.lan", EC_KEY, "ecdsa-sha2-nistp256"))
    with pytest.raises(HostKeyUnknown) as caught:
        await TrustPolicy([user_file], strict="yes").verify("db.lan", 22, "ssh-ed25519", ED_NEW)
    assert f"ecdsa-sha2-nistp256 in {user_file}:1" in caught.value.message


async def test_hash_known_hosts_writes_hashed_names(user_file: Path) -> None:
    policy = TrustPolicy([user_file], strict="accept-new", hash_known_hosts=True)
    await policy.verify("private.lan", 2222, "ssh-ed25519", ED_NEW)
    text = user_file.read_text()
    assert "private.lan" not in text and text.startswith("|1|")
    assert (await policy.verify("private.lan", 2222, "ssh-ed25519", ED_NEW)).status == "trusted"


async def test_a_key_that_cannot_be_saved_is_accepted_for_this_connection_only(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    policy = TrustPolicy([blocker / "known_hosts"], strict="accept-new")
    outcome = await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert outcome.status == "accepted-once"
    assert outcome.written_to is None
    assert "this connection only" in outcome.notice
    no_files = await TrustPolicy([], strict="no").verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert no_files.status == "accepted-once"


async def test_a_key_changed_while_the_user_was_asked_is_refused(user_file: Path) -> None:
    async def meanwhile_another_connection_learns(question: UnknownHostQuestion) -> bool:
        user_file.parent.mkdir(parents=True, exist_ok=True)
        user_file.write_text(line("new.lan", ED_OLD))
        return True

    policy = TrustPolicy([user_file], strict="ask", ask=meanwhile_another_connection_learns)
    with pytest.raises(HostKeyChanged):
        await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert user_file.read_text() == line("new.lan", ED_OLD)


async def test_a_key_learned_while_the_user_was_asked_is_not_written_twice(user_file: Path) -> None:
    async def meanwhile_another_connection_learns(question: UnknownHostQuestion) -> bool:
        user_file.parent.mkdir(parents=True, exist_ok=True)
        user_file.write_text(line("new.lan", ED_NEW))
        return True

    policy = TrustPolicy([user_file], strict="ask", ask=meanwhile_another_connection_learns)
    outcome = await policy.verify("new.lan", 22, "ssh-ed25519", ED_NEW)
    assert outcome.status == "trusted"
    assert user_file.read_text() == line("new.lan", ED_NEW)


async def test_unparsable_lines_are_reported_but_do_not_stop_the_check(user_file: Path) -> None:
    user_file.parent.mkdir(parents=True)
    user_file.write_text("broken-line\n" + line("db.lan", ED_NEW))
    outcome = await TrustPolicy([user_file], strict="yes").verify("db.lan", 22, "ssh-ed25519", ED_NEW)
    assert outcome.status == "trusted"
    assert [str(w).split(": ")[0] for w in outcome.warnings] == [f"{user_file}:1"]


def test_unknown_strict_values_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="StrictHostKeyChecking"):
        TrustPolicy([], strict="maybe")
    assert TrustPolicy([], strict="OFF").strict == "no"


async def test_a_key_of_the_wrong_type_for_the_algorithm_is_refused(user_file: Path) -> None:
    with pytest.raises(HostKeyError, match="negotiated"):
        await TrustPolicy([user_file], strict="no").verify("db.lan", 22, "rsa-sha2-256", ED_NEW)
    assert not user_file.exists()
