"""The keywords of ssh_config(5) and how each one's arguments are checked.

Every keyword OpenSSH's client accepts (including obsolete and distribution-specific ones) is
listed, so that only true typos produce an "unknown keyword" warning. The options sshtui uses
have their values checked as strictly as OpenSSH checks them: a bad value is an error even in a
block that does not apply to the host, because OpenSSH refuses such a file too.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

# Keywords whose every applicable occurrence counts; for all others the first value obtained wins.
ACCUMULATING = frozenset(
    {"IdentityFile", "CertificateFile", "LocalForward", "RemoteForward", "DynamicForward"}
)
# Keywords whose value is the rest of the line, as a shell command or a jump list, not split into words.
WHOLE_LINE = frozenset({"ProxyCommand", "ProxyJump", "RemoteCommand", "LocalCommand", "KnownHostsCommand"})
# Paths that get ``~`` and token expansion when a host is resolved.
TOKEN_PATHS = frozenset({"IdentityFile", "CertificateFile", "UserKnownHostsFile"})

_KNOWN = (
    "AddKeysToAgent AddressFamily AFSTokenPassing BatchMode BindAddress BindInterface CanonicalDomains "
    "CanonicalizeFallbackLocal CanonicalizeHostname CanonicalizeMaxDots CanonicalizePermittedCNAMEs "
    "CASignatureAlgorithms CertificateFile ChannelTimeout CheckHostIP Cipher Ciphers ClearAllForwardings "
    "Compression CompressionLevel ConnectionAttempts ConnectTimeout ControlMaster ControlPath "
    "ControlPersist DSAAuthentication DynamicForward EnableEscapeCommandline EnableSSHKeysign EscapeChar "
    "ExitOnForwardFailure FallBackToRsh FingerprintHash ForkAfterAuthentication ForwardAgent ForwardX11 "
    "ForwardX11Timeout ForwardX11Trusted GatewayPorts GlobalKnownHostsFile GlobalKnownHostsFile2 "
    "GSSAPIAuthentication GSSAPIClientIdentity GSSAPIDelegateCredentials GSSAPIKexAlgorithms "
    "GSSAPIKeyExchange GSSAPIRenewalForcesRekey GSSAPIServerIdentity GSSAPITrustDns HashKnownHosts Host "
    "HostbasedAcceptedAlgorithms HostbasedAuthentication HostKeyAlgorithms HostKeyAlias HostName "
    "IdentitiesOnly IdentityAgent IdentityFile IdentityFile2 IgnoreUnknown Include IPQoS "
    "KbdInteractiveAuthentication KbdInteractiveDevices KerberosAuthentication KerberosTGTPassing "
    "KexAlgorithms KnownHostsCommand LocalCommand LocalForward LogLevel LogVerbose MACs Match "
    "NoHostAuthenticationForLocalhost NumberOfPasswordPrompts ObscureKeystrokeTiming "
    "PasswordAuthentication PermitLocalCommand PermitRemoteOpen PKCS11Provider Port "
    "PreferredAuthentications Protocol ProxyCommand ProxyJump ProxyUseFdpass PubkeyAcceptedAlgorithms "
    "PubkeyAuthentication RefuseConnection RekeyLimit RemoteCommand RemoteForward RequestTTY "
    "RequiredRSASize RevokedHostKeys RhostsAuthentication RhostsRSAAuthentication RSAAuthentication "
    "SecurityKeyProvider SendEnv ServerAliveCountMax ServerAliveInterval SessionType SetEnv "
    "SKeyAuthentication SmartcardDevice StdinNull StreamLocalBindMask StreamLocalBindUnlink "
    "StrictHostKeyChecking SyslogFacility Tag TCPKeepAlive TISAuthentication Tunnel TunnelDevice "
    "UpdateHostKeys UseBlacklistedKeys UsePrivilegedPort User UserKnownHostsFile UserKnownHostsFile2 "
    "UseRoaming UseRsh VerifyHostKeyDNS VisualHostKey XAuthLocation"
)
# Lower-case spelling (OpenSSH matches keywords case-insensitively) to canonical spelling.
CANONICAL = {name.lower(): name for name in _KNOWN.split()}
CANONICAL.update(
    {
        # Older names OpenSSH still accepts for the same option.
        "pubkeyacceptedkeytypes": "PubkeyAcceptedAlgorithms",
        "hostbasedkeytypes": "HostbasedAcceptedAlgorithms",
        "challengeresponseauthentication": "KbdInteractiveAuthentication",
        "keepalive": "TCPKeepAlive",
        # Debian's compatibility names for its old keepalive and timeout patches.
        "protocolkeepalives": "ServerAliveInterval",
        "setuptimeout": "ConnectTimeout",
    }
)

MAX_SECONDS = 2**31 - 1  # OpenSSH stores times in an int
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_TERM = re.compile(r"([0-9]{1,10})([smhdw]?)", re.IGNORECASE)
_SIZE = re.compile(r"[0-9]{1,19}(\.[0-9]{1,9})?[bkmgtpe]?", re.IGNORECASE)
_SERVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._+-]{0,63}")
_ALGORITHM_LIST = re.compile(r"[+^-]?[^,\s]+(,[^,\s]+)*")
_FLAGS = {"yes": True, "true": True, "no": False, "false": False}
STRICT_CHOICES = {
    "yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no", "accept-new": "accept-new",
    "ask": "ask",
}
UPDATE_HOST_KEYS_CHOICES = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "ask": "ask"}


class BadValue(Exception):
    """A value that does not fit its keyword; the reason is shown after the file, line and value."""


def port_number(text: str, *, allow_zero: bool = False) -> int:
    """A port number or, as OpenSSH allows, a TCP service name from the services database."""
    if text.isascii() and text.isdigit() and len(text) <= 5:
        port = int(text)
    elif _SERVICE_NAME.fullmatch(text):
        try:
            port = socket.getservbyname(text, "tcp")
        except OSError:
            raise BadValue("expected a port number from 1 to 65535 or a service name") from None
    else:
        raise BadValue("expected a port number from 1 to 65535")
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise BadValue("expected a port number from 1 to 65535")
    return port


def flag(text: str) -> bool:
    value = _FLAGS.get(text.lower())
    if value is None:
        raise BadValue("expected yes or no")
    return value


def seconds(text: str) -> int:
    """OpenSSH's time format: ``30``, ``10s``, ``5m``, ``1h30m``; units s, m, h, d, w."""
    total = position = 0
    for match in _TIME_TERM.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _TIME_UNITS[match.group(2).lower()]
        position = match.end()
    if not text or position != len(text) or total > MAX_SECONDS:
        raise BadValue("expected a time such as 30, 10s, 5m or 1h30m")
    return total


