"""User key files: OpenSSH private keys (PROTOCOL.key, bcrypt KDF), PEM PKCS#1 / SEC1
(RFC 8017 App. A.1.2, RFC 5915, RFC 1421 Proc-Type encryption), PKCS#8 (RFC 5958, RFC 8018
PBES2), ``.pub`` lines and RFC 4716 public key files.

The envelope of every format is parsed here first, so each failure gets its own typed error:
a missing passphrase, a wrong one, a key type we do not speak, or a damaged file. The
``cryptography`` package then does the decryption and the key arithmetic. Error messages name
the ``source`` (normally the file path) and never contain key bytes or the passphrase.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sshtui.ssh.crypto.hostkeys import (
    EC_CURVE_ORDERS,
    HOST_KEY_ALGORITHMS,
    MIN_RSA_BITS,
    KeyFormatError,
    PrivateKey,
    parse_openssh_public_line,
    public_key_from_blob,
    public_key_type,
)
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.wire import WireReader

SUPPORTED_KEY_TYPES = frozenset(alg.key_type for alg in HOST_KEY_ALGORITHMS.values())
# What cryptography can decrypt in OpenSSH key files; OpenSSH may also write others with -Z.
OPENSSH_KEY_CIPHERS = ("aes256-ctr", "aes256-cbc", "aes256-gcm@openssh.com")
# OpenSSH appends the AEAD tag after the private section (bugzilla.mindrot.org #3553).
_AEAD_TAG_LENGTHS = dict.fromkeys(
    ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"), 16
)
# ssh-keygen uses 16; a damaged rounds field must not hang the caller for hours.
MAX_BCRYPT_ROUNDS = 10_000
_OPENSSH_MAGIC = b"openssh-key-v1\x00"

_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_PEM_TRADITIONAL = {"RSA PRIVATE KEY", "EC PRIVATE KEY"}
_PEM_UNSUPPORTED = {"DSA PRIVATE KEY": "ssh-dss"}
_OTHER_KEY_TYPES = {"DSAPrivateKey": "ssh-dss", "Ed448PrivateKey": "ssh-ed448"}
_RFC4716_BEGIN = "---- BEGIN SSH2 PUBLIC KEY ----"
_RFC4716_END = "---- END SSH2 PUBLIC KEY ----"


class KeyLoadError(KeyFormatError):
    """A key could not be loaded from ``source``."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source


class PassphraseRequired(KeyLoadError):
    def __init__(self, source: str) -> None:
        super().__init__(source, "the private key is encrypted; a passphrase is needed")


class WrongPassphrase(KeyLoadError):
    def __init__(self, source: str) -> None:
        super().__init__(source, "incorrect passphrase (or the encrypted key is damaged)")


class UnsupportedKeyType(KeyLoadError):
    def __init__(self, source: str, key_type: str) -> None:
        super().__init__(source, f"unsupported key type {key_type!r:.80}")
        self.key_type = key_type


class UnsupportedKeyEncryption(KeyLoadError):
    def __init__(self, source: str, scheme: str) -> None:
        super().__init__(source, f"the key is encrypted with {scheme!r:.80}, which is not supported")
        self.scheme = scheme


class MalformedKey(KeyLoadError):
    def __init__(self, source: str, detail: str) -> None:
        super().__init__(source, f"not a usable key file: {detail}")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Pem:
    label: str
    headers: dict[str, str]
    der: bytes
    block: bytes  # BEGIN line to END line, for cryptography's PEM loader


@dataclass(frozen=True, slots=True)
class _OpenSSHEnvelope:
    cipher: str
    kdf: str
    kdf_options: bytes
    public_blob: bytes

    @property
    def encrypted(self) -> bool:
        return self.cipher != "none" or self.kdf != "none"


