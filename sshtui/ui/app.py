"""The Textual application: composes the hosts and sessions screens and routes top-level messages.

Connections run through ``SessionDriver`` (``sshtui.ui.driver``), whose questions this app answers
with dialogs (it is the driver's ``Prompts``). Themes are Textual ``Theme``s read from
``themes/*.toml`` (shipped) and ``<config>/themes/*.toml`` (the user's); ``<config>/config.toml``
may name the theme (``theme = "..."``) and remap bindings by id (``[keymap]``, e.g.
``"hosts.add" = "insert"``). A failed connection is a notification, never the end of the app.

Port forwards of every connection live in one ``ForwardManager`` (the forwards dashboard shows
them); a saved host's ``forwards`` start each time it connects. The trust manager, the keys screen,
the forwards dashboard and every screen action are also in the command palette (ctrl+p).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import tomllib
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Sequence
from functools import partial
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.theme import Theme

from sshtui.forward_spec import ForwardSpecError
from sshtui.net.trust import HostKeyTrustError, UnknownHostQuestion
from sshtui.store.hosts import HostsError, HostStore
from sshtui.store.paths import config_dir, hosts_file
from sshtui.store.ssh_config import SYSTEM_CONFIG_FILE, SshConfigError, load_ssh_config
from sshtui.ui.driver import Connection, ConnectionUpdated, ConnState, HostKeyChoice, SessionDriver
from sshtui.ui.forward_manager import ForwardManager, parse_spec_text
from sshtui.ui.models import ConnectTarget
from sshtui.ui.screens.dialogs import (
    HostKeyRefusedScreen,
    KeyboardInteractiveDialog,
    SecretDialog,
    UnknownHostKeyDialog,
)
from sshtui.ui.screens.hosts import HostsScreen, quick_target
from sshtui.ui.screens.live import ForwardsScreen, TimelineScreen
from sshtui.ui.screens.secret_dialogs import RememberSecretDialog
from sshtui.ui.screens.session import SessionScreen
from sshtui.ui.terminal import EMULATORS


def shipped_themes_dir() -> Path:
    """The shipped themes, installed as the package ``sshtui.themes`` (the top-level ``themes/``)."""
    try:
        return Path(str(resources.files("sshtui.themes")))
    except ModuleNotFoundError:  # run from a source tree that was never installed
        return Path(__file__).resolve().parents[2] / "themes"


SHIPPED_THEMES = shipped_themes_dir()
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


# (title, help, action on the app)
PALETTE_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("Hosts", "the list of saved hosts and ssh_config aliases", "show_hosts"),
    ("Sessions", "the shell tabs", "sessions"),
    ("Trust manager", "known_hosts entries: search, remove, check live", "trust"),
    ("Keys", "your SSH keys: generate, passphrase, copy the public key", "keys"),
    ("Forwards dashboard", "every port forward of every connection", "forwards"),
    ("Toggle side panel", "kex, algorithms, rekey limits, windows, keepalive", "session('toggle_panel')"),
    ("Handshake timeline", "the focused connection's handshake; export diagnostics", "session('timeline')"),
    ("Toggle broadcast", "type into every broadcasting tab at once", "session('toggle_broadcast')"),
    ("New shell", "another shell on the focused tab's connection", "session('new_shell')"),
    ("Close tab", "close the focused shell", "session('close_tab')"),
    ("Reconnect", "reconnect the focused tab's connection", "session('reconnect')"),
    ("Quit", "close every connection and forward, then leave", "quit"),
)


class SshtuiCommands(Provider):
    """Every action of the app's screens in the command palette."""

    def _actions(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, SshtuiApp)
        return [(title, help_text, partial(app.run_action, action))
                for title, help_text, action in PALETTE_ACTIONS]

    async def discover(self) -> Hits:
        for title, help_text, run in self._actions():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> AsyncGenerator[Hit, None]:
        matcher = self.matcher(query)
        for title, help_text, run in self._actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)


