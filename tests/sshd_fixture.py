"""A real OpenSSH ``sshd`` on 127.0.0.1 for interop tests: the reference peer for RFC 4253/4252/4254.

The server runs in the foreground (``-D``) from a throwaway directory holding its config, host keys,
``authorized_keys`` and log, on a free port of 127.0.0.1 only. Generating an RSA key costs about a
second, so keys are made once per test session by :class:`KeyCache` and copied into each server.
``tests/conftest.py`` turns this module into the ``sshd``, ``sshd_factory``, ``sshd_module`` and
``sshd_module_factory`` fixtures.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"
KEY_TYPES: tuple[str, ...] = ("ed25519", "ecdsa", "rsa")
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 400
PRIVSEP_DIR = Path("/run/sshd")


def sshd_binary() -> Path | None:
    """The sshd to run: an absolute path, because sshd refuses to re-exec itself otherwise."""
    if os.access("/usr/sbin/sshd", os.X_OK):
        return Path("/usr/sbin/sshd")
    found = shutil.which("sshd")
    return Path(found).resolve() if found else None


def ssh_keygen_binary() -> Path | None:
    found = shutil.which("ssh-keygen")
    return Path(found) if found else None


def ssh_client_binary() -> Path | None:
    found = shutil.which("ssh")
    return Path(found) if found else None


def missing_tools_reason() -> str | None:
    """Why a real sshd cannot be started here, or None when it can."""
    missing = [name for name, path in (("sshd", sshd_binary()), ("ssh-keygen", ssh_keygen_binary()))
               if path is None]
    if not missing:
        return None
    return (f"OpenSSH {' and '.join(missing)} not installed (install the openssh-server package; "
            "scripts/test.sh does so when run as root)")


class SshdStartError(RuntimeError):
    """sshd rejected its configuration or never started listening; the message carries its output."""


class KeyCache:
    """OpenSSH key pairs generated once per test session, by key type and role."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._keys: dict[tuple[str, str], Path] = {}

    def host_key(self, key_type: str) -> Path:
        return self._get("host", key_type)

    def client_key(self, key_type: str) -> Path:
        return self._get("client", key_type)

    def client_keys(self) -> dict[str, Path]:
        return {key_type: self.client_key(key_type) for key_type in KEY_TYPES}

    def _get(self, role: str, key_type: str) -> Path:
        if key_type not in KEY_TYPES:
            raise ValueError(f"unsupported key type {key_type!r}; choose from {', '.join(KEY_TYPES)}")
        path = self._keys.get((role, key_type))
        if path is None:
            path = self._directory / f"{role}_{key_type}"
            keygen = ssh_keygen_binary()
            if keygen is None:
                raise SshdStartError("ssh-keygen is not installed")
            _run_checked([str(keygen), "-q", "-N", "", "-t", key_type, "-C", f"sshtui-test-{role}",
                          "-f", str(path)], f"ssh-keygen -t {key_type}")
            self._keys[(role, key_type)] = path
        return path


