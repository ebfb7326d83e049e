"""Layering rules: the sans-IO core never pulls in I/O or UI code, and the CLI stays light.

``sshtui.ssh`` must import only the standard library and ``cryptography``; a stray ``import asyncio``
there would tie the protocol to one event loop and break the benchmarks' driver-independence.
Each check runs in a fresh interpreter so that modules loaded by pytest itself do not hide anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sshtui
from sshtui import cli
from sshtui.ssh.errors import HostKeyError

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_DIR = REPO_ROOT / "sshtui" / "ssh"

FORBIDDEN_IN_CORE = (
    "asyncio", "socket", "selectors", "ssl", "textual", "rich", "sshtui.net", "sshtui.ui", "sshtui.store",
)

# Runs in a child interpreter: forgets any forbidden module the interpreter preloaded, then imports the
# given modules one at a time while a meta-path hook notes, for each forbidden import, which of them
# was being imported and the innermost sshtui source line that asked for it.
PROBE = textwrap.dedent("""
    import importlib, json, os, sys, traceback

    SEP = os.sep

    forbidden, modules = json.loads(sys.argv[1])

    def is_forbidden(name):
        return any(name == f or name.startswith(f + ".") for f in forbidden)

    def forbidden_root(name):
        return next(f for f in forbidden if name == f or name.startswith(f + "."))

    for name in [n for n in sys.modules if is_forbidden(n)]:
        del sys.modules[name]

    current = None
    found = []
    broken = []

    class Recorder:
        def find_spec(self, name, path=None, target=None):
            if is_forbidden(name) and not any(hit["module"] == forbidden_root(name) for hit in found):
                frames = [f for f in traceback.extract_stack() if SEP + "sshtui" + SEP in f.filename]
                where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
                found.append({"module": forbidden_root(name), "while_importing": current, "at": where})
            return None

    sys.meta_path.insert(0, Recorder())
    for current in modules:
        try:
            importlib.import_module(current)
        except Exception as exc:
            broken.append({"module": current, "error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps({"found": found, "broken": broken, "loaded": sorted(sys.modules)}))
""")


def module_names_under(package_dir: Path, package: str) -> list[str]:
    """Every importable module of a package, found on disk so that nothing is imported to list them."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        if all(part.isidentifier() for part in parts):
            names.append(".".join((package, *parts)))
    return names


def probe_imports(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, Any]:
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([list(forbidden), modules])],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT, env=env,
    )
    assert result.returncode == 0, f"the import probe crashed:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_core_modules_are_found_on_disk() -> None:
    modules = module_names_under(CORE_DIR, "sshtui.ssh")
    assert modules[0] == "sshtui.ssh"
    assert "sshtui.ssh.wire" in modules
    assert "sshtui.ssh.messages.transport" in modules


def test_sans_io_core_imports_no_io_or_ui_modules() -> None:
    modules = module_names_under(CORE_DIR, "sshtui.ssh")
    report = probe_imports(modules, FORBIDDEN_IN_CORE)
    offenders = [
        f"{hit['module']} (pulled in by {hit['while_importing']} at {hit['at']})" for hit in report["found"]
    ]
    assert not offenders, "sshtui.ssh must stay sans-IO, but it imported: " + "; ".join(offenders)
    unchecked = [f"{hit['module']} ({hit['error']})" for hit in report["broken"]]
    assert not unchecked, "these core modules fail to import, so their imports went unchecked: " + "; ".join(
        unchecked
    )


def test_probe_names_the_module_that_pulls_in_a_forbidden_import() -> None:
    # Pretend the errors module were off limits: the probe must name the culprit and the line.
    report = probe_imports(["sshtui.ssh.messages.transport"], ("sshtui.ssh.errors",))
    assert report["broken"] == []
    [hit] = report["found"]
    assert hit["module"] == "sshtui.ssh.errors"
    assert hit["while_importing"] == "sshtui.ssh.messages.transport"
    assert str(CORE_DIR) in hit["at"]


def test_importing_the_cli_does_not_load_the_ui_toolkit() -> None:
    report = probe_imports(["sshtui.cli"], ("textual", "rich"))
    assert report["broken"] == []
    assert report["found"] == []
    assert "sshtui.cli" in report["loaded"]


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"sshtui {sshtui.__version__}\n"


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: sshtui" in capsys.readouterr().err


class _FakeDemo:
    def __init__(self, error: BaseException) -> None:
        self._error = error

    def main(self, args: object) -> int:
        raise self._error


def test_ssh_errors_become_one_line_and_exit_255(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failure = HostKeyError("host key signature\ndid not verify")
    monkeypatch.setattr(cli, "_load_command_module", lambda name: _FakeDemo(failure))
    assert cli.main(["demo"]) == 255
    captured = capsys.readouterr()
    assert captured.err == "sshtui: error: host key signature did not verify\n"
    assert "Traceback" not in captured.err


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_load_command_module", lambda name: _FakeDemo(KeyboardInterrupt()))
    assert cli.main(["demo"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_load_command_module", lambda name: _FakeDemo(RuntimeError("boom")))
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err == "sshtui: error: RuntimeError: boom\n"
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["--debug", "demo"])
