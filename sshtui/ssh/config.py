"""Transport configuration: algorithm offers and rekey limits (RFC 4253 §7.1, §9; RFC 4344 §3).

Default client offers are modern only: post-quantum hybrid first, then curve25519; AEAD
ciphers first; encrypt-then-MAC before encrypt-and-MAC; no CBC, no SHA-1, no NIST-curve
key exchange. Everything else supported can be enabled explicitly.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from sshtui.ssh.errors import LocalProtocolError

# Pseudo-algorithms carried in the kex list (RFC 8308 §2.1; OpenSSH PROTOCOL "kex-strict").
EXT_INFO_CLIENT = "ext-info-c"
EXT_INFO_SERVER = "ext-info-s"
STRICT_KEX_CLIENT = "kex-strict-c-v00@openssh.com"
STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"
PSEUDO_KEX_ALGORITHMS = frozenset({EXT_INFO_CLIENT, EXT_INFO_SERVER, STRICT_KEX_CLIENT, STRICT_KEX_SERVER})

DEFAULT_KEX: tuple[str, ...] = (
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
)
OPTIONAL_KEX: tuple[str, ...] = (
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha1",
)
DEFAULT_HOST_KEY_ALGORITHMS: tuple[str, ...] = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
ECDSA_HOST_KEY_ALGORITHMS: tuple[str, ...] = (
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
OPTIONAL_HOST_KEY_ALGORITHMS: tuple[str, ...] = (*ECDSA_HOST_KEY_ALGORITHMS, "ssh-rsa")
DEFAULT_CIPHERS: tuple[str, ...] = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
DEFAULT_MACS: tuple[str, ...] = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
)
OPTIONAL_MACS: tuple[str, ...] = ("hmac-sha1-etm@openssh.com", "hmac-sha1")
DEFAULT_COMPRESSION: tuple[str, ...] = ("none",)

# The OpenSSH option that changes each category, named in negotiation errors.
OPTION_FOR_CATEGORY = {
    "kex": "KexAlgorithms",
    "host_key": "HostKeyAlgorithms",
    "cipher_c2s": "Ciphers",
    "cipher_s2c": "Ciphers",
    "mac_c2s": "MACs",
    "mac_s2c": "MACs",
    "compression_c2s": "Compression",
    "compression_s2c": "Compression",
}

GIB = 1 << 30
DEFAULT_REKEY_BYTES = GIB
DEFAULT_REKEY_SECONDS = 3600.0
DEFAULT_REKEY_PACKETS = 1 << 31
MAX_PACKET_LENGTH = 256 * 1024


@dataclass(frozen=True)
class TransportConfig:
    """What one side offers and how it rekeys. Immutable; build a new one to change it."""

    kex_algorithms: tuple[str, ...] = DEFAULT_KEX
    host_key_algorithms: tuple[str, ...] = DEFAULT_HOST_KEY_ALGORITHMS
    ciphers: tuple[str, ...] = DEFAULT_CIPHERS
    macs: tuple[str, ...] = DEFAULT_MACS
    compression: tuple[str, ...] = DEFAULT_COMPRESSION
    rekey_bytes: int = DEFAULT_REKEY_BYTES
    rekey_seconds: float | None = DEFAULT_REKEY_SECONDS
    rekey_packets: int = DEFAULT_REKEY_PACKETS
    strict_kex: bool = True
    ext_info: bool = True
    software_version: str = "sshtui_0.1"
    max_packet_length: int = MAX_PACKET_LENGTH
    # Bits asked for in diffie-hellman-group-exchange (RFC 4419 §3); groups under 2048 are refused.
    gex_preferred_bits: int = 3072
    services: frozenset[str] = field(default_factory=lambda: frozenset({"ssh-userauth"}))

    def __post_init__(self) -> None:
        for label, names in (
            ("KexAlgorithms", self.kex_algorithms),
            ("HostKeyAlgorithms", self.host_key_algorithms),
            ("Ciphers", self.ciphers),
            ("MACs", self.macs),
        ):
            if not names:
                raise LocalProtocolError(f"{label} is empty: at least one algorithm is needed")
        if self.rekey_bytes < 16:
            raise LocalProtocolError(f"RekeyLimit of {self.rekey_bytes} bytes is too small (minimum 16)")
        if self.rekey_seconds is not None and self.rekey_seconds <= 0:
            raise LocalProtocolError("RekeyLimit time must be positive")


def apply_list_option(
    current: tuple[str, ...], spec: str, supported: tuple[str, ...], option: str
) -> tuple[str, ...]:
    """OpenSSH list syntax: ``a,b`` replaces, ``+a`` appends, ``-a`` removes, ``^a`` prepends.

    Wildcards (``*``, ``?``) are accepted in ``-`` lists, as OpenSSH does.
    """
    spec = spec.strip()
    if not spec:
        raise LocalProtocolError(f"{option}: empty algorithm list")
    mode = spec[0] if spec[0] in "+-^" else ""
    names = [n for n in (spec[1:] if mode else spec).split(",") if n]
    if mode == "-":
        kept = tuple(a for a in current if not any(fnmatch.fnmatchcase(a, p) for p in names))
        if not kept:
            raise LocalProtocolError(f"{option}: removing {spec[1:]} leaves no algorithm")
        return kept
    unknown = [n for n in names if n not in supported]
    if unknown:
        raise LocalProtocolError(
            f"{option}: unsupported algorithm(s) {', '.join(unknown)}; supported: {', '.join(supported)}"
        )
    if mode == "+":
        return tuple(current) + tuple(n for n in names if n not in current)
    if mode == "^":
        return tuple(names) + tuple(a for a in current if a not in names)
    return tuple(dict.fromkeys(names))


def server_config(**overrides: object) -> TransportConfig:
    """A server offers everything it supports except opt-in legacy algorithms; clients choose."""
    base: dict[str, object] = {
        "kex_algorithms": DEFAULT_KEX + OPTIONAL_KEX[:3],
        "host_key_algorithms": (
            "ssh-ed25519",
            *ECDSA_HOST_KEY_ALGORITHMS,
            "rsa-sha2-512",
            "rsa-sha2-256",
        ),
    }
    base.update(overrides)
    return TransportConfig(**base)  # type: ignore[arg-type]
