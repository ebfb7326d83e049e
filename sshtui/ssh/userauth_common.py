"""What both sides of ssh-userauth share: the service they authenticate for (RFC 4252 §5)
and the message numbers that belong to the protocol (RFC 4251 §7: 50..79)."""

from __future__ import annotations

from collections.abc import Callable

Send = Callable[[bytes], None]

CONNECTION_SERVICE = "ssh-connection"
USERAUTH_RANGE = range(50, 80)