def whole_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_SECONDS:
        raise BadValue("expected a whole number")
    return int(text)


def choice(choices: dict[str, str]) -> Callable[[str], str]:
    def pick(text: str) -> str:
        value = choices.get(text.lower())
        if value is None:
            raise BadValue(f"expected one of {', '.join(sorted(set(choices)))}")
        return value

    return pick


def _algorithm_list(text: str) -> str:
    if not _ALGORITHM_LIST.fullmatch(text):
        raise BadValue("expected a comma-separated algorithm list, optionally starting with +, - or ^")
    return text


def _rekey_limit(words: tuple[str, ...]) -> None:
    if len(words) > 2:
        raise BadValue("expected a size and an optional time, e.g. '1G 1h'")
    if words[0].lower() != "default" and not _SIZE.fullmatch(words[0]):
        raise BadValue("expected a size such as 1G or 512M, or 'default'")
    if len(words) == 2 and words[1].lower() not in ("default", "none"):
        seconds(words[1])


def _split_host_port(text: str) -> tuple[str, str | None]:
    """``[host]:port``, ``host:port`` or a bare ``host`` (the bracket form allows IPv6 addresses)."""
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise BadValue("unbalanced '[' around an address")
        return host, after[1:] if after else None
    host, colon, port = text.partition(":")
    return host, port if colon else None


