"""Packaging: a wheel (a non-editable install) carries every module, the stylesheets and the shipped
themes, and the app's theme loader finds the themes through the installed package ``sshtui.themes``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_THEME_FILES = {"sshtui-dark.toml", "sshtui-high-contrast.toml", "sshtui-light.toml"}


def source_packages() -> set[str]:
    """Every directory of the source tree that is a package, by its import name."""
    inits = (REPO_ROOT / "sshtui").rglob("__init__.py")
    return {".".join(p.parent.relative_to(REPO_ROOT).parts) for p in inits} | {"sshtui.themes"}


def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert set(config["packages"]) == source_packages()
    assert config["package-dir"]["sshtui.themes"] == "themes"
    assert {p.name for p in (REPO_ROOT / "themes").glob("*.toml")} == SHIPPED_THEME_FILES


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the sources (the build leaves build/ and *.egg-info
    behind, which must not land in the working tree)."""
    missing = [name for name in ("setuptools", "wheel") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"cannot build a wheel offline: {', '.join(missing)} not installed in this environment")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    caches = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("sshtui", "themes"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=caches)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert build.returncode == 0, build.stderr
    (built,) = out.glob("sshtui-*.whl")
    return built


def test_wheel_carries_themes_stylesheets_and_every_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"sshtui/themes/{name}" for name in SHIPPED_THEME_FILES} <= names
    assert {"sshtui/ui/app.tcss", "sshtui/ui/panels.tcss"} <= names
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "sshtui").rglob("*.py")}
    assert modules - names == set()


def test_installed_wheel_loads_the_themes_from_the_package(wheel: Path, tmp_path: Path) -> None:
    """The wheel unpacked on its own (a pure-Python wheel's layout is the installed one) and put
    first on the path: the app's loader must read the three themes from there, not the source tree."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "from sshtui.ui.app import SHIPPED_THEMES, load_themes\n"
        "themes, problems = load_themes([SHIPPED_THEMES])\n"
        "print(SHIPPED_THEMES)\n"
        "print(' '.join(sorted(t.name for t in themes)))\n"
        "print(len(problems))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    directory, names, problems = result.stdout.splitlines()
    assert Path(directory) == site / "sshtui" / "themes"
    assert names.split() == ["sshtui-dark", "sshtui-high-contrast", "sshtui-light"]
    assert problems == "0"


def test_the_running_install_finds_the_themes_through_the_package() -> None:
    from importlib import resources

    from sshtui.ui.app import SHIPPED_THEMES, load_themes

    assert Path(str(resources.files("sshtui.themes"))) == SHIPPED_THEMES
    themes, problems = load_themes([SHIPPED_THEMES])
    assert sorted(t.name for t in themes) == ["sshtui-dark", "sshtui-high-contrast", "sshtui-light"]
    assert problems == []
