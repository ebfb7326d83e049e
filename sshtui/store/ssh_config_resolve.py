"""Resolving a host through parsed ssh_config(5) files: Host matching, first-value-wins, tokens.

``Host`` patterns use ``*`` and ``?`` and are matched, case-sensitively as in OpenSSH, against the
host as given; a matching ``!pattern`` excludes the block whatever else matches. For each option
the first value from an applicable block wins, except the accumulating ones (IdentityFile,
CertificateFile and the forwardings). A ``Match`` block is not evaluated: its options are skipped
with a warning, as are unknown keywords (OpenSSH refuses those; ``IgnoreUnknown`` silences them).

HostName may use ``%h`` and ``%%``; IdentityFile, CertificateFile and UserKnownHostsFile get ``~``
expansion, then ``${VAR}`` and the tokens of ssh_config(5) "TOKENS": %% %C %d %h %i %j %k %L %l
%n %p %r %u. Every resolved value remembers the file and line it came from.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sshtui.store.ssh_config_expand import expand_tilde, expand_tokens, host_matches, pattern_list_matches
from sshtui.store.ssh_config_keywords import (
    ACCUMULATING,
    CANONICAL,
    STRICT_CHOICES,
    TOKEN_PATHS,
    BadValue,
    flag,
    port_number,
    seconds,
    whole_number,
)
from sshtui.store.ssh_config_parse import ConfigFile, Directive, SshConfigError

DEFAULT_PORT = 22
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
_JUMP_EXCLUSIVE = ("ProxyJump", "ProxyCommand")  # whichever comes first wins, the other is ignored


@dataclass(frozen=True, slots=True)
class LocalContext:
    """What the tokens say about this side: home (%d), user (%u), uid (%i), host name (%l, %L)."""

    home: Path
    user: str
    uid: int
    host_name: str
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)  # may hold secrets

    @classmethod
    def current(cls, home: Path | None = None) -> LocalContext:
        try:
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):
            user = os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
        return cls(
            home=home if home is not None else Path(os.path.expanduser("~")),
            user=user,
            uid=os.getuid() if hasattr(os, "getuid") else 0,
            host_name=socket.gethostname(),
            environ=dict(os.environ),
        )


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    path: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ResolvedValue:
    """An option's effective value and where it came from (``file`` None: the command line)."""

    value: str  # after ~, ${VAR} and token expansion where the option has them
    file: Path | None
    line: int
    raw: str = ""  # as written
    args: tuple[str, ...] = ()  # the words as written, unquoted

    @property
    def location(self) -> str:
        return "the command line" if self.file is None else f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ResolvedHost:
    """The options that apply to one host, with typed accessors for those sshtui uses."""

    host: str  # as given, before HostName
    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...]
    certificate_files: tuple[Path, ...]
    user_known_hosts_files: tuple[Path, ...]
    options: dict[str, ResolvedValue]  # single-valued options, canonical names
    accumulated: dict[str, tuple[ResolvedValue, ...]]  # IdentityFile, LocalForward, ...
    warnings: tuple[ConfigWarning, ...]

    def get(self, name: str) -> ResolvedValue | None:
        return self.options.get(_canonical(name))

    def all(self, name: str) -> tuple[ResolvedValue, ...]:
        return self.accumulated.get(_canonical(name), ())

    def _text(self, name: str) -> str | None:
        found = self.options.get(name)
        return None if found is None else found.value

    def _flag(self, name: str) -> bool:
        text = self._text(name)
        return False if text is None else flag(text)

    @property
    def proxy_jump(self) -> str | None:
        text = self._text("ProxyJump")
        return None if text is None or text.lower() == "none" else text

    @property
    def proxy_command(self) -> str | None:
        text = self._text("ProxyCommand")
        return None if text is None or text.lower() == "none" else text

    @property
    def identities_only(self) -> bool:
        return self._flag("IdentitiesOnly")

    @property
    def batch_mode(self) -> bool:
        return self._flag("BatchMode")

    @property
    def hash_known_hosts(self) -> bool:
        return self._flag("HashKnownHosts")

    @property
    def compression(self) -> bool:
        return self._flag("Compression")

    @property
    def strict_host_key_checking(self) -> str:
        return STRICT_CHOICES[(self._text("StrictHostKeyChecking") or "ask").lower()]

    @property
    def update_host_keys(self) -> str | None:
        text = self._text("UpdateHostKeys")
        return None if text is None else {"true": "yes", "false": "no"}.get(text.lower(), text.lower())

    @property
    def server_alive_interval(self) -> int:
        return seconds(self._text("ServerAliveInterval") or "0")

    @property
    def server_alive_count_max(self) -> int:
        return whole_number(self._text("ServerAliveCountMax") or "3")

    @property
    def connect_timeout(self) -> int | None:
        text = self._text("ConnectTimeout")
        return None if text is None or text.lower() == "none" else seconds(text) or None

    def _forwards(self, name: str) -> tuple[str, ...]:
        return tuple(" ".join(v.args) for v in self.accumulated.get(name, ()))

    @property
    def local_forwards(self) -> tuple[str, ...]:
        return self._forwards("LocalForward")

    @property
    def remote_forwards(self) -> tuple[str, ...]:
        return self._forwards("RemoteForward")

    @property
    def dynamic_forwards(self) -> tuple[str, ...]:
        return self._forwards("DynamicForward")


