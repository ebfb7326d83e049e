"""The hosts screen: hosts.toml and ssh_config in one list, grouped by tag; type to filter; quick connect;
add, edit, duplicate and delete through a validated form, written to hosts.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from sshtui.ui.app import SshtuiApp
from sshtui.ui.screens.dialogs import ConfirmDialog, HostFormDialog
from sshtui.ui.screens.hosts import HostsScreen
from tests.ui.conftest import make_app, showing, wait_for

pytestmark = pytest.mark.timeout(60)

HOSTS_TOML = """\
version = 1

[hosts.web1]
hostname = "web1.example.com"
port = 2222
user = "deploy"
tags = ["prod", "web"]

[hosts.db1]
hostname = "db1.example.com"
tags = ["prod"]
notes = "primary database"

[hosts.lab]
hostname = "10.0.0.5"
"""

SSH_CONFIG = """\
Host bastion
    HostName gw.example.com
    User admin

Host *.corp !secret
    User someone
"""


@pytest.fixture
def hosts_file(home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "config" / "sshtui" / "hosts.toml"
    path.parent.mkdir(parents=True)
    path.write_text(HOSTS_TOML)
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    return path


def listed(app: SshtuiApp) -> list[str]:
    """The list as shown: group headers as '## tag', hosts by name."""
    screen = app.hosts_screen
    assert screen is not None
    rows = []
    for index in range(screen.host_list.option_count):
        option = screen.host_list.get_option_at_index(index)
        text = str(option.prompt)
        rows.append(f"## {text.strip('─ ')}" if option.disabled else text.split()[0])
    return rows


def saved_hosts(path: Path) -> dict[str, dict[str, object]]:
    hosts: dict[str, dict[str, object]] = tomllib.loads(path.read_text())["hosts"]
    return hosts


async def test_saved_and_ssh_config_hosts_in_one_list_grouped_by_tag(home: Path, hosts_file: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)):
        assert listed(app) == [
            "## prod", "web1", "db1",
            "## web", "web1",
            "## untagged", "lab",
            "## ssh_config", "bastion",  # the wildcard and negated patterns are not hosts
        ]
        assert isinstance(app.screen, HostsScreen)


async def test_typing_filters_and_a_destination_offers_quick_connect(home: Path, hosts_file: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.hosts_screen
        assert screen is not None and screen.host_list.has_focus
        await pilot.press("p", "r", "i", "m")  # "p" is no binding: typing starts the filter
        assert screen.filter_input.value == "prim"
        assert listed(app) == ["## prod", "db1"]  # matched in the notes
        await pilot.press("escape")
        assert screen.filter_input.value == "" and screen.host_list.has_focus
        assert "lab" in listed(app)
        await pilot.press("slash", *"bob@box.example:2200")
        assert listed(app)[0] == "⚡"
        assert "box.example:2200" in str(screen.host_list.get_option_at_index(0).prompt)


async def test_add_form_validates_before_saving(home: Path, hosts_file: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: showing(app, HostFormDialog), what="form")
        form = app.screen
        form.query_one("#field-name", Input).value = "new host"
        form.query_one("#field-hostname", Input).value = "new.example.com"
        await pilot.press("ctrl+s")
        error = str(form.query_one("#form-error", Static).render())
        assert "name" in error and isinstance(app.screen, HostFormDialog)  # still open, nothing saved
        form.query_one("#field-name", Input).value = "web1"
        await pilot.press("ctrl+s")
        assert "already exists" in str(form.query_one("#form-error", Static).render())
        form.query_one("#field-name", Input).value = "new"
        form.query_one("#field-port", Input).value = "99999"
        await pilot.click("#save")
        assert "port" in str(form.query_one("#form-error", Static).render())
        assert "new" not in saved_hosts(hosts_file)
        form.query_one("#field-port", Input).value = "2200"
        form.query_one("#field-tags", Input).value = "lab, test"
        await pilot.pause(0.3)  # a button ignores a second press during its press animation
        await pilot.click("#save")
        await wait_for(pilot, lambda: app.screen is app.hosts_screen, what="form closed")
        assert saved_hosts(hosts_file)["new"] == {
            "hostname": "new.example.com", "port": 2200, "tags": ["lab", "test"],
            **{k: v for k, v in saved_hosts(hosts_file)["new"].items() if k in ("created", "updated")},
        }
        assert "## test" in listed(app) and "new" in listed(app)


async def test_edit_duplicate_and_delete_a_saved_host(home: Path, hosts_file: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.hosts_screen
        assert screen is not None
        screen.highlight("saved:db1")
        await pilot.press("e")
        await wait_for(pilot, lambda: showing(app, HostFormDialog), what="edit form")
        form = app.screen
        assert form.query_one("#field-hostname", Input).value == "db1.example.com"
        form.query_one("#field-port", Input).value = "5432"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen, what="form closed")
        assert saved_hosts(hosts_file)["db1"]["port"] == 5432
        assert saved_hosts(hosts_file)["db1"]["notes"] == "primary database"

        screen.highlight("saved:db1")
        await pilot.press("c")
        await wait_for(pilot, lambda: showing(app, HostFormDialog), what="duplicate form")
        assert app.screen.query_one("#field-name", Input).value == "db1-copy"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen, what="form closed")
        assert saved_hosts(hosts_file)["db1-copy"]["port"] == 5432

        screen.highlight("saved:lab")
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, ConfirmDialog), what="confirmation")
        await pilot.press("escape")  # changed my mind
        assert "lab" in saved_hosts(hosts_file)
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, ConfirmDialog), what="confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: "lab" not in saved_hosts(hosts_file), what="deleted")
        assert "lab" not in listed(app)


async def test_ssh_config_hosts_are_not_edited_in_place(home: Path, hosts_file: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = app.hosts_screen
        assert screen is not None
        screen.highlight("config:bastion")
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is screen
        assert any("ssh_config" in str(n.message) for n in app._notifications)
        before = hosts_file.read_text()
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen and hosts_file.read_text() == before


async def test_a_broken_hosts_file_is_reported_and_never_overwritten(home: Path, hosts_file: Path) -> None:
    hosts_file.write_text("[hosts.x\n")
    app = make_app(home)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        assert any("invalid TOML" in str(n.message) for n in app._notifications)
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is app.hosts_screen  # no form: the file could not be read
        assert hosts_file.read_text() == "[hosts.x\n"


def test_the_command_line_opens_the_app_for_no_command_or_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from sshtui import cli
    from sshtui.ui import launch

    parser = cli.build_parser()
    monkeypatch.setattr(launch, "has_terminal", lambda: True)
    assert launch.app_runner(parser, []) is not None
    assert launch.app_runner(parser, ["web1"]) is not None
    assert launch.app_runner(parser, ["exec", "web1", "true"]) is None  # subcommands keep working
    assert launch.app_runner(parser, ["demo"]) is None
    assert launch.app_runner(parser, ["--version"]) is None
    monkeypatch.setattr(launch, "has_terminal", lambda: False)
    assert launch.app_runner(parser, []) is None  # no terminal: usage, as before
    assert launch.run_app("web1") == 2


async def test_themes_load_from_toml_and_bindings_can_be_remapped_by_id(home: Path, tmp_path: Path) -> None:
    from sshtui.ui.app import SHIPPED_THEMES, load_themes

    themes, problems = load_themes([SHIPPED_THEMES])
    assert problems == []
    by_name = {theme.name: theme for theme in themes}
    assert {"sshtui-dark", "sshtui-light", "sshtui-high-contrast"} <= set(by_name)
    assert by_name["sshtui-dark"].dark and not by_name["sshtui-light"].dark

    config = tmp_path / "config" / "sshtui"
    (config / "themes").mkdir(parents=True)
    (config / "themes" / "broken.toml").write_text('name = "x"\nprimary = "#fff"\nsparkle = true\n')
    (config / "config.toml").write_text('theme = "sshtui-light"\n[keymap]\n"hosts.add" = "insert"\n')
    app = make_app(home, theme_dirs=[SHIPPED_THEMES, config / "themes"])
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        assert app.theme == "sshtui-light"
        assert any("sparkle" in str(n.message) for n in app._notifications)  # reported, not fatal
        await pilot.press("insert")
        await wait_for(pilot, lambda: showing(app, HostFormDialog), what="form opened by the remapped key")


async def test_sshtui_host_opens_the_app_and_connects_to_that_host(home: Path, hosts_file: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hosts_file.write_text(f'[hosts.here]\nhostname = "127.0.0.1"\nport = {port}\n')
    app = make_app(home, connect_to="here")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.latest_connection("saved:here") is not None, what="connect")
        conn = app.latest_connection("saved:here")
        assert conn is not None and conn.target.destination == "127.0.0.1" and conn.target.port == port
        await wait_for(pilot, lambda: conn.error != "", what="refused")
        assert "Connection refused" in conn.error and app.is_running
        await pilot.pause(0.1)
        assert app.hosts_screen is not None
        assert "failed: " in str(app.hosts_screen.host_list.get_option_at_index(1).prompt)  # the host's state


async def test_saved_hosts_jumping_through_each_other_fail_with_the_loop_named(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "config" / "sshtui" / "hosts.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        '[hosts.inner]\nhostname = "127.0.0.1"\nport = 2\njump_hosts = ["outer"]\n'
        '[hosts.outer]\nhostname = "127.0.0.1"\nport = 3\njump_hosts = ["inner"]\n'
    )
    app = make_app(home, connect_to="inner")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.latest_connection("saved:inner") is not None, what="connect")
        conn = app.latest_connection("saved:inner")
        assert conn is not None
        await wait_for(pilot, lambda: conn.error != "", what="refused")
        assert "loop" in conn.error and "inner" in conn.error and "outer" in conn.error
        assert app.is_running
