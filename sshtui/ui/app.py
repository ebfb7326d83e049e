"""The Textual application: composes the hosts and sessions screens and routes top-level messages.

Connections run through ``SessionDriver`` (``sshtui.ui.driver``), whose questions this app answers
with dialogs (it is the driver's ``Prompts``). Themes are Textual ``Theme``s read from
``themes/*.toml`` (shipped) and ``<config>/themes/*.toml`` (the user's); ``<config>/config.toml``
may name the theme (``theme = "..."``) and remap bindings by id (``[keymap]``, e.g.
``"hosts.add" = "insert"``). A failed connection is a notification, never the end of the app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme

from sshtui.net.trust import HostKeyTrustError, UnknownHostQuestion
from sshtui.store.hosts import HostsError, HostStore
from sshtui.store.paths import config_dir, hosts_file
from sshtui.store.ssh_config import SYSTEM_CONFIG_FILE, SshConfigError, load_ssh_config
from sshtui.ui.driver import Connection, ConnectionUpdated, ConnState, HostKeyChoice, SessionDriver
from sshtui.ui.models import ConnectTarget
from sshtui.ui.screens.dialogs import (
    HostKeyRefusedScreen,
    KeyboardInteractiveDialog,
    SecretDialog,
    UnknownHostKeyDialog,
)
from sshtui.ui.screens.hosts import HostsScreen, quick_target
from sshtui.ui.screens.session import SessionScreen

SHIPPED_THEMES = Path(__file__).resolve().parents[2] / "themes"
DEFAULT_THEME = "sshtui-dark"
THEME_FIELDS = frozenset(f.name for f in dataclasses.fields(Theme))


class ThemeFileError(Exception):
    pass


def read_theme(path: Path) -> Theme:
    """One theme file: ``Theme``'s fields at the top level, ``[variables]`` for CSS variables."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThemeFileError(f"{path}: {exc}") from None
    unknown = sorted(set(table) - THEME_FIELDS)
    if unknown:
        raise ThemeFileError(f"{path}: unknown theme field(s) {', '.join(unknown)}")
    if not isinstance(table.get("name"), str) or not isinstance(table.get("primary"), str):
        raise ThemeFileError(f"{path}: a theme needs a name and a primary colour")
    try:
        return Theme(**table)
    except (TypeError, ValueError) as exc:
        raise ThemeFileError(f"{path}: {exc}") from None


def load_themes(directories: Iterable[Path]) -> tuple[list[Theme], list[str]]:
    themes: list[Theme] = []
    problems: list[str] = []
    for directory in directories:
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
            try:
                themes.append(read_theme(path))
            except ThemeFileError as exc:
                problems.append(str(exc))
    return themes, problems


class SshtuiApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "sshtui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        *,
        connect_to: str | None = None,
        hosts_path: Path | None = None,
        home: Path | None = None,
        system_config_file: Path | None = SYSTEM_CONFIG_FILE,
        theme_dirs: Sequence[Path] | None = None,
    ) -> None:
        super().__init__()
        self.connect_to = connect_to
        self.hosts_path = hosts_path
        self.home = home if home is not None else Path.home()
        self.system_config_file = system_config_file
        default_dirs = [SHIPPED_THEMES, config_dir() / "themes"]
        self.theme_dirs = list(theme_dirs) if theme_dirs is not None else default_dirs
        self.driver = SessionDriver(
            self.post_message, self, self._run_connect, home=self.home, system_config_file=system_config_file
        )
        self._states: dict[int, ConnState] = {}
        self.hosts_screen: HostsScreen | None = None
        self.session_screen = SessionScreen(self.driver)

    # -- start-up

    async def on_mount(self) -> None:
        settings = self._read_config()
        themes, problems = load_themes(self.theme_dirs)
        for theme in themes:
            self.register_theme(theme)
        wanted = settings.get("theme") if isinstance(settings.get("theme"), str) else DEFAULT_THEME
        self.theme = wanted if wanted in self.available_themes else "textual-dark"
        keymap = settings.get("keymap")
        if isinstance(keymap, dict):
            self.set_keymap({str(k): str(v) for k, v in keymap.items()})
        for problem in problems:
            self.notify(problem, title="Theme skipped", severity="warning", markup=False)
        store, writable = self._load_store()
        self.hosts_screen = HostsScreen(store, self._ssh_config_aliases(), writable=writable)
        self.install_screen(self.session_screen, "session")
        await self.push_screen(self.hosts_screen)  # composed and listed before connecting to a name
        if self.connect_to:
            self.connect_name(self.connect_to)

    def _read_config(self) -> dict[str, Any]:
        path = config_dir() / "config.toml"
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.notify(f"{path}: {exc}", title="Configuration skipped", severity="warning", markup=False)
            return {}

    def _load_store(self) -> tuple[HostStore, bool]:
        path = self.hosts_path or hosts_file()
        try:
            store = HostStore.load(path)
        except HostsError as exc:
            self.notify(exc.message, title="Saved hosts not loaded", severity="error", markup=False,
                        timeout=15)
            return HostStore(path), False
        for warning in store.warnings:
            self.notify(warning, severity="warning", markup=False)
        return store, True

    def _ssh_config_aliases(self) -> list[str]:
        try:
            return load_ssh_config(self.home, system_file=self.system_config_file).host_names()
        except SshConfigError as exc:
            self.notify(exc.message, title="ssh_config not read", severity="warning", markup=False)
            return []

    # -- connecting

    def _run_connect(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.run_worker(coroutine, group="connect", exit_on_error=False)

    def connect_name(self, name: str) -> None:
        """``sshtui NAME``: a saved host or ssh_config alias by name, else a ``[user@]host[:port]``."""
        screen = self.hosts_screen
        entry = next((e for e in screen.entries if e.name == name), None) if screen else None
        if entry is not None:
            self.connect_target(entry.key, entry.target)
            return
        target = quick_target(name)
        if target is None:
            self.notify(f"not a saved host nor [user@]host[:port]: {name}", severity="error", markup=False)
            return
        self.connect_quick(target)

    def connect_quick(self, target: ConnectTarget) -> None:
        if self.hosts_screen is not None:
            self.hosts_screen.remember_quick(target)
        self.connect_target(f"quick:{target.label}", target)

    def latest_connection(self, key: str) -> Connection | None:
        found = [c for c in self.driver.connections.values() if c.key == key]
        return found[-1] if found else None

    def connect_target(self, key: str, target: ConnectTarget, *, reuse: bool = False) -> None:
        """Enter on a host: reconnect it if it failed or dropped, another shell if it is up, else connect."""
        conn = self.latest_connection(key)
        if conn is not None and conn.state is ConnState.CONNECTING:
            self.notify(f"{target.label} is already connecting", markup=False)
            return
        if conn is not None and conn.state is ConnState.CONNECTED:
            self.run_worker(self._another_shell(conn), exit_on_error=False)
            return
        if conn is not None and (reuse or self.session_screen.panes(conn)):
            self.driver.reconnect(conn)
            return
        self.driver.connect(key, target)

    async def _another_shell(self, conn: Connection) -> None:
        await self.show_sessions()
        await self.session_screen.add_shell(conn)

    async def show_sessions(self) -> None:
        if self.screen is not self.session_screen:
            await self.push_screen("session")

    async def on_connection_updated(self, message: ConnectionUpdated) -> None:
        view = message.view
        previous = self._states.get(view.conn_id)
        self._states[view.conn_id] = view.state
        if self.hosts_screen is not None:
            self.hosts_screen.connection_updated(view)
        if self.session_screen.is_mounted:
            self.session_screen.connection_updated(view)
        if view.state is previous:
            return
        conn = self.driver.connections.get(view.conn_id)
        if view.state is ConnState.CONNECTED and conn is not None:
            await self.show_sessions()
            self.session_screen.connection_ready(conn)
        elif view.state is ConnState.FAILED:
            self.notify(f"{view.label}: {view.error}\n(press i on the host for details, r to retry)",
                        title="Connection failed", severity="error", markup=False, timeout=10)
        elif view.state is ConnState.DROPPED:
            self.notify(f"{view.label}: {view.error}\n(press r to reconnect)",
                        title="Connection lost", severity="warning", markup=False, timeout=10)

    async def action_quit(self) -> None:
        await self.driver.close_all()
        self.exit()

    # -- the driver's Prompts

    async def _ask(self, screen: Screen[Any]) -> Any:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if not answer.done():
                answer.set_result(result)

        self.push_screen(screen, done)
        return await answer

    async def unknown_host_key(self, question: UnknownHostQuestion, key_blob: bytes) -> HostKeyChoice:
        choice: HostKeyChoice | None = await self._ask(UnknownHostKeyDialog(question, key_blob))
        return choice or "cancel"

    def host_key_refused(self, error: HostKeyTrustError, key_blob: bytes) -> None:
        self.push_screen(HostKeyRefusedScreen(error, key_blob))

    async def secret(self, title: str, prompt: str, *, echo: bool) -> str | None:
        answer: str | None = await self._ask(SecretDialog(title, prompt, echo=echo))
        return answer

    async def keyboard_interactive(
        self, title: str, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]
    ) -> Sequence[str] | None:
        dialog = KeyboardInteractiveDialog(title, name, instruction, prompts)
        answers: list[str] | None = await self._ask(dialog)
        return answers

    def notice(self, text: str) -> None:
        self.notify(text, markup=False, timeout=8)


def run(connect_to: str | None = None) -> int:
    """Run the app until the user quits; ``connect_to`` is connected at once."""
    SshtuiApp(connect_to=connect_to).run()
    return 0