def _canonical(name: str) -> str:
    return CANONICAL.get(name.lower(), name)


class _Collector:
    """Walks the parsed files for one host, keeping the values that OpenSSH would keep."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.single: dict[str, Directive] = {}
        self.multi: dict[str, list[Directive]] = {}
        self.warnings: list[ConfigWarning] = []

    def walk(self, config: ConfigFile, never_match: bool) -> None:
        # Each file starts out applying, unless the Include that pulled it in was in a skipped block.
        active = not never_match
        for directive in config.directives:
            keyword = directive.keyword
            if keyword == "Host":
                active = not never_match and host_matches(directive.args, self.host)
            elif keyword == "Match":
                self._warn(directive, "'Match' is not supported: options up to the next 'Host' are ignored")
                active = False
            elif keyword == "Include":
                for included in directive.included:
                    self.walk(included, never_match=not active)
            elif not directive.known:
                self._unknown(directive)
            elif active:
                self._offer(directive)

    def _warn(self, directive: Directive, problem: str) -> None:
        self.warnings.append(ConfigWarning(directive.path, directive.line, problem))

    def _unknown(self, directive: Directive) -> None:
        ignored = self.single.get("IgnoreUnknown")
        name = directive.keyword.lower()
        if ignored is not None and pattern_list_matches(ignored.args[0].lower(), name):
            return
        self._warn(
            directive, f"unknown keyword {directive.keyword!r} ignored (OpenSSH would refuse this file)"
        )

    def _offer(self, directive: Directive) -> None:
        keyword = directive.keyword
        if keyword in ACCUMULATING:
            entries = self.multi.setdefault(keyword, [])
            if keyword in TOKEN_PATHS and any(e.args == directive.args for e in entries):
                return  # the same file named twice is tried once, as in OpenSSH
            entries.append(directive)
        elif keyword in _JUMP_EXCLUSIVE and any(k in self.single for k in _JUMP_EXCLUSIVE):
            return
        elif keyword not in self.single:
            self.single[keyword] = directive


def _effective_hostname(host: str, written: Directive | None) -> str:
    name = host
    if written is not None:
        try:
            name = expand_tokens(written.args[0], {"h": host}, None)
        except BadValue as exc:
            raise _error(written, exc) from None
    try:
        ipaddress.ip_address(name)
        return name  # addresses keep their spelling; names are compared in lower case
    except ValueError:
        return name.lower()


def _error(directive: Directive, exc: BadValue) -> SshConfigError:
    message = f"{directive.location}: bad {directive.keyword} {directive.text!r}: {exc}"
    return SshConfigError(message, directive.path, directive.line)


def _value(directive: Directive, value: str | None = None) -> ResolvedValue:
    """``value`` defaults to the words as written, joined by spaces."""
    text = " ".join(directive.args) if value is None else value
    return ResolvedValue(text, directive.path, directive.line, directive.text, directive.args)


def resolve_host(
    files: tuple[ConfigFile, ...],
    host: str,
    local: LocalContext,
    *,
    port: int | None = None,
    user: str | None = None,
) -> ResolvedHost:
    """The options for ``host`` (as the user typed it). ``port`` and ``user`` are values the
    command line already fixed: they win over the files and feed the %p and %r tokens."""
    collector = _Collector(host)
    for config in files:
        collector.walk(config, never_match=False)
    single = collector.single
    options = {keyword: _value(directive) for keyword, directive in single.items()}
    if port is not None:
        options["Port"] = ResolvedValue(str(port), None, 0, str(port), (str(port),))
    if user is not None:
        options["User"] = ResolvedValue(user, None, 0, user, (user,))
    hostname_directive = single.get("HostName")
    hostname = _effective_hostname(host, hostname_directive)
    if hostname_directive is not None:
        options["HostName"] = _value(hostname_directive, hostname)
    effective_port = port if port is not None else DEFAULT_PORT
    if port is None and "Port" in options:
        effective_port = port_number(options["Port"].value)  # checked at parse time: cannot fail
    effective_user = options["User"].value if "User" in options else local.user
    jump = options["ProxyJump"].value if "ProxyJump" in options else ""
    jump = "" if jump.lower() == "none" else jump
    tokens = {
        "d": str(local.home), "h": hostname, "i": str(local.uid), "j": jump,
        "k": options["HostKeyAlias"].value if "HostKeyAlias" in options else host,
        "L": local.host_name.partition(".")[0], "l": local.host_name, "n": host,
        "p": str(effective_port), "r": effective_user, "u": local.user,
    }
    connection = local.host_name + hostname + str(effective_port) + effective_user + jump
    tokens["C"] = hashlib.sha1(connection.encode("utf-8", "surrogateescape")).hexdigest()

    def expand_path(directive: Directive, word: str) -> str:
        try:
            return expand_tokens(expand_tilde(word, local.home), tokens, local.environ)
        except BadValue as exc:
            raise _error(directive, exc) from None

    accumulated: dict[str, tuple[ResolvedValue, ...]] = {}
    for keyword, directives in collector.multi.items():
        if keyword in TOKEN_PATHS:
            accumulated[keyword] = tuple(_value(d, expand_path(d, d.args[0])) for d in directives)
        else:
            accumulated[keyword] = tuple(_value(d, " ".join(d.args)) for d in directives)
    if "UserKnownHostsFile" in single:
        directive = single["UserKnownHostsFile"]
        words = () if [w.lower() for w in directive.args] == ["none"] else directive.args
        known_hosts = tuple(Path(expand_path(directive, w)) for w in words)
        options["UserKnownHostsFile"] = _value(directive, " ".join(map(str, known_hosts)))
    else:
        known_hosts = tuple(Path(expand_tilde(w, local.home)) for w in DEFAULT_KNOWN_HOSTS)
    return ResolvedHost(
        host=host,
        hostname=hostname,
        port=effective_port,
        user=effective_user,
        identity_files=tuple(Path(v.value) for v in accumulated.get("IdentityFile", ())),
        certificate_files=tuple(Path(v.value) for v in accumulated.get("CertificateFile", ())),
        user_known_hosts_files=known_hosts,
        options=options,
        accumulated=accumulated,
        warnings=tuple(collector.warnings),
    )