def _run_checked(argv: Sequence[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise SshdStartError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (sshd start is retried if it was taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _keyword(line: str) -> str:
    words = line.split(None, 1)
    return words[0].lower() if words else ""


def render_config(
    *,
    port: int,
    directory: Path,
    host_keys: Iterable[Path],
    authorized_keys: Path,
    extra_config: Sequence[str] = (),
) -> str:
    """sshd_config text: ``extra_config`` first, since sshd keeps the FIRST value of an option.

    A default is left out when ``extra_config`` sets the same keyword, and any ``Match`` blocks in
    ``extra_config`` go last: everything after a ``Match`` line belongs to that block.
    """
    extra = [line.strip() for line in extra_config if line.strip()]
    match_at = next((i for i, line in enumerate(extra) if _keyword(line) == "match"), len(extra))
    global_extra, match_blocks = extra[:match_at], extra[match_at:]
    overridden = {_keyword(line) for line in global_extra}

    defaults = [
        ("ListenAddress", HOST),
        ("Port", str(port)),
        *(("HostKey", str(path)) for path in host_keys),
        ("PidFile", str(directory / "sshd.pid")),
        ("AuthorizedKeysFile", str(authorized_keys)),
        ("StrictModes", "no"),
        ("UsePAM", "no"),
        ("PermitRootLogin", "yes"),
        ("PasswordAuthentication", "no"),
        ("LogLevel", "DEBUG3"),
        ("Subsystem", "sftp internal-sftp"),
        ("AllowTcpForwarding", "yes"),
        ("GatewayPorts", "no"),
        ("MaxStartups", "100"),
        ("MaxSessions", "100"),
        # Keeps interactive-shell output free of banners that vary between machines.
        ("PrintMotd", "no"),
        ("PrintLastLog", "no"),
    ]
    lines = list(global_extra)
    lines += [f"{key} {value}" for key, value in defaults if key.lower() not in overridden]
    lines += match_blocks
    return "\n".join(lines) + "\n"


@dataclass(eq=False, repr=False)
class SshdServer:
    """One running sshd; ``stop()`` and ``restart()`` keep its port, keys and directory."""

    sshd: Path
    directory: Path
    port: int
    client_keys: dict[str, Path]
    host_key_paths: dict[str, Path]
    extra_config: tuple[str, ...]
    host: str = HOST
    user: str = field(default_factory=getpass.getuser)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<SshdServer {self.user}@{self.host}:{self.port} {state} in {self.directory}>"

    @property
    def client_key(self) -> Path:
        """The ed25519 client private key (its ``.pub`` is in ``authorized_keys``)."""
        return self.client_keys["ed25519"]

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "authorized_keys"

    @property
    def known_hosts_file(self) -> Path:
        """An OpenSSH known_hosts file listing every host key of this server under ``[127.0.0.1]:port``."""
        return self.directory / "known_hosts"

    @property
    def host_public_keys(self) -> dict[str, bytes]:
        """The ``.pub`` line of each host key, by key type (``b"ssh-ed25519 AAAA... comment"``)."""
        return {key_type: Path(f"{path}.pub").read_bytes().strip()
                for key_type, path in self.host_key_paths.items()}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def known_hosts_line(self, key_type: str | None = None) -> str:
        """known_hosts entries for one host key type, or for all of them (one per line) when None."""
        types = list(self.host_key_paths) if key_type is None else [key_type]
        pub = self.host_public_keys
        entries = []
        for name in types:
            algorithm, blob = pub[name].decode("ascii").split()[:2]
            entries.append(f"[{self.host}]:{self.port} {algorithm} {blob}")
        return "\n".join(entries)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        skipped = len(text) - lines
        head = [f"[... {skipped} earlier lines in {self.log_path} ...]"] if skipped > 0 else []
        return "\n".join(head + text[-lines:])

    def write_config(self) -> None:
        self.config_path.write_text(render_config(
            port=self.port,
            directory=self.directory,
            host_keys=self.host_key_paths.values(),
            authorized_keys=self.authorized_keys,
            extra_config=self.extra_config,
        ))
        self.known_hosts_file.write_text(self.known_hosts_line() + "\n")

    def validate(self) -> None:
        """``sshd -t``: fail with sshd's own complaint about the configuration."""
        _ensure_privsep_dir()
        try:
            _run_checked([str(self.sshd), "-t", "-f", str(self.config_path)], "sshd -t")
        except SshdStartError as exc:
            config = self.config_path.read_text()
            raise SshdStartError(f"{exc}\n--- {self.config_path} ---\n{config}") from None

    def start(self) -> None:
        if self.running:
            return
        _ensure_privsep_dir()
        argv = [str(self.sshd), "-D", "-e", "-f", str(self.config_path), "-E", str(self.log_path)]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self._wait_until_listening()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            proc = self._proc
            assert proc is not None
            if proc.poll() is not None:
                self._proc = None
                raise SshdStartError(f"sshd exited with status {proc.returncode} before listening on "
                                     f"{self.host}:{self.port}\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SshdStartError(f"sshd did not accept connections on {self.host}:{self.port} within "
                                     f"{READY_TIMEOUT_S:.0f} s\n{self.log_tail()}")
            time.sleep(0.02)


def _ensure_privsep_dir() -> None:
    # As root sshd insists on its privilege separation directory, which containers often lack.
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)


def start_sshd(
    keys: KeyCache,
    directory: Path,
    extra_config: Sequence[str] = (),
    host_key_types: Sequence[str] = KEY_TYPES,
) -> SshdServer:
    """Prepare ``directory`` and start an sshd from it; raises SshdStartError with sshd's output."""
    sshd = sshd_binary()
    if sshd is None:
        raise SshdStartError(missing_tools_reason() or "sshd is not installed")
    if isinstance(extra_config, str):
        raise TypeError("extra_config is a list of sshd_config lines, not a single string")
    host_key_paths: dict[str, Path] = {}
    for key_type in host_key_types:
        source = keys.host_key(key_type)
        target = directory / f"ssh_host_{key_type}_key"
        shutil.copy2(source, target)
        shutil.copy2(f"{source}.pub", f"{target}.pub")
        host_key_paths[key_type] = target
    client_keys = keys.client_keys()
    authorized = b"".join(Path(f"{path}.pub").read_bytes() for path in client_keys.values())
    (directory / "authorized_keys").write_bytes(authorized)

    for attempt in range(PORT_ATTEMPTS):
        server = SshdServer(
            sshd=sshd,
            directory=directory,
            port=free_port(),
            client_keys=client_keys,
            host_key_paths=host_key_paths,
            extra_config=tuple(extra_config),
        )
        server.write_config()
        server.validate()
        try:
            server.start()
        except SshdStartError as exc:
            port_taken = "Address already in use" in str(exc)
            if not port_taken or attempt == PORT_ATTEMPTS - 1:
                raise
            server.log_path.unlink(missing_ok=True)
            continue
        REGISTRY.started(server)
        return server
    raise AssertionError("unreachable")


class ServerRegistry:
    """Which servers a test used, so a failing test's report can carry their logs."""

    def __init__(self) -> None:
        self._live: list[SshdServer] = []
        self._this_test: list[SshdServer] = []

    def started(self, server: SshdServer) -> None:
        self._live.append(server)
        self._this_test.append(server)

    def begin_test(self) -> None:
        self._live = [server for server in self._live if server.running]
        self._this_test = list(self._live)

    def used_by_current_test(self) -> list[SshdServer]:
        return list(self._this_test)


REGISTRY = ServerRegistry()


class SshdFactory:
    """``factory(extra_config=[...], host_key_types=(...))`` starts a server; ``close()`` stops them all."""

    def __init__(self, keys: KeyCache, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._keys = keys
        self._tmp = tmp_path_factory
        self._servers: list[SshdServer] = []

    def __call__(
        self,
        extra_config: Sequence[str] = (),
        host_key_types: Sequence[str] = KEY_TYPES,
    ) -> SshdServer:
        reason = missing_tools_reason()
        if reason is not None:
            pytest.skip(reason)
        try:
            server = start_sshd(self._keys, self._tmp.mktemp("sshd"), extra_config, host_key_types)
        except SshdStartError as exc:
            failure = str(exc)
        else:
            self._servers.append(server)
            return server
        pytest.fail(failure, pytrace=False)

    def close(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
