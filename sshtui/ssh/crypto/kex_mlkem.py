"""Hybrid post-quantum key exchange mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex,
as implemented by OpenSSH 9.9+): ML-KEM-768 (FIPS 203) combined with X25519 (RFC 7748).

C_INIT  = ML-KEM-768 encapsulation key (1184 bytes) || X25519 public key (32 bytes)
S_REPLY = ML-KEM-768 ciphertext (1088 bytes) || X25519 public key (32 bytes)
K       = SHA-256(ML-KEM shared secret || X25519 shared secret), hashed as a string, not an mpint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm

from sshtui.ssh.crypto.hostkeys import HostKeySigner
from sshtui.ssh.crypto.kex_base import (
    EcdhShapedClient,
    EcdhShapedServer,
    KexContext,
    Rng,
    kex_failed,
    random_bytes,
)
from sshtui.ssh.crypto.kex_ecdh import X25519_KEY_SIZE, x25519_private_key, x25519_public_bytes, x25519_shared
from sshtui.ssh.wire import string

try:
    from cryptography.hazmat.primitives.asymmetric import mlkem
except ImportError:  # cryptography older than the ML-KEM release
    mlkem = None  # type: ignore[assignment]

MLKEM768_PUBLIC_SIZE = 1184
MLKEM768_CIPHERTEXT_SIZE = 1088
MLKEM_SEED_SIZE = 64
CLIENT_INIT_SIZE = MLKEM768_PUBLIC_SIZE + X25519_KEY_SIZE
SERVER_REPLY_SIZE = MLKEM768_CIPHERTEXT_SIZE + X25519_KEY_SIZE


def mlkem_available() -> bool:
    """Whether the installed cryptography and its OpenSSL can do ML-KEM-768."""
    if mlkem is None:
        return False
    try:
        mlkem.MLKEM768PrivateKey.from_seed_bytes(bytes(MLKEM_SEED_SIZE))
    except (UnsupportedAlgorithm, AttributeError):
        return False
    return True


def _combine(mlkem_secret: bytes, x25519_secret: bytes) -> bytes:
    return string(hashlib.sha256(mlkem_secret + x25519_secret).digest())


@dataclass(frozen=True, slots=True)
class MlkemX25519:
    name: str = "mlkem768x25519-sha256"
    hash_name: str = "sha256"

    def client(self, context: KexContext, rng: Rng) -> EcdhShapedClient:
        kem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(random_bytes(rng, MLKEM_SEED_SIZE))
        ec_key = x25519_private_key(rng)
        client_init = kem_key.public_key().public_bytes_raw() + x25519_public_bytes(ec_key)
        name = self.name

        def finish(server_reply: bytes) -> bytes:
            if len(server_reply) != SERVER_REPLY_SIZE:
                raise kex_failed(f"{name}: S_REPLY is {len(server_reply)} bytes, not {SERVER_REPLY_SIZE}")
            reply = memoryview(server_reply)
            try:
                kem_secret = kem_key.decapsulate(bytes(reply[:MLKEM768_CIPHERTEXT_SIZE]))
            except ValueError:
                raise kex_failed(f"{name}: server's ML-KEM ciphertext is invalid") from None
            ec_secret = x25519_shared(ec_key, bytes(reply[MLKEM768_CIPHERTEXT_SIZE:]), name)
            return _combine(kem_secret, ec_secret)

        return EcdhShapedClient(context, self.name, self.hash_name, client_init, finish)

    def server(self, context: KexContext, rng: Rng, signer: HostKeySigner) -> EcdhShapedServer:
        ec_key = x25519_private_key(rng)
        ec_public = x25519_public_bytes(ec_key)
        name = self.name

        def respond(client_init: bytes) -> tuple[bytes, bytes]:
            if len(client_init) != CLIENT_INIT_SIZE:
                raise kex_failed(f"{name}: C_INIT is {len(client_init)} bytes, not {CLIENT_INIT_SIZE}")
            init = memoryview(client_init)
            try:
                # Rejects encapsulation keys that fail the FIPS 203 modulus check.
                peer_kem = mlkem.MLKEM768PublicKey.from_public_bytes(bytes(init[:MLKEM768_PUBLIC_SIZE]))
            except ValueError:
                raise kex_failed(f"{name}: client's ML-KEM public key is invalid") from None
            # The library draws the encapsulation randomness itself; it offers no seeded variant.
            kem_secret, ciphertext = peer_kem.encapsulate()
            ec_secret = x25519_shared(ec_key, bytes(init[MLKEM768_PUBLIC_SIZE:]), name)
            return ciphertext + ec_public, _combine(kem_secret, ec_secret)

        return EcdhShapedServer(context, self.name, self.hash_name, signer, respond)


MLKEM768X25519_SHA256 = MlkemX25519()
