"""OpenSSH certificates (PROTOCOL.certkeys) made by ``ssh-keygen -s``: every field we parse matches what
``ssh-keygen -L`` prints, any changed byte is refused, and only a valid host certificate for the
right name, at the right time, from a CA on a ``@cert-authority`` line is trusted."""

from __future__ import annotations

import base64
import datetime
import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.net.trust import HostCertificateInvalid, HostKeyRevoked, TrustPolicy, certificates_first
from sshtui.options import ConnectionSettings
from sshtui.options_client import host_key_offer
from sshtui.ssh.crypto.certificates import (
    FOREVER,
    Certificate,
    CertificateError,
    check_host_certificate,
    parse_certificate,
)
from sshtui.ssh.crypto.hostkeys import PrivateKey, verify_signature
from sshtui.ssh.errors import DecodeError, HostKeyError, SSHError
from sshtui.store.known_hosts import KnownHosts

SSH_KEYGEN = shutil.which("ssh-keygen")
pytestmark = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH ssh-keygen not installed")

JAN_2020 = int(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC).timestamp())
JAN_2021 = int(datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC).timestamp())
JAN_2040 = int(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC).timestamp())
NOW = JAN_2021 + 86400  # inside 2020..2040, after 2020..2021


def keygen(*args: str | Path) -> str:
    assert SSH_KEYGEN is not None
    # -V dates are local time to ssh-keygen; UTC makes them the instants computed above.
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run(
        [SSH_KEYGEN, *map(str, args)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def pub_blob(path: Path) -> bytes:
    return base64.b64decode(path.read_text().split()[1])


@dataclass
class Keys:
    directory: Path

    def key(self, name: str, kind: str, bits: int | None = None) -> Path:
        path = self.directory / name
        if not path.exists():
            keygen("-q", "-N", "", "-t", kind, *(["-b", str(bits)] if bits else []), "-C", name, "-f", path)
        return path

    def sign(self, ca: Path, key: Path, *options: str, label: str = "cert") -> Path:
        """``ssh-keygen -s CA OPTIONS KEY.pub`` on a copy of the key, so certificates never clash."""
        target = self.directory / f"{key.name}-{label}"
        shutil.copy(f"{key}.pub", f"{target}.pub")
        keygen("-q", "-s", ca, *options, f"{target}.pub")
        return Path(f"{target}-cert.pub")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("certs"))


HOST_KEYS = {
    "ed25519": ("ed25519", None),
    "ecdsa256": ("ecdsa", 256),
    "ecdsa384": ("ecdsa", 384),
    "ecdsa521": ("ecdsa", 521),
    "rsa": ("rsa", 2048),
}
CA_KEYS = {"ca-ed25519": ("ed25519", None), "ca-ecdsa": ("ecdsa", 384), "ca-rsa": ("rsa", 2048)}


def host_cert(
    keys: Keys, host: str = "ed25519", ca: str = "ca-ed25519", *options: str, label: str = ""
) -> Path:
    host_key = keys.key(host, *HOST_KEYS[host])
    ca_key = keys.key(ca, *CA_KEYS[ca])
    opts = options or ("-I", "web01", "-h", "-n", "127.0.0.1,web01.example.org", "-V", "20200101:20400101")
    return keys.sign(ca_key, host_key, *opts, label=label or f"{ca}-{next(_LABELS)}")


_LABELS = itertools.count()


def listing(cert: Path) -> dict[str, list[str]]:
    """``ssh-keygen -L``: each field's first-line value, then its indented continuation lines."""
    fields: dict[str, list[str]] = {}
    current = ""
    for line in keygen("-L", "-f", cert).splitlines()[1:]:
        match = re.match(r"^\s{8}(\S[^:]*):\s?(.*)$", line)
        if match and not line.startswith(" " * 16):
            current = match.group(1)
            fields[current] = [match.group(2).strip()] if match.group(2).strip() else []
        elif line.strip():
            fields[current].append(line.strip())
    return fields


def parse_file(path: Path) -> Certificate:
    return parse_certificate(pub_blob(path))


def keygen_time(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC).timestamp())


# --- parsing: the same fields ssh-keygen -L shows ----------------------------------------------


