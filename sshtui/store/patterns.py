"""OpenSSH's host name wildcards (ssh_config(5) PATTERNS), shared by ssh_config and known_hosts."""

from __future__ import annotations


def match_host_pattern(name: str, pattern: str) -> bool:
    """``*`` matches any run of characters, ``?`` any one, everything else itself.

    Backtracking only to the last ``*`` seen bounds the work by len(name) × len(pattern), so even a
    hostile pattern stays cheap."""
    n = p = 0
    star = -1
    resume = 0
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, n
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", name[n]):
            n += 1
            p += 1
        elif star >= 0:
            resume += 1
            n, p = resume, star + 1
        else:
            return False
    return pattern[p:].strip("*") == ""
