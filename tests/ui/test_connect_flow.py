"""The connect flow in the app against real servers: OpenSSH's sshd (tests/sshd_fixture.py) and our
embedded server. Host key dialogs, the refusing changed-key screen, password prompts, failures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
from sshtui.ui.driver import PHASES, ConnectionUpdated, ConnectionView, ConnState
from sshtui.ui.screens.dialogs import HostKeyRefusedScreen, SecretDialog, UnknownHostKeyDialog
from tests.sshd_fixture import SshdServer
from tests.ui.conftest import PASSWORD, Embedded, make_app, showing, wait_for

pytestmark = pytest.mark.timeout(90)


def use_client_key(home: Path, sshd: SshdServer) -> None:
    for suffix in ("", ".pub"):
        shutil.copy(f"{sshd.client_key}{suffix}", home / ".ssh" / f"id_ed25519{suffix}")


def keygen_fingerprints(sshd: SshdServer) -> dict[str, tuple[str, str, str]]:
    """ssh-keygen's view of each sshd host key, by SHA256 fingerprint: (key type, .pub line, randomart)."""
    found = {}
    for path in sshd.host_key_paths.values():
        pub = Path(f"{path}.pub")
        output = subprocess.run(["ssh-keygen", "-lv", "-E", "sha256", "-f", str(pub)],
                                capture_output=True, text=True, check=True).stdout
        first, *art = output.strip().splitlines()
        found[first.split()[1]] = (pub.read_text().split()[0], pub.read_text(), "\n".join(art))
    return found


