"""``sshtui forward DEST [-L ...]... [-R ...]... [-D ...]... [-J ...]``: port forwards (RFC 4254 §7) kept
up until Ctrl+C or SIGTERM, across dropped connections, like ``ssh -N`` with a watchdog.

``ForwardSession`` holds every forward of one command and is shared with ``sshtui exec``, which runs
its ``-L``/``-R``/``-D`` forwards over its single connection. A forward that cannot start is reported
by name and left failed; the others carry on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sshtui.forward_spec import ForwardSpec, ForwardSpecError, forwards_from_args
from sshtui.net.client import ClientOptions, SSHClient
from sshtui.net.forward_local import ForwardError, LocalForward
from sshtui.net.forward_remote import RemoteForwards
from sshtui.net.forward_snapshot import ForwardSnapshot, ForwardState, status_line
from sshtui.net.jump import connect_through, hop_settings
from sshtui.net.reconnect import ClientSource, FixedClient, Reconnector
from sshtui.options import ConnectionSettings, effective_jumps, resolve_settings
from sshtui.options_client import build_client_options
from sshtui.options_syntax import OptionError
from sshtui.prompts import Prompter
from sshtui.ssh.errors import SSHError
from sshtui.ssh.snapshot import to_jsonable
from sshtui.store.atomic import atomic_write

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONNECTION = 255
DEFAULT_CONNECT_TIMEOUT = 30.0
# A vanished server (no FIN, no RST) is noticed only by keepalives; ServerAliveInterval overrides this.
DEFAULT_ALIVE_INTERVAL = 15.0


def error(message: str) -> None:
    print(f"sshtui: {' '.join(message.split())}", file=sys.stderr, flush=True)


class ForwardSession:
    """Every forward of one command. Local listeners take their channels from ``source``;
    remote forwards are requested on each client passed to ``attach``."""

    def __init__(
        self,
        specs: Sequence[ForwardSpec],
        source: ClientSource,
        report: Callable[[str], None] = error,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self._report = report
        self.local = [LocalForward(spec, source) for spec in specs if spec.kind != "remote"]
        self.remote = RemoteForwards([spec for spec in specs if spec.kind == "remote"], report, announce)

    async def start_listeners(self) -> None:
        for forward in self.local:
            try:
                await forward.start()
            except ForwardError as exc:
                self._report(str(exc))

    async def attach(self, client: SSHClient) -> None:
        await self.remote.attach(client)

    def connection_state(self, connected: bool, reason: str = "") -> None:
        for forward in self.local:
            forward.connection_state(connected, reason)
        self.remote.connection_state(connected, reason)

    def snapshots(self) -> list[ForwardSnapshot]:
        """In the order the forwards were given on the command line, -L, then -R, then -D."""
        by_spec = {id(f.spec): f.snapshot() for f in self.local}
        by_spec.update({id(f.spec): f.snapshot() for f in self.remote.forwards})
        return [by_spec[id(spec)] for spec in self.specs]

    @property
    def usable(self) -> bool:
        return any(s.state is not ForwardState.FAILED for s in self.snapshots())

    async def close(self) -> None:
        """Stop listening, cancel the remote listeners and end every forwarded connection."""
        await asyncio.gather(*(forward.close() for forward in self.local), self.remote.close())

    async def finish(self) -> None:
        """As ssh(1) at the end of a command: stop listening, let open connections run to their end."""
        for forward in self.local:
            forward.stop_listening()
        await asyncio.gather(*(forward.wait_idle() for forward in self.local), self.remote.wait_idle())
        await self.close()


# --- connecting, for both commands ----------------------------------------------------------------


def jump_options(
    settings: ConnectionSettings, jumps: Sequence[str], prompter: Prompter
) -> list[ClientOptions]:
    """Client options for each hop: the saved host or ssh_config ``Host`` it names (looked up in the
    files the destination was resolved with), the destination's settings for whatever it leaves unset."""
    return [build_client_options(hop_settings(settings, text), prompter) for text in jumps]


async def start_exec_forwards(client: SSHClient, specs: Sequence[ForwardSpec]) -> ForwardSession | None:
    """``sshtui exec -L/-R/-D``: the forwards live on the command's one connection."""
    if not specs:
        return None
    session = ForwardSession(specs, FixedClient(client), announce=error)  # no status lines to show ports
    await session.start_listeners()
    await session.attach(client)
    return session


# --- sshtui forward --------------------------------------------------------------------------------


@dataclass
class ForwardRequest:
    settings: ConnectionSettings
    specs: list[ForwardSpec]
    jumps: list[str]
    status_interval: float
    json_status: bool
    stats_json: Path | None


