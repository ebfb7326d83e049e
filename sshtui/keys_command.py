"""``sshtui keys ...``: list, generate, re-encrypt, export, draw and deploy user keys, as ssh-keygen(1)
and ssh-copy-id(1) do. Keys are OpenSSH files (OpenSSH PROTOCOL.key); deploying appends the
RFC 4253 §6.6 public key line to the remote ``authorized_keys`` through one exec request
(RFC 4254 §6.5) whose shell script gets the key on stdin, so no part of the key, its comment
included, is ever parsed by a shell.

Only argparse is imported up front: the key and network code load when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sshtui.options import ConnectionSettings
    from sshtui.store.keys import KeyInfo

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONNECTION = 255
DEFAULT_TARGET = ".ssh/authorized_keys"
DEPLOY_PROGRAM_NAME = "sshtui-deploy"
# Remote exit statuses of DEPLOY_SCRIPT and what they mean.
_DEPLOY_FAILURES = {
    3: "cannot create {target} or set its permissions",
    4: "the key did not arrive on the remote side",
    5: "cannot append to {target}",
}
# POSIX sh on one line (csh rejects newlines inside quotes). $1 is the target file; stdin brings the
# key's "type base64" on the first line and the full authorized_keys line on the second. As
# ssh-copy-id does: umask 077, file 0600, a .ssh directory 0700, SELinux labels restored if in use.
DEPLOY_SCRIPT = "; ".join(
    (
        "umask 077",
        'f="$1"',
        'case "$f" in /*) ;; *) cd || exit 3 ;; esac',
        'd=$(dirname "$f")',
        'mkdir -p "$d" && touch "$f" && chmod 600 "$f" || exit 3',
        'case "$d" in .ssh|*/.ssh) chmod 700 "$d" || exit 3 ;; esac',
        'IFS= read -r id && IFS= read -r line || exit 4',
        'if grep -v "^[[:space:]]*#" "$f" | grep -q -F -e "$id"; then echo present; exit 0; fi',
        'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f" || exit 5; fi',
        'printf "%s\\n" "$line" >> "$f" || exit 5',
        'if command -v restorecon >/dev/null 2>&1; then restorecon -F "$d" "$f" >/dev/null 2>&1; fi',
        "echo added",
    )
)


def error(message: str) -> None:
    """One line on stderr, however many lines the underlying message had."""
    print(f"sshtui: {' '.join(message.split())}", file=sys.stderr, flush=True)


def add_connection_arguments(parser: argparse.ArgumentParser, *, login: bool = True) -> None:
    """The ``sshtui exec`` options that choose how to connect (-p, -l, -i, -o, -F)."""
    if login:
        parser.add_argument("-p", dest="port", metavar="PORT", help="port to connect to (default 22)")
        parser.add_argument("-l", dest="login_name", metavar="USER", help="user to log in as")
        parser.add_argument(
            "-i", dest="identity_file", metavar="IDENTITY", action="append",
            help="private key file to authenticate with (repeatable)",
        )
        parser.add_argument("-F", dest="config_file", metavar="CONFIG", help="ssh_config file")
    parser.add_argument(
        "-o", dest="option", metavar="OPTION=VALUE", action="append",
        help="an ssh_config option, as for 'sshtui exec' (repeatable)",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys", help="list, generate and deploy SSH keys",
        description="Manage SSH user keys (OpenSSH format, compatible with ssh-keygen).",
    )
    actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="keys in ~/.ssh and sshtui's key directory")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--md5", action="store_true", help="show MD5 fingerprints (ssh-keygen -E md5)")
    generate = actions.add_parser(
        "generate", help="create a key pair",
        description="Create a key pair; an existing file is never replaced.",
    )
    generate.add_argument("-t", dest="type", choices=("ed25519", "ecdsa", "rsa"), default="ed25519")
    generate.add_argument("-b", dest="bits", type=int, help="ecdsa: 256, 384 or 521; rsa: 3072 or more")
    generate.add_argument("-C", dest="comment", help="comment (default user@host)")
    generate.add_argument("-f", dest="file", help="private key file (default ~/.ssh/id_TYPE, as ssh-keygen)")
    generate.add_argument(
        "--passphrase-prompt", action="store_true", help="ask for a passphrase to encrypt the key with"
    )
    for name, help_text in (
        ("passphrase", "change (or add, or remove) a key's passphrase"),
        ("export", "print the public key line (ssh-keygen -y)"),
        ("randomart", "print the fingerprint and its picture (ssh-keygen -lv)"),
    ):
        description = help_text[0].upper() + help_text[1:] + "."
        action = actions.add_parser(name, help=help_text, description=description)
        action.add_argument("file", metavar="FILE", help="a private key file or a .pub file")
        if name == "randomart":
            action.add_argument("--md5", action="store_true", help="use the MD5 fingerprint")
    deploy = actions.add_parser(
        "deploy", help="add a public key to a host's authorized_keys (ssh-copy-id)",
        description="Append FILE's public key to ~/.ssh/authorized_keys on DEST unless it is already there,"
        " creating the file with mode 0600 in a 0700 directory.",
    )
    deploy.add_argument("file", metavar="FILE", help="the key to install (a .pub file or a private key)")
    deploy.add_argument("destination", metavar="DEST", help="[user@]host[:port]")
    deploy.add_argument(
        "--target", default=DEFAULT_TARGET, metavar="PATH",
        help=f"remote file, relative to the home directory unless absolute (default {DEFAULT_TARGET})",
    )
    add_connection_arguments(deploy)
    keys.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from sshtui.ssh.crypto.hostkeys import KeyFormatError
    from sshtui.ssh.errors import SSHError

    action = {
        "list": _list, "generate": _generate, "passphrase": _passphrase,
        "export": _export, "randomart": _randomart, "deploy": _deploy,
    }[args.keys_action]
    try:
        return action(args)
    except _Cancelled as exc:
        error(str(exc))
    except KeyFormatError as exc:
        error(exc.message)
    except SSHError as exc:
        error(exc.message)
        return EXIT_CONNECTION
    except OSError as exc:
        name = f"{exc.filename}: " if exc.filename else ""
        error(f"{name}{exc.strerror or exc}")
    return EXIT_FAILURE


# --- prompts -------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """No passphrase could be obtained, or the two entries differ."""


def ask_secret(prompt: str) -> bytes:
    """A passphrase from the terminal or SSHTUI_ASKPASS; raises when nobody can answer."""
    from sshtui.prompts import Prompter

    answer = asyncio.run(Prompter.from_environment(batch_mode=False).passphrase(prompt))
    if answer is None:
        raise _Cancelled("no passphrase given (no terminal to ask on; SSHTUI_ASKPASS can name a program)")
    return answer.encode("utf-8")


def ask_new_passphrase() -> bytes | None:
    first = ask_secret("Enter new passphrase (empty for no passphrase): ")
    if ask_secret("Enter same passphrase again: ") != first:
        raise _Cancelled("the passphrases do not match; nothing was changed")
    return first or None


def _inspect(path: Path) -> KeyInfo:
    """The key in ``path``, asking for its passphrase only when the public half needs it."""
    from sshtui.ssh.crypto.userkeys import PassphraseRequired
    from sshtui.store.keys import inspect_key

    try:
        return inspect_key(path)
    except PassphraseRequired:
        return inspect_key(path, ask_secret(f"Enter passphrase for {path}: "))


# --- actions -------------------------------------------------------------------------------------


def key_users(key_paths: list[Path]) -> dict[Path, list[str]]:
    """Saved hosts (hosts.toml) whose identity files name each key file, private or ``.pub``."""
    from sshtui.ssh.errors import SSHError
    from sshtui.store.hosts import HostStore

    try:
        store = HostStore.load()
    except (SSHError, OSError, ImportError):
        return {}  # a broken hosts file is reported by 'sshtui hosts'; listing keys must not fail
    wanted = {Path(os.path.realpath(p)): p for p in key_paths}
    users: dict[Path, list[str]] = {}
    for host in store:
        for name in host.identity_files:
            real = Path(os.path.realpath(os.path.expanduser(name)))
            key = wanted.get(real) or wanted.get(real.with_name(real.name.removesuffix(".pub")))
            if key is not None and host.name not in users.setdefault(key, []):
                users[key].append(host.name)
    return users


def _list(args: argparse.Namespace) -> int:
    from sshtui.store.keys import default_key_dirs, list_keys

    directories = default_key_dirs()
    listing = list_keys(directories)
    users = key_users([info.path for info in listing.keys])
    if args.json:
        document = {
            "keys": [_key_json(info, users.get(info.path, []), md5=args.md5) for info in listing.keys],
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in listing.skipped],
        }
        print(json.dumps(document, indent=1))
    else:
        rows = [("TYPE", "BITS", "FINGERPRINT", "ENCRYPTED", "PATH", "COMMENT")]
        for info in listing.keys:
            encrypted = "public only" if info.encrypted is None else ("yes" if info.encrypted else "no")
            fingerprint = info.fingerprint_md5 if args.md5 else info.fingerprint
            used_by = users.get(info.path)
            comment = info.comment + (f" (used by {', '.join(used_by)})" if used_by else "")
            rows.append((info.label, str(info.bits), fingerprint, encrypted, str(info.path), comment))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows if len(rows) > 1 else ():
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1])
        if len(rows) == 1:
            print(f"(no keys in {' or '.join(str(d) for d in directories)})")
        for info in listing.keys:
            for note in info.notes:
                print(f"sshtui: note: {info.path}: {note}", file=sys.stderr)
    for skipped in listing.skipped:
        print(f"sshtui: note: skipped {skipped}", file=sys.stderr)
    return EXIT_OK


def _key_json(info: KeyInfo, used_by: list[str], *, md5: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "path": str(info.path),
        "public_path": str(info.public_path) if info.public_path else None,
        "type": info.key_type,
        "bits": info.bits,
        "fingerprint": info.fingerprint,
        "comment": info.comment,
        "encrypted": info.encrypted,
        "has_private": info.has_private,
        "used_by": used_by,
        "notes": list(info.notes),
    }
    if md5:
        document["fingerprint_md5"] = info.fingerprint_md5
    return document


def _generate(args: argparse.Namespace) -> int:
    from sshtui.ssh.crypto.randomart import key_randomart
    from sshtui.store.keys import (
        KeyExists,
        check_generation,
        default_comment,
        default_key_path,
        generate_key,
        public_path_of,
    )

    check_generation(args.type, args.bits)
    path = Path(args.file).expanduser() if args.file else default_key_path(args.type)
    for target in (path, public_path_of(path)):
        if target.exists() or target.is_symlink():
            raise KeyExists(target)
    comment = default_comment() if args.comment is None else args.comment
    passphrase = ask_new_passphrase() if args.passphrase_prompt else None
    info = generate_key(path, args.type, args.bits, comment, passphrase)
    print(f"Your private key has been saved in {info.path}")
    print(f"Your public key has been saved in {info.public_path}")
    print("The key fingerprint is:")
    print(f"{info.fingerprint} {info.comment}".rstrip())
    print("The key's randomart image is:")
    print(key_randomart(info.public_blob))
    return EXIT_OK


def _passphrase(args: argparse.Namespace) -> int:
    from sshtui.store.keyfiles import private_key_is_encrypted
    from sshtui.store.keys import change_passphrase

    path = Path(args.file).expanduser()
    old = ask_secret("Enter old passphrase: ") if private_key_is_encrypted(path) else None
    new = ask_new_passphrase()
    change_passphrase(path, old, new)
    state = "with the new passphrase" if new else "without a passphrase"
    print(f"Your identification has been saved {state}.")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    print(_inspect(Path(args.file).expanduser()).public_line)
    return EXIT_OK


def _randomart(args: argparse.Namespace) -> int:
    from sshtui.ssh.crypto.randomart import key_randomart

    info = _inspect(Path(args.file).expanduser())
    hash_name = "MD5" if args.md5 else "SHA256"
    fingerprint = info.fingerprint_md5 if args.md5 else info.fingerprint
    # ssh-keygen names a .pub file that has no comment in place of the comment.
    comment = info.comment or (str(info.public_path) if info.public_path else "")
    print(f"{info.bits} {fingerprint} {comment} ({info.label})")
    print(key_randomart(info.public_blob, hash_name))
    return EXIT_OK


# --- deploy --------------------------------------------------------------------------------------


def deploy_command(target: str = DEFAULT_TARGET) -> str:
    """The remote command line; ``target`` is its only variable part, and it is quoted."""
    if target.startswith("~/"):
        target = target[2:]
    if not target or target.endswith("/"):
        raise ValueError(f"bad remote file {target!r}: a file name is needed")
    if not target.startswith("/"):
        target = "./" + target  # no leading "-" can ever read as an option
    return f"exec sh -c {shlex.quote(DEPLOY_SCRIPT)} {DEPLOY_PROGRAM_NAME} {shlex.quote(target)}"


def deploy_input(public_blob: bytes, comment: str) -> bytes:
    """The script's stdin: the key's identity (type and base64), then the line to append."""
    from sshtui.ssh.crypto.hostkeys import openssh_public_line

    # A line break in the comment would start a second authorized_keys entry.
    safe_comment = "".join(c if c.isprintable() else " " for c in comment).strip()
    return f"{openssh_public_line(public_blob)}\n{openssh_public_line(public_blob, safe_comment)}\n".encode()


def _deploy(args: argparse.Namespace) -> int:
    from sshtui.options import resolve_settings
    from sshtui.options_syntax import OptionError

    try:
        info = _inspect(Path(args.file).expanduser())
        command = deploy_command(args.target)
        settings = resolve_settings(
            args.destination,
            port=args.port,
            user=args.login_name,
            identity_files=args.identity_file or (),
            options=args.option or (),
            config_file=args.config_file,
        )
    except (OptionError, ValueError) as exc:
        error(str(exc))
        return EXIT_FAILURE
    stdin = deploy_input(info.public_blob, info.comment)
    return asyncio.run(_run_deploy(settings, command, stdin, args.target))


async def _run_deploy(settings: ConnectionSettings, command: str, stdin: bytes, target: str) -> int:
    from sshtui.net.client_connect import connect
    from sshtui.options_client import build_client_options
    from sshtui.prompts import Prompter

    options = build_client_options(settings, Prompter.from_environment(batch_mode=settings.batch_mode))
    client = await connect(options)
    try:
        result = await client.run(command, stdin=stdin)
    finally:
        await client.close()
    where = f"{target} on {settings.host}"
    # Only the last line: a chatty shell start-up file may print before the script runs.
    said = result.stdout.decode("utf-8", "replace").strip().splitlines()
    outcome = said[-1] if said else ""
    if result.exit_status == 0 and outcome in ("added", "present"):
        if outcome == "added":
            print(f"Added the key to {where}.")
        else:
            print(f"The key is already in {where}; nothing to do.")
        return EXIT_OK
    problem = _DEPLOY_FAILURES.get(result.exit_status or 0, "the remote command failed").format(target=target)
    remote = result.stderr.decode("utf-8", "replace").strip().splitlines()
    error(f"{settings.host}: {problem}" + (f": {remote[-1]}" if remote else ""))
    return EXIT_FAILURE
