"""Regenerate the SVG screenshots in ``screenshots/`` from the real app against our embedded server.

Run from the repository root: ``python scripts/screenshots.py``. Everything happens in a temporary
HOME (saved hosts, known_hosts, keys) and on 127.0.0.1; the user's own files are never read.
Host keys are generated on each run, so fingerprints differ from one run to the next.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (110, 32)
HOSTS = """\
version = 1

[hosts.demo]
hostname = "127.0.0.1"
port = {port}
user = "tester"
tags = ["lab"]
notes = "the embedded sshtui server"

[hosts.web1]
hostname = "web1.example.com"
user = "deploy"
tags = ["prod", "web"]

[hosts.db1]
hostname = "db1.example.com"
port = 5022
tags = ["prod"]
"""


async def until(pilot: Any, condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: timed out waiting for the app")
        await pilot.pause(0.05)


async def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sshtui-shots-") as scratch:
        home = Path(scratch) / "home"
        (home / ".ssh").mkdir(parents=True)
        os.environ.update(HOME=str(home), XDG_CONFIG_HOME=f"{scratch}/config",
                          XDG_DATA_HOME=f"{scratch}/data", XDG_STATE_HOME=f"{scratch}/state")
        os.environ.pop("SSH_AUTH_SOCK", None)

        from sshtui.net.server import ServerOptions, start_server
        from sshtui.net.server_auth import AuthorizedKeys
        from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
        from sshtui.ui.app import SshtuiApp
        from sshtui.ui.screens.dialogs import UnknownHostKeyDialog

        host_key, user_key = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
        key_file = home / ".ssh" / "id_ed25519"
        key_file.write_bytes(user_key.to_openssh())
        key_file.chmod(0o600)
        key_file.with_suffix(".pub").write_text(openssh_public_line(user_key.public_blob) + "\n")
        options = ServerOptions(
            [host_key], port=0, shell="/bin/sh",
            authorized_keys=AuthorizedKeys.parse(openssh_public_line(user_key.public_blob) + "\n"),
        )
        async with await start_server(options) as server:
            hosts = Path(scratch) / "config" / "sshtui" / "hosts.toml"
            hosts.parent.mkdir(parents=True)
            hosts.write_text(HOSTS.format(port=server.port))
            app = SshtuiApp(home=home, system_config_file=None)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause(0.3)
                app.save_screenshot("hosts.svg", str(out))
                assert app.hosts_screen is not None
                app.hosts_screen.highlight("saved:demo")
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, UnknownHostKeyDialog)
                            and app.screen.query("Button"))
                await pilot.pause(0.3)
                app.save_screenshot("unknown-host-key.svg", str(out))
                await pilot.press("s")
                await until(pilot, lambda: any(p.channel for p in app.session_screen.panes()))
                pane = app.session_screen.panes()[0]
                await pilot.pause(0.5)
                await pilot.press(*"echo hello from sshtui; uname -s", "enter")
                await pilot.pause(0.8)
                await pilot.press("ctrl+right_square_bracket", "n")
                await until(pilot, lambda: len([p for p in app.session_screen.panes() if p.channel]) == 2)
                app.session_screen.tabs.active = pane.id or ""
                await pilot.pause(0.5)
                app.save_screenshot("session-tabs.svg", str(out))
                await app.driver.close_all()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