def static_text(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


def views_of(app_messages: list[object]) -> list[ConnectionView]:
    return [m.view for m in app_messages if isinstance(m, ConnectionUpdated)]


async def test_unknown_host_key_accept_and_save_writes_known_hosts(home: Path, sshd: SshdServer) -> None:
    use_client_key(home, sshd)
    seen: list[object] = []
    app = make_app(home)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        app.connect_name(f"{sshd.user}@127.0.0.1:{sshd.port}")
        await wait_for(pilot, lambda: showing(app, UnknownHostKeyDialog), what="host key dialog")
        dialog = app.screen
        fingerprints = keygen_fingerprints(sshd)
        shown = static_text(dialog, "#hostkey-fingerprint")
        [fingerprint] = [f for f in fingerprints if f in shown]
        key_type, pub_line, randomart = fingerprints[fingerprint]
        assert key_type in static_text(dialog, "#hostkey-type")
        assert f"127.0.0.1 port {sshd.port}" in static_text(dialog, "#hostkey-host")
        assert static_text(dialog, "#hostkey-randomart") == randomart
        await pilot.press("s")
        await wait_for(pilot, lambda: app.session_screen.is_mounted and app.session_screen.panes()
                       and app.session_screen.panes()[0].channel is not None, what="first shell")
        known = (home / ".ssh" / "known_hosts").read_text()
        assert f"[127.0.0.1]:{sshd.port} {key_type} {pub_line.split()[1]}" in known

        phases = [v.phase for v in views_of(seen) if v.state is ConnState.CONNECTING]
        # Each phase appears as it happens, in protocol order.
        assert phases[0] == "tcp"
        assert "host key" in phases and "authentication" in phases
        assert [PHASES.index(p) for p in phases] == sorted(PHASES.index(p) for p in phases)
        assert views_of(seen)[-1].state is ConnState.CONNECTED


async def test_cancel_on_unknown_host_key_refuses_and_the_app_stays(home: Path, embedded: Embedded) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(f"alice@127.0.0.1:{embedded.port}")
        await wait_for(pilot, lambda: showing(app, UnknownHostKeyDialog), what="host key dialog")
        await pilot.press("escape")
        conn = app.latest_connection(f"quick:alice@127.0.0.1:{embedded.port}")
        assert conn is not None
        await wait_for(pilot, lambda: conn.state is ConnState.FAILED, what="failure")
        assert "not accepted" in conn.detail and "Host key verification failed" in conn.detail
        assert not (home / ".ssh" / "known_hosts").exists()
        assert app.is_running and app.screen is app.hosts_screen
        # The hosts list shows the state; the detail is one key away.
        assert app.hosts_screen is not None
        await pilot.press("i")
        assert "Host key verification failed" in static_text(app.screen, "#detail-text")


async def test_accept_once_then_password_prompt_logs_in(home: Path, embedded: Embedded) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        app.connect_name(f"alice@127.0.0.1:{embedded.port}")
        await wait_for(pilot, lambda: showing(app, UnknownHostKeyDialog), what="host key dialog")
        await pilot.press("o")
        await wait_for(pilot, lambda: showing(app, SecretDialog), what="password prompt")
        answer = app.screen.query_one("#answer", Input)
        assert answer.password  # echo off for a password
        assert "alice's password" in str(app.screen.query_one("#prompt-text").render())
        await pilot.press(*"wrong", "enter")
        await wait_for(pilot, lambda: showing(app, SecretDialog)
                       and app.screen.query_one("#answer", Input).value == "", what="second prompt")
        await pilot.press(*PASSWORD, "enter")
        await wait_for(pilot, lambda: app.session_screen.is_mounted and app.session_screen.panes()
                       and app.session_screen.panes()[0].channel is not None, what="shell")
        # Accepted once: nothing written.
        assert not (home / ".ssh" / "known_hosts").exists()


async def test_changed_host_key_is_refused_before_authentication(home: Path, sshd: SshdServer) -> None:
    use_client_key(home, sshd)
    # A different key of every type the server has: whichever is negotiated, it has "changed".
    kinds = ("ed25519", "ecdsa", "rsa")
    impostor = [PrivateKey.generate(kind, 2048 if kind == "rsa" else None) for kind in kinds]
    lines = [f"[127.0.0.1]:{sshd.port} {openssh_public_line(key.public_blob)}" for key in impostor]
    known = home / ".ssh" / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    app = make_app(home)
    async with app.run_test(size=(120, 45)) as pilot:
        app.connect_name(f"{sshd.user}@127.0.0.1:{sshd.port}")
        await wait_for(pilot, lambda: showing(app, HostKeyRefusedScreen), what="refusing screen")
        screen = app.screen
        assert isinstance(screen, HostKeyRefusedScreen) and screen.has_class("danger")
        shown_new = static_text(screen, "#refused-new")
        assert any(f in shown_new for f in keygen_fingerprints(sshd))
        olds = [str(w.render()) for w in screen.query(".refused-old").results(Static)]
        assert len(olds) == 1 and f"{known}:" in olds[0]
        conn = app.latest_connection(f"quick:{sshd.user}@127.0.0.1:{sshd.port}")
        assert conn is not None
        await wait_for(pilot, lambda: conn.state is ConnState.FAILED, what="refusal")
        assert "CHANGED" in conn.detail
        assert "userauth-request" not in sshd.log_text()  # not one authentication request was sent

        # Removing the old key needs the host name typed out.
        remove = screen.query_one("#remove-old")
        assert remove.disabled
        typed = screen.query_one("#confirm-host", Input)
        # The dialog focuses its Close button once mounted; take the focus only after that.
        await wait_for(pilot, lambda: screen.query_one("#close").has_focus, what="dialog focused")
        typed.focus()
        await pilot.pause()
        await pilot.press(*"127.0.0.2")
        await wait_for(pilot, lambda: typed.value == "127.0.0.2", what="host name typed")
        assert remove.disabled
        await pilot.press("backspace", "1")
        await wait_for(pilot, lambda: not remove.disabled, what="remove enabled by the right host name")
        await pilot.click("#remove-old")
        await wait_for(pilot, lambda: app.screen is app.hosts_screen, what="screen closed")
        assert f"[127.0.0.1]:{sshd.port}" not in known.read_text()
        # Reconnecting (one key) now meets the key as unknown.
        await pilot.press("r")
        await wait_for(pilot, lambda: showing(app, UnknownHostKeyDialog), what="unknown key dialog")


async def test_failed_connection_is_a_notification_and_reconnect_is_one_key(home: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(home)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.connect_name(f"nobody@127.0.0.1:{port}")
        key = f"quick:nobody@127.0.0.1:{port}"
        await wait_for(pilot, lambda: (c := app.latest_connection(key)) is not None
                       and c.state is ConnState.FAILED, what="failure")
        conn = app.latest_connection(key)
        assert conn is not None and "Connection refused" in conn.error
        await pilot.pause(0.1)
        assert any("Connection refused" in str(n.message) for n in app._notifications)
        assert app.is_running
        attempts = conn.attempt
        app.hosts_screen.filter_input.value = f"nobody@127.0.0.1:{port}"  # type: ignore[union-attr]
        await pilot.pause()
        app.hosts_screen.host_list.focus()  # type: ignore[union-attr]
        await pilot.press("r")
        await wait_for(pilot, lambda: conn.attempt == attempts + 1 and conn.state is ConnState.FAILED,
                       what="second attempt")
