"""Algorithm negotiation from two KEXINITs (RFC 4253 §7.1).

Pure functions: the outcome is data, so the UI can show for each category both sides'
lists, the winner and why it won. The rule is the RFC's: the first algorithm on the
client's list that the server also supports.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshtui.ssh.config import OPTION_FOR_CATEGORY, PSEUDO_KEX_ALGORITHMS
from sshtui.ssh.errors import NegotiationError
from sshtui.ssh.messages.transport import KexInit

CATEGORIES = (
    "kex",
    "host_key",
    "cipher_c2s",
    "cipher_s2c",
    "mac_c2s",
    "mac_s2c",
    "compression_c2s",
    "compression_s2c",
)

# Placeholder MAC name for AEAD ciphers, whose tag replaces the MAC.
IMPLICIT_MAC = "implicit"


@dataclass(frozen=True, slots=True)
class CategoryChoice:
    category: str
    client_offer: tuple[str, ...]
    server_offer: tuple[str, ...]
    chosen: str
    client_rank: int  # 1-based position in the client's list
    server_rank: int  # 1-based position in the server's list, 0 when not applicable

    @property
    def reason(self) -> str:
        if self.chosen == IMPLICIT_MAC:
            return "AEAD cipher: integrity comes from the cipher, the MAC list is not used"
        return (
            f"client's #{self.client_rank} choice, the first the server also offers "
            f"(server's #{self.server_rank} of {len(self.server_offer)})"
        )


@dataclass(frozen=True, slots=True)
class Negotiated:
    kex: str
    host_key: str
    cipher_c2s: str
    cipher_s2c: str
    mac_c2s: str
    mac_s2c: str
    compression_c2s: str
    compression_s2c: str
    choices: tuple[CategoryChoice, ...]
    # Whether the peer's first_kex_packet_follows guess was wrong, so its next kex packet is ignored.
    ignore_guessed_packet: bool


def _offers(kexinit: KexInit) -> dict[str, tuple[str, ...]]:
    return {
        "kex": tuple(a for a in kexinit.kex_algorithms if a not in PSEUDO_KEX_ALGORITHMS),
        "host_key": kexinit.server_host_key_algorithms,
        "cipher_c2s": kexinit.encryption_c2s,
        "cipher_s2c": kexinit.encryption_s2c,
        "mac_c2s": kexinit.mac_c2s,
        "mac_s2c": kexinit.mac_s2c,
        "compression_c2s": kexinit.compression_c2s,
        "compression_s2c": kexinit.compression_s2c,
    }


def _pick(category: str, client: tuple[str, ...], server: tuple[str, ...]) -> CategoryChoice:
    server_positions = {name: i for i, name in enumerate(server)}
    for i, name in enumerate(client):
        j = server_positions.get(name)
        if j is not None:
            return CategoryChoice(category, client, server, name, i + 1, j + 1)
    option = OPTION_FOR_CATEGORY[category]
    raise NegotiationError(
        f"no matching {category.replace('_', ' ')} algorithm: "
        f"the client offers [{', '.join(client) or 'nothing'}], "
        f"the server offers [{', '.join(server) or 'nothing'}]; "
        f"enable one both support with -o {option}=+NAME"
    )


def negotiate(
    client: KexInit, server: KexInit, aead_ciphers: frozenset[str], *, we_are_client: bool = True
) -> Negotiated:
    """Choose every algorithm; raise ``NegotiationError`` naming both offers when a category fails."""
    client_offers, server_offers = _offers(client), _offers(server)
    chosen: dict[str, CategoryChoice] = {}
    for category in CATEGORIES:
        if category.startswith("mac_"):
            cipher = chosen["cipher_" + category[4:]].chosen
            if cipher in aead_ciphers:
                chosen[category] = CategoryChoice(
                    category, client_offers[category], server_offers[category], IMPLICIT_MAC, 0, 0
                )
                continue
        chosen[category] = _pick(category, client_offers[category], server_offers[category])
    peer = server if we_are_client else client
    ignore_guess = False
    if peer.first_kex_packet_follows:
        peer_offers = _offers(peer)
        guessed_kex = peer_offers["kex"][0] if peer_offers["kex"] else ""
        guessed_host_key = peer_offers["host_key"][0] if peer_offers["host_key"] else ""
        ignore_guess = guessed_kex != chosen["kex"].chosen or guessed_host_key != chosen["host_key"].chosen
    return Negotiated(
        kex=chosen["kex"].chosen,
        host_key=chosen["host_key"].chosen,
        cipher_c2s=chosen["cipher_c2s"].chosen,
        cipher_s2c=chosen["cipher_s2c"].chosen,
        mac_c2s=chosen["mac_c2s"].chosen,
        mac_s2c=chosen["mac_s2c"].chosen,
        compression_c2s=chosen["compression_c2s"].chosen,
        compression_s2c=chosen["compression_s2c"].chosen,
        choices=tuple(chosen[c] for c in CATEGORIES),
        ignore_guessed_packet=ignore_guess,
    )
