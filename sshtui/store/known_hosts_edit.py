"""Adding and removing known_hosts lines, as ssh(1) appends them and ``ssh-keygen -R`` removes them.

New lines carry no comment and, with ssh_config(5) HashKnownHosts, a hashed name. ``remove`` does
what ``ssh-keygen -R`` does: whole lines go, marker lines stay, ``FILE.old`` keeps the previous
content. ``remove_keys`` and ``remove_entry`` take narrower sets of lines; every removal keeps
``FILE.old`` and replaces the file atomically.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Collection
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import openssh_public_line
from sshtui.store.atomic import append_line, atomic_write
from sshtui.store.known_hosts_format import (
    HASH_SALT_BYTES,
    BadLine,
    KnownHostEntry,
    KnownHostsError,
    decode_key,
    hash_host_name,
    host_lookup_name,
    split_fields,
    split_lines,
)

# Characters that would change how a written host name reads back: separators, patterns, markers.
_UNSAFE_HOST_CHARS = re.compile(r"[\s,*?!\[\]#@|\x00-\x1f\x7f]")


def entry_line(
    host: str, port: int, key_blob: bytes, *, hashed: bool, rng: Callable[[int], bytes] = os.urandom
) -> str:
    """The line ssh would append for this host and key (no comment, as OpenSSH writes it)."""
    _check_storable_host(host, port)
    name = host_lookup_name(host, port)
    if hashed:
        name = hash_host_name(name, rng(HASH_SALT_BYTES))
    return f"{name} {openssh_public_line(key_blob)}"


def add(
    path: Path,
    host: str,
    port: int,
    key_blob: bytes,
    *,
    hashed: bool,
    rng: Callable[[int], bytes] = os.urandom,
) -> None:
    """Append a line for this host and key, creating the file (0600) and its directory (0700)."""
    line = entry_line(host, port, key_blob, hashed=hashed, rng=rng)
    try:
        append_line(path, line.encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot add the host key: {exc.strerror or exc}") from exc


def remove(path: Path, host: str, port: int) -> int:
    """Remove every unmarked line for this host, as ``ssh-keygen -R``; returns how many went.

    Other lines stay byte for byte (each ends with a newline afterwards, as ssh-keygen writes them);
    the previous content is kept as ``FILE.old``. Nothing is written when nothing matches.
    """
    name = host_lookup_name(host, port)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = split_lines(data)
    kept = [line for line in lines if not _removable(line, name)]
    removed = len(lines) - len(kept)
    if removed:
        _rewrite(path, kept)
    return removed


def remove_keys(path: Path, host: str, port: int, key_blobs: Collection[bytes]) -> int:
    """Remove the unmarked lines naming only this host (plainly or hashed) whose key is one of
    ``key_blobs``; lines that also cover other names stay. Returns how many went (``FILE.old``
    keeps the previous content, as with ``remove``)."""
    name = host_lookup_name(host, port)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = split_lines(data)
    kept = [line for line in lines if not _only_this_key(line, name, key_blobs)]
    removed = len(lines) - len(kept)
    if removed:
        _rewrite(path, kept)
    return removed


def remove_entry(entry: KnownHostEntry) -> bool:
    """Remove exactly the line ``entry`` was read from, marker lines included, when it still holds
    the same hosts, marker and key (the file may have changed since); ``FILE.old`` keeps the
    previous content. Returns whether the line went."""
    try:
        lines = split_lines(entry.path.read_bytes())
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise KnownHostsError(f"{entry.path}: cannot read: {exc.strerror or exc}") from exc
    index = entry.line_number - 1
    if not 0 <= index < len(lines):
        return False
    try:
        fields = split_fields(lines[index].decode("utf-8", "surrogateescape"))
        same = (
            fields is not None
            and (fields.marker, fields.hosts.text, fields.key_type)
            == (entry.marker, entry.hosts.text, entry.key_type)
            and decode_key(fields.key_type, fields.key_data) == entry.key_blob
        )
    except BadLine:
        return False
    if same:
        _rewrite(entry.path, lines[:index] + lines[index + 1 :])
    return same


def _rewrite(path: Path, kept: list[bytes]) -> None:
    backup = path.with_name(path.name + ".old")
    try:
        backup.unlink(missing_ok=True)
        try:
            os.link(os.path.realpath(path), backup)
        except OSError:
            shutil.copy2(path, backup)
        atomic_write(path, b"".join(line + b"\n" for line in kept))
    except OSError as exc:
        raise KnownHostsError(f"{path}: cannot rewrite: {exc.strerror or exc}") from exc


def _removable(raw: bytes, name: str) -> bool:
    # ssh-keygen -R judges lines by their host field and key type only, so do the same.
    try:
        fields = split_fields(raw.decode("utf-8", "surrogateescape"))
    except BadLine:
        return False
    return fields is not None and fields.marker is None and fields.hosts.matches(name)


def _only_this_key(raw: bytes, name: str, key_blobs: Collection[bytes]) -> bool:
    try:
        fields = split_fields(raw.decode("utf-8", "surrogateescape"))
        if fields is None or fields.marker is not None:
            return False
        hosts = fields.hosts
        single = hosts.hashed or (len(hosts.patterns) == 1 and hosts.patterns[0] == (False, name, False))
        return single and hosts.matches(name) and decode_key(fields.key_type, fields.key_data) in key_blobs
    except BadLine:
        return False


def _check_storable_host(host: str, port: int) -> None:
    if not host:
        raise KnownHostsError("cannot store an empty host name in known_hosts")
    bad = _UNSAFE_HOST_CHARS.search(host)
    if bad is not None:
        raise KnownHostsError(
            f"cannot store host name {host!r:.80} in known_hosts: it contains {bad.group()!r}"
        )
    if not 0 < port < 65536:
        raise KnownHostsError(f"cannot store port {port} in known_hosts: out of range")
