"""Port forwarding specifications as ssh(1) writes them: ``-L``, ``-R`` and ``-D`` (RFC 4254 §7).

``-L [bind_address:]port:host:hostport`` and ``-L [bind_address:]port:/remote/socket`` listen here and
connect on the server's side (direct-tcpip, or OpenSSH's direct-streamlocal@openssh.com);
``-R [bind_address:]port:host:hostport`` asks the server to listen (tcpip-forward) and connects here;
``-D [bind_address:]port`` is a SOCKS proxy here whose connections leave from the server.

IPv6 addresses go in square brackets. A bind address left out means loopback (127.0.0.1), as in
OpenSSH; an empty one (``:8080:...``) or ``*`` means every interface. Port 0 asks for any free port,
reported once the listener is up. This module is pure parsing: nothing here touches the network.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ForwardKind = Literal["local", "remote", "dynamic"]
LOOPBACK = "127.0.0.1"
ALL_INTERFACES = ("", "*")
FLAGS: dict[ForwardKind, str] = {"local": "-L", "remote": "-R", "dynamic": "-D"}
_USAGE: dict[ForwardKind, str] = {
    "local": "[bind_address:]port:host:hostport or [bind_address:]port:/remote/socket",
    "remote": "[bind_address:]port:host:hostport or [bind_address:]port:/local/socket",
    "dynamic": "[bind_address:]port",
}


class ForwardSpecError(Exception):
    """A forwarding specification that cannot be used; the message quotes it and says why."""


@dataclass(frozen=True, slots=True)
class ForwardSpec:
    """One forward. ``target_path`` is set instead of host and port for a Unix socket target;
    a dynamic forward has no target (each SOCKS client names its own)."""

    kind: ForwardKind
    listen_host: str
    listen_port: int
    target_host: str = ""
    target_port: int = 0
    target_path: str = ""
    text: str = ""  # as the user wrote it, for messages

    @property
    def flag(self) -> str:
        return FLAGS[self.kind]

    @property
    def label(self) -> str:
        """How the user wrote it, e.g. ``-L 8080:db:5432``: names the forward in every message."""
        return f"{self.flag} {self.text or self.canonical}"

    @property
    def listen(self) -> str:
        return join_host_port(self.listen_host or "*", self.listen_port)

    @property
    def target(self) -> str:
        if self.kind == "dynamic":
            return "SOCKS"
        return self.target_path or join_host_port(self.target_host, self.target_port)

    @property
    def canonical(self) -> str:
        listen = f"{_bracket(self.listen_host)}:{self.listen_port}"
        return listen if self.kind == "dynamic" else f"{listen}:{self.target_path or self.target}"

    @property
    def bind_host(self) -> str | None:
        """The host to give the local listener: None for every interface."""
        return None if self.listen_host in ALL_INTERFACES else self.listen_host

    def with_listen_port(self, port: int) -> ForwardSpec:
        return ForwardSpec(
            self.kind, self.listen_host, port, self.target_host, self.target_port, self.target_path, self.text
        )


def join_host_port(host: str, port: int) -> str:
    return f"{_bracket(host)}:{port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def split_fields(text: str) -> list[str]:
    """Split on ``:`` except inside ``[...]``; the brackets are removed from the field they enclose."""
    fields: list[str] = []
    position = 0
    while True:
        if text.startswith("[", position):
            end = text.find("]", position)
            if end < 0:
                raise ForwardSpecError("unclosed '['")
            fields.append(text[position + 1 : end])
            position = end + 1
            if position < len(text) and text[position] != ":":
                raise ForwardSpecError(f"unexpected {text[position]!r} after ']'")
        else:
            end = text.find(":", position)
            end = len(text) if end < 0 else end
            fields.append(text[position:end])
            position = end
        if position >= len(text):
            return fields
        position += 1  # the ':'


def _port(text: str, what: str, *, allow_zero: bool) -> int:
    lowest = 0 if allow_zero else 1
    if not text.isascii() or not text.isdigit() or not lowest <= int(text) <= 65535:
        raise ForwardSpecError(f"bad {what} {text!r} (expected a number from {lowest} to 65535)")
    return int(text)


def _host(text: str, what: str) -> str:
    if not text:
        raise ForwardSpecError(f"empty {what}")
    if any(c.isspace() or not c.isprintable() for c in text) or "/" in text:
        raise ForwardSpecError(f"bad {what} {text!r}")
    return text


def _bind(text: str) -> str:
    if text in ALL_INTERFACES:
        return text
    return _host(text, "bind address")


def parse_forward(kind: ForwardKind, text: str) -> ForwardSpec:
    """Parse the argument of ``-L``, ``-R`` or ``-D``; raises ``ForwardSpecError``."""
    try:
        return _parse(kind, text)
    except ForwardSpecError as exc:
        raise ForwardSpecError(
            f"bad {kind} forwarding specification '{FLAGS[kind]} {text}': {exc}; "
            f"use {FLAGS[kind]} {_USAGE[kind]}"
        ) from None


def _parse(kind: ForwardKind, text: str) -> ForwardSpec:
    if not text.strip():
        raise ForwardSpecError("it is empty")
    fields = split_fields(text)
    if kind == "dynamic":
        if len(fields) > 2:
            raise ForwardSpecError("too many ':'-separated fields")
        bind = _bind(fields[0]) if len(fields) == 2 else LOOPBACK
        return ForwardSpec(kind, bind, _port(fields[-1], "port", allow_zero=True), text=text)
    slash = text.find("/")
    if slash >= 0:
        # Host names and bind addresses hold no '/': this is a Unix socket path, which may contain ':'.
        prefix = text[:slash]
        if not prefix:
            raise ForwardSpecError("listening on a Unix socket is not supported")
        if not prefix.endswith(":"):
            raise ForwardSpecError("a Unix socket path must start with '/' right after a ':'")
        head = split_fields(prefix[:-1])
        if len(head) > 2:
            raise ForwardSpecError("expected [bind_address:]port before the socket path")
        bind = _bind(head[0]) if len(head) == 2 else LOOPBACK
        listen_port = _port(head[-1], "listen port", allow_zero=True)
        return ForwardSpec(kind, bind, listen_port, target_path=text[slash:], text=text)
    if len(fields) == 3:
        bind, (port, host, host_port) = LOOPBACK, fields
    elif len(fields) == 4:
        bind, port, host, host_port = fields
        bind = _bind(bind)
    elif kind == "remote" and len(fields) <= 2:
        raise ForwardSpecError("remote dynamic forwarding (-R without a target) is not supported")
    else:
        raise ForwardSpecError("expected 3 or 4 ':'-separated fields")
    return ForwardSpec(
        kind,
        bind,
        _port(port, "listen port", allow_zero=True),
        _host(host, "target host"),
        _port(host_port, "target port", allow_zero=False),
        text=text,
    )


def parse_forwards(
    local: Iterable[str] = (), remote: Iterable[str] = (), dynamic: Iterable[str] = ()
) -> tuple[list[ForwardSpec], list[str]]:
    """Parse every ``-L``/``-R``/``-D`` argument: the usable specs, and one message per bad one."""
    specs: list[ForwardSpec] = []
    errors: list[str] = []
    groups: tuple[tuple[ForwardKind, Iterable[str]], ...] = (
        ("local", local), ("remote", remote), ("dynamic", dynamic),
    )
    for kind, texts in groups:
        for text in texts:
            try:
                specs.append(parse_forward(kind, text))
            except ForwardSpecError as exc:
                errors.append(str(exc))
    return specs, errors


def parse_jump_hosts(text: str) -> list[str]:
    """``-J host1[,host2...]``: the hops in order; each is ``[user@]host[:port]``."""
    hops = [hop.strip() for hop in text.split(",")]
    if not text.strip() or any(not hop for hop in hops):
        raise ForwardSpecError(f"bad jump host list '-J {text}': expected [user@]host[:port][,...]")
    return hops


# --- command-line flags (argparse only: this module stays free of network code for fast start-up) ---


def add_forward_options(parser: argparse.ArgumentParser) -> None:
    """``-L``, ``-R``, ``-D`` (repeatable) and ``-J``, as ssh(1) spells them."""
    parser.add_argument(
        "-L", dest="local_forward", metavar="[BIND:]PORT:HOST:HOSTPORT", action="append", default=[],
        help="listen on local PORT and connect to HOST:HOSTPORT from the server (or PORT:/remote/socket)",
    )
    parser.add_argument(
        "-R", dest="remote_forward", metavar="[BIND:]PORT:HOST:HOSTPORT", action="append", default=[],
        help="have the server listen on PORT (0: any free port) and connect to HOST:HOSTPORT from here",
    )
    parser.add_argument(
        "-D", dest="dynamic_forward", metavar="[BIND:]PORT", action="append", default=[],
        help="a SOCKS4/4a/5 proxy on local PORT whose connections leave from the server",
    )
    parser.add_argument(
        "-J", dest="jump_hosts", metavar="HOST[,HOST...]",
        help="connect through these jump hosts in turn ([user@]host[:port] each)",
    )


def forwards_from_args(args: argparse.Namespace) -> tuple[list[ForwardSpec], list[str]]:
    return parse_forwards(
        getattr(args, "local_forward", None) or (),
        getattr(args, "remote_forward", None) or (),
        getattr(args, "dynamic_forward", None) or (),
    )


FORWARD_EPILOG = """\
Binds default to 127.0.0.1; give an empty bind address (:PORT:...) or * for every interface, and
[...] around IPv6 addresses. Port 0 picks a free port; the status lines show the one chosen.

