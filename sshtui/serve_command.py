"""``sshtui serve``: the embedded SSH server in the foreground (RFC 4253, 4252, 4254 through
``sshtui.net.server``), logging each connection to stderr until Ctrl+C.

It listens on loopback unless told otherwise: anything it runs runs as the invoking user.
Host keys come from ``--host-key`` files or are generated for this run; clients authenticate
with a key in ``--authorized-keys`` (default ``~/.ssh/authorized_keys``) or a password from
``--password-file`` (``user:scrypt$...`` lines, made with ``--hash-password USER``).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sshtui.net.server import ServerOptions
    from sshtui.ssh.crypto.hostkeys import PrivateKey

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_LISTEN = "127.0.0.1:2222"
KEY_TYPES = ("ed25519", "ecdsa", "rsa")
_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_LISTEN}; [::1]:PORT for IPv6)")
    add("--allow-remote", action="store_true",
        help="allow a --listen address that is not loopback (other machines could then connect)")
    add("--host-key", action="append", default=[], metavar="FILE",
        help="host private key in OpenSSH format (repeatable); default: keys generated for this run")
    add("--host-key-type", action="append", choices=KEY_TYPES, metavar="TYPE",
        help="type of a generated host key: ed25519 (default), ecdsa or rsa (repeatable)")
    add("--authorized-keys", metavar="FILE",
        help="public keys that may log in (default ~/.ssh/authorized_keys unless --password-file is given)")
    add("--password-file", metavar="FILE", help="user:scrypt$... lines, as --hash-password prints them")
    add("--hash-password", metavar="USER", help="read a password and print its password-file line, then exit")
    add("--accept-env", action="append", default=[], metavar="NAME",
        help="environment variable (or pattern) clients may set, beyond LANG, LC_* and TERM (repeatable)")
    add("--allow-forward-to-any", action="store_true",
        help="let clients forward (-L, -D) to any host, not only this machine's loopback addresses")
    add("--allow-forward-bind-any", action="store_true",
        help="let clients listen (-R) on any address, not only loopback")
    add("--max-sessions", type=int, default=10, metavar="N", help="sessions per connection (default 10)")
    add("--max-auth-tries", type=int, default=6, metavar="N",
        help="failed attempts per connection (default 6)")
    add("--login-grace-time", type=float, default=120.0, metavar="SECONDS",
        help="disconnect clients not authenticated by then (default 120)")
    add("--idle-timeout", type=float, metavar="SECONDS", help="disconnect connections idle this long")
    add("--rekey-limit", metavar="SIZE", help="rekey after this much data, e.g. 1M or 1G (default 1G)")


def main(args: argparse.Namespace) -> int:
    if args.hash_password:
        return _print_password_line(args.hash_password)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if not is_loopback(host) and not args.allow_remote:
        _error(f"refusing to listen on {host}: it is not a loopback address, so other machines could connect "
               "and run programs as you. Add --allow-remote if that is what you want.")
        return EXIT_USAGE
    from sshtui.net.server_auth import ServerConfigError
    from sshtui.ssh.errors import SSHError

    try:
        options = _server_options(args, host, port)
    except (ServerConfigError, SSHError, ValueError) as exc:
        _error(exc.message if isinstance(exc, SSHError) else str(exc))
        return EXIT_FAILURE
    import asyncio
    import logging

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return asyncio.run(_serve(options))
    except OSError as exc:
        _error(f"cannot listen on {host} port {port}: {exc.strerror or exc}")
        return EXIT_FAILURE


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` (loopback)."""
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"--listen {text!r}: expected [ADDRESS]:PORT")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"--listen {text!r}: expected HOST:PORT (IPv6 as [ADDRESS]:PORT)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--listen {text!r}: the port must be a number from 0 to 65535")
    return host or "127.0.0.1", int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_size(text: str) -> int:
    value = text.strip().upper()
    suffix = value[-1:] if value[-1:] in _SIZE_SUFFIXES else ""
    number = value[: len(value) - len(suffix)]
    if not number.isdigit():
        raise ValueError(f"--rekey-limit {text!r}: expected a size such as 512K, 1M or 1G")
    return int(number) * _SIZE_SUFFIXES[suffix]


