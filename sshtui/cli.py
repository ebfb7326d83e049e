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
        description="Run the built-in demonstration.",
    )
    demo.set_defaults(handler=_run_demo)
    return parser


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


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
