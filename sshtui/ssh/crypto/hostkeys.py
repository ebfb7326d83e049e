"""Host key algorithms: public key blobs, signature blobs and fingerprints.

RFC 4253 §6.6 (ssh-rsa blob and signature format), RFC 8332 (rsa-sha2-256/512),
RFC 5656 §3.1 (ecdsa-sha2-nistp* blobs and signatures), RFC 8709 (ssh-ed25519); OpenSSH
PROTOCOL.certkeys for the ``*-cert-v01@openssh.com`` host key algorithms (see certificates.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from sshtui.ssh.errors import DecodeError, HostKeyError, LocalProtocolError, SSHError
from sshtui.ssh.wire import WireReader, mpint, string

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
CryptoPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Below this, an RSA signature is forgeable in practice; OpenSSH refuses them too.
MIN_RSA_BITS = 1024
RECOMMENDED_RSA_BITS = 2048
# Bounds the modular exponentiation cost a peer can make us pay for one verification.
MAX_RSA_BITS = 16384


class KeyFormatError(SSHError):
    """A private or public key could not be read, or is of a type we do not support."""


@dataclass(frozen=True, slots=True)
class HostKeyAlgorithm:
    """A signature algorithm usable for host keys. ``hash_name`` is None for Ed25519,
    which hashes internally. For a certificate algorithm, ``certified`` names the plain
    algorithm the certified key signs with (the signature blob carries that name)."""

    name: str
    key_type: str
    hash_name: str | None
    opt_in: bool = False
    certified: str | None = None


HOST_KEY_ALGORITHMS: Mapping[str, HostKeyAlgorithm] = MappingProxyType(
    {
        alg.name: alg
        for alg in (
            HostKeyAlgorithm("ssh-ed25519", "ssh-ed25519", None),
            HostKeyAlgorithm("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", "sha256"),
            HostKeyAlgorithm("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384", "sha384"),
            HostKeyAlgorithm("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521", "sha512"),
            HostKeyAlgorithm("rsa-sha2-512", "ssh-rsa", "sha512"),
            HostKeyAlgorithm("rsa-sha2-256", "ssh-rsa", "sha256"),
            # SHA-1 signatures are collision-prone; only offered when the user opts in.
            HostKeyAlgorithm("ssh-rsa", "ssh-rsa", "sha1", opt_in=True),
        )
    }
)

DEFAULT_HOST_KEY_ALGORITHMS: tuple[str, ...] = tuple(
    name for name, alg in HOST_KEY_ALGORITHMS.items() if not alg.opt_in
)

# Host certificates (PROTOCOL.certkeys): opt-in, offered first when a @cert-authority line applies.
# Kept apart from HOST_KEY_ALGORITHMS, which also lists what user keys may sign with.
CERTIFICATE_HOST_KEY_ALGORITHMS: Mapping[str, HostKeyAlgorithm] = MappingProxyType(
    {
        f"{plain.name}-cert-v01@openssh.com": HostKeyAlgorithm(
            f"{plain.name}-cert-v01@openssh.com",
            f"{plain.key_type}-cert-v01@openssh.com",
            plain.hash_name,
            opt_in=True,
            certified=plain.name,
        )
        for plain in HOST_KEY_ALGORITHMS.values()
        if not plain.opt_in
    }
)
# Every algorithm ``verify_signature`` accepts for a server's host key.
SUPPORTED_HOST_KEY_ALGORITHMS: Mapping[str, HostKeyAlgorithm] = MappingProxyType(
    {**HOST_KEY_ALGORITHMS, **CERTIFICATE_HOST_KEY_ALGORITHMS}
)

_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class _Curve:
    key_type: str
    identifier: str
    curve: ec.EllipticCurve
    order: int


# Group orders n of the NIST curves (FIPS 186-4 §D.1.2), keyed by the library's curve name.
EC_CURVE_ORDERS: Mapping[str, int] = MappingProxyType(
    {
        "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "secp384r1": int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
        "secp521r1": int(
            "01FF" + "FF" * 28 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    }
)

_CURVES: Mapping[str, _Curve] = {
    c.key_type: c
    for c in (
        _Curve("ecdsa-sha2-nistp256", "nistp256", ec.SECP256R1(), EC_CURVE_ORDERS["secp256r1"]),
        _Curve("ecdsa-sha2-nistp384", "nistp384", ec.SECP384R1(), EC_CURVE_ORDERS["secp384r1"]),
        _Curve("ecdsa-sha2-nistp521", "nistp521", ec.SECP521R1(), EC_CURVE_ORDERS["secp521r1"]),
    )
}
_CURVE_BY_LIBRARY_NAME: Mapping[str, _Curve] = {c.curve.name: c for c in _CURVES.values()}


# --- public keys -------------------------------------------------------------------------------


def public_blob_of(key: PublicKey) -> bytes:
    """The SSH wire encoding of a public key (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return string(b"ssh-ed25519") + string(key.public_bytes_raw())
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _curve_of(key.curve)
        point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return string(curve.key_type) + string(curve.identifier) + string(point)
    numbers = key.public_numbers()
    return string(b"ssh-rsa") + mpint(numbers.e) + mpint(numbers.n)


def public_key_type(blob: bytes) -> str:
    """The key type name a public key blob starts with, e.g. ``ssh-ed25519``."""
    return WireReader(blob, "public key").ascii("key type")


def public_key_from_blob(blob: bytes) -> PublicKey:
    """Parse and validate a public key blob; malformed blobs raise DecodeError."""
    r = WireReader(blob, "public key")
    key_type = r.ascii("key type")
    key: PublicKey
    if key_type == "ssh-ed25519":
        raw = r.string("Ed25519 key")
        if len(raw) != 32:
            raise DecodeError(f"public key: Ed25519 key is {len(raw)} bytes, expected 32")
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    elif key_type in _CURVES:
        curve = _CURVES[key_type]
        identifier = r.ascii("curve name")
        if identifier != curve.identifier:
            raise DecodeError(f"public key: {key_type} names curve {identifier!r:.40}")
        point = r.string("EC point")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve.curve, point)
        except ValueError:
            raise DecodeError(f"public key: not a valid point on {curve.identifier}") from None
    elif key_type == "ssh-rsa":
        e = r.mpint("RSA exponent")
        n = r.mpint("RSA modulus")
        if e <= 0 or n <= 0:
            raise DecodeError("public key: RSA exponent and modulus must be positive")
        if n.bit_length() > MAX_RSA_BITS:
            raise DecodeError(f"public key: RSA modulus of {n.bit_length()} bits (limit {MAX_RSA_BITS})")
        try:
            key = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise DecodeError("public key: invalid RSA exponent or modulus") from None
    else:
        raise KeyFormatError(f"unsupported public key type {key_type!r:.64}")
    r.check_end()
    return key


