"""Saved hosts: the ``hosts.toml`` model, validation on load, crash-safe saving and ssh_config import.

The file is TOML 1.0 (read with tomllib, written with tomli-w), one table per host keyed by its name::

    version = 1

    [hosts.web1]
    hostname = "web1.example.com"
    port = 2222
    user = "deploy"
    identity_files = ["~/.ssh/id_ed25519"]
    jump_hosts = ["bastion", "admin@gw.example.com:2200"]   # saved names or [user@]host[:port], as ssh -J
    forwards = ["-L 8080:localhost:80", "-D 1080"]          # ssh(1) -L / -R / -D argument syntax
    tags = ["prod"]
    color = "red"
    notes = "free text"
    kex_algorithms = "+diffie-hellman-group14-sha256"       # ssh_config(5) list syntax (+, -, ^)
    created = 2025-05-01T10:00:00Z
    updated = 2025-05-01T10:00:00Z

Fields this version does not know are kept as they are (a newer sshtui may have written them) and
reported as warnings. Secrets never go here: see ``sshtui.store.secrets``. Saving rewrites the file,
so comments are lost; the previous version is kept next to it as ``hosts.toml.bak``. The check each
field passes is in ``hosts_fields``; ``hosts_import`` makes saved hosts of ssh_config entries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import tomli_w

from sshtui.ssh.errors import SSHError
from sshtui.store.atomic import atomic_write
from sshtui.store.hosts_fields import ALGORITHM_OPTIONS, FIELD_VALIDATORS, NAME_PATTERN, InvalidField, shown
from sshtui.store.paths import ensure_private_dir, hosts_file

if TYPE_CHECKING:
    from sshtui.store.ssh_config import SshConfig

FORMAT_VERSION: Final = 1
DEFAULT_PORT: Final = 22
BACKUP_SUFFIX: Final = ".bak"
PRIVATE_FILE_MODE: Final = 0o600
MAX_FILE_BYTES: Final = 4 * 1024 * 1024  # a mistaken path (a device, a huge log) must not eat memory
HEADER: Final = "# sshtui saved hosts. Written by sshtui: comments here are not kept.\n\n"
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


class HostsError(SSHError):
    """A saved host that cannot exist as asked (bad value, duplicate or unknown name)."""


class HostsFileError(HostsError):
    """``hosts.toml`` cannot be read, parsed, validated or written; the message names the file."""


# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Host:
    """One saved host. Every field is checked on construction; ``HostsError`` names host and field."""

    name: str
    hostname: str
    port: int = DEFAULT_PORT
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    jump_hosts: tuple[str, ...] = ()
    forwards: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    color: str | None = None
    notes: str = ""
    kex_algorithms: str | None = None
    ciphers: str | None = None
    macs: str | None = None
    host_key_algorithms: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    # Fields written by a newer sshtui, kept so that saving does not lose them.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        label = self.name if isinstance(self.name, str) else shown(self.name)
        for name, validate in FIELD_VALIDATORS.items():
            try:
                object.__setattr__(self, name, validate(getattr(self, name)))
            except InvalidField as exc:
                raise HostsError(f'host "{label}": {name} {exc}') from None

    @property
    def destination(self) -> str:
        """``user@host:port`` as people read it (brackets around an IPv6 address)."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"

    def ssh_options(self) -> list[str]:
        """The identity files and algorithm overrides as ``-o Option=Value`` strings (ssh_config names)."""
        options = [f"IdentityFile={path}" for path in self.identity_files]
        for name, option in ALGORITHM_OPTIONS.items():
            if getattr(self, name):
                options.append(f"{option}={getattr(self, name)}")
        return options

    def to_table(self) -> dict[str, Any]:
        """The host's TOML table: empty and unset fields left out, unknown fields kept at the end."""
        table: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name not in ("name", "extra") and value not in (None, (), ""):
                table[item.name] = list(value) if isinstance(value, tuple) else value
        table.update((k, v) for k, v in self.extra.items() if k not in table)
        return table

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> tuple[Host, list[str]]:
        """A host from its TOML table, and warnings about the fields it did not know."""
        known = {f.name for f in dataclasses.fields(cls)} - {"name", "extra"}
        if "hostname" not in table:
            raise HostsError(f'host "{name}": hostname is missing')
        extra = {k: v for k, v in table.items() if k not in known}
        warnings = [f'host "{name}": unknown field "{key}" kept as it is' for key in extra]
        fields = {k: v for k, v in table.items() if k in known}
        return cls(name=name, extra=extra, **fields), warnings


