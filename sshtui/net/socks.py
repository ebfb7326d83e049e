"""The SOCKS side of dynamic forwarding (``-D``): SOCKS4, SOCKS4a and SOCKS5 CONNECT (RFC 1928 §3-§6,
no authentication; SOCKS4 and its 4a extension as in the NEC protocol notes OpenSSH follows).

``SocksHandshake`` is a pure parser: bytes in, bytes to answer out, no I/O. Domain names are not
resolved here: they travel to the server in the direct-tcpip request, which resolves them (RFC 4254
§7.2), so names only the server can see still work. A malformed or unsupported request raises
``SocksError`` carrying the error reply to send before closing that one client.
``read_request`` drives the parser over an asyncio stream.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from sshtui.ssh.constants import OpenFailureReason

SOCKS4 = 4
SOCKS5 = 5
CONNECT = 1
NO_AUTHENTICATION = 0x00
NO_ACCEPTABLE_METHODS = 0xFF
ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4
SOCKS4_GRANTED = 90
SOCKS4_REJECTED = 91
MAX_NAME = 255  # the one-byte length of a SOCKS5 domain name; SOCKS4 user ids and names get the same
HANDSHAKE_TIMEOUT = 30.0

AddressType = Literal["ipv4", "ipv6", "domain"]
_PORT = struct.Struct(">H")


class SocksReply(IntEnum):
    """SOCKS5 reply codes (RFC 1928 §6); SOCKS4 folds every failure into "rejected"."""

    SUCCEEDED = 0
    GENERAL_FAILURE = 1
    NOT_ALLOWED = 2
    NETWORK_UNREACHABLE = 3
    HOST_UNREACHABLE = 4
    CONNECTION_REFUSED = 5
    TTL_EXPIRED = 6
    COMMAND_NOT_SUPPORTED = 7
    ADDRESS_TYPE_NOT_SUPPORTED = 8


class SocksError(Exception):
    """A request we cannot serve; ``reply`` (possibly empty) goes to the client before closing."""

    def __init__(self, message: str, reply: bytes = b""):
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class SocksRequest:
    version: int  # 4 (including 4a) or 5
    host: str  # an IPv4 or IPv6 address in text form, or a domain name for the server to resolve
    port: int
    address_type: AddressType


def socks4_reply(code: int) -> bytes:
    return bytes((0, code, 0, 0, 0, 0, 0, 0))


def socks5_reply(code: SocksReply) -> bytes:
    # The bound address is the server's business; 0.0.0.0:0 is what clients expect when it is unknown.
    return bytes((SOCKS5, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0))


def reply_for_open_failure(reason: int, description: str) -> SocksReply:
    """The SOCKS5 reply closest to why the server could not open the channel."""
    text = description.lower()
    if reason == OpenFailureReason.ADMINISTRATIVELY_PROHIBITED:
        return SocksReply.NOT_ALLOWED
    if reason != OpenFailureReason.CONNECT_FAILED:
        return SocksReply.GENERAL_FAILURE
    if "refused" in text:
        return SocksReply.CONNECTION_REFUSED
    if "network is unreachable" in text:
        return SocksReply.NETWORK_UNREACHABLE
    if "timed out" in text:
        return SocksReply.TTL_EXPIRED
    return SocksReply.HOST_UNREACHABLE  # unreachable host, unknown name and the like


class SocksHandshake:
    """Server side of one client's handshake. Feed it bytes until ``request`` is set."""

    __slots__ = ("_buffer", "_version", "_greeted", "request", "leftover")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._version = 0
        self._greeted = False  # SOCKS5: the method negotiation is done
        self.request: SocksRequest | None = None
        self.leftover = b""  # bytes the client sent after its request, to forward once connected

    @property
    def version(self) -> int:
        return self._version

    def feed(self, data: bytes) -> bytes:
        """Take more bytes from the client; returns what to send back now (maybe nothing)."""
        if self.request is not None:
            raise SocksError("the SOCKS request is already complete")
        self._buffer += data
        if not self._version:
            if not self._buffer:
                return b""
            self._version = self._buffer[0]
            if self._version not in (SOCKS4, SOCKS5):
                raise SocksError(f"not a SOCKS4 or SOCKS5 client (first byte {self._version:#04x})")
        if self._version == SOCKS4:
            self._parse_socks4()
            return b""
        out = b""
        if not self._greeted:
            out = self._parse_greeting()
            if not self._greeted:
                return out
        try:
            self._parse_socks5()
        except SocksError as exc:
            exc.reply = out + exc.reply  # the method choice the client is waiting for comes first
            raise
        return out

    def success_reply(self) -> bytes:
        return socks4_reply(SOCKS4_GRANTED) if self._version == SOCKS4 else socks5_reply(SocksReply.SUCCEEDED)

    def failure_reply(self, code: SocksReply) -> bytes:
        return socks4_reply(SOCKS4_REJECTED) if self._version == SOCKS4 else socks5_reply(code)

    def _fail(self, message: str, code: SocksReply = SocksReply.GENERAL_FAILURE) -> SocksError:
        return SocksError(message, self.failure_reply(code))

    def _complete(self, request: SocksRequest, end: int) -> None:
        self.request = request
        self.leftover = bytes(self._buffer[end:])
        self._buffer.clear()

    # -- SOCKS4 / 4a: VN CD DSTPORT DSTIP USERID NUL [HOSTNAME NUL]

    def _parse_socks4(self) -> None:
        buf = self._buffer
        if len(buf) >= 2 and buf[1] != CONNECT:
            raise self._fail(f"SOCKS4 command {buf[1]} is not supported (only CONNECT)")
        if len(buf) < 9:
            return
        user_end = self._nul(8, "SOCKS4 user id")
        if user_end < 0:
            return
        port = _PORT.unpack_from(buf, 2)[0]
        ip = bytes(buf[4:8])
        if ip[:3] == b"\0\0\0" and ip[3]:  # 0.0.0.x: SOCKS4a, a name follows the user id
            name_end = self._nul(user_end + 1, "SOCKS4a host name")
            if name_end < 0:
                return
            host = self._domain(bytes(buf[user_end + 1 : name_end]))
            self._complete(SocksRequest(SOCKS4, host, port, "domain"), name_end + 1)
            return
        self._complete(SocksRequest(SOCKS4, str(ipaddress.IPv4Address(ip)), port, "ipv4"), user_end + 1)

    def _nul(self, start: int, what: str) -> int:
        end = self._buffer.find(0, start)
        if (end < 0 and len(self._buffer) - start > MAX_NAME) or end - start > MAX_NAME:
            raise self._fail(f"{what} is longer than {MAX_NAME} bytes")
        return end

    # -- SOCKS5: VER NMETHODS METHODS, then VER CMD RSV ATYP DST.ADDR DST.PORT

    def _parse_greeting(self) -> bytes:
        buf = self._buffer
        if len(buf) < 2 or len(buf) < 2 + buf[1]:
            return b""
        methods = bytes(buf[2 : 2 + buf[1]])
        del buf[: 2 + len(methods)]
        if NO_AUTHENTICATION not in methods:
            raise SocksError(
                "the SOCKS5 client offers no method without authentication",
                bytes((SOCKS5, NO_ACCEPTABLE_METHODS)),
            )
        self._greeted = True
        return bytes((SOCKS5, NO_AUTHENTICATION))

    def _parse_socks5(self) -> None:
        buf = self._buffer
        if len(buf) < 5:
            return
        if buf[0] != SOCKS5:
            raise self._fail(f"SOCKS5 request with version {buf[0]}")
        if buf[1] != CONNECT:
            raise self._fail(f"SOCKS5 command {buf[1]} is not supported", SocksReply.COMMAND_NOT_SUPPORTED)
        address_type = buf[3]
        if address_type == ATYP_IPV4:
            end = 4 + 4
        elif address_type == ATYP_IPV6:
            end = 4 + 16
        elif address_type == ATYP_DOMAIN:
            end = 5 + buf[4]
        else:
            raise self._fail(
                f"SOCKS5 address type {address_type} is not supported", SocksReply.ADDRESS_TYPE_NOT_SUPPORTED
            )
        if len(buf) < end + 2:
            return
        raw = bytes(buf[4:end])
        port = _PORT.unpack_from(buf, end)[0]
        if address_type == ATYP_IPV4:
            request = SocksRequest(SOCKS5, str(ipaddress.IPv4Address(raw)), port, "ipv4")
        elif address_type == ATYP_IPV6:
            request = SocksRequest(SOCKS5, ipaddress.IPv6Address(raw).compressed, port, "ipv6")
        else:
            request = SocksRequest(SOCKS5, self._domain(raw[1:]), port, "domain")
        self._complete(request, end + 2)

    def _domain(self, raw: bytes) -> str:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("the SOCKS host name is not valid UTF-8", SocksReply.HOST_UNREACHABLE) from None
        if not name or not name.isprintable() or any(c.isspace() for c in name):
            raise self._fail(f"bad SOCKS host name {name!r}", SocksReply.HOST_UNREACHABLE)
        return name


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float = HANDSHAKE_TIMEOUT
) -> SocksHandshake:
    """Run the handshake up to a complete request; raises ``SocksError`` (its reply already sent),
    or ``SocksError`` without a reply when the client hangs up or stalls past ``timeout``."""
    handshake = SocksHandshake()
    try:
        async with asyncio.timeout(timeout):
            while handshake.request is None:
                data = await reader.read(1024)
                if not data:
                    raise SocksError("the SOCKS client closed the connection before its request was complete")
                answer = handshake.feed(data)
                if answer:
                    writer.write(answer)
    except SocksError as exc:
        if exc.reply:
            writer.write(exc.reply)
        raise
    except TimeoutError:
        raise SocksError(f"no complete SOCKS request within {timeout:g} s") from None
    return handshake