def fingerprint_sha256(blob: bytes) -> str:
    """``SHA256:`` and unpadded base64, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def fingerprint_md5(blob: bytes) -> str:
    """``MD5:`` and colon-separated hex, as ``ssh-keygen -l -E md5`` prints it."""
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def openssh_public_line(blob: bytes, comment: str = "") -> str:
    """The one-line ``authorized_keys`` / ``.pub`` form of a public key."""
    line = f"{public_key_type(blob)} {base64.b64encode(blob).decode('ascii')}"
    return f"{line} {comment}" if comment else line


def parse_openssh_public_line(line: str | bytes) -> tuple[bytes, str]:
    """The blob and comment of a ``.pub`` style line (the inverse of ``openssh_public_line``)."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise KeyFormatError("public key line needs a key type and base64 data")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("public key line has invalid base64 data") from None
    try:
        inner_type = public_key_type(blob)
    except DecodeError:
        raise KeyFormatError("public key line does not hold a key blob") from None
    if inner_type != parts[0]:
        raise KeyFormatError(f"public key line says {parts[0]!r:.64} but holds {inner_type!r:.64}")
    return blob, parts[2] if len(parts) > 2 else ""


# --- signatures --------------------------------------------------------------------------------


def parse_signature_blob(signature_blob: bytes) -> tuple[str, bytes]:
    """``string algorithm || string signature`` into its two parts."""
    r = WireReader(signature_blob, "signature")
    algorithm = r.ascii("signature algorithm")
    raw = r.string("signature")
    r.check_end()
    return algorithm, raw


