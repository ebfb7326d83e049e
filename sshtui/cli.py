"""Command-line entry point: ``sshtui [--version] [--debug] COMMAND``.

Subcommands import their implementation lazily so that ``sshtui --version`` and error paths stay
fast and never pull in the UI toolkit. Exit codes follow OpenSSH's client where one applies:
255 for a connection or protocol failure, 130 after Ctrl-C, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from sshtui import __version__
from sshtui.ssh.errors import SSHError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_CONNECTION = 255

PROG = "sshtui"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal UI SSH session manager on its own embedded SSH stack.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show a full traceback for unexpected errors instead of a one-line message",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the built-in demonstration",
        description="Start the embedded server on loopback and open a shell on it through our client.",
    )
    demo.add_argument(
        "--in-memory", action="store_true", help="only print a handshake of our client and server in memory"
    )
    demo.set_defaults(handler=_run_demo)
    serve = commands.add_parser(
        "serve",
        help="run the embedded SSH server in the foreground",
        description="Run the embedded SSH server in the foreground, logging connections, until Ctrl+C.",
    )
    importlib.import_module("sshtui.serve_command").configure_parser(serve)
    serve.set_defaults(handler=lambda args: _run_command_module("serve_command", "serve", args))
    _add_exec_parser(commands)
    importlib.import_module("sshtui.forward_spec").add_parser(commands)
    importlib.import_module("sshtui.hosts_command").add_parser(commands)
    importlib.import_module("sshtui.keys_command").add_parser(commands)
    importlib.import_module("sshtui.known_hosts_command").add_parser(commands)
    return parser


EXEC_EPILOG = """\
-o takes ssh_config(5) names, case-insensitively, as Option=Value or "Option Value": KexAlgorithms,
Ciphers, MACs, HostKeyAlgorithms, PubkeyAcceptedAlgorithms (lists accept OpenSSH's +, - and ^
forms), StrictHostKeyChecking, UserKnownHostsFile, RekeyLimit, ServerAliveInterval,
ServerAliveCountMax, ConnectTimeout, IdentitiesOnly, IdentityFile, BatchMode, User, Port.

Passwords, passphrases and host key questions are asked on the terminal (/dev/tty). Set
SSHTUI_ASKPASS to a program to ask instead: it gets the prompt as its argument and prints the
answer (like OpenSSH's SSH_ASKPASS with SSH_ASKPASS_REQUIRE=force). BatchMode=yes never asks.

Exit status: the remote command's, or 255 when the connection or authentication fails or the
command was killed by a signal.
"""


def _add_exec_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "exec",
        usage="%(prog)s [options] DEST [--] COMMAND...",
        help="run a command on a remote host, like 'ssh DEST COMMAND'",
        description="Run COMMAND on DEST, streaming stdin, stdout and stderr as 'ssh DEST COMMAND' does.",
        epilog=EXEC_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("-p", dest="port", metavar="PORT", help="port to connect to (default 22)")
    run.add_argument("-l", dest="login_name", metavar="USER", help="user to log in as")
    run.add_argument(
        "-i", dest="identity_file", metavar="IDENTITY", action="append",
        help="private key file to authenticate with (repeatable)",
    )
    run.add_argument(
        "-o", dest="option", metavar="OPTION=VALUE", action="append",
        help="an ssh_config option, e.g. -o StrictHostKeyChecking=accept-new (repeatable)",
    )
    run.add_argument(
        "-F", dest="config_file", metavar="CONFIG",
        help="ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config ('none': no file)",
    )
    tty = run.add_mutually_exclusive_group()
    tty.add_argument("-t", dest="tty", action="store_const", const=True, help="request a pseudo-terminal")
    tty.add_argument("-T", dest="tty", action="store_const", const=False, help="no pseudo-terminal (default)")
    run.add_argument(
        "--stats-json", metavar="FILE",
        help="write the final connection statistics (algorithms, rekeys, bytes, windows, timeline) as JSON",
    )
    importlib.import_module("sshtui.forward_spec").add_forward_options(run)  # -L -R -D -J
    run.add_argument(
        "destination", metavar="DEST", help="[user@]host[:port], [user@][ipv6]:port or a saved host name"
    )
    run.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER, help="the remote command")
    run.set_defaults(handler=_run_exec)


def _load_command_module(name: str) -> ModuleType | None:
    """Import ``sshtui.<name>``; None when this build does not ship it (but not when it is broken)."""
    module_name = f"sshtui.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A missing dependency *inside* the module is a real error and must not look like "not shipped".
        if exc.name == module_name:
            return None
        raise


def _run_demo(args: argparse.Namespace) -> int:
    module = _load_command_module("demo")
    if module is None:
        _print_error("the demo is not available in this build")
        return EXIT_FAILURE
    demo_main: Callable[[argparse.Namespace], int] = module.main
    return demo_main(args)


def _run_command_module(name: str, command: str, args: argparse.Namespace) -> int:
    module = _load_command_module(name)
    if module is None:
        _print_error(f"the {command} command is not available in this build")
        return EXIT_FAILURE
    command_main: Callable[[argparse.Namespace], int] = module.main
    return command_main(args)


def _run_exec(args: argparse.Namespace) -> int:
    module = _load_command_module("exec_command")
    if module is None:
        _print_error("the exec command is not available in this build")
        return EXIT_FAILURE
    exec_main: Callable[[argparse.Namespace], int] = module.main
    return exec_main(args)


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # "sshtui" and "sshtui HOST" open the app (sshtui/ui/launch.py imports no UI toolkit).
    words = sys.argv[1:] if argv is None else argv
    app = importlib.import_module("sshtui.ui.launch").app_runner(parser, words)
    if app is not None:
        return int(app())
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    try:
        return handler(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except SSHError as exc:
        _print_error(_one_line(exc.message) or type(exc).__name__)
        return EXIT_CONNECTION
    except OSError as exc:
        _print_error(_one_line(str(exc)) or type(exc).__name__)
        return EXIT_CONNECTION
    except Exception as exc:
        if args.debug:
            raise
        detail = _one_line(str(exc))
        _print_error(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
