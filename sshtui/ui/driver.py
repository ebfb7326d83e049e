"""The bridge between our SSH client and the UI (RFC 4253 §4-§8 phases, RFC 4252, RFC 4254 §6).

The UI never touches client or core objects: it asks the driver to connect, open a shell or close,
and renders ``ConnectionView``s, the immutable pictures the driver posts as ``ConnectionUpdated``
messages. Connection snapshots arrive from the client while the handshake runs, so each phase
(TCP, version, key exchange, host key, authentication, channel) shows as it happens; updates are
coalesced to at most one per ``publish_interval`` (4 Hz by default) except changes of state or
phase, which go out at once (a handful per connection, so none is lost to coalescing). The client
samples its state more often while the handshake runs (``HANDSHAKE_SAMPLE_INTERVAL``), so that a
fast phase is still seen. Host key questions and authentication prompts become awaited dialogs
through the ``Prompts`` the app supplies; passwords and passphrases are looked up in, and stored
to, the secret store as ``sshtui.ui.dialog_prompter`` describes. Connects run in Textual workers
(``runner``) and never raise: a failure becomes the view's ``error`` (one line) and ``detail``
(the whole message).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from textual.message import Message

from sshtui.net.channel import Channel
from sshtui.net.client import SSHClient
from sshtui.net.trust import (
    HostKeyChanged,
    HostKeyRevoked,
    HostKeyTrustError,
    TrustPolicy,
    UnknownHostQuestion,
)
from sshtui.options import ConnectionSettings, effective_jumps, resolve_settings
from sshtui.options_client import build_client_options
from sshtui.options_syntax import OptionError
from sshtui.ssh.connection import ConnectionSnapshot
from sshtui.ssh.errors import SSHError
from sshtui.store.ssh_config import SYSTEM_CONFIG_FILE
from sshtui.ui.dialog_prompter import DialogPrompter, SecretKeeper
from sshtui.ui.models import ConnectTarget

if TYPE_CHECKING:
    from sshtui.net.client import ClientOptions
    from sshtui.store.secrets import SecretStore

HostKeyChoice = Literal["save", "once", "cancel"]
PHASES = ("tcp", "version", "key exchange", "host key", "authentication", "channel", "ready")
DEFAULT_CONNECT_TIMEOUT = 60.0  # covers the handshake including the time a dialog is open
PUBLISH_INTERVAL = 0.25
HANDSHAKE_SAMPLE_INTERVAL = 0.02
TERM = "xterm-256color"


class ConnState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    DROPPED = "dropped"
    CLOSED = "closed"


class Prompts(Protocol):
    """What the driver asks of the user; the app answers with dialogs."""

    async def unknown_host_key(self, question: UnknownHostQuestion, key_blob: bytes) -> HostKeyChoice: ...

    def host_key_refused(self, error: HostKeyTrustError, key_blob: bytes) -> None: ...

    async def secret(self, title: str, prompt: str, *, echo: bool) -> str | None: ...

    async def remembered_secret(
        self, title: str, prompt: str, *, remember_label: str, note: str = ""
    ) -> tuple[str, bool] | None:
        """A password or passphrase, and whether the user ticked ``remember_label``."""
        ...

    async def keyboard_interactive(
        self, title: str, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]
    ) -> Sequence[str] | None: ...

    def notice(self, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """What the UI shows of one connection at one moment."""

    conn_id: int
    key: str  # the host entry it was started from
    label: str
    state: ConnState
    phase: str
    channels: int = 0
    error: str = ""  # one line
    detail: str = ""  # the full message behind ``error``
    attempt: int = 1
    snapshot: ConnectionSnapshot | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``connecting: key exchange``, ``connected``, ``failed: ...``: short, for lists and titles."""
        if self.state is ConnState.CONNECTING:
            return f"connecting: {self.phase}"
        if self.state in (ConnState.FAILED, ConnState.DROPPED) and self.error:
            return f"{self.state.value}: {self.error}"
        return self.state.value


class ConnectionUpdated(Message):
    """A connection changed; ``view`` is how it looks now."""

    def __init__(self, view: ConnectionView) -> None:
        super().__init__()
        self.view = view


class Connection:
    """The driver's record of one SSH connection (one per connect; reconnects reuse it)."""

    def __init__(self, conn_id: int, key: str, target: ConnectTarget) -> None:
        self.conn_id = conn_id
        self.key = key
        self.target = target
        self.client: SSHClient | None = None
        self.channels: list[Channel] = []
        self.state = ConnState.CONNECTING
        self.phase = PHASES[0]
        self.error = ""
        self.detail = ""
        self.attempt = 0
        self.snapshot: ConnectionSnapshot | None = None
        self.closing = False
        self.last_post = float("-inf")
        self.pending: asyncio.TimerHandle | None = None

    def view(self) -> ConnectionView:
        return ConnectionView(
            self.conn_id, self.key, self.target.label, self.state, self.phase, len(self.channels),
            self.error, self.detail, self.attempt, self.snapshot,
        )


class _AcceptedOnce(Exception):
    """The user accepted an unknown host key for this connection only."""


