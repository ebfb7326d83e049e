"""The key exchange methods we implement, in our order of preference (RFC 4253 §7.1:
the client's order decides). Sources: draft-ietf-sshm-mlkem-hybrid-kex, RFC 8731,
RFC 5656 §6.3, RFC 4419 / RFC 8270, RFC 8268, RFC 9142 (which keeps group14-sha1 as legacy).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sshtui.ssh.crypto import kex_dh, kex_ecdh, kex_mlkem
from sshtui.ssh.crypto.kex_base import KexMethod
from sshtui.ssh.errors import LocalProtocolError


def _methods() -> dict[str, KexMethod]:
    methods: list[KexMethod] = []
    if kex_mlkem.mlkem_available():
        pq = kex_mlkem.MLKEM768X25519_SHA256
        methods.append(KexMethod(pq.name, pq.hash_name, True, pq.client, pq.server))
    for ecdh in (kex_ecdh.CURVE25519, kex_ecdh.CURVE25519_LIBSSH):
        methods.append(KexMethod(ecdh.name, ecdh.hash_name, False, ecdh.client, ecdh.server))
    for nist in (kex_ecdh.NISTP256, kex_ecdh.NISTP384, kex_ecdh.NISTP521):
        methods.append(KexMethod(nist.name, nist.hash_name, False, nist.client, nist.server))
    gex = kex_dh.DH_GEX_SHA256
    methods.append(KexMethod(gex.name, gex.hash_name, False, gex.client, gex.server))
    for dh in (kex_dh.DH_GROUP16_SHA512, kex_dh.DH_GROUP18_SHA512, kex_dh.DH_GROUP14_SHA256):
        methods.append(KexMethod(dh.name, dh.hash_name, False, dh.client, dh.server))
    legacy = kex_dh.DH_GROUP14_SHA1
    methods.append(KexMethod(legacy.name, legacy.hash_name, False, legacy.client, legacy.server, opt_in=True))
    return {method.name: method for method in methods}


# Every method we implement, best first; those with ``opt_in`` set are never offered by default.
KEX_METHODS: Mapping[str, KexMethod] = MappingProxyType(_methods())

DEFAULT_KEX_ALGORITHMS: tuple[str, ...] = tuple(name for name, m in KEX_METHODS.items() if not m.opt_in)


def kex_method(name: str) -> KexMethod:
    method = KEX_METHODS.get(name)
    if method is None:
        raise LocalProtocolError(f"key exchange method {name!r:.64} is not implemented")
    return method