def request_from_args(args: argparse.Namespace) -> tuple[ForwardRequest, list[str]]:
    """The request and one message per bad forwarding specification (those are left out)."""
    specs, problems = forwards_from_args(args)
    if not specs and not problems:
        raise OptionError("no forwards given (use -L, -R or -D)")
    settings = resolve_settings(
        args.destination,
        port=args.port,
        user=args.login_name,
        identity_files=args.identity_file or (),
        options=args.option or (),
        config_file=args.config_file,
    )
    jumps = effective_jumps(settings, args.jump_hosts)
    if args.status_interval < 0:
        raise OptionError(f"--status-interval must not be negative, got {args.status_interval:g}")
    stats = Path(args.stats_json) if args.stats_json else None
    return ForwardRequest(settings, specs, jumps, args.status_interval, args.json, stats), problems


def main(args: argparse.Namespace) -> int:
    try:
        request, problems = request_from_args(args)
    except (OptionError, ForwardSpecError) as exc:
        error(str(exc))
        return EXIT_CONNECTION
    for problem in problems:
        error(problem)
    if not request.specs:
        error("no usable forward left")
        return EXIT_FAILURE
    return asyncio.run(run(request))


def _client_options(
    request: ForwardRequest, prompter: Prompter
) -> tuple[ClientOptions, list[ClientOptions]]:
    settings = request.settings
    if settings.connect_timeout is None:
        settings = dataclasses.replace(settings, connect_timeout=DEFAULT_CONNECT_TIMEOUT)
    if "ServerAliveInterval" not in settings.given:
        settings = dataclasses.replace(settings, server_alive_interval=DEFAULT_ALIVE_INTERVAL)
    return build_client_options(settings, prompter), jump_options(settings, request.jumps, prompter)


async def run(request: ForwardRequest) -> int:
    prompter = Prompter.from_environment(batch_mode=request.settings.batch_mode)
    try:
        options, hops = _client_options(request, prompter)
    except (OptionError, SSHError, OSError) as exc:
        error(exc.message if isinstance(exc, SSHError) else str(exc))
        return EXIT_CONNECTION
    reconnector = Reconnector(lambda: connect_through(hops, options))
    session = ForwardSession(request.specs, reconnector)
    reconnector.on_connect.append(session.attach)
    reconnector.on_state.append(session.connection_state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await _serve(request, reconnector, session, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _report_state(connected: bool, reason: str) -> None:
    error("connected; forwards restored" if connected else f"{reason}; reconnecting")


async def _serve(
    request: ForwardRequest, reconnector: Reconnector, session: ForwardSession, stop: asyncio.Event
) -> int:
    starting = asyncio.create_task(reconnector.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        return EXIT_OK
    try:
        starting.result()
    except (SSHError, OSError) as exc:
        stopping.cancel()
        error(exc.message if isinstance(exc, SSHError) else str(exc))
        return EXIT_CONNECTION
    reconnector.on_state.append(_report_state)  # from now on, every change is news
    await session.start_listeners()
    status = _Status(request, reconnector, session)
    status.emit()
    if session.usable:
        code = await _wait_for_end(request, reconnector, status, stopping)
    else:
        error("no forward could be started")
        code = EXIT_FAILURE
    stopping.cancel()
    status.emit(final=True)  # the counters as they stand, before everything is torn down
    await session.close()
    await reconnector.close()
    return code


async def _wait_for_end(
    request: ForwardRequest, reconnector: Reconnector, status: _Status, stopping: asyncio.Task[Any]
) -> int:
    interval = request.status_interval or None
    while True:
        done, _ = await asyncio.wait(
            (stopping, reconnector.failed), timeout=interval, return_when=asyncio.FIRST_COMPLETED
        )
        if stopping in done:
            return EXIT_OK
        if reconnector.failed.done():
            error(f"giving up: {reconnector.failed.result()}")
            return EXIT_CONNECTION
        status.emit()


class _Status:
    """Status lines on stdout and the ``--stats-json`` file, from the same snapshots."""

    def __init__(self, request: ForwardRequest, reconnector: Reconnector, session: ForwardSession) -> None:
        self.request = request
        self.reconnector = reconnector
        self.session = session

    def document(self) -> dict[str, Any]:
        forwards = []
        for snapshot in self.session.snapshots():
            entry = to_jsonable(snapshot)
            entry["state"] = snapshot.state.value
            forwards.append(entry)
        reconnect = self.reconnector.snapshot()
        return {"time": time.time(), "connected": reconnect.connected, "forwards": forwards,
                "reconnect": to_jsonable(reconnect)}

    def emit(self, final: bool = False) -> None:
        document = self.document()
        if self.request.json_status:
            print(json.dumps({**document, "final": final}), flush=True)
        else:
            for snapshot in self.session.snapshots():
                print(status_line(snapshot), flush=True)
        if self.request.stats_json is not None:
            self._write(self.request.stats_json, document)

    def _write(self, path: Path, document: dict[str, Any]) -> None:
        try:
            atomic_write(path, (json.dumps(document, indent=1) + "\n").encode())  # readers never see half
        except OSError as exc:
            error(f"cannot write --stats-json file {path}: {exc.strerror or exc}")
