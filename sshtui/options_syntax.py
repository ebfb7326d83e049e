"""The syntax of ``sshtui exec``'s DEST and option values, with OpenSSH's names (ssh(1), ssh_config(5)).

DEST is ``[user@]host[:port]``, ``[user@][ipv6]:port`` or an ``ssh://`` URI; ``-o`` takes
``Option=Value`` or ``Option Value`` with the option name in any case. Values follow ssh_config(5):
yes/no flags, byte sizes with K/M/G/T suffixes, the TIME FORMATS section's ``1h30m`` terms, and
RekeyLimit's ``BYTES [TIME]``. Every problem raises ``OptionError`` naming the option and value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sshtui.ssh.config import DEFAULT_REKEY_BYTES, DEFAULT_REKEY_SECONDS

_FLAGS = {"yes": True, "true": True, "no": False, "false": False}

# Canonical spelling of each option we understand, keyed by its lower-case name.
OPTION_NAMES = {
    name.lower(): name
    for name in (
        "BatchMode", "Ciphers", "ConnectTimeout", "HashKnownHosts", "HostKeyAlgorithms", "IdentitiesOnly",
        "IdentityFile", "ProxyJump", "UpdateHostKeys",
        "KexAlgorithms", "MACs", "Port", "PubkeyAcceptedAlgorithms", "RekeyLimit", "ServerAliveCountMax",
        "ServerAliveInterval", "StrictHostKeyChecking", "User", "UserKnownHostsFile",
    )
}
OPTION_NAMES["pubkeyacceptedkeytypes"] = "PubkeyAcceptedAlgorithms"  # the pre-8.5 name

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([a-z]?)", re.IGNORECASE)
_TIME_TERM = re.compile(r"(\d+)([a-z]?)", re.IGNORECASE)
MIN_REKEY_BYTES = 16


class OptionError(Exception):
    """A bad command-line option: the message names the option and the offending value."""


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    user: str | None = None
    port: int | None = None


def parse_port(text: str, what: str = "port") -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise OptionError(f"bad {what} {text!r}: expected a number from 1 to 65535")
    return int(text)


def parse_destination(text: str) -> Destination:
    """``[user@]host[:port]``, ``[user@][ipv6]:port``, a bare IPv6 address, or ``ssh://[user@]host[:port]``."""
    rest = text
    if rest.lower().startswith("ssh://"):
        rest = rest[len("ssh://") :].removesuffix("/")
    user: str | None = None
    if "@" in rest:
        # Only the last "@" separates: user names such as "me@example.org" contain one.
        user, rest = rest.rsplit("@", 1)
        if not user:
            raise OptionError(f"bad destination {text!r}: empty user name before '@'")
    port: int | None = None
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket or not host:
            raise OptionError(f"bad destination {text!r}: unclosed or empty '[' around the host")
        if after:
            if not after.startswith(":"):
                raise OptionError(f"bad destination {text!r}: unexpected {after!r} after ']'")
            port = parse_port(after[1:], f"port in destination {text!r}:")
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = parse_port(port_text, f"port in destination {text!r}:")
    else:
        host = rest  # a name, an IPv4 address, or an IPv6 address without a port
    if not host or any(c.isspace() or c in "/\\'\"`" for c in host):
        raise OptionError(f"bad destination {text!r}: no usable host name")
    return Destination(host=host, user=user, port=port)


def split_option(text: str) -> tuple[str, str]:
    """``Option=Value`` or ``Option Value`` into the option's canonical name and its value."""
    match = re.match(r"\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*?)\s*$", text, re.DOTALL)
    if match is None or not match.group(2):
        raise OptionError(f"bad option {text!r}: expected Option=Value")
    name = OPTION_NAMES.get(match.group(1).lower())
    if name is None:
        raise OptionError(f"unsupported option {match.group(1)!r} (in {text!r})")
    return name, match.group(2)


def parse_size(value: str, option: str = "RekeyLimit") -> int:
    """A byte count with an optional K/M/G/T suffix (powers of 1024), fractions allowed: ``1.5M``."""
    match = _SIZE.fullmatch(value.strip())
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise OptionError(f"{option}: bad size {value!r} (expected a number with an optional K, M, G suffix)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def parse_time(value: str, option: str) -> float:
    """OpenSSH time format: seconds, or terms such as ``1h30m`` with units s, m, h, d, w."""
    text = value.strip()
    total = 0
    position = 0
    for match in _TIME_TERM.finditer(text):
        unit = match.group(2).lower()
        if match.start() != position or unit not in _TIME_UNITS:
            break
        total += int(match.group(1)) * _TIME_UNITS[unit]
        position = match.end()
    if not text or position != len(text):
        raise OptionError(f"{option}: bad time {value!r} (expected e.g. 30, 10s, 5m, 1h30m)")
    return float(total)


def parse_rekey_limit(value: str) -> tuple[int, float | None]:
    """``RekeyLimit BYTES [TIME]``: ``default`` or a size, then ``default``, ``none`` or a time.

    A byte limit of ``default`` (or 0) leaves it to the cipher's safe limit; a time of ``none``
    or 0 turns time-based rekeying off. Returns (bytes, seconds or None).
    """
    words = value.split()
    if not 1 <= len(words) <= 2:
        raise OptionError(f"RekeyLimit: bad value {value!r} (expected e.g. '1G 1h' or 'default none')")
    size = DEFAULT_REKEY_BYTES if words[0].lower() == "default" else parse_size(words[0])
    if size == 0:
        size = DEFAULT_REKEY_BYTES
    if size < MIN_REKEY_BYTES:
        raise OptionError(f"RekeyLimit: {value!r} is too small (at least {MIN_REKEY_BYTES} bytes)")
    seconds: float | None = DEFAULT_REKEY_SECONDS
    if len(words) == 2:
        word = words[1].lower()
        if word == "none":
            seconds = None
        elif word != "default":
            seconds = parse_time(words[1], "RekeyLimit") or None
    return size, seconds


def parse_flag(option: str, value: str) -> bool:
    flag = _FLAGS.get(value.lower())
    if flag is None:
        raise OptionError(f"{option}: bad value {value!r} (expected yes or no)")
    return flag


def expand_path(text: str, home: Path) -> Path:
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(os.path.expanduser(text))
