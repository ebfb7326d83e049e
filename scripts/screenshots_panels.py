"""SVG screenshots of the side panel, handshake timeline, forwards dashboard, trust manager and keys
screen, fed by a real connection: our client against our embedded server on 127.0.0.1.

Usage: python scripts/screenshots_panels.py [OUTPUT_DIR]   (default: screenshots/)

Everything runs in a throwaway directory (HOME included), and the trust and keys screens are given
paths relative to it, so no path of this machine ends up in the pictures.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Horizontal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sshtui.forward_spec import parse_forward  # noqa: E402
from sshtui.net.auth import AuthOptions  # noqa: E402
from sshtui.net.client import ClientOptions, connect  # noqa: E402
from sshtui.net.forward_snapshot import ForwardCounters, ForwardState  # noqa: E402
from sshtui.net.server import ServerOptions, start_server  # noqa: E402
from sshtui.net.server_auth import AuthorizedKeys  # noqa: E402
from sshtui.ssh.config import TransportConfig  # noqa: E402
from sshtui.ssh.connection import ConnectionSnapshot  # noqa: E402
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line  # noqa: E402
from sshtui.store.keys import generate_key  # noqa: E402
from sshtui.ui.screens.keys import KeysScreen  # noqa: E402
from sshtui.ui.screens.trust import TrustScreen  # noqa: E402
from sshtui.ui.widgets.forwards import ForwardsTable  # noqa: E402
from sshtui.ui.widgets.side_panel import Liveness, SidePanel  # noqa: E402
from sshtui.ui.widgets.timeline import HandshakeTimeline  # noqa: E402

PANELS_CSS = ROOT / "sshtui" / "ui" / "panels.tcss"
SIZE = (150, 48)


class PanelsApp(App[None]):
    CSS_PATH = str(PANELS_CSS)

    def __init__(self, snapshot: ConnectionSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield HandshakeTimeline(self.snapshot, tcp_connect_ms=0.4)
            yield SidePanel(self.snapshot, Liveness(0.0031, 0, 15.0))


class ForwardsApp(App[None]):
    CSS_PATH = str(PANELS_CSS)

    def compose(self) -> ComposeResult:
        yield ForwardsTable(id="forwards")


class ScreenApp(App[None]):
    def __init__(self, screen: TrustScreen | KeysScreen) -> None:
        super().__init__()
        self.start = screen

    def on_mount(self) -> None:
        self.push_screen(self.start)


async def shoot(app: App[None], name: str, out: Path, *, ticks: int = 3) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3 * ticks)
        app.save_screenshot(f"{name}.svg", str(out))
    print(out / f"{name}.svg")


async def connection_snapshot(work: Path) -> tuple[ConnectionSnapshot, bytes]:
    host_key, user_key = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
    options = ServerOptions(
        [host_key], port=0, shell="/bin/sh",
        authorized_keys=AuthorizedKeys.parse(openssh_public_line(user_key.public_blob, "demo") + "\n"),
    )
    async with await start_server(options) as server:
        client_options = ClientOptions(
            "127.0.0.1", server.port, "demo", transport=TransportConfig(rekey_bytes=8_000_000),
            auth=AuthOptions(keys=[user_key], identities_only=True), connect_timeout=10,
        )
        async with await connect(client_options) as client:
            await client.run("head -c 3000000 /dev/zero")
            kex_count = client.snapshot().transport.kex_count
            client.request_rekey()
            while client.snapshot().transport.kex_count == kex_count:
                await asyncio.sleep(0.02)
            channel = await client.exec("cat")
            await channel.write(b"x" * 200_000)
            await asyncio.sleep(0.1)
            snapshot = client.snapshot()
            channel.close()
            return snapshot, host_key.public_blob


def forwards_app() -> ForwardsApp:
    app = ForwardsApp()
    web = ForwardCounters(parse_forward("local", "8080:db.internal:5432"))
    socks = ForwardCounters(parse_forward("dynamic", "1080"))
    back = ForwardCounters(parse_forward("remote", "9000:localhost:3000"))
    for forward in (web, socks):
        forward.set_state(ForwardState.LISTENING)
    back.set_state(ForwardState.FAILED, "remote port forwarding failed for listen port 9000")

    async def feed() -> None:
        live = web.started("127.0.0.1:51514")
        for step in range(12):
            live.bytes_sent += 40_000 * (step % 4 + 1)
            live.bytes_received += 150_000 * (step % 3 + 1)
            if step == 5:
                socks.failed_with(None, "connect to example.org:443: Connection refused")
            app.query_one(ForwardsTable).update_forwards([web.snapshot(), socks.snapshot(), back.snapshot()],
                                                         now=float(step))
            await asyncio.sleep(0.03)

    app.call_later(feed)
    return app


async def main(out: Path) -> None:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.update(HOME=str(work), XDG_CONFIG_HOME=str(work / "config"),
                          XDG_DATA_HOME=str(work / "data"), XDG_STATE_HOME=str(work / "state"))
        os.chdir(work)
        (work / ".ssh").mkdir()
        snapshot, host_blob = await connection_snapshot(work)
        await shoot(PanelsApp(snapshot), "panels_session", out)
        await shoot(forwards_app(), "panels_forwards", out, ticks=4)
        other = PrivateKey.generate("ecdsa", 256)
        Path(".ssh/known_hosts").write_text(
            f"server.example.com,192.0.2.10 {openssh_public_line(host_blob)}\n"
            f"|1|AAECAwQFBgcICQoLDA0ODxAREhM=|mKz3pB4b1yKjz0HnY0vR2vCgU5A= {openssh_public_line(host_blob)}\n"
            f"@revoked * {openssh_public_line(other.public_blob)}\n"
        )
        await shoot(ScreenApp(TrustScreen([Path(".ssh/known_hosts")])), "panels_trust", out)
        generate_key(Path(".ssh/id_ed25519"), "ed25519", comment="demo@example")
        generate_key(Path(".ssh/id_ecdsa"), "ecdsa", comment="ci@example", passphrase=b"demo")
        await shoot(ScreenApp(KeysScreen([Path(".ssh")])), "panels_keys", out)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots"))
