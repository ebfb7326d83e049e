"""The diagnostics export from real connections to our embedded server: useful content, and never the
password, a key blob, a key fingerprint or the session id (in any encoding)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from sshtui.net.auth import AuthOptions
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.client_connect import connect
from sshtui.net.forward_snapshot import ForwardSnapshot, ForwardState
from sshtui.ssh.crypto.hostkeys import fingerprint_sha256
from sshtui.ssh.transport_snapshot import session_id_fingerprint
from sshtui.ui.diagnostics import diagnostics, export_json, export_text
from sshtui.ui.widgets.side_panel import Liveness
from tests.ui.conftest import PASSWORD, USER_KEY, Embedded

pytestmark = pytest.mark.timeout(60)


def encodings(blob: bytes) -> Iterator[str]:
    yield blob.hex()
    yield base64.b64encode(blob).decode()
    yield base64.b64encode(blob).decode().rstrip("=")


def forbidden(client: SSHClient) -> list[str]:
    session_id = client.conn.transport.session_id
    assert session_id is not None
    host_key = client.server_host_key
    assert host_key is not None
    words = [*encodings(session_id), session_id_fingerprint(session_id)]
    words += [*encodings(host_key), fingerprint_sha256(host_key)]
    words += [*encodings(USER_KEY.public_blob), fingerprint_sha256(USER_KEY.public_blob)]
    # The fingerprints without their "SHA256:" prefix, as some tools print them.
    words += [w.split(":", 1)[1] for w in words if w.startswith("SHA256:")]
    return words


def exports(client: SSHClient) -> list[str]:
    forward = ForwardSnapshot(
        "local", "-L 8080:db:5432", "127.0.0.1:8080", "db:5432", ForwardState.LISTENING, "", 0, 3, 1,
        100, 200, "connection refused", (("connection refused", 1),), (),
    )
    context = {"forwards": [forward], "liveness": Liveness(0.02, 0, 10.0), "destination": "test"}
    return [export_text(client.snapshot(), **context), export_json(client.snapshot(), **context)]


async def test_password_login_export_has_no_password_keys_or_session_id(embedded: Embedded) -> None:
    async def answer(prompt: str) -> str:
        return PASSWORD

    options = ClientOptions(
        "127.0.0.1", embedded.port, "alice",
        auth=AuthOptions(password_prompt=answer, preferred=("password",), identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as client:
        await client.run("echo hi")
        texts = exports(client)
        words = [*forbidden(client), PASSWORD, *encodings(PASSWORD.encode())]
        cipher = client.snapshot().transport.cipher_c2s
    for text in texts:
        for word in words:
            assert word not in text
        assert cipher in text
        assert "password" in text  # the method is useful, the secret is not there
        assert "-L 8080:db:5432" in text


async def test_publickey_login_export_is_useful_json_without_the_key(embedded: Embedded) -> None:
    options = ClientOptions(
        "127.0.0.1", embedded.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as client:
        await client.run("echo hi")
        text, raw = exports(client)
        words = forbidden(client)
        snapshot = client.snapshot()
    for word in words:
        assert word not in text
        assert word not in raw
    data = json.loads(raw)
    assert data["transport"]["cipher_s2c"] == snapshot.transport.cipher_s2c
    assert "session_id_fingerprint" not in data["transport"]
    assert "host_key_fingerprint" not in data["transport"]
    assert [a["method"] for a in data["auth"]][-1] == "publickey"
    assert all("fingerprint" not in a for a in data["auth"])
    assert data["transport"]["message_counts"]["CHANNEL_DATA"] >= 1
    assert "NEWKEYS" in [e["event"] for e in data["transport"]["timeline"]]
    assert data["liveness"]["keepalive_rtt_ms"] == pytest.approx(20.0)


async def test_export_is_plain_json_types(embedded: Embedded) -> None:
    options = ClientOptions(
        "127.0.0.1", embedded.port, "tester", auth=AuthOptions(keys=[USER_KEY], identities_only=True),
        connect_timeout=10,
    )
    async with await connect(options) as client:
        data = diagnostics(client.snapshot())
    assert json.loads(json.dumps(data)) == data