@dataclass(frozen=True, slots=True)
class SkippedHost:
    name: str
    reason: str


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _read_limited(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise HostsFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes; is it really a hosts file?")
    return data


def _parse_document(path: Path, data: bytes) -> tuple[dict[str, Any], list[Host], list[str]]:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HostsFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        position = _TOML_POSITION.search(str(exc))
        problem = _TOML_POSITION.sub("", str(exc)).strip()
        where = f"line {position.group(1)}, column {position.group(2)}: " if position else ""
        raise HostsFileError(f"{path}: invalid TOML at {where}{problem}") from None
    version = document.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise HostsFileError(f"{path}: version must be a positive integer, got {shown(version)}")
    tables = document.get("hosts", {})
    if not isinstance(tables, dict):
        raise HostsFileError(f'{path}: "hosts" must be a table of hosts ([hosts.NAME]), got {shown(tables)}')
    warnings = [f'{path}: unknown top-level key "{key}" kept as it is' for key in document
                if key not in ("version", "hosts")]
    if version > FORMAT_VERSION:
        warnings.append(f"{path}: written by a newer sshtui (format {version}); unknown fields are kept")
    hosts = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise HostsFileError(f'{path}: host "{name}" must be a table [hosts.{name}], got {shown(table)}')
        try:
            host, host_warnings = Host.from_table(name, table)
        except HostsError as exc:
            raise HostsFileError(f"{path}: {exc.message}") from None
        hosts.append(host)
        warnings += [f"{path}: {warning}" for warning in host_warnings]
    other = {k: v for k, v in document.items() if k != "hosts"}
    return other, hosts, warnings


class HostStore:
    """The saved hosts of one ``hosts.toml``, in file order. Changes stay in memory until ``save()``."""

    def __init__(
        self,
        path: Path,
        hosts: Iterable[Host] = (),
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self.warnings: list[str] = []
        self._clock = clock
        self._hosts: dict[str, Host] = {}
        self._document: dict[str, Any] = {"version": FORMAT_VERSION}
        self._loaded_digest: bytes | None = None  # of the file as read; None when there was none
        for host in hosts:
            self._insert(host)

    @classmethod
    def load(cls, path: Path | None = None, *, clock: Callable[[], datetime] = _utc_now) -> HostStore:
        """Read and validate ``path`` (default: ``hosts.toml`` in the config dir); missing means empty."""
        store = cls(path if path is not None else hosts_file(), clock=clock)
        data = _read_limited(store.path)
        if data is not None:
            store._document, hosts, store.warnings = _parse_document(store.path, data)
            for host in hosts:
                store._insert(host)
            store._loaded_digest = hashlib.sha256(data).digest()
        return store

    def __iter__(self) -> Iterator[Host]:
        return iter(list(self._hosts.values()))

    def __len__(self) -> int:
        return len(self._hosts)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def get(self, name: str) -> Host | None:
        return self._hosts.get(name)

    def require(self, name: str) -> Host:
        host = self._hosts.get(name)
        if host is None:
            raise HostsError(f'no saved host named "{name}"')
        return host

    def with_tag(self, tag: str) -> list[Host]:
        return [host for host in self._hosts.values() if tag in host.tags]

    def find_same(self, hostname: str, port: int, user: str | None) -> Host | None:
        """A saved host reaching the same host name (in any case), port and user."""
        key = (hostname.lower(), port, user)
        return next((h for h in self._hosts.values() if (h.hostname.lower(), h.port, h.user) == key), None)

    def jump_users(self, name: str) -> list[str]:
        """The hosts that go through ``name`` as a jump host."""
        return [host.name for host in self._hosts.values() if name in host.jump_hosts]

    def add(self, host: Host) -> Host:
        """Add a new host, stamping created/updated unless set; ``HostsError`` if the name is taken."""
        now = self._clock()
        host = dataclasses.replace(host, created=host.created or now, updated=host.updated or now)
        self._insert(host)
        return host

    def update(self, name: str, /, **changes: Any) -> Host:
        """Change fields of ``name`` (``name=`` renames it, keeping its place); returns the new host."""
        current = self.require(name)
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Host)} - {"created"})
        if unknown or "created" in changes:
            raise HostsError(f'host "{name}": cannot change {", ".join(unknown) or "created"}')
        new_name = changes.get("name", name)
        if new_name != name and new_name in self._hosts:
            raise HostsError(f'host "{new_name}" already exists')
        updated = dataclasses.replace(current, **{**changes, "updated": self._clock()})
        self._hosts = {
            (new_name if key == name else key): (updated if key == name else host)
            for key, host in self._hosts.items()
        }
        return updated

    def remove(self, name: str) -> Host:
        host = self.require(name)
        del self._hosts[name]
        return host

    def _insert(self, host: Host) -> None:
        if host.name in self._hosts:
            raise HostsError(f'host "{host.name}" already exists')
        self._hosts[host.name] = host

    def to_toml(self) -> str:
        document = {**self._document, "hosts": {h.name: h.to_table() for h in self._hosts.values()}}
        return HEADER + tomli_w.dumps(document, multiline_strings=True)

    def save(self) -> None:
        """Write the file atomically (mode 0600), keeping the previous version as ``hosts.toml.bak``.

        Refuses to overwrite a file that changed on disk since it was read (another sshtui, an editor).
        """
        data = self.to_toml().encode("utf-8")
        try:
            ensure_private_dir(self.path.parent)
            current = _read_limited(self.path)
            digest = None if current is None else hashlib.sha256(current).digest()
            if digest != self._loaded_digest:
                raise HostsFileError(f"{self.path}: changed on disk since it was read; not overwriting it")
            if current is not None:
                _write_private(self.path.with_name(self.path.name + BACKUP_SUFFIX), current)
            _write_private(self.path, data)
        except OSError as exc:
            raise HostsFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        self._loaded_digest = hashlib.sha256(data).digest()

    def import_from_ssh_config(
        self, source: SshConfig | Path | None = None
    ) -> tuple[list[Host], list[SkippedHost]]:
        """Add the concrete ``Host`` entries of an ssh_config; returns (added, skipped with reasons).

        ``source`` is a parsed config, a file, or None for the user's ``~/.ssh/config``. Wildcard and
        negated patterns are not hosts; an entry whose name is already saved, or whose host name, port
        and user match a saved host, is skipped, and so is one we cannot represent (ProxyCommand).
        Nothing is written until ``save()``.
        """
        from sshtui.store.hosts_import import imported_host, read_ssh_config  # it builds on Host

        config = source if source is not None and not isinstance(source, Path) else read_ssh_config(source)
        added: list[Host] = []
        skipped: list[SkippedHost] = []
        for alias in config.host_names():
            try:
                if alias in self._hosts:
                    raise HostsError("a saved host already has this name")
                host = imported_host(alias, config)
                same = self.find_same(host.hostname, host.port, host.user)
                if same is not None:
                    raise HostsError(f'same host name, port and user as saved host "{same.name}"')
            except SSHError as exc:
                skipped.append(SkippedHost(alias, exc.message))
                continue
            added.append(self.add(host))
        return added, skipped



def _write_private(path: Path, data: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, PRIVATE_FILE_MODE)  # atomic_write keeps an existing file's mode
    atomic_write(path, data, new_file_mode=PRIVATE_FILE_MODE)


def resolve_dest(name: str, path: Path | None = None) -> Host | None:
    """The saved host called ``name``, for ``sshtui exec DEST``; None when ``name`` is not saved.

    A name that cannot be a saved host's (``user@host``, ``host:port``) is answered without reading
    the file. A broken file raises ``HostsFileError`` rather than silently connecting elsewhere.
    """
    if not NAME_PATTERN.fullmatch(name):
        return None
    return HostStore.load(path).get(name)