def _read_pem(data: bytes, source: str) -> _Pem:
    begin = _BEGIN.search(data)
    if begin is None:
        raise MalformedKey(source, _describe_non_pem(data))
    label = begin.group(1).decode("ascii")
    end_line = f"-----END {label}-----".encode("ascii")
    end = data.find(end_line, begin.end())
    if end < 0:
        raise MalformedKey(source, f"truncated: no -----END {label}----- line")
    headers: dict[str, str] = {}
    body: list[bytes] = []
    for raw_line in data[begin.end() : end].splitlines():
        line = raw_line.strip()
        if b":" in line and not body:
            name, _, value = line.decode("ascii", "replace").partition(":")
            headers[name.strip()] = value.strip()
        elif line:
            body.append(line)
    try:
        der = base64.b64decode(b"".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedKey(source, f"the {label} block is not valid base64") from None
    return _Pem(label, headers, der, data[begin.start() : end + len(end_line)])


def _describe_non_pem(data: bytes) -> str:
    head = data.lstrip()[:64]
    if head.startswith(b"PuTTY-User-Key-File-"):
        return "PuTTY key files are not supported; convert with puttygen -O private-openssh"
    if head.startswith(b"---- BEGIN SSH2") or any(head.startswith(t.encode()) for t in SUPPORTED_KEY_TYPES):
        return "this is a public key, not a private key"
    return "no -----BEGIN ... PRIVATE KEY----- line"


def _read_openssh(der: bytes, source: str) -> _OpenSSHEnvelope:
    r = WireReader(der, "OpenSSH private key")
    try:
        if r.fixed(len(_OPENSSH_MAGIC), "magic") != _OPENSSH_MAGIC:
            raise MalformedKey(source, "the OpenSSH key does not start with openssh-key-v1")
        cipher = r.ascii("cipher name")
        kdf = r.ascii("KDF name")
        kdf_options = r.string("KDF options")
        count = r.uint32("number of keys")
        if count != 1:
            raise MalformedKey(source, f"the file holds {count} keys; exactly one is supported")
        public_blob = r.string("public key")
        r.string("private section")
        r.fixed(_AEAD_TAG_LENGTHS.get(cipher, 0), "authentication tag")
        r.check_end()
        key_type = public_key_type(public_blob)
        if key_type not in SUPPORTED_KEY_TYPES:
            raise UnsupportedKeyType(source, key_type)
        public_key_from_blob(public_blob)
    except DecodeError as exc:
        raise MalformedKey(source, exc.message) from None
    return _OpenSSHEnvelope(cipher, kdf, kdf_options, public_blob)


def _check_openssh_encryption(envelope: _OpenSSHEnvelope, source: str) -> None:
    if envelope.cipher not in OPENSSH_KEY_CIPHERS:
        raise UnsupportedKeyEncryption(source, envelope.cipher)
    if envelope.kdf != "bcrypt":
        raise UnsupportedKeyEncryption(source, f"KDF {envelope.kdf}")
    r = WireReader(envelope.kdf_options, "bcrypt KDF options")
    try:
        r.string("salt")
        rounds = r.uint32("rounds")
        r.check_end()
    except DecodeError as exc:
        raise MalformedKey(source, exc.message) from None
    if rounds > MAX_BCRYPT_ROUNDS:
        raise UnsupportedKeyEncryption(source, f"bcrypt with {rounds} rounds (limit {MAX_BCRYPT_ROUNDS})")


def _classify(pem: _Pem, source: str) -> tuple[bool, _OpenSSHEnvelope | None]:
    """Whether the key is encrypted, and the OpenSSH envelope when it is that format."""
    if pem.label == "OPENSSH PRIVATE KEY":
        envelope = _read_openssh(pem.der, source)
        if envelope.encrypted:
            _check_openssh_encryption(envelope, source)
        return envelope.encrypted, envelope
    if pem.label in _PEM_TRADITIONAL:
        return "ENCRYPTED" in pem.headers.get("Proc-Type", ""), None
    if pem.label in ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        return pem.label == "ENCRYPTED PRIVATE KEY", None
    if pem.label in _PEM_UNSUPPORTED:
        raise UnsupportedKeyType(source, _PEM_UNSUPPORTED[pem.label])
    raise MalformedKey(source, f"a {pem.label} block is not a private key")


def is_encrypted(data: bytes, *, source: str = "key") -> bool:
    """Whether loading ``data`` needs a passphrase; raises ``KeyLoadError`` for non-keys."""
    return _classify(_read_pem(data, source), source)[0]


def load_private_key(data: bytes, passphrase: bytes | None = None, *, source: str = "key") -> PrivateKey:
    """A user private key from OpenSSH, PEM (PKCS#1, SEC1) or PKCS#8 bytes.

    A passphrase given for an unencrypted key is ignored. Raises a ``KeyLoadError`` subclass.
    """
    pem = _read_pem(data, source)
    encrypted, envelope = _classify(pem, source)
    if encrypted and not passphrase:
        raise PassphraseRequired(source)
    password = passphrase if encrypted else None
    if envelope is None:
        return _load(lambda: serialization.load_pem_private_key(pem.block, password), encrypted, source)
    loaded = _load(lambda: serialization.load_ssh_private_key(pem.block, password), encrypted, source)
    if loaded.public_blob != envelope.public_blob:
        raise MalformedKey(source, "the private key does not match the public key stored with it")
    return loaded


def _load(load: Callable[[], object], encrypted: bool, source: str) -> PrivateKey:
    try:
        key = load()
    except InvalidTag:
        raise WrongPassphrase(source) from None
    except UnsupportedAlgorithm:
        if encrypted:
            raise UnsupportedKeyEncryption(source, "this encryption scheme") from None
        raise UnsupportedKeyType(source, "unknown") from None
    except (ValueError, TypeError, NotImplementedError, OverflowError):
        # NotImplementedError: cryptography's answer to a compressed or garbled EC point.
        # The envelope was sound, so with a passphrase in play the likeliest cause is a wrong
        # one; OpenSSH draws the same conclusion from a checkint mismatch.
        if encrypted:
            raise WrongPassphrase(source) from None
        raise MalformedKey(source, "the key data is corrupt") from None
    return _wrap(key, source)


def _wrap(key: object, source: str) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise UnsupportedKeyType(source, f"ssh-rsa with {key.key_size} bits (at least {MIN_RSA_BITS} needed)")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in EC_CURVE_ORDERS:
        raise UnsupportedKeyType(source, f"ECDSA on {key.curve.name}")
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise UnsupportedKeyType(source, _OTHER_KEY_TYPES.get(type(key).__name__, type(key).__name__))
    return PrivateKey(key)


def load_public_key_file(data: bytes, *, source: str = "public key") -> tuple[bytes, str]:
    """The key blob and comment of a ``.pub`` file: one OpenSSH line, or RFC 4716 format."""
    text = data.decode("utf-8", "replace")
    if _RFC4716_BEGIN in text:
        blob, comment = _read_rfc4716(text, source)
    else:
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not lines:
            raise MalformedKey(source, "the public key file is empty")
        try:
            blob, comment = parse_openssh_public_line(lines[0])
        except KeyFormatError as exc:
            raise MalformedKey(source, str(exc)) from None
    try:
        key_type = public_key_type(blob)
        if key_type not in SUPPORTED_KEY_TYPES:
            raise UnsupportedKeyType(source, key_type)
        public_key_from_blob(blob)
    except DecodeError as exc:
        raise MalformedKey(source, exc.message) from None
    return blob, comment


def _read_rfc4716(text: str, source: str) -> tuple[bytes, str]:
    start = text.index(_RFC4716_BEGIN) + len(_RFC4716_BEGIN)
    end = text.find(_RFC4716_END, start)
    if end < 0:
        raise MalformedKey(source, f"truncated: no {_RFC4716_END} line")
    comment = ""
    body: list[str] = []
    lines = iter(text[start:end].splitlines())
    for line in lines:
        line = line.strip()
        if ":" in line and not body:
            name, _, value = line.partition(":")
            while value.endswith("\\"):  # RFC 4716 §3.3: a header continues on the next line
                value = value[:-1] + next(lines, "").strip()
            if name.strip().lower() == "comment":
                comment = value.strip().strip('"')
        elif line:
            body.append(line)
    try:
        return base64.b64decode("".join(body), validate=True), comment
    except (binascii.Error, ValueError):
        raise MalformedKey(source, "the RFC 4716 key is not valid base64") from None
