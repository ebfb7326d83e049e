"""The fields of a saved host (``hosts.toml``) and the check each value must pass.

Names, host names, users, tags and colors are matched whole; ports are 1-65535; jump hosts are
saved names or ``[user@]host[:port]`` as ``ssh -J`` takes them; forwards use the ssh(1) ``-L``,
``-R`` and ``-D`` argument syntax; algorithm overrides use the ssh_config(5) list syntax
(``+``, ``-``, ``^``). A value that fails raises ``InvalidField``, which ``Host`` turns into a
``HostsError`` naming the host and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from sshtui.forward_spec import ForwardKind, ForwardSpecError, parse_forward

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]+")
# Algorithm override fields and the ssh_config(5) option each one stands for.
ALGORITHM_OPTIONS: Final = {
    "kex_algorithms": "KexAlgorithms",
    "ciphers": "Ciphers",
    "macs": "MACs",
    "host_key_algorithms": "HostKeyAlgorithms",
}
_HOSTNAME = re.compile(r"[\w.:%-]+")
_USER = re.compile(r"[^\s:\x00-\x1f\x7f]+")
_TAG = re.compile(r"[\w.+-]+")
_COLOR = re.compile(r"[A-Za-z][A-Za-z0-9_]*|#[0-9A-Fa-f]{3}|#[0-9A-Fa-f]{6}")
_ALGORITHM_LIST = re.compile(r"[+^-]?[\w@.*?+-]+(?:,[\w@.*?+-]+)*")
_JUMP = re.compile(r"(?:ssh://)?(?:([^@\s/]+)@)?(\[[\w:.%]+\]|[\w.-]+)(?::(\d{1,5}))?")
_FORWARD = re.compile(r"-([LRD])\s*(\S+)")
_FORWARD_KINDS: Final[dict[str, ForwardKind]] = {"L": "local", "R": "remote", "D": "dynamic"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(value: object) -> str:
    """``value`` as an error message quotes it: JSON, at most 60 characters."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class InvalidField(Exception):
    """One field's problem, before we know which host and file to name."""


def _text(value: object, pattern: re.Pattern[str] | None, expected: str) -> str:
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
        raise InvalidField(f"must be {expected}, got {shown(value)}")
    if value.startswith("-") and pattern in (_HOSTNAME, _USER):
        raise InvalidField(f"must not start with '-', got {shown(value)}")  # would read as an option
    return value


def _optional_text(pattern: re.Pattern[str] | None, expected: str) -> Callable[[object], str | None]:
    return lambda value: None if value is None else _text(value, pattern, expected)


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidField(f"must be an integer 1-65535, got {shown(value)}")
    return value


def _text_list(check: Callable[[str], str], expected: str) -> Callable[[object], tuple[str, ...]]:
    def validate(value: object) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise InvalidField(f"must be a list of {expected}, got {shown(value)}")
        checked: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item or _CONTROL.search(item):
                raise InvalidField(f"must be a list of {expected}, got {shown(item)} in it")
            checked.append(check(item))
        return tuple(dict.fromkeys(checked))

    return validate


def _jump(text: str) -> str:
    found = _JUMP.fullmatch(text)
    if found is None or (found.group(3) and not 1 <= int(found.group(3)) <= 65535):
        raise InvalidField(f"must be a list of saved host names or [user@]host[:port], got {shown(text)}")
    return text


def _forward(text: str) -> str:
    found = _FORWARD.fullmatch(text.strip())
    if found is None:
        raise InvalidField(f'must be a list of "-L/-R/-D SPEC" forwards, got {shown(text)}')
    try:
        spec = parse_forward(_FORWARD_KINDS[found.group(1)], found.group(2))
    except ForwardSpecError as exc:
        raise InvalidField(f"has a bad entry: {exc}") from None
    return spec.label


def _notes(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidField(f"must be a string, got {shown(value)}")
    return value


def _timestamp(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidField(f"must be a date and time such as 2025-01-31T12:00:00Z, got {shown(value)}")
    # A local date-time without an offset is read as UTC, which is what we write.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


FIELD_VALIDATORS: Final[dict[str, Callable[[object], object]]] = {
    "name": lambda v: _text(v, NAME_PATTERN, "letters, digits, '.', '_' or '-'"),
    "hostname": lambda v: _text(v, _HOSTNAME, "a host name or IP address"),
    "port": _port,
    "user": _optional_text(_USER, "a user name without spaces or ':'"),
    "identity_files": _text_list(lambda s: s, "key file paths"),
    "jump_hosts": _text_list(_jump, "saved host names or [user@]host[:port]"),
    "forwards": _text_list(_forward, "-L/-R/-D forwards"),
    "tags": _text_list(lambda s: _text(s, _TAG, "tags of letters, digits, '.', '_', '+' or '-'"), "tags"),
    "color": _optional_text(_COLOR, "a color name or #rrggbb"),
    "notes": _notes,
    **{
        name: _optional_text(_ALGORITHM_LIST, "an OpenSSH algorithm list such as \"+ssh-rsa\"")
        for name in ALGORITHM_OPTIONS
    },
    "created": _timestamp,
    "updated": _timestamp,
}