@pytest.mark.parametrize("ca", list(CA_KEYS))
@pytest.mark.parametrize("host", list(HOST_KEYS))
def test_parsed_host_certificate_matches_ssh_keygen_listing(keys: Keys, host: str, ca: str) -> None:
    path = host_cert(keys, host, ca, "-I", f"id of {host}", "-h", "-z", "4242", "-n", "127.0.0.1,web01",
                     "-V", "20200101:20400101", label=ca)
    cert = parse_file(path)
    shown = listing(path)

    cert_type, kind, _ = shown["Type"][0].split(" ", 2)
    assert (cert.key_type, cert.kind, cert.is_host) == (cert_type, kind, True)
    assert cert.fingerprint == shown["Public key"][0].split()[1]
    ca_fingerprint, using = re.fullmatch(r"\S+ (\S+) \(using (\S+)\)", shown["Signing CA"][0]).groups()  # type: ignore[union-attr]
    assert (cert.ca_fingerprint, cert.signature_algorithm) == (ca_fingerprint, using)
    assert cert.signature_key == pub_blob(keys.directory / f"{ca}.pub")
    assert cert.public_blob == pub_blob(keys.directory / f"{host}.pub")
    assert shown["Key ID"] == [f'"{cert.key_id}"'] and cert.key_id == f"id of {host}"
    assert int(shown["Serial"][0]) == cert.serial == 4242
    start, end = re.fullmatch(r"from (\S+) to (\S+)", shown["Valid"][0]).groups()  # type: ignore[union-attr]
    assert (cert.valid_after, cert.valid_before) == (keygen_time(start), keygen_time(end))
    assert (cert.valid_after, cert.valid_before) == (JAN_2020, JAN_2040)
    assert list(cert.principals) == shown["Principals"] == ["127.0.0.1", "web01"]
    assert shown["Critical Options"] == ["(none)"] and cert.critical_options == ()
    assert shown["Extensions"] == ["(none)"] and cert.extensions == ()


def test_user_certificate_options_and_extensions_match_ssh_keygen(keys: Keys) -> None:
    path = keys.sign(
        keys.key("ca-rsa", "rsa", 2048), keys.key("ed25519", "ed25519"),
        "-I", "alice@laptop", "-n", "alice,deploy", "-O", "force-command=/bin/true",
        "-O", "source-address=10.0.0.0/8", "-O", "extension:note@example.com=hi", label="user",
    )
    cert = parse_file(path)
    shown = listing(path)
    assert (cert.kind, cert.is_host) == ("user", False)
    assert shown["Valid"] == ["forever"] and (cert.valid_after, cert.valid_before) == (0, FOREVER)
    # ssh-keygen prints each critical option's value, which is an SSH string inside the data.
    options = [f"{name} {value[4:].decode()}" for name, value in cert.critical_options]
    assert options == shown["Critical Options"]
    assert [name for name, _ in cert.extensions] == [line.split()[0] for line in shown["Extensions"]]
    assert dict(cert.extensions)["note@example.com"][4:] == b"hi"


def test_sha1_ca_signatures_are_refused_unless_allowed(keys: Keys) -> None:
    path = host_cert(keys, "ecdsa256", "ca-rsa", "-t", "ssh-rsa", "-I", "old", "-h", "-n", "h", label="sha1")
    assert listing(path)["Signing CA"][0].endswith("(using ssh-rsa)")
    with pytest.raises(CertificateError, match="disallowed algorithm 'ssh-rsa'"):
        parse_file(path)
    assert parse_certificate(pub_blob(path), ca_algorithms=("ssh-rsa",)).signature_algorithm == "ssh-rsa"