The forwards run until Ctrl+C or SIGTERM. When the SSH connection drops the local listeners stay up:
new connections wait up to 10 s for the reconnection (1 s, 2 s, 4 s ... up to 60 s apart) and are
refused otherwise; remote forwards are requested again once reconnected. A forward that cannot start
(bad specification, port in use, refused by the server) is reported and the others carry on.
Unless given with -o, ConnectTimeout is 30 s and ServerAliveInterval 15 s, so that a server that
vanished without a word is noticed.
"""


def configure_forward_parser(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``sshtui forward DEST [-L ...]... [-R ...]... [-D ...]... [-J ...]``."""
    parser.add_argument("-p", dest="port", metavar="PORT", help="port to connect to (default 22)")
    parser.add_argument("-l", dest="login_name", metavar="USER", help="user to log in as")
    parser.add_argument(
        "-i", dest="identity_file", metavar="IDENTITY", action="append",
        help="private key file to authenticate with (repeatable)",
    )
    parser.add_argument(
        "-o", dest="option", metavar="OPTION=VALUE", action="append",
        help="an ssh_config option, as for 'sshtui exec' (repeatable)",
    )
    parser.add_argument("-F", dest="config_file", metavar="CONFIG", help="ssh_config file (must be readable)")
    add_forward_options(parser)
    parser.add_argument(
        "--status-interval", metavar="SECONDS", type=float, default=30.0,
        help="print a status line per forward this often (default 30; 0: only at start and exit)",
    )
    parser.add_argument("--json", action="store_true", help="status as one JSON object per line")
    parser.add_argument(
        "--stats-json", metavar="FILE",
        help="keep FILE updated with every forward's state, counters and the reconnection attempts",
    )
    parser.add_argument("destination", metavar="DEST", help="[user@]host[:port] or [user@][ipv6]:port")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sshtui forward``; the network code loads only when the command runs."""
    forward = commands.add_parser(
        "forward",
        usage="%(prog)s DEST [-L ...]... [-R ...]... [-D ...]... [-J HOST[,HOST...]] [options]",
        help="keep port forwards (-L, -R, -D) up until interrupted, reconnecting as needed",
        description="Forward ports through DEST like 'ssh -N', until Ctrl+C or SIGTERM.",
        epilog=FORWARD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_forward_parser(forward)
    forward.set_defaults(handler=_run_forward)


def _run_forward(args: argparse.Namespace) -> int:
    from sshtui.forward_command import main

    return main(args)
