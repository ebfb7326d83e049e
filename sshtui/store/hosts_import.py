"""Saved hosts from ssh_config(5): the concrete ``Host`` entries of a config, as ``sshtui hosts import``.

An entry keeps its HostName, Port, User, IdentityFile, ProxyJump, forwards (LocalForward,
RemoteForward, DynamicForward) and algorithm lists; key files under the home directory are written
``~/...`` so that they keep working if it moves. An entry needing ProxyCommand cannot be saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sshtui.store.hosts import Host, HostsError
from sshtui.store.hosts_fields import ALGORITHM_OPTIONS, NAME_PATTERN

if TYPE_CHECKING:
    from sshtui.store.ssh_config import SshConfig


def read_ssh_config(path: Path | None) -> SshConfig:
    from sshtui.store.ssh_config import load_ssh_config

    # Only what the user wrote: the system-wide file applies when connecting anyway.
    return load_ssh_config(Path.home(), path, system_file=None)


def imported_host(alias: str, config: SshConfig) -> Host:
    """The saved-host form of one ssh_config entry; ``SSHError`` says why it cannot be saved."""
    if not NAME_PATTERN.fullmatch(alias):
        raise HostsError("the name is not letters, digits, '.', '_' and '-' only")
    resolved = config.resolve(alias)
    if resolved.proxy_command is not None:
        raise HostsError("uses ProxyCommand, which a saved host cannot express")
    user = resolved.get("User")
    forwards = [
        f"{flag} {':'.join(value.args)}"
        for flag, option in (("-L", "LocalForward"), ("-R", "RemoteForward"), ("-D", "DynamicForward"))
        for value in resolved.all(option)
    ]
    algorithms: dict[str, Any] = {}
    for name, option in ALGORITHM_OPTIONS.items():
        value = resolved.get(option)
        if value is not None:
            algorithms[name] = value.value
    keys = [p for p in resolved.identity_files if p.name.lower() != "none"]
    try:
        return Host(
            name=alias,
            hostname=resolved.hostname,
            port=resolved.port,
            user=None if user is None else user.value,
            identity_files=tuple(_home_relative(path, config.home or Path.home()) for path in keys),
            jump_hosts=tuple(resolved.proxy_jump.split(",")) if resolved.proxy_jump else (),
            forwards=tuple(forwards),
            **algorithms,
        )
    except HostsError as exc:
        raise HostsError(exc.message.removeprefix(f'host "{alias}": ')) from None


def _home_relative(path: Path, home: Path) -> str:
    # "~/.ssh/id" keeps working if the home directory moves; ssh_config resolution expanded it.
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)
