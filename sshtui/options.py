"""Connection settings of ``sshtui exec``, resolved from every source as ssh(1) does (ssh_config(5)).

Precedence follows ssh(1): ``-p``/``-l`` win over ``-o``, the first ``-o`` of an option wins over
later ones, and both win over DEST; a saved host named as DEST comes next, and the ssh_config files
(``-F FILE``, else ``~/.ssh/config`` and the system file) fill in what is left. A jump host named in
ProxyJump, ``-J`` or a saved host is resolved the same way (saved hosts, then ssh_config, then
``[user@]host[:port]`` as written), as ssh(1) resolves its jump hosts. The syntax of DEST and of
option values is in ``options_syntax``; ``options_client`` turns the settings into ``ClientOptions``.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sshtui.options_syntax import (
    OPTION_NAMES,
    Destination,
    expand_path,
    parse_destination,
    parse_flag,
    parse_port,
    parse_rekey_limit,
    parse_time,
    split_option,
)
from sshtui.options_syntax import OptionError as OptionError  # sshtui.net.jump imports it from here
from sshtui.ssh.config import (
    DEFAULT_CIPHERS,
    DEFAULT_HOST_KEY_ALGORITHMS,
    DEFAULT_KEX,
    DEFAULT_MACS,
    DEFAULT_REKEY_BYTES,
    DEFAULT_REKEY_SECONDS,
    apply_list_option,
)
from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.hostkeys import HOST_KEY_ALGORITHMS, SUPPORTED_HOST_KEY_ALGORITHMS
from sshtui.ssh.crypto.kex_registry import KEX_METHODS
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.errors import SSHError
from sshtui.store.keyfiles import default_identity_files
from sshtui.store.ssh_config import SYSTEM_CONFIG_FILE, LocalContext, SshConfigError, load_ssh_config

STRICT_CHOICES = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no"}
STRICT_CHOICES.update({"accept-new": "accept-new", "ask": "ask"})
# Every algorithm a user key may sign with; ssh-rsa (SHA-1) only when asked for explicitly.
DEFAULT_PUBKEY_ALGORITHMS: tuple[str, ...] = tuple(n for n, a in HOST_KEY_ALGORITHMS.items() if not a.opt_in)
KNOWN_HOSTS_NAMES = ("known_hosts", "known_hosts2")


def _words(option: str, value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise OptionError(f"{option}: bad value {value!r} ({exc})") from None


@dataclass
class ConnectionSettings:
    """Everything ``sshtui exec`` knows about where and how to connect, before any I/O."""

    host: str
    port: int = 22
    user: str | None = None
    identity_files: tuple[Path, ...] = ()
    identities_only: bool = False
    batch_mode: bool = False
    kex_algorithms: tuple[str, ...] = DEFAULT_KEX
    ciphers: tuple[str, ...] = DEFAULT_CIPHERS
    macs: tuple[str, ...] = DEFAULT_MACS
    host_key_algorithms: tuple[str, ...] = DEFAULT_HOST_KEY_ALGORITHMS
    # OpenSSH prefers the key types known_hosts holds for the host, but only for the default list.
    host_key_algorithms_set: bool = False
    pubkey_accepted_algorithms: tuple[str, ...] = DEFAULT_PUBKEY_ALGORITHMS
    strict_host_key_checking: str = "ask"
    user_known_hosts_files: tuple[Path, ...] = ()
    hash_known_hosts: bool = False
    update_host_keys: str | None = None  # yes, no or ask; None: ask when interactive, else no
    rekey_bytes: int = DEFAULT_REKEY_BYTES
    rekey_seconds: float | None = DEFAULT_REKEY_SECONDS
    server_alive_interval: float = 0.0
    server_alive_count_max: int = 3
    connect_timeout: float | None = None
    config_file: Path | None = None
    given: dict[str, str] = field(default_factory=dict)  # the -o options as given, canonical names
    proxy_jump: str | None = None  # ProxyJump from ssh_config (-J on the command line wins over it)
    config_warnings: tuple[str, ...] = ()  # "file:line: problem" for Match blocks, unknown keywords
    # Where the settings came from, so that jump hosts are looked up in the same places.
    alias: str = ""  # the host as named (a saved host, an ssh_config alias or an address)
    home: Path | None = None
    system_config_file: Path | None = SYSTEM_CONFIG_FILE


_LISTS = {
    "KexAlgorithms": ("kex_algorithms", DEFAULT_KEX, tuple(KEX_METHODS)),
    "Ciphers": ("ciphers", DEFAULT_CIPHERS, tuple(CIPHERS)),
    "MACs": ("macs", DEFAULT_MACS, tuple(MACS)),
    "HostKeyAlgorithms": (
        "host_key_algorithms", DEFAULT_HOST_KEY_ALGORITHMS, tuple(SUPPORTED_HOST_KEY_ALGORITHMS),
    ),
    "PubkeyAcceptedAlgorithms": (
        "pubkey_accepted_algorithms", DEFAULT_PUBKEY_ALGORITHMS, tuple(HOST_KEY_ALGORITHMS),
    ),
}


# The fields each option sets: a jump host's own options replace exactly these of the destination's.
OPTION_FIELDS: dict[str, tuple[str, ...]] = {
    **{name: (attribute,) for name, (attribute, _, _) in _LISTS.items()},
    "HostKeyAlgorithms": ("host_key_algorithms", "host_key_algorithms_set"),
    "RekeyLimit": ("rekey_bytes", "rekey_seconds"),
    "BatchMode": ("batch_mode",), "ConnectTimeout": ("connect_timeout",),
    "HashKnownHosts": ("hash_known_hosts",), "IdentitiesOnly": ("identities_only",),
    "IdentityFile": ("identity_files",), "Port": ("port",), "ProxyJump": ("proxy_jump",),
    "ServerAliveCountMax": ("server_alive_count_max",), "ServerAliveInterval": ("server_alive_interval",),
    "StrictHostKeyChecking": ("strict_host_key_checking",), "UpdateHostKeys": ("update_host_keys",),
    "User": ("user",), "UserKnownHostsFile": ("user_known_hosts_files",),
}


def _apply(settings: ConnectionSettings, name: str, value: str, home: Path) -> None:
    """Set one option on ``settings``; raises ``OptionError`` naming the option and value."""
    if name in _LISTS:
        attribute, default, supported = _LISTS[name]
        try:
            setattr(settings, attribute, apply_list_option(default, value, supported, name))
        except SSHError as exc:
            raise OptionError(f"{exc.message} (in {name}={value})") from None
        settings.host_key_algorithms_set |= name == "HostKeyAlgorithms"
    elif name == "StrictHostKeyChecking":
        choice = STRICT_CHOICES.get(value.lower())
        if choice is None:
            raise OptionError(
                f"StrictHostKeyChecking: bad value {value!r} (expected yes, accept-new, no or ask)"
            )
        settings.strict_host_key_checking = choice
    elif name == "UserKnownHostsFile":
        words = _words(name, value)
        paths = [] if [w.lower() for w in words] == ["none"] else words
        settings.user_known_hosts_files = tuple(expand_path(w, home) for w in paths)
    elif name == "RekeyLimit":
        settings.rekey_bytes, settings.rekey_seconds = parse_rekey_limit(value)
    elif name == "ServerAliveInterval":
        settings.server_alive_interval = parse_time(value, name)
    elif name == "ServerAliveCountMax":
        if not value.isdigit():
            raise OptionError(f"ServerAliveCountMax: bad value {value!r} (expected a whole number)")
        settings.server_alive_count_max = int(value)
    elif name == "ConnectTimeout":
        seconds = None if value.lower() == "none" else parse_time(value, name)
        settings.connect_timeout = seconds or None
    elif name == "IdentitiesOnly":
        settings.identities_only = parse_flag(name, value)
    elif name == "BatchMode":
        settings.batch_mode = parse_flag(name, value)
    elif name == "HashKnownHosts":
        settings.hash_known_hosts = parse_flag(name, value)
    elif name == "UpdateHostKeys":
        choice = {"true": "yes", "false": "no"}.get(value.lower(), value.lower())
        if choice not in ("yes", "no", "ask"):
            raise OptionError(f"UpdateHostKeys: bad value {value!r} (expected yes, no or ask)")
        settings.update_host_keys = choice
    elif name == "ProxyJump":
        settings.proxy_jump = value
    elif name == "User":
        settings.user = value
    elif name == "Port":
        settings.port = parse_port(value, "Port")
    else:  # pragma: no cover - every name in OPTION_NAMES is handled above
        raise OptionError(f"unsupported option {name}")


def effective_jumps(settings: ConnectionSettings, command_line: str | None) -> list[str]:
    """-J wins; otherwise ProxyJump from -o, a saved host or ssh_config ("none" disables it).

    A hop that is itself reached through jump hosts (a saved host's jumps, its own ProxyJump) comes
    after them, so the list is the whole chain in connection order; a loop raises ``OptionError``."""
    from sshtui.forward_spec import parse_jump_hosts
    from sshtui.net.jump import jump_chain

    text = command_line or settings.proxy_jump
    if not text or text.strip().lower() == "none":
        return []
    return [hop.name for hop in jump_chain(settings, parse_jump_hosts(text))]


@dataclass(frozen=True, slots=True)
class JumpHost:
    """One jump host as named in ProxyJump, ``-J`` or a saved host's jumps, resolved like a DEST."""

    name: str  # as written
    overrides: dict[str, Any]  # the ConnectionSettings fields it sets for itself
    jumps: tuple[str, ...]  # the jump hosts it is reached through in turn


def resolve_jump_host(text: str, destination: ConnectionSettings) -> JumpHost:
    """A jump host's address, port, user, keys, trust and algorithms: from the saved host it names,
    then ssh_config (the files ``destination`` was resolved with), else ``[user@]host[:port]`` as
    written, port 22 by default. What neither says is left as for ``destination``, so ``-i`` keys and
    known_hosts files given for the destination serve its jump hosts too. Raises ``OptionError``."""
    from sshtui.forward_spec import ForwardSpecError, parse_jump_hosts

    hop, applied = _resolve(destination, text, [], [])
    fields = {"host", "port", "user", "alias"}
    for name in applied - {"ProxyJump"}:
        fields.update(OPTION_FIELDS[name])
    jumps = hop.proxy_jump
    try:
        chain = [] if jumps is None or jumps.strip().lower() == "none" else parse_jump_hosts(jumps)
    except ForwardSpecError as exc:
        raise OptionError(str(exc)) from None
    return JumpHost(text, {name: getattr(hop, name) for name in sorted(fields)}, tuple(chain))


def resolve_settings(
    destination: str,
    *,
    port: str | None = None,
    user: str | None = None,
    identity_files: Sequence[str] = (),
    options: Sequence[str] = (),
    config_file: str | None = None,
    home: Path | None = None,
    system_config_file: Path | None = SYSTEM_CONFIG_FILE,
) -> ConnectionSettings:
    """Combine DEST, the ``-p``/``-l``/``-i``/``-F`` flags, ``-o`` options and ssh_config as ssh(1) does.

    Warnings about the config files (skipped ``Match`` blocks, unknown keywords) go to stderr."""
    home = home if home is not None else Path(os.path.expanduser("~"))
    base = ConnectionSettings(
        host="",
        user_known_hosts_files=tuple(home / ".ssh" / name for name in KNOWN_HOSTS_NAMES),
        config_file=Path(config_file) if config_file is not None else None,
        home=home,
        system_config_file=system_config_file,
    )
    named = [expand_path(p, home) for p in identity_files]
    settings, applied = _resolve(base, destination, options, named, port=port, user=user)
    for warning in settings.config_warnings:
        print(f"sshtui: warning: {warning}", file=sys.stderr, flush=True)
    if "IdentityFile" not in applied:  # OpenSSH's default key files only when none was named
        settings.identity_files = tuple(default_identity_files(home))
    return settings


def _resolve(
    base: ConnectionSettings,
    destination: str,
    options: Sequence[str],
    identities: list[Path],
    *,
    port: str | None = None,
    user: str | None = None,
) -> tuple[ConnectionSettings, set[str]]:
    """``destination`` over ``base``: its saved host, the ``-o`` options (the first value of each
    wins, and they win over the saved host's), ``-p``/``-l``, then ssh_config for what is left.
    Returns the settings and the names of the options that set something."""
    home = base.home if base.home is not None else Path(os.path.expanduser("~"))
    written = parse_destination(destination)
    dest, options = apply_saved_host(written, options)
    settings = replace(
        base, host=dest.host, user=dest.user, port=dest.port or 22, alias=written.host, given={},
        proxy_jump=None, config_warnings=(),
    )
    applied: set[str] = set()
    for text in options:
        name, value = split_option(text)
        if name == "IdentityFile":  # accumulates, like -i
            identities.append(expand_path(value, home))
            continue
        if name in settings.given:
            continue  # the first value obtained wins (ssh_config(5))
        _apply(settings, name, value, home)
        settings.given[name] = value
        applied.add(name)
    if port is not None:
        settings.port = parse_port(port, "port (-p)")
    if user is not None:
        settings.user = user
    port_fixed = port is not None or "Port" in settings.given or dest.port is not None
    from_config, configured = _apply_ssh_config(settings, home, port_fixed=port_fixed)
    applied |= configured
    for path in identities:
        if not path.is_file():
            raise OptionError(f"identity file {path} not accessible: no such file")
    # Named key files from the config files that do not exist are skipped, as OpenSSH does.
    if identities or from_config:
        identities += [path for path in from_config if path.is_file() and path not in identities]
        settings.identity_files = tuple(identities)
        applied.add("IdentityFile")
    return settings, applied


def _apply_ssh_config(
    settings: ConnectionSettings, home: Path, *, port_fixed: bool
) -> tuple[tuple[Path, ...], set[str]]:
    """Fill in from ssh_config what the command line left open; returns the config's IdentityFiles
    and the names of the options it set."""
    try:
        config = load_ssh_config(home, settings.config_file, system_file=settings.system_config_file)
        fixed_port = settings.port if port_fixed else None
        local = LocalContext.current(home)
        resolved = config.resolve(settings.host, local, port=fixed_port, user=settings.user)
    except SshConfigError as exc:
        raise OptionError(exc.message) from None
    settings.config_warnings = tuple(str(warning) for warning in resolved.warnings)
    settings.host, settings.port = resolved.hostname, resolved.port
    applied = set()
    if settings.user is None and "User" in resolved.options:
        settings.user = resolved.user
        applied.add("User")
    for name in sorted(set(OPTION_NAMES.values()) - {"Port", "User", "IdentityFile", *settings.given}):
        found = resolved.options.get(name)
        if found is None:
            continue
        applied.add(name)
        if name == "UserKnownHostsFile":  # already ~- and token-expanded by the resolver
            settings.user_known_hosts_files = resolved.user_known_hosts_files
            continue
        try:
            _apply(settings, name, found.value, home)
        except OptionError as exc:
            raise OptionError(f"{found.location}: {exc}") from None
    command = resolved.get("ProxyCommand")
    if resolved.proxy_command is not None and command is not None:
        raise OptionError(f"{command.location}: ProxyCommand is not supported by sshtui (use ProxyJump)")
    if "ProxyJump" not in settings.given:
        settings.proxy_jump = resolved.proxy_jump
    return resolved.identity_files, applied


# --- saved hosts (``sshtui hosts``): a saved name as DEST, looked up before ssh_config --------------


def apply_saved_host(dest: Destination, options: Sequence[str]) -> tuple[Destination, list[str]]:
    """A DEST naming a saved host becomes its address, user and port (a user or port written in DEST
    wins); its key files and algorithm overrides go after the ``-o`` options, which win over them."""
    from sshtui.store.hosts import HostsError, resolve_dest

    try:
        saved = resolve_dest(dest.host)
    except HostsError as exc:
        raise OptionError(exc.message) from None
    if saved is None:
        return dest, list(options)
    merged = Destination(saved.hostname, dest.user or saved.user, dest.port or saved.port)
    jumps = [f"ProxyJump={','.join(saved.jump_hosts)}"] if saved.jump_hosts else []
    return merged, [*options, *saved.ssh_options(), *jumps]
