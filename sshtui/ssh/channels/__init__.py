"""Channels of the connection protocol (RFC 4254 §5): flow-control windows and, later,
the channel state machines built on them."""

from sshtui.ssh.channels.window import ReceiveWindow, SendWindow

__all__ = ["ReceiveWindow", "SendWindow"]
