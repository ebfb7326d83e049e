"""Patterns and expansions of ssh_config(5): Host wildcards, ``~``, ``${VAR}`` and ``%`` tokens.

Wildcards follow OpenSSH's match_pattern (``*``, ``?``, everything else literal, case-sensitive);
token expansion follows ssh_config(5) "TOKENS" and "ENVIRONMENT VARIABLES": environment
variables are substituted first, then the ``%`` tokens; an unknown token or an unset variable is
an error, as in OpenSSH.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sshtui.store.patterns import match_host_pattern
from sshtui.store.ssh_config_keywords import BadValue


def host_matches(patterns: tuple[str, ...], host: str) -> bool:
    """A ``Host`` line applies when some pattern matches and no negated one does."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if match_host_pattern(host, pattern[1:]):
                return False
        elif match_host_pattern(host, pattern):
            matched = True
    return matched


def pattern_list_matches(patterns: str, name: str) -> bool:
    return host_matches(tuple(p for p in patterns.split(",") if p), name)


def expand_tokens(text: str, tokens: Mapping[str, str], environ: Mapping[str, str] | None) -> str:
    """``${VAR}`` (when ``environ`` is given) and then ``%x`` tokens; raises ``BadValue``."""
    if environ is not None and "${" in text:
        parts: list[str] = []
        rest = text
        while (start := rest.find("${")) >= 0:
            end = rest.find("}", start + 2)
            if end < 0:
                raise BadValue("unclosed '${'")
            name = rest[start + 2 : end]
            if not name or name not in environ:
                raise BadValue(f"environment variable {name!r} is not set")
            parts += [rest[:start], environ[name]]
            rest = rest[end + 1 :]
        text = "".join(parts) + rest
    if "%" not in text:
        return text
    out: list[str] = []
    i = 0
    while (j := text.find("%", i)) >= 0:
        out.append(text[i:j])
        key = text[j + 1 : j + 2]
        if key == "%":
            out.append("%")
        elif key in tokens:
            out.append(tokens[key])
        else:
            raise BadValue(f"unknown token %{key}" if key else "'%' at the end of the value")
        i = j + 2
    out.append(text[i:])
    return "".join(out)


def expand_tilde(text: str, home: Path) -> str:
    if text == "~" or text.startswith("~/"):
        return str(home) + text[1:]
    if text.startswith("~"):
        expanded = os.path.expanduser(text)
        if expanded == text:
            raise BadValue(f"no such user {text[1:].partition('/')[0]!r}")
        return expanded
    return text
