"""OpenSSH client configuration (ssh_config(5)): which files are read, and the public API.

Like ssh(1): with ``-F FILE`` only that file is read (``-F none``: no file at all); otherwise
``~/.ssh/config`` (which must not be writable by others) and then the system-wide
``/etc/ssh/ssh_config``. Parsing is in ``ssh_config_parse``, host resolution in
``ssh_config_resolve``; this module ties them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sshtui.store.ssh_config_expand import host_matches
from sshtui.store.ssh_config_parse import (
    ConfigFile,
    Directive,
    SshConfigError,
    parse_config_file,
    parse_config_text,
)
from sshtui.store.ssh_config_resolve import (
    ConfigWarning,
    LocalContext,
    ResolvedHost,
    ResolvedValue,
    resolve_host,
)

SYSTEM_CONFIG_FILE = Path("/etc/ssh/ssh_config")
USER_CONFIG_NAME = Path(".ssh") / "config"

__all__ = [
    "SYSTEM_CONFIG_FILE",
    "ConfigFile",
    "ConfigWarning",
    "Directive",
    "LocalContext",
    "ResolvedHost",
    "ResolvedValue",
    "SshConfig",
    "SshConfigError",
    "host_matches",
    "load_ssh_config",
]


@dataclass(frozen=True, slots=True)
class SshConfig:
    """Parsed configuration files, in the order ssh(1) reads them; resolve any number of hosts."""

    files: tuple[ConfigFile, ...] = ()
    home: Path | None = None  # for the default LocalContext; None: the current user's

    @classmethod
    def from_text(cls, text: str, path: Path, *, home: Path) -> SshConfig:
        """A user configuration given as text; ``path`` names it in messages."""
        return cls((parse_config_text(text, path, home=home),), home)

    def resolve(
        self,
        host: str,
        local: LocalContext | None = None,
        *,
        port: int | None = None,
        user: str | None = None,
    ) -> ResolvedHost:
        """Options for ``host`` as typed; ``port``/``user`` from the command line win over the files."""
        context = local if local is not None else LocalContext.current(self.home)
        return resolve_host(self.files, host, context, port=port, user=user)

    def host_names(self) -> list[str]:
        """The concrete names of ``Host`` lines (no wildcards, no negation), in file order, once each."""
        names: dict[str, None] = {}

        def collect(config: ConfigFile) -> None:
            for directive in config.directives:
                if directive.keyword == "Host":
                    names.update(dict.fromkeys(p for p in directive.args if not _is_pattern(p)))
                for included in directive.included:
                    collect(included)

        for config in self.files:
            collect(config)
        return list(names)


def _is_pattern(name: str) -> bool:
    return name.startswith("!") or "*" in name or "?" in name


def load_ssh_config(
    home: Path, config_file: str | Path | None = None, *, system_file: Path | None = SYSTEM_CONFIG_FILE
) -> SshConfig:
    """The files ssh(1) would read: ``-F`` (``config_file``) or ``~/.ssh/config`` and ``system_file``.

    A missing ``config_file`` is an error (as with ``ssh -F``); missing default files are not."""
    if config_file is not None:
        if str(config_file).lower() == "none":
            return SshConfig(home=home)
        path = Path(config_file)
        parsed = parse_config_file(path, home=home)
        if parsed is None:
            raise SshConfigError(f"cannot read config file {path}: no such file", path)
        return SshConfig((parsed,), home)
    files = [parse_config_file(home / USER_CONFIG_NAME, home=home, check_permissions=True)]
    if system_file is not None:
        files.append(parse_config_file(system_file, home=home, user_config=False))
    return SshConfig(tuple(f for f in files if f is not None), home)
