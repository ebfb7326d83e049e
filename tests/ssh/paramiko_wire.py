"""paramiko's encoder as an independent reference for our message byte layouts."""

from __future__ import annotations

from typing import Any

from paramiko.message import Message  # type: ignore[import-untyped]


def paramiko_bytes(msg_type: int, *fields: Any) -> bytes:
    """The same fields laid out by paramiko's independent encoder."""
    m = Message()
    m.add_byte(bytes([msg_type]))
    for value in fields:
        if isinstance(value, bool):
            m.add_boolean(value)
        elif isinstance(value, int):
            m.add_int(value)
        elif isinstance(value, list):
            m.add_list(value)
        else:
            m.add_string(value)
    return bytes(m.asbytes())
