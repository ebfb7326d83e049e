"""Regenerate the SVG screenshots in ``screenshots/`` from the real app against our embedded server.

Run from the repository root: ``python scripts/screenshots.py [OUTPUT_DIR]``. Pictures: the hosts
screen, the unknown-host-key dialog, a shell with the side panel, the handshake timeline, the
forwards dashboard, a forward's own tab, the trust manager and the changed-host-key screen.
Everything happens in a temporary directory (HOME, saved hosts, known_hosts, keys; paths are given
relative to it so none of this machine's paths end up in the pictures) and on 127.0.0.1; the user's
own files are never read. Host keys are generated on each run, so fingerprints differ from one run
to the next.
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

SIZE = (140, 40)
HOSTS = """\
version = 1

[hosts.demo]
hostname = "127.0.0.1"
port = {port}
user = "tester"
tags = ["lab"]
notes = "the embedded sshtui server"

[hosts.rebuilt]
hostname = "127.0.0.1"
port = {other_port}
user = "tester"
tags = ["lab"]
notes = "reinstalled: its host key changed"

[hosts.web1]
hostname = "web1.example.com"
user = "deploy"
tags = ["prod", "web"]

[hosts.db1]
hostname = "db1.example.com"
port = 5022
tags = ["prod"]
"""
PAGE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"hello through the tunnel\n" * 200


async def until(pilot: Any, condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: timed out waiting for the app")
        await pilot.pause(0.05)


async def serve_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    writer.write(PAGE)
    await writer.drain()
    await reader.read()  # the client says when it is done
    writer.close()


async def fetch(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    writer.write_eof()
    await reader.read()
    writer.close()


async def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sshtui-shots-") as scratch:
        os.chdir(scratch)
        home = Path("home")
        (home / ".ssh").mkdir(parents=True)
        os.environ.update(HOME=str(Path(scratch) / "home"), XDG_CONFIG_HOME=f"{scratch}/config",
                          XDG_DATA_HOME=f"{scratch}/data", XDG_STATE_HOME=f"{scratch}/state")
        os.environ.pop("SSH_AUTH_SOCK", None)

        from sshtui.net.server import ServerOptions, start_server
        from sshtui.net.server_auth import AuthorizedKeys
        from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line
        from sshtui.ui.app import SshtuiApp
        from sshtui.ui.forward_manager import parse_spec_text
        from sshtui.ui.screens.dialogs import HostKeyRefusedScreen, UnknownHostKeyDialog
        from sshtui.ui.screens.forward_pane import ForwardPane
        from sshtui.ui.screens.live import ForwardsScreen, TimelineScreen
        from sshtui.ui.screens.trust import TrustScreen
        from sshtui.ui.widgets.forwards import ForwardsTable

        host_key, user_key = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
        new_host_key = PrivateKey.generate("ed25519")
        key_file = home / ".ssh" / "id_ed25519"
        key_file.write_bytes(user_key.to_openssh())
        key_file.chmod(0o600)
        key_file.with_suffix(".pub").write_text(openssh_public_line(user_key.public_blob) + "\n")
        authorized = AuthorizedKeys.parse(openssh_public_line(user_key.public_blob) + "\n")
        web = await asyncio.start_server(serve_page, "127.0.0.1", 0)
        web_port = web.sockets[0].getsockname()[1]
        async with (
            await start_server(ServerOptions([host_key], port=0, shell="/bin/sh",
                                             authorized_keys=authorized)) as server,
            await start_server(ServerOptions([new_host_key], port=0, shell="/bin/sh",
                                             authorized_keys=authorized)) as rebuilt,
        ):
            # The rebuilt server's old key, as known_hosts remembers it.
            old_line = f"[127.0.0.1]:{rebuilt.port} {openssh_public_line(host_key.public_blob)}\n"
            (home / ".ssh" / "known_hosts").write_text(old_line)
            hosts = Path(scratch) / "config" / "sshtui" / "hosts.toml"
            hosts.parent.mkdir(parents=True)
            hosts.write_text(HOSTS.format(port=server.port, other_port=rebuilt.port))
            app = SshtuiApp(home=home, system_config_file=None, show_panel=True)
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
                await pilot.pause(1.0)
                app.save_screenshot("session-panel.svg", str(out))

                await pilot.press("ctrl+right_square_bracket", "t")
                await until(pilot, lambda: isinstance(app.screen, TimelineScreen))
                await pilot.pause(0.6)
                app.save_screenshot("timeline.svg", str(out))
                await pilot.press("escape")

                for text in (f"-L 0:127.0.0.1:{web_port}", "-D 0"):
                    await app.forwards.add(pane.conn, parse_spec_text(text))
                local = app.forwards.snapshots()[0].listen
                for _ in range(3):
                    await fetch(int(local.rsplit(":", 1)[1]))
                await pilot.press("ctrl+right_square_bracket", "f")
                await until(pilot, lambda: isinstance(app.screen, ForwardsScreen))
                await until(pilot, lambda: app.screen.query_one(ForwardsTable).renders > 1)
                await pilot.pause(0.6)
                app.save_screenshot("forwards.svg", str(out))
                await pilot.press("escape")

                # A forward's tab while a slow client holds one forwarded connection open.
                tab = next(iter(app.session_screen.query(ForwardPane).results(ForwardPane)))
                reader, writer = await asyncio.open_connection("127.0.0.1", int(local.rsplit(":", 1)[1]))
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                await reader.readexactly(4096)
                app.session_screen.tabs.active = tab.id or ""
                app.session_screen.action_toggle_panel()  # the whole width for the tab
                table = tab.connections_table
                await until(pilot, lambda: table.row_count == 1 and table.get_row_at(0)[6])  # windows shown
                await pilot.pause(0.6)
                app.save_screenshot("forward-tab.svg", str(out))
                writer.close()
                app.session_screen.action_toggle_panel()
                app.session_screen.tabs.active = pane.id or ""
                await app.run_action("show_hosts")

                await until(pilot, lambda: app.screen is app.hosts_screen)
                app.push_screen(TrustScreen([home / ".ssh" / "known_hosts"]))
                await until(pilot, lambda: isinstance(app.screen, TrustScreen))
                await pilot.pause(0.4)
                app.save_screenshot("trust.svg", str(out))
                await pilot.press("escape")

                await until(pilot, lambda: app.screen is app.hosts_screen)
                app.hosts_screen.highlight("saved:rebuilt")
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, HostKeyRefusedScreen)
                            and app.screen.query("Button"))
                await pilot.pause(0.4)
                app.save_screenshot("changed-host-key.svg", str(out))
                await app.forwards.close_all()
                await app.driver.close_all()
        web.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "screenshots"
    sys.exit(asyncio.run(main(target)))
