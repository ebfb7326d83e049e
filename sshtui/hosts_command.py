"""``sshtui hosts list|add|edit|remove|import``: the saved hosts of ``hosts.toml`` from the shell.

The file lives in the user configuration directory (``$XDG_CONFIG_HOME/sshtui/hosts.toml``, by default
``~/.config/sshtui/hosts.toml``); ``sshtui.store.hosts`` describes its format. A saved name can be
given to ``sshtui exec`` as DEST. The store modules are imported only when a hosts command runs, so
building the parser costs nothing for the other commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sshtui.store.hosts import Host, HostStore

EXIT_OK = 0
EXIT_FAILURE = 1

# --clear NAME: the option-like name people type, and the host field it empties.
CLEARABLE = {
    "user": "user", "identity-files": "identity_files", "jumps": "jump_hosts", "forwards": "forwards",
    "tags": "tags", "color": "color", "notes": "notes",
}
ALGORITHM_FLAGS = {
    "--kex": "kex_algorithms", "--ciphers": "ciphers", "--macs": "macs",
    "--host-key-algorithms": "host_key_algorithms",
}

HOSTS_EPILOG = """\
Saved hosts live in hosts.toml in the user configuration directory ($XDG_CONFIG_HOME/sshtui, by
default ~/.config/sshtui). A saved name works as DEST for 'sshtui exec'. Passwords are never saved
there: sshtui keeps them in the OS keyring, and only when you ask it to.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hosts`` and its actions on the top-level command parser."""
    hosts = commands.add_parser(
        "hosts",
        help="list, add, edit, remove and import saved hosts",
        description="Manage the saved hosts (hosts.toml).",
        epilog=HOSTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = hosts.add_subparsers(dest="hosts_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="show the saved hosts", description="Show the saved hosts.")
    listing.add_argument("--json", action="store_true", help="print a JSON array for scripts")
    listing.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only hosts with this tag (repeatable: all)"
    )

    add = actions.add_parser("add", help="save a new host", description="Save a new host.")
    add.add_argument("name", metavar="NAME", help="the saved name: letters, digits, '.', '_' and '-'")
    _add_host_options(add, hostname_required=True)

    edit = actions.add_parser(
        "edit",
        help="change a saved host",
        description="Change a saved host. A repeatable option replaces the whole list it sets.",
    )
    edit.add_argument("name", metavar="NAME")
    _add_host_options(edit, hostname_required=False)
    edit.add_argument("--rename", metavar="NEW_NAME", help="give the host a new name")
    edit.add_argument(
        "--clear", action="append", default=[], choices=sorted(CLEARABLE), metavar="FIELD",
        help=f"empty a field (repeatable): {', '.join(sorted(CLEARABLE))}",
    )

    remove = actions.add_parser("remove", help="forget a saved host", description="Forget a saved host.")
    remove.add_argument("name", metavar="NAME")

    imports = actions.add_parser(
        "import",
        help="save the hosts of an OpenSSH client config",
        description=(
            "Save every concrete Host entry of an ssh_config file (default ~/.ssh/config). Wildcard "
            "patterns are skipped, and so are hosts already saved under the same name or with the same "
            "host name, port and user."
        ),
    )
    imports.add_argument("-F", dest="config_file", metavar="FILE", help="the ssh_config file to read")
    imports.add_argument("--dry-run", action="store_true", help="show what would be saved, save nothing")
    hosts.set_defaults(handler=main)


def _add_host_options(parser: argparse.ArgumentParser, *, hostname_required: bool) -> None:
    parser.add_argument("--hostname", required=hostname_required, metavar="HOST", help="host name or address")
    parser.add_argument("--port", metavar="PORT", help="port (default 22)")
    parser.add_argument("--user", metavar="USER", help="user to log in as")
    parser.add_argument(
        "-i", "--identity", dest="identity_files", action="append", metavar="FILE",
        help="private key file (repeatable)",
    )
    parser.add_argument(
        "--jump", dest="jump_hosts", action="append", metavar="JUMP",
        help="jump host, a saved name or [user@]host[:port] (repeatable, in order)",
    )
    parser.add_argument(
        "--forward", dest="forwards", action="append", metavar="SPEC",
        help='forward to start, e.g. "-L 8080:localhost:80" or "-D 1080" (repeatable)',
    )
    parser.add_argument("--tag", dest="tags", action="append", metavar="TAG", help="tag (repeatable)")
    parser.add_argument("--color", metavar="COLOR", help="color name or #rrggbb shown in the UI")
    parser.add_argument("--notes", metavar="TEXT", help="free-text notes")
    for flag, name in ALGORITHM_FLAGS.items():
        parser.add_argument(flag, dest=name, metavar="LIST", help=f"{name} override, OpenSSH list syntax")


def main(args: argparse.Namespace) -> int:
    from sshtui.ssh.errors import SSHError  # HostsError, and ssh_config errors during import
    from sshtui.store.hosts import HostStore

    try:
        store = HostStore.load()
        for warning in store.warnings:
            _warn(warning)
        action = {"list": _list, "add": _add, "edit": _edit, "remove": _remove, "import": _import}
        return action[args.hosts_action](store, args)
    except SSHError as exc:
        _error(exc.message)
        return EXIT_FAILURE


def _error(message: str) -> None:
    print(f"sshtui: {' '.join(message.split())}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"sshtui: warning: {' '.join(message.split())}", file=sys.stderr)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The host fields the options set; values are checked by ``Host`` itself."""
    changes: dict[str, Any] = {}
    for name in ("hostname", "user", "color", "notes", *ALGORITHM_FLAGS.values()):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.port is not None:
        changes["port"] = int(args.port) if args.port.isdecimal() else args.port
    for name in ("jump_hosts", "forwards", "tags"):
        if getattr(args, name) is not None:
            changes[name] = tuple(getattr(args, name))
    if args.identity_files is not None:
        changes["identity_files"] = tuple(_identity_path(text) for text in args.identity_files)
    return changes


