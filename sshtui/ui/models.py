"""The host list's view model: saved hosts (``hosts.toml``) and ssh_config(5) ``Host`` aliases in one list.

Pure data and functions, no Textual: the hosts screen renders what ``build_entries``,
``filter_entries`` and ``group_entries`` return, and the driver connects to an entry's
``ConnectTarget``. A saved host wins over an ssh_config alias of the same name, as the user
saved it on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sshtui.store.hosts import Host

Source = Literal["saved", "ssh_config", "quick"]
UNTAGGED = "untagged"
SSH_CONFIG_GROUP = "ssh_config"
QUICK_GROUP = "quick connect"


@dataclass(frozen=True, slots=True)
class ConnectTarget:
    """Where and how to connect, in ``sshtui exec`` terms (DEST, -p, -l, -o, -J)."""

    label: str
    destination: str
    port: int | None = None
    user: str | None = None
    options: tuple[str, ...] = ()
    jump_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One row of the host list."""

    key: str  # unique in the list: "saved:NAME" or "config:ALIAS"
    name: str
    address: str  # user@host:port as people read it
    source: Source
    tags: tuple[str, ...] = ()
    notes: str = ""
    host: Host | None = None  # the saved host behind a "saved" entry

    @property
    def target(self) -> ConnectTarget:
        host = self.host
        if host is None:
            return ConnectTarget(self.name, self.name)
        return ConnectTarget(
            host.name, host.hostname, host.port, host.user, tuple(host.ssh_options()), host.jump_hosts
        )

    def haystack(self) -> str:
        return " ".join((self.name, self.address, *self.tags, self.notes, self.source)).lower()


def saved_entry(host: Host) -> HostEntry:
    return HostEntry(f"saved:{host.name}", host.name, host.destination, "saved", host.tags, host.notes, host)


def quick_entry(target: ConnectTarget) -> HostEntry:
    """A destination typed in the filter, listed once connected to (not saved)."""
    host = target.destination if ":" not in target.destination else f"[{target.destination}]"
    address = f"{target.user + '@' if target.user else ''}{host}:{target.port or 22}"
    return HostEntry(f"quick:{target.label}", target.label, address, "quick")


def build_entries(
    saved: Iterable[Host], config_aliases: Iterable[str], quick: Iterable[HostEntry] = ()
) -> list[HostEntry]:
    """Quick connects of this session, saved hosts in file order, then ssh_config aliases not saved."""
    entries = list(quick) + [saved_entry(host) for host in saved]
    taken = {entry.name for entry in entries}
    for alias in config_aliases:
        if alias not in taken:
            taken.add(alias)
            entries.append(HostEntry(f"config:{alias}", alias, alias, "ssh_config"))
    return entries


def filter_entries(entries: Sequence[HostEntry], query: str) -> list[HostEntry]:
    """Entries holding every word of ``query`` (case-insensitive) in name, address, tags or notes."""
    words = query.lower().split()
    return [entry for entry in entries if all(word in entry.haystack() for word in words)]


def group_entries(entries: Sequence[HostEntry]) -> list[tuple[str, list[HostEntry]]]:
    """Quick connects; groups by tag (a host with several tags shows under each), sorted; then untagged,
    then ssh_config."""
    groups: dict[str, list[HostEntry]] = {}
    for entry in entries:
        if entry.source == "quick":
            names: Sequence[str] = (QUICK_GROUP,)
        elif entry.source == "ssh_config":
            names = (SSH_CONFIG_GROUP,)
        else:
            names = entry.tags or (UNTAGGED,)
        for name in names:
            groups.setdefault(name, []).append(entry)
    special = (QUICK_GROUP, UNTAGGED, SSH_CONFIG_GROUP)
    tags = sorted(name for name in groups if name not in special)
    order = [QUICK_GROUP] * (QUICK_GROUP in groups) + tags + [n for n in special[1:] if n in groups]
    return [(name, groups[name]) for name in order]


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed in a form: separated by commas and/or spaces."""
    return tuple(dict.fromkeys(word for word in text.replace(",", " ").split()))


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list typed in a form (paths, jump hosts)."""
    return tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
