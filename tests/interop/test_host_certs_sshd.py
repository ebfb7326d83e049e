"""Host certificates against a real OpenSSH sshd (``HostCertificate``): a certificate signed by a CA on a
``@cert-authority`` line is accepted with no plain key known, and an expired one, one naming another host,
or one from a revoked CA is refused before any authentication is attempted.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshtui.net.client_connect import connect
from sshtui.net.trust import TrustOutcome
from sshtui.options import resolve_settings
from sshtui.options_client import build_client_options
from sshtui.prompts import Prompter
from sshtui.ssh.errors import HostKeyRejected
from tests.sshd_fixture import KeyCache, SshdFactory, SshdServer

pytestmark = pytest.mark.interop

REPO_ROOT = Path(__file__).resolve().parents[2]
CERT_ALGORITHMS = {
    "ed25519": "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa": "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa": "rsa-sha2-512-cert-v01@openssh.com",
}


def keygen(*args: str | Path) -> None:
    subprocess.run(["ssh-keygen", "-q", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH ssh-keygen not installed")
    path = tmp_path_factory.mktemp("ca") / "host_ca"
    keygen("-t", "ed25519", "-N", "", "-C", "test host CA", "-f", path)
    return path


def sign_host_key(ca: Path, keys: KeyCache, key_type: str, directory: Path, *options: str) -> Path:
    """A certificate for the session's cached ``key_type`` host key, which every sshd here serves."""
    pub = directory / f"host_{key_type}.pub"
    shutil.copy(f"{keys.host_key(key_type)}.pub", pub)
    keygen("-s", ca, "-I", "sshtui test host", "-h", *options, pub)
    return directory / f"host_{key_type}-cert.pub"


def start(factory: SshdFactory, cert: Path, key_type: str) -> SshdServer:
    return factory(extra_config=[f"HostCertificate {cert}"], host_key_types=(key_type,))


def ca_line(ca: Path, hosts: str) -> str:
    return f"@cert-authority {hosts} {' '.join(Path(f'{ca}.pub').read_text().split()[:2])}"


def write_known_hosts(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


async def connect_with(server: SshdServer, known_hosts: Path, home: Path) -> tuple[str, object]:
    """Connect with only ``known_hosts`` to go by; the negotiated host key algorithm and trust outcome."""
    settings = resolve_settings(
        server.host,
        port=str(server.port),
        identity_files=[str(server.client_key)],
        options=[
            f"UserKnownHostsFile={known_hosts}",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=15",
        ],
        home=home,
    )
    client = await connect(build_client_options(settings, Prompter(batch_mode=True)))
    try:
        assert client.conn.transport.negotiated is not None
        result = await client.run("echo certified")
        assert result.stdout == b"certified\n"
        return client.conn.transport.negotiated.host_key, client.host_key_outcome
    finally:
        await client.close()


def assert_no_authentication(server: SshdServer) -> None:
    time.sleep(0.3)  # sshd's children write the log after we hung up
    log = server.log_text()
    assert "Connection from 127.0.0.1" in log
    assert "Accepted publickey" not in log and "userauth-request" not in log


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
async def test_certificate_from_listed_ca_is_accepted_without_a_plain_key(
    sshd_factory: SshdFactory, sshd_keys: KeyCache, ca: Path, tmp_path: Path, home: Path, key_type: str
) -> None:
    cert = sign_host_key(ca, sshd_keys, key_type, tmp_path, "-n", "127.0.0.1", "-V", "-1d:+1d")
    server = start(sshd_factory, cert, key_type)
    known = write_known_hosts(tmp_path / "known_hosts", ca_line(ca, f"[{server.host}]:{server.port}"))
    algorithm, outcome = await connect_with(server, known, home)
    assert algorithm == CERT_ALGORITHMS[key_type]
    assert isinstance(outcome, TrustOutcome) and outcome.certificate is not None
    assert outcome.certificate.principals == ("127.0.0.1",)
    assert outcome.certificate.public_blob == base64.b64decode(server.host_public_keys[key_type].split()[1])
    assert known.read_text().count("\n") == 1  # trusted through the CA: nothing was added


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (("-n", "127.0.0.1", "-V", "20200101:20210101"), "expired"),
        (("-n", "127.0.0.2,otherhost", "-V", "-1d:+1d"), "'127.0.0.1' is not a listed principal"),
    ],
)
async def test_invalid_certificate_is_refused_before_authentication(
    sshd_factory: SshdFactory,
    sshd_keys: KeyCache,
    ca: Path,
    tmp_path: Path,
    home: Path,
    options: tuple[str, ...],
    problem: str,
) -> None:
    server = start(sshd_factory, sign_host_key(ca, sshd_keys, "ed25519", tmp_path, *options), "ed25519")
    known = write_known_hosts(tmp_path / "known_hosts", ca_line(ca, f"[{server.host}]:{server.port}"))
    refusal = f"host certificate of .* was refused: certificate invalid: {problem}"
    with pytest.raises(HostKeyRejected, match=refusal):
        await connect_with(server, known, home)
    assert_no_authentication(server)


async def test_certificate_from_revoked_ca_is_refused(
    sshd_factory: SshdFactory, sshd_keys: KeyCache, ca: Path, tmp_path: Path, home: Path
) -> None:
    cert = sign_host_key(ca, sshd_keys, "ed25519", tmp_path, "-n", "127.0.0.1")
    server = start(sshd_factory, cert, "ed25519")
    revoked = ca_line(ca, "*").replace("@cert-authority", "@revoked")
    lines = (ca_line(ca, f"[{server.host}]:{server.port}"), revoked)
    known = write_known_hosts(tmp_path / "known_hosts", *lines)
    refusal = r"REVOKED HOST CERTIFICATE(?s:.*)certificate authority key \S+ is marked as revoked"
    with pytest.raises(HostKeyRejected, match=refusal):
        await connect_with(server, known, home)
    assert_no_authentication(server)


async def test_ca_line_for_the_bare_host_does_not_cover_another_port(
    sshd_factory: SshdFactory, sshd_keys: KeyCache, ca: Path, tmp_path: Path, home: Path
) -> None:
    # As for plain keys, ssh(1) looks CA lines up under "[host]:port" when the port is not 22.
    cert = sign_host_key(ca, sshd_keys, "ed25519", tmp_path, "-n", "127.0.0.1")
    server = start(sshd_factory, cert, "ed25519")
    known = write_known_hosts(tmp_path / "known_hosts", ca_line(ca, server.host))
    with pytest.raises(HostKeyRejected, match="No ssh-ed25519 host key is known"):
        await connect_with(server, known, home)


def test_exec_prints_why_the_certificate_was_refused(
    sshd_factory: SshdFactory, sshd_keys: KeyCache, ca: Path, tmp_path: Path, home: Path
) -> None:
    cert = sign_host_key(ca, sshd_keys, "ed25519", tmp_path, "-n", "127.0.0.1", "-V", "20200101:20210101")
    server = start(sshd_factory, cert, "ed25519")
    known = write_known_hosts(tmp_path / "known_hosts", ca_line(ca, f"[{server.host}]:{server.port}"))
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    argv = [
        sys.executable, "-m", "sshtui", "exec", "-p", str(server.port), "-i", str(server.client_key),
        "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
        server.host, "touch", str(tmp_path / "ran"),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60, check=False,
        start_new_session=True,
    )
    assert done.returncode == 255
    assert "certificate invalid: expired" in done.stderr
    assert not (tmp_path / "ran").exists()
    assert_no_authentication(server)