def _server_options(args: argparse.Namespace, host: str, port: int) -> ServerOptions:
    from sshtui.net.server import ServerOptions
    from sshtui.net.server_auth import AuthorizedKeys, PasswordFile, ServerConfigError
    from sshtui.ssh.config import server_config

    host_keys = _host_keys(args.host_key, args.host_key_type or ["ed25519"])
    passwords = PasswordFile.load(Path(args.password_file)) if args.password_file else None
    keys_path = Path(args.authorized_keys) if args.authorized_keys else None
    if keys_path is None and passwords is None:
        keys_path = Path.home() / ".ssh" / "authorized_keys"
        if not keys_path.exists():
            raise ServerConfigError(
                f"nobody could log in: {keys_path} does not exist; "
                "give --authorized-keys FILE or --password-file FILE"
            )
    authorized = AuthorizedKeys.load(keys_path) if keys_path else None
    if authorized is not None and not authorized.blobs and passwords is None:
        raise ServerConfigError(f"{keys_path} holds no usable key, so nobody could log in")
    transport = server_config(rekey_bytes=parse_size(args.rekey_limit)) if args.rekey_limit else None
    for label, value in (("--max-sessions", args.max_sessions), ("--max-auth-tries", args.max_auth_tries)):
        if value < 1:
            raise ValueError(f"{label} must be at least 1")
    return ServerOptions(
        host_keys, host=host, port=port, authorized_keys=authorized, passwords=passwords, transport=transport,
        accept_env=tuple(args.accept_env), allow_forward_to_any=args.allow_forward_to_any,
        allow_forward_bind_any=args.allow_forward_bind_any, max_sessions=args.max_sessions,
        max_auth_attempts=args.max_auth_tries, login_grace_time=args.login_grace_time,
        idle_timeout=args.idle_timeout,
    )


def _host_keys(files: list[str], kinds: list[str]) -> list[PrivateKey]:
    from sshtui.net.server_auth import ServerConfigError
    from sshtui.ssh.crypto.hostkeys import PrivateKey

    if not files:
        return [PrivateKey.generate(kind) for kind in dict.fromkeys(kinds)]
    keys: list[PrivateKey] = []
    for name in files:
        try:
            keys.append(PrivateKey.from_openssh(Path(name).read_bytes()))
        except OSError as exc:
            raise ServerConfigError(f"cannot read host key {name}: {exc.strerror or exc}") from None
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            raise ServerConfigError(f"host key {name}: {message}") from None
    return keys


async def _serve(options: ServerOptions) -> int:
    import asyncio
    import signal

    from sshtui.net.server import start_server
    from sshtui.ssh.crypto.hostkeys import openssh_public_line

    server = await start_server(options)
    host, port = server.address
    name = host if port == 22 else f"[{host}]:{port}"
    print(f"sshtui serve: listening on {host} port {port}; Ctrl+C stops it", file=sys.stderr)
    print("Host keys (known_hosts lines):", file=sys.stderr)
    for key in options.host_keys:
        print(f"  {name} {openssh_public_line(key.public_blob)}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("sshtui serve: stopping", file=sys.stderr)
        server.close()
        await server.wait_closed()
    return EXIT_OK


def _print_password_line(user: str) -> int:
    from sshtui.net.server_auth import hash_password

    if ":" in user or not user.strip():
        _error("the user name must be non-empty and contain no ':'")
        return EXIT_USAGE
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {user}: ")
        if getpass.getpass("Again: ") != password:
            _error("the passwords differ")
            return EXIT_FAILURE
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _error("empty password")
        return EXIT_FAILURE
    print(f"{user}:{hash_password(password)}")
    return EXIT_OK


def _error(message: str) -> None:
    print(f"sshtui serve: {message}", file=sys.stderr)