def _tell_auth_the_context(options: ClientOptions, prompter: DialogPrompter) -> None:
    """Let authentication say which key or account each secret is for, and whether it worked."""
    options.auth.secret_prompter = prompter
    options.auth.destination = (options.host, options.port)


def phase_of(snapshot: ConnectionSnapshot) -> str:
    """The handshake phase a snapshot shows (``PHASES``), up to authentication."""
    transport = snapshot.transport
    if snapshot.authenticated:
        return "channel"
    if transport.phase == "version exchange":
        return "version"
    if transport.kex_count == 0 and transport.phase != "established":
        return "key exchange"
    return "authentication" if transport.phase != "closed" else "key exchange"


def one_line(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 160 else first[:157] + "..."


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, SSHError):
        return exc.message or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


class SessionDriver:
    """Connections and their shells, for the UI. See the module docstring."""

    def __init__(
        self,
        post: Callable[[Message], object],
        prompts: Prompts,
        runner: Callable[[Coroutine[Any, Any, None]], object],
        *,
        home: Path | None = None,
        system_config_file: Path | None = SYSTEM_CONFIG_FILE,
        publish_interval: float = PUBLISH_INTERVAL,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        secrets: SecretStore | None = None,
    ) -> None:
        self._post = post
        self.prompts = prompts
        self._runner = runner
        self.home = home
        self.system_config_file = system_config_file
        self.publish_interval = publish_interval
        self.connect_timeout = connect_timeout
        self.connections: dict[int, Connection] = {}
        self._next_id = 1
        self._secrets = secrets

    @property
    def secrets(self) -> SecretStore:
        """Where remembered passwords and passphrases are kept (the OS keyring, or memory)."""
        if self._secrets is None:
            from sshtui.store.secrets import SecretStore  # loads keyring: only once it is needed

            self._secrets = SecretStore()
        return self._secrets

    # -- publishing

    def _publish(self, conn: Connection, *, now: bool = False) -> None:
        """Post the connection's view: at once for a change of state, else at most once per interval."""
        clock = time.monotonic()
        wait = conn.last_post + self.publish_interval - clock
        if now or wait <= 0:
            if conn.pending is not None:
                conn.pending.cancel()
                conn.pending = None
            conn.last_post = clock
            self._post(ConnectionUpdated(conn.view()))
        elif conn.pending is None:
            conn.pending = asyncio.get_running_loop().call_later(wait, self._publish_pending, conn)

    def _publish_pending(self, conn: Connection) -> None:
        conn.pending = None
        self._publish(conn)

    def _set(self, conn: Connection, *, phase: str | None = None, state: ConnState | None = None) -> None:
        changed = state is not None and state is not conn.state
        if state is not None:
            conn.state = state
        if phase is not None and PHASES.index(phase) > PHASES.index(conn.phase):
            conn.phase = phase  # phases only move forward, whatever order snapshots come in
            changed = True
        self._publish(conn, now=changed)

    def _on_snapshot(self, conn: Connection, client: SSHClient | None, snapshot: ConnectionSnapshot) -> None:
        if conn.client is not client and conn.client is not None:
            return  # a late snapshot of an earlier attempt
        conn.snapshot = snapshot
        self._set(conn, phase=phase_of(snapshot) if conn.state is ConnState.CONNECTING else None)

    # -- connecting

    def connect(self, key: str, target: ConnectTarget) -> Connection:
        """Start connecting in a worker; progress and the outcome arrive as ``ConnectionUpdated``."""
        conn = Connection(self._next_id, key, target)
        self._next_id += 1
        self.connections[conn.conn_id] = conn
        self._runner(self.establish(conn))
        return conn

    def reconnect(self, conn: Connection) -> bool:
        """Connect again after a failure or a drop; False while it is connecting or connected."""
        if conn.state in (ConnState.CONNECTING, ConnState.CONNECTED):
            return False
        self._runner(self.establish(conn))
        return True

    async def establish(self, conn: Connection) -> None:
        conn.attempt += 1
        conn.client, conn.snapshot, conn.closing = None, None, False
        conn.error = conn.detail = ""
        conn.phase, conn.state = PHASES[0], ConnState.CONNECTING
        self._publish(conn, now=True)
        try:
            client = await self._connect(conn)
        except asyncio.CancelledError:
            self._fail(conn, "connect cancelled")
            raise
        except (SSHError, OSError, OptionError) as exc:
            self._fail(conn, describe_error(exc))
            return
        except Exception as exc:  # never a traceback in the UI, whatever went wrong
            self._fail(conn, f"{type(exc).__name__}: {describe_error(exc)}")
            return
        if conn.closing:  # closed by the user while connecting
            await client.close()
            self._set(conn, state=ConnState.CLOSED)
            return
        conn.client = client
        client.closed.add_done_callback(lambda _: self._on_closed(conn, client))
        self._set(conn, phase="channel", state=ConnState.CONNECTED)

    def _fail(self, conn: Connection, message: str) -> None:
        conn.error, conn.detail = one_line(message), message
        self._set(conn, state=ConnState.FAILED)

    async def _connect(self, conn: Connection) -> SSHClient:
        from sshtui.forward_command import jump_options
        from sshtui.net.jump import connect_through

        target = conn.target
        settings = self._settings(target)
        interactive = not settings.batch_mode
        keeper = SecretKeeper(self.secrets, self.prompts, target.label) if interactive else None
        prompter = DialogPrompter(
            self.prompts, target.label, lambda: self._set(conn, phase="authentication"),
            batch_mode=not interactive, keeper=keeper, home=self.home,
        )
        options = build_client_options(settings, prompter, notices=io.StringIO())
        _tell_auth_the_context(options, prompter)
        options.verify_host_key = self._verifier(conn, settings, interactive)
        options.connect_timeout = settings.connect_timeout or self.connect_timeout
        # The saved host's hops, each after the jump hosts it is reached through; a loop is an error.
        chain = effective_jumps(settings, ",".join(target.jump_hosts)) if target.jump_hosts else []
        hops = jump_options(settings, chain, prompter)
        for hop in hops:
            hop.verify_host_key = self._verifier(conn, settings, interactive)
            _tell_auth_the_context(hop, prompter)
        holder: list[SSHClient] = []

        def on_snapshot(snapshot: ConnectionSnapshot) -> None:
            self._on_snapshot(conn, holder[0] if holder else None, snapshot)

        options.on_snapshot = on_snapshot
        options.snapshot_interval = HANDSHAKE_SAMPLE_INTERVAL
        client = await connect_through(hops, options)
        holder.append(client)
        client.options.snapshot_interval = self.publish_interval  # read by the client on every round
        return client

    def _settings(self, target: ConnectTarget) -> ConnectionSettings:
        warnings = io.StringIO()
        with contextlib.redirect_stderr(warnings):  # resolve_settings prints config warnings there
            settings = resolve_settings(
                target.destination,
                port=None if target.port is None else str(target.port),
                user=target.user,
                options=target.options,
                home=self.home,
                system_config_file=self.system_config_file,
            )
        for line in warnings.getvalue().splitlines():
            self.prompts.notice(line.removeprefix("sshtui: "))
        return settings

    def _verifier(
        self, conn: Connection, settings: ConnectionSettings, interactive: bool
    ) -> Callable[[str, int, str, bytes], Coroutine[Any, Any, object]]:
        async def verify(host: str, port: int, algorithm: str, key_blob: bytes) -> object:
            self._set(conn, phase="host key")

            async def ask(question: UnknownHostQuestion) -> bool:
                choice = await self.prompts.unknown_host_key(question, key_blob)
                if choice == "once":
                    raise _AcceptedOnce
                return choice == "save"

            policy = TrustPolicy(
                settings.user_known_hosts_files,
                strict=settings.strict_host_key_checking,
                ask=ask if interactive else None,
            )
            try:
                outcome = await policy.verify(host, port, algorithm, key_blob)
            except _AcceptedOnce:
                self.prompts.notice(f"Accepted the host key of {host} for this connection only.")
                self._set(conn, phase="authentication")
                return None
            except (HostKeyChanged, HostKeyRevoked) as exc:
                self.prompts.host_key_refused(exc, key_blob)
                raise
            if outcome.notice:
                self.prompts.notice(outcome.notice)
            self._set(conn, phase="authentication")  # what follows an accepted key
            return outcome

        return verify

    # -- shells and closing

    async def open_shell(self, conn: Connection, size: tuple[int, int]) -> Channel:
        """A new shell channel on the connection (pty ``xterm-256color``, ``size`` = (cols, rows))."""
        client = conn.client
        if client is None or conn.state is not ConnState.CONNECTED:
            raise SSHError(f"{conn.target.label} is not connected")
        cols, rows = max(size[0], 1), max(size[1], 1)
        channel = await client.shell(term=TERM, size=(cols, rows))
        conn.channels.append(channel)
        conn.phase = "ready"
        self._publish(conn, now=True)
        return channel

    async def release(self, conn: Connection, channel: Channel) -> None:
        """Close a shell's channel; the connection closes with its last channel."""
        channel.close()
        if channel in conn.channels:
            conn.channels.remove(channel)
        self._publish(conn, now=True)
        if not conn.channels and conn.state is ConnState.CONNECTED:
            await self.close(conn)

    def forget_channel(self, conn: Connection, channel: Channel) -> None:
        """The peer closed a channel (the shell exited): stop counting it."""
        if channel in conn.channels:
            conn.channels.remove(channel)
            self._publish(conn, now=True)

    async def close(self, conn: Connection) -> None:
        conn.closing = True
        client = conn.client
        if client is not None:
            await client.close()
        conn.channels.clear()
        if conn.state is not ConnState.FAILED:
            self._set(conn, state=ConnState.CLOSED)

    async def close_all(self) -> None:
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await self.close(conn)

    def _on_closed(self, conn: Connection, client: SSHClient) -> None:
        if conn.client is not client:
            return
        conn.channels.clear()
        if conn.closing:
            self._set(conn, state=ConnState.CLOSED)
            return
        message = describe_error(client.error) if client.error is not None else "connection closed"
        conn.error, conn.detail = one_line(message), message
        self._set(conn, state=ConnState.DROPPED)
