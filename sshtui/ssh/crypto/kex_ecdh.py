"""Elliptic curve Diffie-Hellman key exchange: curve25519-sha256 (RFC 8731) and
ecdh-sha2-nistp256/384/521 (RFC 5656 §4). K is the shared x-coordinate as an mpint.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from sshtui.ssh.crypto.hostkeys import EC_CURVE_ORDERS, HostKeySigner
from sshtui.ssh.crypto.kex_base import (
    EcdhShapedClient,
    EcdhShapedServer,
    KexContext,
    Rng,
    kex_failed,
    random_bytes,
)
from sshtui.ssh.wire import mpint

X25519_KEY_SIZE = 32


def x25519_private_key(rng: Rng) -> x25519.X25519PrivateKey:
    # The library clamps the scalar (RFC 7748 §5), so any 32 random bytes make a key.
    return x25519.X25519PrivateKey.from_private_bytes(random_bytes(rng, X25519_KEY_SIZE))


def x25519_public_bytes(key: x25519.X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def x25519_shared(key: x25519.X25519PrivateKey, peer_public: bytes, method: str) -> bytes:
    """The raw 32-byte X25519 result; all-zero results (low-order points) are refused (RFC 8731 §3)."""
    if len(peer_public) != X25519_KEY_SIZE:
        raise kex_failed(f"{method}: X25519 public key is {len(peer_public)} bytes, not {X25519_KEY_SIZE}")
    try:
        shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        # The library refuses points whose result would be all zeros.
        raise kex_failed(f"{method}: X25519 public key is a low-order point") from None
    if shared == bytes(X25519_KEY_SIZE):
        raise kex_failed(f"{method}: X25519 shared secret is all zeros (low-order point)")
    return shared


@dataclass(frozen=True, slots=True)
class Curve25519:
    """Factories for curve25519-sha256 and its pre-RFC alias curve25519-sha256@libssh.org."""

    name: str
    hash_name: str = "sha256"

    def client(self, context: KexContext, rng: Rng) -> EcdhShapedClient:
        key = x25519_private_key(rng)

        def finish(server_public: bytes) -> bytes:
            return mpint(int.from_bytes(x25519_shared(key, server_public, self.name), "big"))

        return EcdhShapedClient(context, self.name, self.hash_name, x25519_public_bytes(key), finish)

    def server(self, context: KexContext, rng: Rng, signer: HostKeySigner) -> EcdhShapedServer:
        key = x25519_private_key(rng)
        public = x25519_public_bytes(key)

        def respond(client_public: bytes) -> tuple[bytes, bytes]:
            shared = x25519_shared(key, client_public, self.name)
            return public, mpint(int.from_bytes(shared, "big"))

        return EcdhShapedServer(context, self.name, self.hash_name, signer, respond)


@dataclass(frozen=True, slots=True)
class NistCurve:
    """Factories for one ecdh-sha2-nistp* method."""

    name: str
    hash_name: str
    curve: ec.EllipticCurve
    order: int

    @property
    def point_size(self) -> int:
        return 1 + 2 * ((self.curve.key_size + 7) // 8)

    def private_key(self, rng: Rng) -> ec.EllipticCurvePrivateKey:
        # 64 extra random bits make the bias of the reduction mod (order - 1) negligible.
        width = (self.order.bit_length() + 7) // 8 + 8
        scalar = int.from_bytes(random_bytes(rng, width), "big") % (self.order - 1) + 1
        return ec.derive_private_key(scalar, self.curve)

    def public_bytes(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def shared(self, key: ec.EllipticCurvePrivateKey, peer_public: bytes) -> bytes:
        """mpint(x) of the shared point; the peer's point must be uncompressed and on the curve."""
        if len(peer_public) != self.point_size or peer_public[0] != 0x04:
            raise kex_failed(
                f"{self.name}: public key must be an uncompressed {self.point_size}-byte point,"
                f" got {len(peer_public)} bytes"
            )
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self.curve, peer_public)
            secret = key.exchange(ec.ECDH(), peer)
        except ValueError:
            raise kex_failed(f"{self.name}: public key is not a valid point on the curve") from None
        return mpint(int.from_bytes(secret, "big"))

    def client(self, context: KexContext, rng: Rng) -> EcdhShapedClient:
        key = self.private_key(rng)
        return EcdhShapedClient(
            context, self.name, self.hash_name, self.public_bytes(key), lambda q_s: self.shared(key, q_s)
        )

    def server(self, context: KexContext, rng: Rng, signer: HostKeySigner) -> EcdhShapedServer:
        key = self.private_key(rng)
        public = self.public_bytes(key)
        return EcdhShapedServer(
            context, self.name, self.hash_name, signer, lambda q_c: (public, self.shared(key, q_c))
        )


NISTP256 = NistCurve("ecdh-sha2-nistp256", "sha256", ec.SECP256R1(), EC_CURVE_ORDERS["secp256r1"])
NISTP384 = NistCurve("ecdh-sha2-nistp384", "sha384", ec.SECP384R1(), EC_CURVE_ORDERS["secp384r1"])
NISTP521 = NistCurve("ecdh-sha2-nistp521", "sha512", ec.SECP521R1(), EC_CURVE_ORDERS["secp521r1"])
CURVE25519 = Curve25519("curve25519-sha256")
CURVE25519_LIBSSH = Curve25519("curve25519-sha256@libssh.org")
