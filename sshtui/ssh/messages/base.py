"""Shared helpers for message dataclasses (RFC 4251 §5 field types)."""

from __future__ import annotations

from sshtui.ssh.constants import message_name
from sshtui.ssh.errors import DecodeError
from sshtui.ssh.wire import WireReader


def open_reader(payload: bytes | bytearray | memoryview, msg_type: int) -> WireReader:
    """A reader positioned after the message number, which must be ``msg_type``."""
    reader = WireReader(payload, message_name(msg_type))
    if not payload:
        raise DecodeError("empty payload where a message was expected")
    got = reader.byte("message number")
    if got != msg_type:
        raise DecodeError(f"expected {message_name(msg_type)}, got {message_name(got)}")
    return reader
