"""``sshtui known-hosts ...``: list, check, remove and learn host keys in OpenSSH known_hosts files
(sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"; RFC 4251 §4.1 on why the client checks host keys).

``check`` and ``learn`` connect only as far as the key exchange: the server's host key is known,
and proven by its signature over the exchange hash (RFC 4253 §8), before any authentication, so
they hang up right there and never ask for a password.

Only argparse is imported up front: the network and file code load when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sshtui.keys_command import add_connection_arguments, error

if TYPE_CHECKING:
    from sshtui.options import ConnectionSettings
    from sshtui.store.known_hosts import TrustDecision
    from sshtui.store.known_hosts_format import KnownHostEntry

EXIT_OK = 0
EXIT_TRUSTED = 0
EXIT_UNKNOWN = 1
EXIT_CHANGED = 2
EXIT_FAILURE = 1
EXIT_CONNECTION = 255
_EXIT_BY_STATUS = {
    "trusted": EXIT_TRUSTED, "unknown": EXIT_UNKNOWN, "changed": EXIT_CHANGED, "revoked": EXIT_CHANGED,
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    known = commands.add_parser(
        "known-hosts", help="list, check, remove and learn host keys",
        description="Work with OpenSSH known_hosts files (default: ~/.ssh/known_hosts and known_hosts2).",
    )
    actions = known.add_subparsers(dest="known_hosts_action", metavar="ACTION", required=True)
    file_help = "known_hosts file to use instead of the default ones"
    listing = actions.add_parser("list", help="every entry, with its fingerprint")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("-f", dest="file", action="append", metavar="FILE", help=file_help + " (repeatable)")
    check = actions.add_parser(
        "check", help="connect and say whether the host key is trusted",
        description="Connect to HOST, compare its host key with known_hosts and show the evidence."
        " Exit status: 0 trusted, 1 unknown, 2 changed or revoked, 255 connection failed.",
    )
    remove = actions.add_parser(
        "remove", help="delete the host's entries (ssh-keygen -R)",
        description="Delete every entry for HOST from the file, keeping the old content as FILE.old."
        " Exit status 1 when there was nothing to remove.",
    )
    learn = actions.add_parser(
        "learn", help="connect, show the host key and add it",
        description="Connect to HOST, show its host key fingerprint and add it to known_hosts."
        " A key already known is left alone; a changed one is refused (exit status 2).",
    )
    for action in (check, remove, learn):
        action.add_argument("host", metavar="HOST[:PORT]", help="host name or address; [host]:port works too")
        action.add_argument("-f", dest="file", metavar="FILE", help=file_help)
    for action in (check, learn):
        add_connection_arguments(action, login=False)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    learn.add_argument("--hash", action="store_true", help="store the host name hashed (HashKnownHosts)")
    known.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from sshtui.options_syntax import OptionError
    from sshtui.ssh.errors import SSHError

    action = {"list": _list, "check": _check, "remove": _remove, "learn": _learn}[args.known_hosts_action]
    try:
        return action(args)
    except OptionError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except SSHError as exc:
        error(exc.message)
        return EXIT_CONNECTION


def default_files() -> list[Path]:
    from sshtui.options import KNOWN_HOSTS_NAMES

    ssh_dir = Path(os.path.expanduser("~")) / ".ssh"
    return [ssh_dir / name for name in KNOWN_HOSTS_NAMES]


def _host_port(text: str) -> tuple[str, int]:
    from sshtui.options_syntax import parse_destination

    destination = parse_destination(text)
    return destination.host, destination.port or 22


def _entry_json(entry: KnownHostEntry) -> dict[str, Any]:
    return {
        "file": str(entry.path),
        "line": entry.line_number,
        "marker": entry.marker,
        "hosts": entry.hosts.text,
        "hashed": entry.hosts.hashed,
        "key_type": entry.key_type,
        "fingerprint": entry.fingerprint,
        "comment": entry.comment,
    }


def _list(args: argparse.Namespace) -> int:
    from sshtui.store.known_hosts import KnownHosts

    files = [Path(f) for f in args.file] if args.file else default_files()
    known = KnownHosts.load(files)
    if args.json:
        document = {
            "files": [str(f) for f in files],
            "entries": [_entry_json(entry) for entry in known.entries],
            "warnings": [str(warning) for warning in known.warnings],
        }
        print(json.dumps(document, indent=1))
    else:
        for entry in known.entries:
            hosts = "(hashed host name)" if entry.hosts.hashed else entry.hosts.text
            marker = f"{entry.marker} " if entry.marker else ""
            print(f"{entry.location}  {marker}{hosts}  {entry.key_type}  {entry.fingerprint}")
        if not known.entries:
            print(f"(no entries in {', '.join(map(str, files))})")
    for warning in known.warnings:
        print(f"sshtui: note: skipped {warning}", file=sys.stderr)
    return EXIT_OK



def _remove(args: argparse.Namespace) -> int:
    from sshtui.store.known_hosts_edit import remove
    from sshtui.store.known_hosts_format import host_lookup_name

    host, port = _host_port(args.host)
    path = Path(args.file) if args.file else default_files()[0]
    count = remove(path, host, port)
    name = host_lookup_name(host, port)
    if not count:
        error(f"no entries for {name} in {path}")
        return EXIT_FAILURE
    entries = "1 entry" if count == 1 else f"{count} entries"
    print(f"Removed {entries} for {name} from {path} (the old content is in {path}.old)")
    return EXIT_OK


def _settings(args: argparse.Namespace) -> ConnectionSettings:
    from sshtui.options import resolve_settings

    settings = resolve_settings(args.host, options=args.option or ())
    if args.file:
        settings.user_known_hosts_files = (Path(args.file),)
    return settings


async def fetch_host_key(settings: ConnectionSettings) -> tuple[str, bytes]:
    """The algorithm and host key the server proves it holds; the connection ends before
    authentication. Raises ``SSHError`` when there is no key exchange to get it from."""
    import dataclasses

    from sshtui.net.client_connect import ConnectError, connect
    from sshtui.options_client import build_client_options
    from sshtui.prompts import Prompter
    from sshtui.ssh.errors import HostKeyRejected, SSHError

    seen: list[tuple[str, bytes]] = []

    async def collect(host: str, port: int, algorithm: str, key_blob: bytes) -> object:
        seen.append((algorithm, key_blob))
        raise HostKeyRejected("host key collected; not logging in")

    options = build_client_options(settings, Prompter(batch_mode=True))
    options = dataclasses.replace(options, verify_host_key=collect)
    try:
        client = await connect(options)
    except SSHError:
        if seen:
            return seen[0]
        raise
    await client.close()
    raise ConnectError(f"{settings.host}: the server presented no host key")


def _describe(decision: TrustDecision) -> list[str]:
    """The evidence behind a decision, one fact per line."""
    key = f"{decision.key_type} key {decision.fingerprint}"
    lines = [f"{decision.lookup_name}: {decision.status.upper()}: the server's {key}"]
    if decision.status == "trusted" and decision.matched is not None:
        lines.append(f"  matches {decision.matched.location}")
    elif decision.status == "revoked" and decision.matched is not None:
        lines.append(f"  is marked @revoked at {decision.matched.location}")
    for entry in decision.conflicts:
        lines.append(f"  but {entry.location} holds another {entry.key_type} key {entry.fingerprint}")
    if decision.status == "unknown":
        lines.append("  is in no known_hosts line for this host")
    for entry in decision.other_types:
        lines.append(f"  ({entry.location} holds a {entry.key_type} key {entry.fingerprint} for this host)")
    return lines


def _decision_json(decision: TrustDecision, files: tuple[Path, ...]) -> dict[str, Any]:
    return {
        "host": decision.host,
        "port": decision.port,
        "status": decision.status,
        "key_type": decision.key_type,
        "fingerprint": decision.fingerprint,
        "files": [str(f) for f in files],
        "matched": _entry_json(decision.matched) if decision.matched else None,
        "conflicts": [_entry_json(entry) for entry in decision.conflicts],
        "other_types": [_entry_json(entry) for entry in decision.other_types],
    }


def _look_up(args: argparse.Namespace) -> tuple[ConnectionSettings, bytes, TrustDecision]:
    from sshtui.store.known_hosts import KnownHosts

    settings = _settings(args)
    _, key_blob = asyncio.run(fetch_host_key(settings))
    known = KnownHosts.load(settings.user_known_hosts_files)
    for warning in known.warnings:
        print(f"sshtui: note: skipped {warning}", file=sys.stderr)
    return settings, key_blob, known.check(settings.host, settings.port, key_blob)


def _check(args: argparse.Namespace) -> int:
    settings, _, decision = _look_up(args)
    if args.json:
        print(json.dumps(_decision_json(decision, settings.user_known_hosts_files), indent=1))
    else:
        print("\n".join(_describe(decision)))
    return _EXIT_BY_STATUS[decision.status]


def _learn(args: argparse.Namespace) -> int:
    from sshtui.store.known_hosts_edit import add

    settings, key_blob, decision = _look_up(args)
    print(f"{decision.lookup_name} has a {decision.key_type} key with fingerprint {decision.fingerprint}")
    if decision.status == "trusted":
        where = decision.matched.location if decision.matched else "known_hosts"
        print(f"Already known ({where}); nothing added.")
        return EXIT_OK
    if decision.status != "unknown":
        for line in _describe(decision):
            print(line, file=sys.stderr)
        error(f"not adding the key of {decision.lookup_name}: it is {decision.status}")
        return EXIT_CHANGED
    if not settings.user_known_hosts_files:
        error("no known_hosts file to add the key to (UserKnownHostsFile=none)")
        return EXIT_FAILURE
    target = settings.user_known_hosts_files[0]
    add(target, settings.host, settings.port, key_blob, hashed=args.hash)
    print(f"Added {decision.lookup_name} ({decision.key_type}) to {target}")
    return EXIT_OK