def _jump_list(text: str) -> None:
    if text.lower() == "none":
        return
    for hop in text.split(","):
        rest = hop[len("ssh://") :] if hop.lower().startswith("ssh://") else hop
        user, at, rest = rest.rpartition("@")
        host, port = _split_host_port(rest)
        if (at and not user) or not host:
            raise BadValue("expected [user@]host[:port] hops separated by commas, or none")
        if port is not None:
            port_number(port)


def _listen_spec(word: str) -> None:
    if "/" in word:
        return  # a Unix-domain socket path
    if word.startswith("["):
        _, port = _split_host_port(word)
    else:
        port = word.rpartition(":")[2]  # an optional bind address comes first
    if port is None:
        raise BadValue("expected [bind_address:]port")
    port_number(port, allow_zero=True)


def _target_spec(word: str) -> None:
    if "/" in word:
        return
    host, port = _split_host_port(word)
    if not host or port is None:
        raise BadValue("expected host:port as the forwarding target")
    port_number(port, allow_zero=True)


def _forward(words: tuple[str, ...], *, targets: tuple[int, ...]) -> None:
    if len(words) - 1 not in targets:
        raise BadValue("wrong number of arguments for a forwarding specification")
    try:
        _listen_spec(words[0])
        if len(words) == 2:
            _target_spec(words[1])
    except BadValue as exc:
        raise BadValue(f"bad forwarding specification: {exc}") from None


def _one(check: Callable[[str], object]) -> Callable[[tuple[str, ...]], None]:
    """A checker for keywords that take exactly one argument."""

    def checked(words: tuple[str, ...]) -> None:
        if len(words) != 1:
            raise BadValue("extra arguments at the end of the line")
        check(words[0])

    return checked


def _any_text(text: str) -> str:
    return text


# Value checks for the keywords sshtui interprets; the words are already unquoted and non-empty.
CHECKS: dict[str, Callable[[tuple[str, ...]], None]] = {
    "HostName": _one(_any_text),
    "User": _one(_any_text),
    "IgnoreUnknown": _one(_any_text),
    "HostKeyAlias": _one(_any_text),
    "Port": _one(port_number),
    "IdentityFile": _one(_any_text),
    "CertificateFile": _one(_any_text),
    "UserKnownHostsFile": lambda words: None,
    "IdentitiesOnly": _one(flag),
    "HashKnownHosts": _one(flag),
    "BatchMode": _one(flag),
    "Compression": _one(flag),
    "StrictHostKeyChecking": _one(choice(STRICT_CHOICES)),
    "UpdateHostKeys": _one(choice(UPDATE_HOST_KEYS_CHOICES)),
    "ServerAliveInterval": _one(seconds),
    "ServerAliveCountMax": _one(whole_number),
    "ConnectTimeout": _one(lambda text: None if text.lower() == "none" else seconds(text)),
    "RekeyLimit": _rekey_limit,
    "KexAlgorithms": _one(_algorithm_list),
    "Ciphers": _one(_algorithm_list),
    "MACs": _one(_algorithm_list),
    "HostKeyAlgorithms": _one(_algorithm_list),
    "PubkeyAcceptedAlgorithms": _one(_algorithm_list),
    "LocalForward": lambda words: _forward(words, targets=(1,)),
    "RemoteForward": lambda words: _forward(words, targets=(0, 1)),
    "DynamicForward": lambda words: _forward(words, targets=(0,)),
}
WHOLE_LINE_CHECKS: dict[str, Callable[[str], None]] = {"ProxyJump": _jump_list}
