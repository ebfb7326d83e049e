"""When the command line asks for the app: ``sshtui`` (the hosts screen) or ``sshtui HOST`` (and connect).

Imports no UI toolkit, so ``sshtui.cli`` can ask cheaply; Textual is loaded only to run the app.
``HOST`` is a saved host, an ssh_config alias or ``[user@]host[:port]``. Without a terminal on
stdin and stdout, a bare ``sshtui`` keeps printing its usage as before.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

EXIT_USAGE = 2


def subcommand_names(parser: argparse.ArgumentParser) -> set[str]:
    # argparse keeps subcommands on its (undocumented but stable) _SubParsersAction.
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            names.update(action.choices)
    return names


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def app_runner(parser: argparse.ArgumentParser, words: Sequence[str]) -> Callable[[], int] | None:
    """How to run the app for these arguments, or None when they are for a subcommand."""
    if not words:
        return (lambda: run_app(None)) if has_terminal() else None
    if len(words) == 1 and not words[0].startswith("-") and words[0] not in subcommand_names(parser):
        destination = words[0]
        return lambda: run_app(destination)
    return None


def run_app(destination: str | None) -> int:
    if not has_terminal():
        print("sshtui: the app needs a terminal on stdin and stdout (use 'sshtui exec' in scripts)",
              file=sys.stderr)
        return EXIT_USAGE
    from sshtui.ui.app import run

    return run(destination)
