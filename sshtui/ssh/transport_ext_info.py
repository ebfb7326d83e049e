"""EXT_INFO, the extension negotiation of RFC 8308 as the transport uses it.

A server announces ``server-sig-algs`` (§3.1) right after its first NEWKEYS when the client's
first KEXINIT asked for extensions (§2.1, §2.4; the kex driver sends it). A client records what
the server announced; a server may send EXT_INFO at most twice: after its first NEWKEYS and
just before USERAUTH_SUCCESS (§2.4).
"""

from __future__ import annotations

from sshtui.ssh.errors import RemoteProtocolError
from sshtui.ssh.events import ExtInfoReceived, TransportEvent
from sshtui.ssh.messages.transport import ExtInfo
from sshtui.ssh.transport_machine import TransportMachine
from sshtui.ssh.wire import WireReader, string

MAX_EXT_INFO_MESSAGES = 2

# Signature algorithms a server accepts for publickey auth, announced in EXT_INFO (RFC 8308 §3.1).
SERVER_SIG_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


class ExtInfoHandler(TransportMachine):
    """Takes in the EXT_INFO messages a server sends to the ``Transport`` it is part of."""

    def _on_ext_info(self, msg: ExtInfo, events: list[TransportEvent]) -> None:
        self._ext_info_count += 1
        if self._ext_info_count > MAX_EXT_INFO_MESSAGES:
            raise RemoteProtocolError(f"peer sent more than {MAX_EXT_INFO_MESSAGES} EXT_INFO messages")
        raw = msg.get("server-sig-algs")
        if raw is not None:
            self.server_sig_algs = WireReader(string(raw), "EXT_INFO").name_list("server-sig-algs")
        events.append(ExtInfoReceived(self.server_sig_algs))