# --- tampering ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ed25519_cert(keys: Keys) -> bytes:
    return pub_blob(host_cert(keys))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_changed_byte_is_refused(ed25519_cert: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(ed25519_cert) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(ed25519_cert)
    tampered[position] ^= flip
    with pytest.raises(SSHError):
        parse_certificate(bytes(tampered))


def test_tampered_fields_are_named(keys: Keys, ed25519_cert: bytes) -> None:
    principal = ed25519_cert.index(b"web01.example.org")
    forged = ed25519_cert[:principal] + b"evil1" + ed25519_cert[principal + 5 :]
    with pytest.raises(CertificateError, match=r"signature by CA SHA256:\S+ does not verify"):
        parse_certificate(forged)
    with pytest.raises(DecodeError, match="truncated"):
        parse_certificate(ed25519_cert[:-1])
    with pytest.raises(DecodeError, match="trailing"):
        parse_certificate(ed25519_cert + b"\x00")


def test_certificate_signed_by_another_ca_key_does_not_verify(keys: Keys, ed25519_cert: bytes) -> None:
    # Swap in another CA's public key: the signature no longer matches the named CA.
    ca = pub_blob(keys.directory / "ca-ed25519.pub")
    other = pub_blob(keys.key("ca-other", "ed25519").with_suffix(".pub"))
    with pytest.raises(CertificateError, match="does not verify"):
        parse_certificate(ed25519_cert.replace(ca, other))


# --- validity for a host -----------------------------------------------------------------------


def test_valid_host_certificate_passes_for_a_listed_name(ed25519_cert: bytes) -> None:
    cert = parse_certificate(ed25519_cert)
    check_host_certificate(cert, "127.0.0.1", NOW)
    check_host_certificate(cert, "WEB01.example.org", NOW)  # host names compare in lower case


@pytest.mark.parametrize(
    ("options", "name", "now", "problem"),
    [
        (("-h", "-n", "web01", "-V", "20200101:20210101"), "web01", NOW, "expired"),
        (("-h", "-n", "web01", "-V", "20400101:20410101"), "web01", NOW, "not yet valid"),
        (("-h", "-n", "web01,web02"), "web03", NOW, "'web03' is not a listed principal"),
        (("-h",), "web01", NOW, "lists no principals"),
        (("-n", "web01"), "web01", NOW, "a user certificate, not a host certificate"),
        (("-h", "-n", "web01", "-O", "force-command=/bin/ls"), "web01", NOW, "unsupported critical options"),
    ],
)
def test_invalid_host_certificates_are_refused_with_the_reason(
    keys: Keys, options: tuple[str, ...], name: str, now: int, problem: str
) -> None:
    cert = parse_file(host_cert(keys, "ed25519", "ca-ed25519", "-I", "x", *options))
    with pytest.raises(CertificateError, match=problem):
        check_host_certificate(cert, name, now)


def test_expiry_is_exclusive_and_start_inclusive(keys: Keys) -> None:
    path = host_cert(keys, "ed25519", "ca-ed25519", "-I", "x", "-h", "-n", "h", "-V", "20200101:20210101")
    cert = parse_file(path)
    check_host_certificate(cert, "h", JAN_2020)
    check_host_certificate(cert, "h", JAN_2021 - 1)
    with pytest.raises(CertificateError, match="expired"):
        check_host_certificate(cert, "h", JAN_2021)


# --- host key signatures made by the certified key ---------------------------------------------


@pytest.mark.parametrize(
    ("host", "algorithm", "signs_with"),
    [
        ("ed25519", "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"),
        ("ecdsa384", "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp384"),
        ("rsa", "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-512"),
        ("rsa", "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-256"),
    ],
)
def test_certificate_algorithms_verify_with_the_certified_key(
    keys: Keys, host: str, algorithm: str, signs_with: str
) -> None:
    blob = pub_blob(host_cert(keys, host))
    private = PrivateKey.from_openssh((keys.directory / host).read_bytes())
    exchange_hash = os.urandom(32)
    verify_signature(algorithm, blob, private.sign(signs_with, exchange_hash), exchange_hash)
    with pytest.raises(HostKeyError):
        verify_signature(algorithm, blob, private.sign(signs_with, exchange_hash), exchange_hash[::-1])
    if host == "rsa":  # the signature must use the hash the certificate algorithm names
        other = "rsa-sha2-256" if signs_with == "rsa-sha2-512" else "rsa-sha2-512"
        with pytest.raises(HostKeyError, match=f"signature uses '{other}'"):
            verify_signature(algorithm, blob, private.sign(other, exchange_hash), exchange_hash)


def test_signature_by_another_key_does_not_verify_for_a_certificate(keys: Keys, ed25519_cert: bytes) -> None:
    impostor = ed25519.Ed25519PrivateKey.generate()
    data = b"exchange hash"
    raw = impostor.sign(data)
    blob = len(b"ssh-ed25519").to_bytes(4, "big") + b"ssh-ed25519" + len(raw).to_bytes(4, "big") + raw
    with pytest.raises(HostKeyError, match="does not verify"):
        verify_signature("ssh-ed25519-cert-v01@openssh.com", ed25519_cert, blob, data)


# --- trust through known_hosts -----------------------------------------------------------------


def known_hosts_file(directory: Path, *lines: str) -> Path:
    path = directory / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def pub_line(keys: Keys, name: str) -> str:
    """``TYPE BASE64`` of a key's .pub file, as ssh-keygen wrote it."""
    return " ".join((keys.directory / f"{name}.pub").read_text().split()[:2])


def ca_line(keys: Keys, hosts: str, ca: str = "ca-ed25519") -> str:
    return f"@cert-authority {hosts} {pub_line(keys, ca)}"


async def test_policy_trusts_a_certificate_from_a_listed_ca(
    keys: Keys, tmp_path: Path, ed25519_cert: bytes
) -> None:
    path = known_hosts_file(tmp_path, ca_line(keys, "[127.0.0.1]:2222,*.example.org"))
    policy = TrustPolicy([path], strict="yes", clock=lambda: NOW)
    outcome = await policy.verify("127.0.0.1", 2222, "ssh-ed25519-cert-v01@openssh.com", ed25519_cert)
    assert outcome.status == "trusted" and outcome.certificate is not None
    assert outcome.certificate.key_id == "web01"
    assert outcome.decision.matched is not None and outcome.decision.matched.line_number == 1
    assert path.read_text().count("\n") == 1  # nothing learned: the CA vouches for the key


async def test_policy_refuses_expired_certificate_with_a_clear_message(
    keys: Keys, tmp_path: Path, ed25519_cert: bytes
) -> None:
    path = known_hosts_file(tmp_path, ca_line(keys, "127.0.0.1"))
    policy = TrustPolicy([path], strict="accept-new", clock=lambda: JAN_2040 + 1)
    with pytest.raises(HostCertificateInvalid, match=r"(?s)refused: certificate invalid: expired.*'web01'"):
        await policy.verify("127.0.0.1", 22, "ssh-ed25519-cert-v01@openssh.com", ed25519_cert)
    assert path.read_text().count("\n") == 1  # accept-new did not learn the key behind the certificate


@pytest.mark.parametrize("revoke", ["ca-ed25519", "ed25519"])
async def test_policy_refuses_revoked_ca_or_host_key(
    keys: Keys, tmp_path: Path, ed25519_cert: bytes, revoke: str
) -> None:
    path = known_hosts_file(tmp_path, ca_line(keys, "127.0.0.1"), f"@revoked * {pub_line(keys, revoke)}")
    policy = TrustPolicy([path], strict="yes", clock=lambda: NOW)
    with pytest.raises(HostKeyRevoked, match=r"REVOKED HOST CERTIFICATE.*\n.*marked as revoked at \S+:2\."):
        await policy.verify("127.0.0.1", 22, "ssh-ed25519-cert-v01@openssh.com", ed25519_cert)


async def test_ca_for_other_hosts_leaves_the_key_to_plain_checking(
    keys: Keys, tmp_path: Path, ed25519_cert: bytes
) -> None:
    path = known_hosts_file(tmp_path, ca_line(keys, "*.example.org"))
    known = KnownHosts.load([path])
    verdict = known.check_certificate("127.0.0.1", 22, parse_certificate(ed25519_cert), NOW)
    assert verdict.status == "no-authority"
    # As ssh(1): with no CA for the host the certified key is an unknown plain key; accept-new learns it.
    policy = TrustPolicy([path], strict="accept-new", clock=lambda: NOW)
    outcome = await policy.verify("127.0.0.1", 22, "ssh-ed25519-cert-v01@openssh.com", ed25519_cert)
    assert outcome.status == "learned" and outcome.certificate is None
    assert path.read_text().splitlines()[1] == f"127.0.0.1 {pub_line(keys, 'ed25519')}"


def test_certificate_algorithms_go_first_only_when_a_ca_covers_the_host(keys: Keys, tmp_path: Path) -> None:
    path = known_hosts_file(tmp_path, ca_line(keys, "[db]:2200"))
    known = KnownHosts.load([path])
    assert known.has_cert_authority("db", 2200) and not known.has_cert_authority("db", 22)
    default = ConnectionSettings(host="db")
    offer = host_key_offer(default, set(), cert_authority=True)
    assert offer[0] == "ssh-ed25519-cert-v01@openssh.com"
    assert offer[:6] == certificates_first(default.host_key_algorithms)[:6] == (
        "ssh-ed25519-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com",
        "rsa-sha2-256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    )
    assert host_key_offer(default, set()) == default.host_key_algorithms
    chosen = ConnectionSettings(host="db", host_key_algorithms=("ssh-ed25519",), host_key_algorithms_set=True)
    assert host_key_offer(chosen, set(), cert_authority=True) == ("ssh-ed25519",)
