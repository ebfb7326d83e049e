"""Diffie-Hellman key exchange: fixed MODP groups 14, 16 and 18 (RFC 4253 §8, RFC 3526,
RFC 8268) and Diffie-Hellman group exchange (RFC 4419, with the RFC 8270 minimum of 2048 bits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sshtui.ssh.constants import DisconnectReason
from sshtui.ssh.crypto.hostkeys import HostKeySigner
from sshtui.ssh.crypto.kex_base import KexContext, KexOutcome, Rng, kex_failed, message_number, random_bytes
from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.kex import exchange_hash
from sshtui.ssh.messages.kex import (
    KexDhGexGroup,
    KexDhGexInit,
    KexDhGexReply,
    KexDhGexRequest,
    KexdhInit,
    KexdhReply,
    check_dh_public_value,
)
from sshtui.ssh.wire import mpint

# RFC 3526 §3, §5 and §7: p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) pi) + offset), g = 2.
_GROUP14_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
_GROUP16_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
    16,
)
_GROUP18_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026C1D4DCB2602646DEC9751E763DBA37BD"
    "F8FF9406AD9E530EE5DB382F413001AEB06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B"
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92ECF032EA15D1721D03F482D7CE6E74FEF6"
    "D55E702F46980C82B5A84031900B1C9E59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA"
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76F550AA3D8A1FBFF0EB19CCB1A313D55C"
    "DA56C9EC2EF29632387FE8D76E3C0468043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4"
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED2576F6936BA424663AAB639C5AE4F568"
    "3423B4742BF1C978238F16CBE39D652DE3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B"
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A66D2A13F83F44F82DDF310EE074AB6A36"
    "4597E899A0255DC164F31CC50846851DF9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92"
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA9E3050E2765694DFC81F56E880B96E71"
    "60C980DD98EDD3DFFFFFFFFFFFFFFFFF",
    16,
)

# RFC 8270: groups under 2048 bits are refused; 8192 is the largest anyone offers.
GEX_MIN_BITS = 2048
GEX_MAX_BITS = 8192
GEX_PREFERRED_BITS = 3072


@dataclass(frozen=True, slots=True)
class DhGroup:
    name: str
    p: int
    g: int = 2

    @property
    def bits(self) -> int:
        return self.p.bit_length()


GROUP14 = DhGroup("group14", _GROUP14_P)
GROUP16 = DhGroup("group16", _GROUP16_P)
GROUP18 = DhGroup("group18", _GROUP18_P)
GEX_SERVER_GROUPS = (GROUP14, GROUP16, GROUP18)


def exponent_bits(prime_bits: int) -> int:
    """Private exponent size: twice the group's security strength (RFC 3526 §8), so that
    short exponents do not weaken the group yet keep exponentiation fast."""
    for limit, size in ((2048, 256), (3072, 320), (4096, 384), (6144, 448)):
        if prime_bits <= limit:
            return size
    return 512


@dataclass(slots=True)
class _KeyPair:
    """An ephemeral exponent x in a group and our public value g^x mod p."""

    p: int
    x: int = field(repr=False)
    public: int

    @classmethod
    def generate(cls, p: int, g: int, rng: Rng) -> _KeyPair:
        size = exponent_bits(p.bit_length())
        # The top bit makes the exponent full size; the value stays far below the group order.
        x = int.from_bytes(random_bytes(rng, size // 8), "big") | (1 << (size - 1))
        return cls(p, x, pow(g, x, p))

    def shared(self, peer_public: int, field_name: str) -> bytes:
        check_dh_public_value(peer_public, self.p, field_name)
        return mpint(pow(peer_public, self.x, self.p))


_NOTHING: frozenset[int] = frozenset()


class FixedGroupClient:
    __slots__ = ("_context", "_group", "_hash_name", "_method", "_pair", "_rng", "expected")

    def __init__(self, context: KexContext, method: str, hash_name: str, group: DhGroup, rng: Rng):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._group = group
        self._rng = rng
        self._pair: _KeyPair | None = None
        self.expected = _NOTHING

    def start(self) -> list[bytes]:
        self._pair = _KeyPair.generate(self._group.p, self._group.g, self._rng)
        self.expected = frozenset({KexdhReply.MSG})
        return [KexdhInit(self._pair.public).encode()]

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        message_number(payload, self._method, self.expected)
        assert self._pair is not None
        reply = KexdhReply.decode(payload)
        self.expected = _NOTHING
        shared = self._pair.shared(reply.f, "f")
        fields = mpint(self._pair.public) + mpint(reply.f)
        digest = exchange_hash(self._hash_name, self._context, reply.host_key, fields, shared)
        return [], KexOutcome(digest, shared, reply.host_key, reply.signature, self._hash_name)


class FixedGroupServer:
    __slots__ = ("_context", "_group", "_hash_name", "_method", "_rng", "_signer", "expected")

    def __init__(
        self,
        context: KexContext,
        method: str,
        hash_name: str,
        group: DhGroup,
        rng: Rng,
        signer: HostKeySigner,
    ):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._group = group
        self._rng = rng
        self._signer = signer
        self.expected = frozenset({KexdhInit.MSG})

    def start(self) -> list[bytes]:
        return []

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        message_number(payload, self._method, self.expected)
        init = KexdhInit.decode(payload)
        self.expected = _NOTHING
        return _server_reply(
            self._context, self._hash_name, self._signer, self._group, self._rng, b"", init.e, KexdhReply
        )


def _server_reply(
    context: KexContext,
    hash_name: str,
    signer: HostKeySigner,
    group: DhGroup,
    rng: Rng,
    gex_fields: bytes,
    e: int,
    reply_type: type[KexdhReply] | type[KexDhGexReply],
) -> tuple[list[bytes], KexOutcome]:
    check_dh_public_value(e, group.p, "e")
    pair = _KeyPair.generate(group.p, group.g, rng)
    shared = pair.shared(e, "e")
    fields = gex_fields + mpint(e) + mpint(pair.public)
    digest = exchange_hash(hash_name, context, signer.public_blob, fields, shared)
    signature = signer.sign(digest)
    reply = reply_type(signer.public_blob, pair.public, signature).encode()
    return [reply], KexOutcome(digest, shared, signer.public_blob, signature, hash_name)


class GroupExchangeClient:
    """RFC 4419 client: asks for a group, checks it, then runs Diffie-Hellman in it."""

    __slots__ = ("_context", "_gex_fields", "_hash_name", "_method", "_pair", "_request", "_rng", "expected")

    def __init__(
        self,
        context: KexContext,
        method: str,
        hash_name: str,
        rng: Rng,
        preferred_bits: int = GEX_PREFERRED_BITS,
    ):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._rng = rng
        preferred = min(max(preferred_bits, GEX_MIN_BITS), GEX_MAX_BITS)
        self._request = KexDhGexRequest(GEX_MIN_BITS, preferred, GEX_MAX_BITS)
        self._gex_fields = b""
        self._pair: _KeyPair | None = None
        self.expected = _NOTHING

    def start(self) -> list[bytes]:
        self.expected = frozenset({KexDhGexGroup.MSG})
        return [self._request.encode()]

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        number = message_number(payload, self._method, self.expected)
        if number == KexDhGexGroup.MSG:
            group = KexDhGexGroup.decode(payload)
            self._check_group(group.p, group.g)
            self._pair = _KeyPair.generate(group.p, group.g, self._rng)
            self._gex_fields = self._request.hash_fields() + mpint(group.p) + mpint(group.g)
            self.expected = frozenset({KexDhGexReply.MSG})
            return [KexDhGexInit(self._pair.public).encode()], None
        assert self._pair is not None
        reply = KexDhGexReply.decode(payload)
        self.expected = _NOTHING
        shared = self._pair.shared(reply.f, "f")
        fields = self._gex_fields + mpint(self._pair.public) + mpint(reply.f)
        digest = exchange_hash(self._hash_name, self._context, reply.host_key, fields, shared)
        return [], KexOutcome(digest, shared, reply.host_key, reply.signature, self._hash_name)

    def _check_group(self, p: int, g: int) -> None:
        bits = p.bit_length()
        if not self._request.min_bits <= bits <= self._request.max_bits:
            raise kex_failed(
                f"{self._method}: server offered a {bits}-bit group; we accept"
                f" {self._request.min_bits} to {self._request.max_bits} bits"
            )
        if p % 2 == 0:
            raise kex_failed(f"{self._method}: server's group modulus is even, so not a prime")
        if not 2 <= g <= p - 2:
            raise kex_failed(f"{self._method}: server's group generator is out of range 2..p-2")


def choose_gex_group(
    min_bits: int, preferred_bits: int, max_bits: int, groups: tuple[DhGroup, ...] = GEX_SERVER_GROUPS
) -> DhGroup:
    """The smallest group at least ``preferred_bits`` within [min, max]; failing that the
    largest within [min, max]; failing that the one closest to the preferred size."""
    in_range = [g for g in groups if min_bits <= g.bits <= max_bits]
    big_enough = [g for g in in_range if g.bits >= preferred_bits]
    if big_enough:
        return min(big_enough, key=lambda g: g.bits)
    if in_range:
        return max(in_range, key=lambda g: g.bits)
    return min(groups, key=lambda g: (abs(g.bits - preferred_bits), -g.bits))


class GroupExchangeServer:
    __slots__ = ("_context", "_gex_fields", "_group", "_hash_name", "_method", "_rng", "_signer", "expected")

    def __init__(self, context: KexContext, method: str, hash_name: str, rng: Rng, signer: HostKeySigner):
        self._context = context
        self._method = method
        self._hash_name = hash_name
        self._rng = rng
        self._signer = signer
        self._group: DhGroup | None = None
        self._gex_fields = b""
        self.expected = frozenset({KexDhGexRequest.MSG})

    def start(self) -> list[bytes]:
        return []

    def receive(self, payload: bytes) -> tuple[list[bytes], KexOutcome | None]:
        number = message_number(payload, self._method, self.expected)
        if number == KexDhGexRequest.MSG:
            request = KexDhGexRequest.decode(payload)
            if not request.min_bits <= request.preferred_bits <= request.max_bits:
                raise RemoteProtocolError(
                    f"{self._method}: group request needs min <= n <= max, got"
                    f" {request.min_bits}, {request.preferred_bits}, {request.max_bits}",
                    DisconnectReason.KEY_EXCHANGE_FAILED,
                )
            group = choose_gex_group(request.min_bits, request.preferred_bits, request.max_bits)
            self._group = group
            self._gex_fields = request.hash_fields() + mpint(group.p) + mpint(group.g)
            self.expected = frozenset({KexDhGexInit.MSG})
            return [KexDhGexGroup(group.p, group.g).encode()], None
        assert self._group is not None
        init = KexDhGexInit.decode(payload)
        self.expected = _NOTHING
        return _server_reply(
            self._context,
            self._hash_name,
            self._signer,
            self._group,
            self._rng,
            self._gex_fields,
            init.e,
            KexDhGexReply,
        )


@dataclass(frozen=True, slots=True)
class FixedGroupMethod:
    name: str
    hash_name: str
    group: DhGroup

    def client(self, context: KexContext, rng: Rng) -> FixedGroupClient:
        return FixedGroupClient(context, self.name, self.hash_name, self.group, rng)

    def server(self, context: KexContext, rng: Rng, signer: HostKeySigner) -> FixedGroupServer:
        return FixedGroupServer(context, self.name, self.hash_name, self.group, rng, signer)


@dataclass(frozen=True, slots=True)
class GroupExchangeMethod:
    name: str
    hash_name: str
    preferred_bits: int = GEX_PREFERRED_BITS

    def client(self, context: KexContext, rng: Rng) -> GroupExchangeClient:
        return GroupExchangeClient(context, self.name, self.hash_name, rng, self.preferred_bits)

    def server(self, context: KexContext, rng: Rng, signer: HostKeySigner) -> GroupExchangeServer:
        return GroupExchangeServer(context, self.name, self.hash_name, rng, signer)


DH_GROUP14_SHA1 = FixedGroupMethod("diffie-hellman-group14-sha1", "sha1", GROUP14)
DH_GROUP14_SHA256 = FixedGroupMethod("diffie-hellman-group14-sha256", "sha256", GROUP14)
DH_GROUP16_SHA512 = FixedGroupMethod("diffie-hellman-group16-sha512", "sha512", GROUP16)
DH_GROUP18_SHA512 = FixedGroupMethod("diffie-hellman-group18-sha512", "sha512", GROUP18)
DH_GEX_SHA256 = GroupExchangeMethod("diffie-hellman-group-exchange-sha256", "sha256")
