"""Typed errors of the SSH core (RFC 4253 §11.1 disconnect reasons on the wire).

Every error says who broke the protocol: ``LocalProtocolError`` means *we* (or our user)
asked for something illegal or unsupported; ``RemoteProtocolError`` means the peer sent
something malformed or out of place. Each carries the disconnect reason to send.
"""

from __future__ import annotations

from sshtui.ssh.constants import DisconnectReason


class SSHError(Exception):
    """Base of every error raised by the sans-IO core."""

    def __init__(self, message: str, reason: DisconnectReason = DisconnectReason.PROTOCOL_ERROR):
        super().__init__(message)
        self.message = message
        self.reason = reason


class ProtocolError(SSHError):
    """The protocol was broken; the connection is closed for good."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol or our configuration does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed, out of place or cryptographically invalid."""


class DecodeError(RemoteProtocolError):
    """Bytes that do not decode as the message or field they claim to be."""


class MacError(RemoteProtocolError):
    """A packet failed integrity checking (MAC or AEAD tag)."""

    def __init__(self, message: str = "message authentication code incorrect"):
        super().__init__(message, DisconnectReason.MAC_ERROR)


class NegotiationError(LocalProtocolError):
    """No algorithm in common for a category; the message lists both sides' offers."""

    def __init__(self, message: str):
        super().__init__(message, DisconnectReason.KEY_EXCHANGE_FAILED)


class HostKeyError(RemoteProtocolError):
    """The server's host key signature over the exchange hash did not verify."""

    def __init__(self, message: str):
        super().__init__(message, DisconnectReason.HOST_KEY_NOT_VERIFIABLE)


class HostKeyRejected(LocalProtocolError):
    """Our trust decision refused the server's host key."""

    def __init__(self, message: str):
        super().__init__(message, DisconnectReason.HOST_KEY_NOT_VERIFIABLE)


class VersionError(RemoteProtocolError):
    """The identification string exchange failed (RFC 4253 §4.2)."""

    def __init__(self, message: str):
        super().__init__(message, DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED)


class ConnectionClosedError(SSHError):
    """An operation on a connection that is already closed."""