def _identity_path(text: str) -> str:
    # "~/..." stays as typed, to follow the home directory; a relative path would depend on the cwd.
    path = text if text.startswith("~") else os.path.abspath(text)
    if not os.path.exists(os.path.expanduser(path)):
        _warn(f"identity file {path} does not exist (saved anyway)")
    return path


def _add(store: HostStore, args: argparse.Namespace) -> int:
    from sshtui.store.hosts import Host

    host = store.add(Host(name=args.name, **_changes(args)))
    store.save()
    print(f'saved host "{host.name}" ({host.destination})')
    return EXIT_OK


def _edit(store: HostStore, args: argparse.Namespace) -> int:
    from sshtui.store.hosts import HostsError

    changes = _changes(args)
    for name in args.clear:
        field = CLEARABLE[name]
        if field in changes:
            raise HostsError(f"--clear {name} conflicts with the option that sets it")
        changes[field] = "" if field == "notes" else None if field in ("user", "color") else ()
    if args.rename is not None:
        changes["name"] = args.rename
    if not changes:
        raise HostsError(f'nothing to change for "{args.name}" (see sshtui hosts edit --help)')
    host = store.update(args.name, **changes)
    store.save()
    print(f'updated host "{host.name}" ({host.destination})')
    return EXIT_OK


def _remove(store: HostStore, args: argparse.Namespace) -> int:
    host = store.remove(args.name)
    store.save()
    print(f'removed host "{host.name}" ({host.destination})')
    users = store.jump_users(host.name)
    if users:
        _warn(f"still used as a jump host by: {', '.join(users)}")
    return EXIT_OK


def _import(store: HostStore, args: argparse.Namespace) -> int:
    source = Path(args.config_file) if args.config_file else None
    added, skipped = store.import_from_ssh_config(source)
    verb = "would add" if args.dry_run else "added"
    for host in added:
        print(f"{verb} {host.name} ({host.destination})")
    for skip in skipped:
        print(f"skipped {skip.name}: {skip.reason}")
    if added and not args.dry_run:
        store.save()
    where = source if source is not None else "~/.ssh/config"
    if args.dry_run:
        print(f"would add {len(added)} host(s) and skip {len(skipped)} from {where} (dry run: nothing saved)")
    else:
        print(f"added {len(added)} host(s), skipped {len(skipped)}, from {where}")
    return EXIT_OK


def _list(store: HostStore, args: argparse.Namespace) -> int:
    hosts = [host for host in store if all(tag in host.tags for tag in args.tag)]
    if args.json:
        print(json.dumps([_jsonable(host) for host in hosts], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not hosts:
        tagged = f" tagged {', '.join(args.tag)}" if args.tag else ""
        print(f"no saved hosts{tagged} (add one: sshtui hosts add NAME --hostname HOST)", file=sys.stderr)
        return EXIT_OK
    rows = [("NAME", "DESTINATION", "TAGS", "VIA")]
    rows += [(h.name, h.destination, ",".join(h.tags), ",".join(h.jump_hosts)) for h in hosts]
    _print_table(rows)
    return EXIT_OK


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _jsonable(host: Host) -> dict[str, Any]:
    """Every field, always present (null or [] when unset), then the fields this version does not know."""
    import dataclasses

    record: dict[str, Any] = {}
    for item in dataclasses.fields(host):
        if item.name != "extra":
            value = getattr(host, item.name)
            record[item.name] = list(value) if isinstance(value, tuple) else value
    record.update((key, value) for key, value in host.extra.items() if key not in record)
    converted: dict[str, Any] = json.loads(json.dumps(record, default=_json_default))
    return converted


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
