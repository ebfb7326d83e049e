"""Protocol numbers: message types (RFC 4250 §4.1), disconnect reasons (RFC 4250 §4.2.2),
channel open failure reasons (RFC 4250 §4.3) and extended data types (RFC 4250 §4.4)."""

from __future__ import annotations

from enum import IntEnum


class MsgType(IntEnum):
    """Message numbers. 30..49 are reused by each key exchange method with its own meaning."""

    DISCONNECT = 1
    IGNORE = 2
    UNIMPLEMENTED = 3
    DEBUG = 4
    SERVICE_REQUEST = 5
    SERVICE_ACCEPT = 6
    EXT_INFO = 7
    KEXINIT = 20
    NEWKEYS = 21
    # Method-specific key exchange messages (30..49). ECDH, DH, hybrid PQ all use 30/31.
    KEX_ECDH_INIT = 30
    KEX_ECDH_REPLY = 31
    KEX_DH_GEX_INIT = 32
    KEX_DH_GEX_REPLY = 33
    KEX_DH_GEX_REQUEST = 34
    USERAUTH_REQUEST = 50
    USERAUTH_FAILURE = 51
    USERAUTH_SUCCESS = 52
    USERAUTH_BANNER = 53
    # 60..79 are method specific: PK_OK, PASSWD_CHANGEREQ, INFO_REQUEST share 60.
    USERAUTH_PK_OK = 60
    USERAUTH_INFO_RESPONSE = 61
    GLOBAL_REQUEST = 80
    REQUEST_SUCCESS = 81
    REQUEST_FAILURE = 82
    CHANNEL_OPEN = 90
    CHANNEL_OPEN_CONFIRMATION = 91
    CHANNEL_OPEN_FAILURE = 92
    CHANNEL_WINDOW_ADJUST = 93
    CHANNEL_DATA = 94
    CHANNEL_EXTENDED_DATA = 95
    CHANNEL_EOF = 96
    CHANNEL_CLOSE = 97
    CHANNEL_REQUEST = 98
    CHANNEL_SUCCESS = 99
    CHANNEL_FAILURE = 100


# Names for the method-specific ranges, used for timelines where the kex method is unknown.
KEX_METHOD_RANGE = range(30, 50)
USERAUTH_METHOD_RANGE = range(60, 80)


def message_name(msg_type: int) -> str:
    """A readable name for a message number, for logs, timelines and errors."""
    try:
        return MsgType(msg_type).name
    except ValueError:
        if msg_type in KEX_METHOD_RANGE:
            return f"KEX_{msg_type}"
        if msg_type in USERAUTH_METHOD_RANGE:
            return f"USERAUTH_{msg_type}"
        return f"MSG_{msg_type}"


class DisconnectReason(IntEnum):
    HOST_NOT_ALLOWED_TO_CONNECT = 1
    PROTOCOL_ERROR = 2
    KEY_EXCHANGE_FAILED = 3
    RESERVED = 4
    MAC_ERROR = 5
    COMPRESSION_ERROR = 6
    SERVICE_NOT_AVAILABLE = 7
    PROTOCOL_VERSION_NOT_SUPPORTED = 8
    HOST_KEY_NOT_VERIFIABLE = 9
    CONNECTION_LOST = 10
    BY_APPLICATION = 11
    TOO_MANY_CONNECTIONS = 12
    AUTH_CANCELLED_BY_USER = 13
    NO_MORE_AUTH_METHODS_AVAILABLE = 14
    ILLEGAL_USER_NAME = 15


def disconnect_reason_name(code: int) -> str:
    try:
        return DisconnectReason(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


class OpenFailureReason(IntEnum):
    ADMINISTRATIVELY_PROHIBITED = 1
    CONNECT_FAILED = 2
    UNKNOWN_CHANNEL_TYPE = 3
    RESOURCE_SHORTAGE = 4


class ExtendedDataType(IntEnum):
    STDERR = 1
