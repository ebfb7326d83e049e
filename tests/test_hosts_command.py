"""``sshtui hosts ...`` as a user runs it: through ``sshtui.cli.main`` with the config dir in tmp_path."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sshtui.cli import main
from sshtui.options import ConnectionSettings, resolve_settings

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "xdg" / "sshtui"


def hosts_toml(config_home: Path) -> dict[str, dict[str, object]]:
    document = tomllib.loads((config_home / "hosts.toml").read_text())
    hosts: dict[str, dict[str, object]] = document["hosts"]
    return hosts


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["hosts", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_then_list(config_home: Path, capsys: Capture) -> None:
    code, out, _ = run(
        capsys, "add", "web1", "--hostname", "web1.example.com", "--port", "2222", "--user", "deploy",
        "--tag", "prod", "--jump", "bastion", "--forward", "-L 8080:localhost:80", "--forward", "-D 1080",
    )
    assert code == 0
    assert 'saved host "web1" (deploy@web1.example.com:2222)' in out
    run(capsys, "add", "db", "--hostname", "10.0.0.5", "--tag", "internal")

    code, out, err = run(capsys, "list")

    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DESTINATION", "TAGS", "VIA"]
    assert lines[1].split() == ["web1", "deploy@web1.example.com:2222", "prod", "bastion"]
    assert lines[2].split() == ["db", "10.0.0.5:22", "internal"]
    assert hosts_toml(config_home)["web1"]["forwards"] == ["-L 8080:localhost:80", "-D 1080"]


def test_list_json_and_tag_filter(config_home: Path, capsys: Capture) -> None:
    run(capsys, "add", "a", "--hostname", "a.example", "--tag", "prod", "--tag", "web")
    run(capsys, "add", "b", "--hostname", "b.example", "--tag", "prod")
    run(capsys, "add", "c", "--hostname", "c.example")

    code, out, _ = run(capsys, "list", "--json", "--tag", "prod")
    records = json.loads(out)

    assert code == 0
    assert [r["name"] for r in records] == ["a", "b"]
    assert records[0]["hostname"] == "a.example" and records[0]["port"] == 22
    assert records[0]["user"] is None and records[0]["tags"] == ["prod", "web"]
    assert records[0]["created"].endswith("+00:00")
    both = json.loads(run(capsys, "list", "--json", "--tag", "prod", "--tag", "web")[1])
    assert [r["name"] for r in both] == ["a"]


def test_list_with_no_hosts_says_how_to_add_one(config_home: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "list")
    assert code == 0 and out == ""
    assert "no saved hosts" in err and "sshtui hosts add" in err
    assert json.loads(run(capsys, "list", "--json")[1]) == []


def test_bad_value_is_one_line_naming_the_field(config_home: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "add", "web1", "--hostname", "h.example", "--port", "abc")
    assert code == 1 and out == ""
    assert err == 'sshtui: host "web1": port must be an integer 1-65535, got "abc"\n'
    assert not (config_home / "hosts.toml").exists()

    code, _, err = run(capsys, "add", "web1", "--hostname", "h.example", "--forward", "-L 80")
    assert code == 1 and err.count("\n") == 1 and "forwards" in err and "Traceback" not in err


def test_duplicate_name_is_refused(config_home: Path, capsys: Capture) -> None:
    run(capsys, "add", "web1", "--hostname", "one.example")
    code, _, err = run(capsys, "add", "web1", "--hostname", "two.example")
    assert code == 1 and err == 'sshtui: host "web1" already exists\n'
    assert hosts_toml(config_home)["web1"]["hostname"] == "one.example"


def test_edit_replaces_lists_clears_fields_and_renames(config_home: Path, capsys: Capture) -> None:
    run(capsys, "add", "web1", "--hostname", "h.example", "--user", "root", "--tag", "a", "--color", "red")

    code, _, _ = run(capsys, "edit", "web1", "--port", "2200", "--tag", "b", "--tag", "c", "--clear", "user")
    assert code == 0
    assert run(capsys, "edit", "web1", "--rename", "web-one", "--clear", "color")[0] == 0

    table = hosts_toml(config_home)["web-one"]
    assert (table["port"], table["tags"]) == (2200, ["b", "c"])
    assert "user" not in table and "color" not in table and "web1" not in hosts_toml(config_home)


def test_edit_without_changes_or_unknown_host_fails(config_home: Path, capsys: Capture) -> None:
    run(capsys, "add", "web1", "--hostname", "h.example")
    code, _, err = run(capsys, "edit", "web1")
    assert code == 1 and "nothing to change" in err
    code, _, err = run(capsys, "edit", "nope", "--port", "22")
    assert code == 1 and err == 'sshtui: no saved host named "nope"\n'


def test_remove_keeps_a_backup_and_warns_about_jump_users(
    config_home: Path, capsys: Capture
) -> None:
    run(capsys, "add", "bastion", "--hostname", "gw.example")
    run(capsys, "add", "inner", "--hostname", "10.1.1.1", "--jump", "bastion")

    code, out, err = run(capsys, "remove", "bastion")

    assert code == 0 and 'removed host "bastion"' in out
    assert "still used as a jump host by: inner" in err
    assert list(hosts_toml(config_home)) == ["inner"]
    backup = tomllib.loads((config_home / "hosts.toml.bak").read_text())
    assert "bastion" in backup["hosts"]
    assert run(capsys, "remove", "bastion")[0] == 1


def test_broken_file_is_reported_with_its_line(config_home: Path, capsys: Capture) -> None:
    config_home.mkdir(parents=True)
    (config_home / "hosts.toml").write_text('[hosts.web1]\nhostname = "h"\nport = = 2\n')

    code, out, err = run(capsys, "list")

    assert code == 1 and out == ""
    assert err.startswith("sshtui: ") and "hosts.toml: invalid TOML at line 3" in err
    assert err.count("\n") == 1


def test_identity_file_paths_are_made_absolute(
    config_home: Path, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "id_test").write_text("not checked here")
    code, _, err = run(capsys, "add", "k", "--hostname", "k.example", "-i", "id_test", "-i", "~/.ssh/missing")

    assert code == 0 and "~/.ssh/missing does not exist" in err and "id_test" not in err
    assert hosts_toml(config_home)["k"]["identity_files"] == [str(tmp_path / "id_test"), "~/.ssh/missing"]


def test_missing_identity_file_is_saved_with_a_warning(config_home: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "add", "k", "--hostname", "k.example", "-i", "~/.ssh/none")
    assert code == 0
    assert err == "sshtui: warning: identity file ~/.ssh/none does not exist (saved anyway)\n"


def test_hosts_without_action_is_a_usage_error(config_home: Path, capsys: Capture) -> None:
    assert main(["hosts"]) == 2
    assert "ACTION" in capsys.readouterr().err


def test_import_from_a_config_file_with_dry_run_first(
    config_home: Path, tmp_path: Path, capsys: Capture
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host web1\n    HostName web1.example.com\n    User deploy\n\n"
        "Host web1-again\n    HostName web1.example.com\n    User deploy\n\n"
        "Host *\n    User nobody\n"
    )

    code, out, _ = run(capsys, "import", "-F", str(config), "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        "would add web1 (deploy@web1.example.com:22)",
        'skipped web1-again: same host name, port and user as saved host "web1"',
        f"would add 1 host(s) and skip 1 from {config} (dry run: nothing saved)",
    ]
    assert not (config_home / "hosts.toml").exists()

    code, out, _ = run(capsys, "import", "-F", str(config))
    assert code == 0 and out.splitlines()[-1] == f"added 1 host(s), skipped 1, from {config}"
    assert hosts_toml(config_home)["web1"]["user"] == "deploy"


def test_import_of_a_missing_file_is_one_line(config_home: Path, tmp_path: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "import", "-F", str(tmp_path / "nope"))
    assert code == 1 and out == ""
    assert err.startswith("sshtui: ") and "nope" in err and err.count("\n") == 1


# --- a saved name as DEST for sshtui exec ------------------------------------------------------------


def exec_settings(dest: str, home: Path, **flags: Any) -> ConnectionSettings:
    return resolve_settings(dest, home=home, config_file="none", system_config_file=None, **flags)


def test_saved_host_is_used_as_exec_destination(config_home: Path, tmp_path: Path, capsys: Capture) -> None:
    key = tmp_path / "id_saved"
    key.write_text("a key file")
    run(
        capsys, "add", "web1", "--hostname", "web1.example.com", "--port", "2222", "--user", "deploy",
        "-i", str(key), "--ciphers", "aes256-ctr", "--kex", "curve25519-sha256",
    )

    settings = exec_settings("web1", tmp_path)

    assert (settings.host, settings.port, settings.user) == ("web1.example.com", 2222, "deploy")
    assert settings.identity_files == (key,)
    assert settings.ciphers == ("aes256-ctr",)
    assert settings.kex_algorithms == ("curve25519-sha256",)


def test_command_line_wins_over_the_saved_host(config_home: Path, tmp_path: Path, capsys: Capture) -> None:
    run(capsys, "add", "web1", "--hostname", "web1.example.com", "--port", "2222", "--user", "deploy",
        "--ciphers", "aes256-ctr")

    assert exec_settings("root@web1:2200", tmp_path).user == "root"
    assert exec_settings("root@web1:2200", tmp_path).port == 2200
    flagged = exec_settings("web1", tmp_path, user="admin", port="22", options=["Ciphers=aes128-ctr"])
    assert (flagged.user, flagged.port, flagged.ciphers) == ("admin", 22, ("aes128-ctr",))


def test_unsaved_names_stay_literal(config_home: Path, tmp_path: Path, capsys: Capture) -> None:
    run(capsys, "add", "web1", "--hostname", "web1.example.com")
    settings = exec_settings("web2", tmp_path)
    assert (settings.host, settings.port, settings.user) == ("web2", 22, None)


def test_saved_jump_hosts_are_used_as_proxy_jump(config_home: Path, tmp_path: Path, capsys: Capture) -> None:
    from sshtui.options import effective_jumps

    run(capsys, "add", "inner", "--hostname", "10.1.1.1", "--jump", "bastion", "--jump", "ops@gw:2222")
    settings = exec_settings("inner", tmp_path)
    assert effective_jumps(settings, None) == ["bastion", "ops@gw:2222"]
    # -J on the command line wins, and "none" turns the saved hops off.
    assert effective_jumps(settings, "other") == ["other"]
    assert effective_jumps(settings, "none") == []


def test_exec_with_a_broken_hosts_file_fails_on_one_line(config_home: Path, capsys: Capture) -> None:
    config_home.mkdir(parents=True)
    (config_home / "hosts.toml").write_text("[hosts.web1\n")

    code = main(["exec", "-F", "none", "web1", "true"])

    err = capsys.readouterr().err
    assert code == 255
    assert err.count("\n") == 1 and "hosts.toml: invalid TOML at line 1" in err