class SshtuiApp(App[None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = ["app.tcss", "panels.tcss"]
    TITLE = "sshtui"
    COMMANDS = App.COMMANDS | {SshtuiCommands}
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
        show_panel: bool = False,
        open_forwards: Sequence[str] = (),
        start_target: ConnectTarget | None = None,
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
        self.session_screen = SessionScreen(self.driver, show_panel=show_panel)
        self.forwards = self.session_screen.forwards = ForwardManager(self._forward_problem)
        self.open_forwards = tuple(open_forwards)  # started on the first connection (``sshtui demo``)
        self.start_target = start_target

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
        self._choose_emulator(settings.get("terminal"))
        for problem in problems:
            self.notify(problem, title="Theme skipped", severity="warning", markup=False)
        store, writable = self._load_store()
        self.hosts_screen = HostsScreen(store, self._ssh_config_aliases(), writable=writable)
        self.install_screen(self.session_screen, "session")
        await self.push_screen(self.hosts_screen)  # composed and listed before connecting to a name
        if self.connect_to:
            self.connect_name(self.connect_to)
        elif self.start_target is not None:
            self.connect_quick(self.start_target)

    def _choose_emulator(self, terminal: object) -> None:
        wanted = terminal.get("emulator") if isinstance(terminal, dict) else None
        if wanted is None:
            return
        emulator = EMULATORS.get(str(wanted))
        if emulator is None:
            known = ", ".join(sorted(EMULATORS))
            self.notify(f"[terminal] emulator = {wanted!r} is not one of: {known}; using the default",
                        title="Configuration", severity="warning", markup=False)
            return
        self.session_screen.emulator = emulator

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
        conn = self.driver.connections.get(view.conn_id)
        screen = self.screen
        if isinstance(screen, TimelineScreen) and conn is not None:
            screen.refresh_from(conn)
        elif isinstance(screen, ForwardsScreen):
            screen.refresh_forwards()
        if view.state is previous:
            return
        if conn is not None and self.forwards.of(conn):
            await self.forwards.connection_changed(conn)
        if view.state is ConnState.CONNECTED and conn is not None:
            if conn.attempt == 1 and not self.forwards.of(conn):
                self.run_worker(self._start_saved_forwards(conn), exit_on_error=False)
            await self.show_sessions()
            self.session_screen.connection_ready(conn)
        elif view.state is ConnState.FAILED:
            self.notify(f"{view.label}: {view.error}\n(press i on the host for details, r to retry)",
                        title="Connection failed", severity="error", markup=False, timeout=10)
        elif view.state is ConnState.DROPPED:
            self.notify(f"{view.label}: {view.error}\n(press r to reconnect)",
                        title="Connection lost", severity="warning", markup=False, timeout=10)

    async def action_quit(self) -> None:
        await self.forwards.close_all()
        await self.driver.close_all()
        self.exit()

    # -- forwards

    def _forward_problem(self, text: str) -> None:
        self.notify(text, title="Port forward", severity="error", markup=False, timeout=10)

    def saved_forwards(self, conn: Connection) -> tuple[str, ...]:
        entry = next((e for e in self.hosts_screen.entries if e.key == conn.key), None) \
            if self.hosts_screen else None
        saved = entry.host.forwards if entry is not None and entry.host is not None else ()
        first = conn.conn_id == min(self.driver.connections)
        return tuple(saved) + (self.open_forwards if first else ())

    async def _start_saved_forwards(self, conn: Connection) -> None:
        for text in self.saved_forwards(conn):
            try:
                await self.forwards.add(conn, parse_spec_text(text))
            except ForwardSpecError as exc:
                self._forward_problem(str(exc))

    # -- screens for the palette and the hosts screen

    async def action_show_hosts(self) -> None:
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        if self.screen is self.session_screen:
            await self.pop_screen()

    async def action_sessions(self) -> None:
        await self.show_sessions()

    def action_trust(self) -> None:
        from sshtui.ui.screens.trust import TrustScreen, default_files

        self.push_screen(TrustScreen(default_files(self.home), fetch_host_key=self._fetch_host_key))

    async def _fetch_host_key(self, host: str, port: int) -> bytes:
        from sshtui.known_hosts_command import fetch_host_key
        from sshtui.options import resolve_settings

        settings = resolve_settings(host, port=str(port), home=self.home,
                                    system_config_file=self.system_config_file)
        _, blob = await fetch_host_key(settings)
        return blob

    def action_keys(self) -> None:
        from sshtui.ui.screens.keys import KeysScreen

        self.push_screen(KeysScreen(home=self.home))

    def action_forwards(self) -> None:
        self.push_screen(ForwardsScreen(self._focused_connection))

    def _focused_connection(self) -> Connection | None:
        pane = self.session_screen.active_pane() if self.session_screen.is_mounted else None
        return pane.conn if pane is not None else None

    async def action_session(self, action: str) -> None:
        await self.show_sessions()
        await self.session_screen.run_action(action)

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

    async def remembered_secret(
        self, title: str, prompt: str, *, remember_label: str, note: str = ""
    ) -> tuple[str, bool] | None:
        dialog = RememberSecretDialog(title, prompt, remember_label=remember_label, note=note)
        answer: str | None = await self._ask(dialog)
        return None if answer is None else (answer, dialog.remember)

    async def keyboard_interactive(
        self, title: str, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]
    ) -> Sequence[str] | None:
        dialog = KeyboardInteractiveDialog(title, name, instruction, prompts)
        answers: list[str] | None = await self._ask(dialog)
        return answers

    def notice(self, text: str) -> None:
        self.notify(text, markup=False, timeout=8)


def settle_heap() -> None:
    """Move what is alive after start-up (modules, Textual, the stack) out of the collector's sight:
    full collections then scan only what the session allocates, so they no longer pause typing for
    tens of milliseconds. For a process that runs one app, not for test runs that build many."""
    gc.collect()
    gc.freeze()


def run(connect_to: str | None = None) -> int:
    """Run the app until the user quits; ``connect_to`` is connected at once."""
    app = SshtuiApp(connect_to=connect_to)
    settle_heap()
    app.run()
    return 0
