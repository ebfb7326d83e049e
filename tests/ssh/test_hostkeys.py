"""Host key algorithms: signatures interoperate with paramiko and asyncssh, fingerprints match
ssh-keygen, and every kind of bad key or signature is refused with a typed error."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.ssh.crypto.hostkeys import (
    DEFAULT_HOST_KEY_ALGORITHMS,
    HOST_KEY_ALGORITHMS,
    HostKeySigner,
    KeyFormatError,
    PrivateKey,
    fingerprint_md5,
    fingerprint_sha256,
    openssh_public_line,
    parse_openssh_public_line,
    parse_signature_blob,
    public_key_from_blob,
    public_key_type,
    verify_signature,
)
from sshtui.ssh.errors import DecodeError, HostKeyError, LocalProtocolError, SSHError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # asyncssh imports DSA, which cryptography deprecates
    import asyncssh
    import paramiko  # type: ignore[import-untyped]


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


KINDS = {
    "ssh-ed25519": ("ed25519", None),
    "ecdsa-sha2-nistp256": ("ecdsa", 256),
    "ecdsa-sha2-nistp384": ("ecdsa", 384),
    "ecdsa-sha2-nistp521": ("ecdsa", 521),
    "ssh-rsa": ("rsa", 2048),
}


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {key_type: PrivateKey.generate(kind, bits) for key_type, (kind, bits) in KINDS.items()}


def key_for(keys: dict[str, PrivateKey], algorithm: str) -> PrivateKey:
    return keys[HOST_KEY_ALGORITHMS[algorithm].key_type]


ALGORITHMS = list(HOST_KEY_ALGORITHMS)
PARAMIKO_CLASSES = {
    "ssh-ed25519": paramiko.Ed25519Key,
    "ecdsa-sha2-nistp256": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp384": paramiko.ECDSAKey,
    "ecdsa-sha2-nistp521": paramiko.ECDSAKey,
    "ssh-rsa": paramiko.RSAKey,
}


def test_sha1_rsa_is_known_but_not_offered_by_default() -> None:
    assert "ssh-rsa" in HOST_KEY_ALGORITHMS
    assert "ssh-rsa" not in DEFAULT_HOST_KEY_ALGORITHMS
    assert DEFAULT_HOST_KEY_ALGORITHMS[0] == "ssh-ed25519"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_our_signature_verifies_and_names_its_algorithm(keys: dict[str, PrivateKey], algorithm: str) -> None:
    key = key_for(keys, algorithm)
    data = b"exchange hash " + algorithm.encode()
    signature = key.signer(algorithm).sign(data)
    assert parse_signature_blob(signature)[0] == algorithm
    verify_signature(algorithm, key.public_blob, signature, data)
    with pytest.raises(HostKeyError, match="does not verify"):
        verify_signature(algorithm, key.public_blob, signature, data + b"!")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_asyncssh_and_us_verify_each_others_signatures(keys: dict[str, PrivateKey], algorithm: str) -> None:
    key = key_for(keys, algorithm)
    theirs = asyncssh.import_private_key(key.to_openssh())
    their_public = asyncssh.import_public_key(openssh_public_line(key.public_blob))
    assert theirs.public_data == key.public_blob
    for data in (b"", b"\x00" * 33, hashlib.sha512(algorithm.encode()).digest()):
        verify_signature(algorithm, key.public_blob, theirs.sign(data, algorithm.encode()), data)
        assert their_public.verify(data, key.sign(algorithm, data))


@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a != "ssh-rsa"])  # paramiko 5 dropped SHA-1
def test_paramiko_and_us_verify_each_others_signatures(keys: dict[str, PrivateKey], algorithm: str) -> None:
    key = key_for(keys, algorithm)
    cls = PARAMIKO_CLASSES[key.key_type]
    theirs = cls.from_private_key(io.StringIO(key.to_openssh().decode()))
    their_public = cls(data=key.public_blob)
    assert theirs.asbytes() == key.public_blob
    data = b"random data \x01\x02" * 7
    message = (
        theirs.sign_ssh_data(data, algorithm) if key.key_type == "ssh-rsa" else theirs.sign_ssh_data(data)
    )
    verify_signature(algorithm, key.public_blob, message.asbytes(), data)
    assert their_public.verify_ssh_sig(data, paramiko.Message(key.sign(algorithm, data)))


def test_signature_naming_another_algorithm_is_refused(keys: dict[str, PrivateKey]) -> None:
    rsa_key = keys["ssh-rsa"]
    data = b"H"
    sha256_signature = rsa_key.sign("rsa-sha2-256", data)
    with pytest.raises(HostKeyError, match=r"rsa-sha2-256.*rsa-sha2-512"):
        verify_signature("rsa-sha2-512", rsa_key.public_blob, sha256_signature, data)
    ed_signature = keys["ssh-ed25519"].sign("ssh-ed25519", data)
    with pytest.raises(HostKeyError, match="ssh-ed25519"):
        verify_signature("rsa-sha2-512", rsa_key.public_blob, ed_signature, data)


def test_host_key_of_another_type_than_negotiated_is_refused(keys: dict[str, PrivateKey]) -> None:
    key = keys["ecdsa-sha2-nistp256"]
    signature = key.sign("ecdsa-sha2-nistp256", b"H")
    with pytest.raises(HostKeyError, match=r"ecdsa-sha2-nistp256.*ecdsa-sha2-nistp384"):
        verify_signature("ecdsa-sha2-nistp384", key.public_blob, signature, b"H")


def test_signature_from_another_key_of_the_same_type_does_not_verify(keys: dict[str, PrivateKey]) -> None:
    other = PrivateKey.generate("ed25519")
    with pytest.raises(HostKeyError, match="does not verify"):
        verify_signature(
            "ssh-ed25519", keys["ssh-ed25519"].public_blob, other.sign("ssh-ed25519", b"H"), b"H"
        )


def test_small_rsa_keys_are_refused_with_advice() -> None:
    modulus = (1 << 767) | 0xF1  # odd, 768 bits: the refusal comes before any arithmetic
    blob = _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\x00" + modulus.to_bytes(96, "big"))
    signature = _string(b"rsa-sha2-256") + _string(bytes(96))
    with pytest.raises(HostKeyError, match=r"768 bits.*1024.*2048 recommended"):
        verify_signature("rsa-sha2-256", blob, signature, b"H")


def test_rsa_signature_with_leading_zeros_dropped_still_verifies(keys: dict[str, PrivateKey]) -> None:
    key = keys["ssh-rsa"]
    for counter in range(2000):  # about 1 in 256 signatures starts with a zero byte
        data = counter.to_bytes(4, "big")
        algorithm, raw = parse_signature_blob(key.sign("rsa-sha2-256", data))
        if raw[0] == 0:
            shortened = _string(algorithm.encode()) + _string(raw.lstrip(b"\x00"))
            verify_signature("rsa-sha2-256", key.public_blob, shortened, data)
            return
    pytest.skip("no signature with a leading zero byte found")


def test_malformed_signature_values_are_typed_errors(keys: dict[str, PrivateKey]) -> None:
    ed = keys["ssh-ed25519"]
    with pytest.raises(HostKeyError, match="63 bytes"):
        verify_signature("ssh-ed25519", ed.public_blob, _string(b"ssh-ed25519") + _string(bytes(63)), b"H")
    ecdsa = keys["ecdsa-sha2-nistp256"]
    zero_r = _string(b"ecdsa-sha2-nistp256") + _string(_string(b"") + _string(b"\x01"))
    with pytest.raises(HostKeyError, match="out of range"):
        verify_signature("ecdsa-sha2-nistp256", ecdsa.public_blob, zero_r, b"H")
    with pytest.raises(DecodeError):
        verify_signature("ssh-ed25519", ed.public_blob, ed.sign("ssh-ed25519", b"H")[:-1], b"H")
    with pytest.raises(DecodeError):
        verify_signature("ssh-ed25519", ed.public_blob, ed.sign("ssh-ed25519", b"H") + b"\x00", b"H")
    rsa_key = keys["ssh-rsa"]
    too_long = _string(b"rsa-sha2-512") + _string(bytes(257))
    with pytest.raises(HostKeyError, match="longer than"):
        verify_signature("rsa-sha2-512", rsa_key.public_blob, too_long, b"H")


def test_malformed_public_keys_are_decode_errors(keys: dict[str, PrivateKey]) -> None:
    ecdsa_blob = keys["ecdsa-sha2-nistp256"].public_blob
    with pytest.raises(DecodeError, match="trailing"):
        public_key_from_blob(ecdsa_blob + b"\x00")
    with pytest.raises(DecodeError, match="truncated"):
        public_key_from_blob(ecdsa_blob[:-1])
    off_curve = _string(b"ecdsa-sha2-nistp256") + _string(b"nistp256") + _string(b"\x04" + b"\x01" * 64)
    with pytest.raises(DecodeError, match="not a valid point"):
        public_key_from_blob(off_curve)
    wrong_curve = _string(b"ecdsa-sha2-nistp256") + _string(b"nistp384") + _string(b"\x04" + b"\x01" * 64)
    with pytest.raises(DecodeError, match="nistp384"):
        public_key_from_blob(wrong_curve)
    with pytest.raises(DecodeError, match="31 bytes"):
        public_key_from_blob(_string(b"ssh-ed25519") + _string(bytes(31)))
    negative_modulus = _string(b"ssh-rsa") + _string(b"\x03") + _string(b"\x80" + b"\x01" * 127)
    with pytest.raises(DecodeError, match="positive"):
        public_key_from_blob(negative_modulus)
    with pytest.raises(KeyFormatError, match="ssh-dss"):
        public_key_from_blob(_string(b"ssh-dss") + _string(b"x"))


KEY_TYPE_PREFIXES = st.sampled_from(
    [b"", *(_string(t.encode()) for t in KINDS), _string(b"ecdsa-sha2-nistp256") + _string(b"nistp256")]
)
MPINT_OR_STRING = st.binary(max_size=80).map(_string)


@given(KEY_TYPE_PREFIXES, st.lists(MPINT_OR_STRING, max_size=3), st.binary(max_size=8))
def test_public_key_parser_never_raises_untyped_errors(
    prefix: bytes, fields: list[bytes], tail: bytes
) -> None:
    blob = prefix + b"".join(fields) + tail
    try:
        public_key_from_blob(blob)
    except (DecodeError, KeyFormatError):
        return
    assert public_key_type(blob) in KINDS


@given(st.binary(max_size=120))
def test_random_signature_blobs_are_refused_with_typed_errors(data: bytes) -> None:
    key = _SHARED_ED25519
    with pytest.raises((HostKeyError, DecodeError)):
        verify_signature("ssh-ed25519", key.public_blob, data, b"H")
    with pytest.raises((HostKeyError, DecodeError)):
        verify_signature("ssh-ed25519", key.public_blob, _string(b"ssh-ed25519") + _string(data), b"H")


_SHARED_ED25519 = PrivateKey.generate("ed25519")


def test_signer_is_bound_to_an_algorithm_the_key_can_make(keys: dict[str, PrivateKey]) -> None:
    rsa_key = keys["ssh-rsa"]
    assert rsa_key.algorithms == ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
    signer = rsa_key.signer("rsa-sha2-256")
    assert isinstance(signer, HostKeySigner)
    assert signer.public_blob == rsa_key.public_blob
    assert parse_signature_blob(signer.sign(b"H"))[0] == "rsa-sha2-256"
    with pytest.raises(LocalProtocolError):
        keys["ssh-ed25519"].signer("rsa-sha2-512")
    with pytest.raises(LocalProtocolError):
        keys["ecdsa-sha2-nistp256"].sign("ecdsa-sha2-nistp384", b"H")


def test_private_key_material_stays_out_of_reprs(keys: dict[str, PrivateKey]) -> None:
    key = keys["ssh-ed25519"]
    private_pem = key.to_openssh().decode()
    body = "".join(line for line in private_pem.splitlines() if not line.startswith("-----"))
    raw = base64.b64decode(body)
    for text in (repr(key), repr(key.signer("ssh-ed25519")), str(key)):
        assert body[40:80] not in text
        assert raw[-64:].hex() not in text
    assert key.fingerprint in repr(key)


def test_openssh_round_trip_with_and_without_passphrase(keys: dict[str, PrivateKey]) -> None:
    for key in keys.values():
        assert PrivateKey.from_openssh(key.to_openssh()).public_blob == key.public_blob
    ed = keys["ssh-ed25519"]
    encrypted = ed.to_openssh(b"correct horse")
    assert PrivateKey.from_openssh(encrypted, b"correct horse").public_blob == ed.public_blob
    with pytest.raises(KeyFormatError, match="passphrase is needed"):
        PrivateKey.from_openssh(encrypted)
    with pytest.raises(KeyFormatError, match="wrong passphrase") as caught:
        PrivateKey.from_openssh(encrypted, b"wrong horse")
    assert "horse" not in str(caught.value)


def test_unreadable_or_unsupported_private_keys_are_key_format_errors() -> None:
    with pytest.raises(KeyFormatError):
        PrivateKey.from_openssh(b"not a key at all")
    with pytest.raises(KeyFormatError):
        PrivateKey.from_openssh(
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        )
    with pytest.raises(KeyFormatError, match="ECDSA"):
        PrivateKey.generate("ecdsa", 255)
    with pytest.raises(KeyFormatError, match="RSA"):
        PrivateKey.generate("rsa", 1024)
    with pytest.raises(KeyFormatError, match="unknown key kind"):
        PrivateKey.generate("dsa")
    assert issubclass(KeyFormatError, SSHError)


def test_public_line_round_trip_and_fingerprint_formats(keys: dict[str, PrivateKey]) -> None:
    key = keys["ssh-ed25519"]
    line = openssh_public_line(key.public_blob, "host@example")
    assert line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA")
    assert parse_openssh_public_line(line) == (key.public_blob, "host@example")
    assert parse_openssh_public_line(line.split(" host")[0]) == (key.public_blob, "")
    expected = base64.b64encode(hashlib.sha256(key.public_blob).digest()).decode().rstrip("=")
    assert fingerprint_sha256(key.public_blob) == "SHA256:" + expected
    md5 = fingerprint_md5(key.public_blob)
    assert md5.startswith("MD5:") and len(md5.split(":")) == 17
    assert public_key_type(key.public_blob) == "ssh-ed25519"
    with pytest.raises(KeyFormatError, match="says"):
        parse_openssh_public_line(line.replace("ssh-ed25519 ", "ssh-rsa ", 1))
    with pytest.raises(KeyFormatError, match="base64"):
        parse_openssh_public_line("ssh-ed25519 !!!!")


SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")


def _keygen(*args: str) -> str:
    assert SSH_KEYGEN is not None
    return subprocess.run([SSH_KEYGEN, *args], check=True, capture_output=True, text=True, timeout=60).stdout


@needs_ssh_keygen
@pytest.mark.parametrize(
    "keygen_args",
    [
        ("-t", "ed25519"),
        ("-t", "ecdsa", "-b", "256"),
        ("-t", "ecdsa", "-b", "384"),
        ("-t", "ecdsa", "-b", "521"),
        ("-t", "rsa", "-b", "2048"),
    ],
)
def test_keys_and_fingerprints_match_ssh_keygen(tmp_path: Path, keygen_args: tuple[str, ...]) -> None:
    path = tmp_path / "key"
    _keygen(*keygen_args, "-N", "", "-C", "test", "-q", "-f", str(path))
    key = PrivateKey.from_openssh(path.read_bytes())
    pub_blob, comment = parse_openssh_public_line(path.with_suffix(".pub").read_text())
    assert key.public_blob == pub_blob and comment == "test"
    assert (
        fingerprint_sha256(key.public_blob) == _keygen("-l", "-f", str(path.with_suffix(".pub"))).split()[1]
    )
    assert fingerprint_md5(key.public_blob) == _keygen("-l", "-E", "md5", "-f", str(path)).split()[1]
    for algorithm in key.algorithms:
        verify_signature(algorithm, pub_blob, key.sign(algorithm, b"H"), b"H")


@needs_ssh_keygen
def test_ssh_keygen_reads_the_keys_we_write(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    for index, key in enumerate(keys.values()):
        path = tmp_path / f"key{index}"
        path.write_bytes(key.to_openssh(b"pass phrase"))
        path.chmod(0o600)
        printed = _keygen("-y", "-P", "pass phrase", "-f", str(path)).strip()
        assert parse_openssh_public_line(printed)[0] == key.public_blob


@needs_ssh_keygen
def test_passphrase_protected_ssh_keygen_key_loads(tmp_path: Path) -> None:
    path = tmp_path / "key"
    _keygen("-t", "ed25519", "-N", "sesame", "-q", "-f", str(path))
    key = PrivateKey.from_openssh(path.read_bytes(), b"sesame")
    assert key.public_blob == parse_openssh_public_line(path.with_suffix(".pub").read_text())[0]
    with pytest.raises(KeyFormatError):
        PrivateKey.from_openssh(path.read_bytes(), b"open")


@needs_ssh_keygen
def test_pem_rsa_key_from_ssh_keygen_loads(tmp_path: Path) -> None:
    path = tmp_path / "key"
    _keygen("-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-q", "-f", str(path))
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key = PrivateKey.from_openssh(path.read_bytes())
    assert key.public_blob == parse_openssh_public_line(path.with_suffix(".pub").read_text())[0]