def verify_signature(algorithm: str, public_blob: bytes, signature_blob: bytes, data: bytes) -> None:
    """Check that ``signature_blob`` is a valid ``algorithm`` signature of ``data``.

    Raises HostKeyError when the signature does not verify or names another algorithm,
    DecodeError when a blob is malformed.
    For a certificate algorithm the certificate's CA signature is checked too, and ``data``
    must be signed by the certified key with the matching plain algorithm.
    """
    spec = SUPPORTED_HOST_KEY_ALGORITHMS.get(algorithm)
    if spec is None:
        raise LocalProtocolError(f"unsupported host key algorithm {algorithm!r:.64}")
    key_type = public_key_type(public_blob)
    if key_type != spec.key_type:
        raise HostKeyError(f"host key is {key_type!r:.64} but {algorithm} was negotiated")
    if spec.certified is not None:
        # Imported here: certificates.py builds on this module.
        from sshtui.ssh.crypto.certificates import parse_certificate

        public_blob = parse_certificate(public_blob).public_blob
        algorithm = spec.certified
        spec = HOST_KEY_ALGORITHMS[algorithm]
    signed_with, raw = parse_signature_blob(signature_blob)
    if signed_with != algorithm:
        raise HostKeyError(f"signature uses {signed_with!r:.64} but {algorithm} was negotiated")
    key = public_key_from_blob(public_blob)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if len(raw) != 64:
                raise HostKeyError(f"Ed25519 signature is {len(raw)} bytes, expected 64")
            key.verify(raw, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert spec.hash_name is not None
            key.verify(_ecdsa_der(raw, _curve_of(key.curve)), data, ec.ECDSA(_HASHES[spec.hash_name]()))
        else:
            assert spec.hash_name is not None
            key.verify(_rsa_signature_bytes(raw, key), data, padding.PKCS1v15(), _HASHES[spec.hash_name]())
    except InvalidSignature:
        raise HostKeyError(f"{algorithm} signature does not verify") from None


def _ecdsa_der(raw: bytes, curve: _Curve) -> bytes:
    r = WireReader(raw, "ECDSA signature")
    sig_r = r.mpint("r")
    sig_s = r.mpint("s")
    r.check_end()
    if not (0 < sig_r < curve.order and 0 < sig_s < curve.order):
        raise HostKeyError(f"ECDSA signature values out of range for {curve.identifier}")
    return encode_dss_signature(sig_r, sig_s)


def _rsa_signature_bytes(raw: bytes, key: rsa.RSAPublicKey) -> bytes:
    if key.key_size < MIN_RSA_BITS:
        raise HostKeyError(
            f"RSA key of {key.key_size} bits refused: at least {MIN_RSA_BITS} needed"
            f" ({RECOMMENDED_RSA_BITS} recommended)"
        )
    size = (key.key_size + 7) // 8
    if len(raw) > size:
        raise HostKeyError(f"RSA signature is {len(raw)} bytes, longer than the {size}-byte modulus")
    # Some signers drop leading zero bytes; OpenSSH accepts that, and so do we.
    return raw.rjust(size, b"\x00")


def _curve_of(curve: ec.EllipticCurve) -> _Curve:
    found = _CURVE_BY_LIBRARY_NAME.get(curve.name)
    if found is None:
        raise KeyFormatError(f"unsupported elliptic curve {curve.name}")
    return found


# --- private keys ------------------------------------------------------------------------------

_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


class PrivateKey:
    """A host (or user) private key and the SSH signature algorithms it can produce."""

    __slots__ = ("_key", "algorithms", "key_type", "public_blob")

    def __init__(self, key: CryptoPrivateKey):
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithms: tuple[str, ...] = ("ssh-ed25519",)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self.algorithms = (_curve_of(key.curve).key_type,)
        elif isinstance(key, rsa.RSAPrivateKey):
            self.algorithms = _RSA_ALGORITHMS
        else:
            raise KeyFormatError(f"unsupported private key type {type(key).__name__}")
        self._key = key
        self.public_blob: bytes = public_blob_of(key.public_key())
        self.key_type: str = public_key_type(self.public_blob)

    @classmethod
    def generate(cls, kind: str, bits: int | None = None) -> PrivateKey:
        """A new key; ``kind`` is ``ed25519``, ``ecdsa`` or ``rsa`` (as ``ssh-keygen -t``)
        or a key type name such as ``ecdsa-sha2-nistp384``."""
        if kind in _CURVES:
            return cls(ec.generate_private_key(_CURVES[kind].curve))
        if kind in ("ed25519", "ssh-ed25519"):
            return cls(ed25519.Ed25519PrivateKey.generate())
        if kind == "ecdsa":
            curve = _CURVES.get(f"ecdsa-sha2-nistp{bits or 256}")
            if curve is None:
                raise KeyFormatError(f"ECDSA keys are 256, 384 or 521 bits, not {bits}")
            return cls(ec.generate_private_key(curve.curve))
        if kind in ("rsa", "ssh-rsa"):
            bits = bits or 3072
            if not RECOMMENDED_RSA_BITS <= bits <= MAX_RSA_BITS:
                raise KeyFormatError(f"RSA keys are {RECOMMENDED_RSA_BITS}..{MAX_RSA_BITS} bits, not {bits}")
            return cls(rsa.generate_private_key(65537, bits))
        raise KeyFormatError(f"unknown key kind {kind!r:.40}; use ed25519, ecdsa or rsa")

    @classmethod
    def from_openssh(cls, data: bytes, passphrase: bytes | None = None) -> PrivateKey:
        """Load an OpenSSH private key file (or a PEM one, as ``ssh-keygen -m PEM`` writes)."""
        key: object
        try:
            if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
                try:
                    key = serialization.load_ssh_private_key(data, passphrase)
                except TypeError:
                    if passphrase is None:
                        raise KeyFormatError("the private key is encrypted; a passphrase is needed") from None
                    # A passphrase offered for an unencrypted key is harmless; ignore it.
                    key = serialization.load_ssh_private_key(data, None)
            else:
                key = serialization.load_pem_private_key(data, passphrase)
        except KeyFormatError:
            raise
        except TypeError:
            raise KeyFormatError("the private key is encrypted; a passphrase is needed") from None
        except (ValueError, UnsupportedAlgorithm):
            reason = "wrong passphrase or corrupt key" if passphrase else "corrupt or unsupported key"
            raise KeyFormatError(f"cannot read the private key: {reason}") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise KeyFormatError(f"unsupported private key type {type(key).__name__}")
        return cls(key)

    def to_openssh(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
        )

    def sign(self, algorithm: str, data: bytes) -> bytes:
        """A signature blob: ``string algorithm || string signature``."""
        if algorithm not in self.algorithms:
            raise LocalProtocolError(f"a {self.key_type} key cannot make {algorithm!r:.64} signatures")
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.sign(data)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            hash_name = HOST_KEY_ALGORITHMS[algorithm].hash_name
            assert hash_name is not None
            sig_r, sig_s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASHES[hash_name]())))
            raw = mpint(sig_r) + mpint(sig_s)
        else:
            hash_name = HOST_KEY_ALGORITHMS[algorithm].hash_name
            assert hash_name is not None
            raw = key.sign(data, padding.PKCS1v15(), _HASHES[hash_name]())
        return string(algorithm) + string(raw)

    def signer(self, algorithm: str) -> HostKeySigner:
        """This key bound to one negotiated signature algorithm."""
        if algorithm not in self.algorithms:
            raise LocalProtocolError(f"a {self.key_type} key cannot make {algorithm!r:.64} signatures")
        return HostKeySigner(algorithm, self.public_blob, self)

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.public_blob)

    def __repr__(self) -> str:
        return f"PrivateKey({self.key_type} {self.fingerprint})"


@dataclass(frozen=True, slots=True)
class HostKeySigner:
    """Signs exchange hashes with one key and one negotiated algorithm."""

    algorithm: str
    public_blob: bytes
    key: PrivateKey = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(self.algorithm, data)
