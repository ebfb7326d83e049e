"""Where sshtui keeps its files: the XDG Base Directory layout, through platformdirs.

``XDG_CONFIG_HOME`` / ``XDG_DATA_HOME`` / ``XDG_STATE_HOME`` are honoured on every platform, not only
on Linux (where platformdirs already does): command-line users on macOS often keep their dotfiles
under ``~/.config`` and expect tools to follow. As the XDG specification says, a relative value is
ignored. The user-edited configuration (``hosts.toml``) lives apart from machine-written state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

APP_NAME = "sshtui"
HOSTS_FILE_NAME = "hosts.toml"
PRIVATE_DIR_MODE = 0o700


def _xdg_dir(variable: str, fallback: Callable[..., Path]) -> Path:
    value = os.environ.get(variable, "")
    if value and os.path.isabs(value):
        return Path(value) / APP_NAME
    # appauthor=False: no vendor directory level on Windows.
    return fallback(APP_NAME, appauthor=False)


def config_dir() -> Path:
    """User configuration: ``$XDG_CONFIG_HOME/sshtui``, by default ``~/.config/sshtui`` on Linux."""
    return _xdg_dir("XDG_CONFIG_HOME", platformdirs.user_config_path)


def data_dir() -> Path:
    """User data: ``$XDG_DATA_HOME/sshtui``, by default ``~/.local/share/sshtui`` on Linux."""
    return _xdg_dir("XDG_DATA_HOME", platformdirs.user_data_path)


def state_dir() -> Path:
    """Machine-written state (last session, window layout): ``$XDG_STATE_HOME/sshtui``."""
    return _xdg_dir("XDG_STATE_HOME", platformdirs.user_state_path)


def hosts_file() -> Path:
    """The saved-hosts file, ``hosts.toml`` in the configuration directory."""
    return config_dir() / HOSTS_FILE_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing; a directory we create is readable only by us."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path
