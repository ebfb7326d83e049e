"""Jump hosts are named as ssh(1) names them: a saved host (hosts.toml) first, then an ssh_config
``Host``, else ``[user@]host[:port]`` as written; hops reached through hops of their own come after
them, and a chain leading back to itself is refused with a message naming the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sshtui import cli
from sshtui.net.jump import MAX_JUMP_HOPS, hop_overrides, hop_settings
from sshtui.options import OPTION_FIELDS, ConnectionSettings, effective_jumps, resolve_settings
from sshtui.options_syntax import OPTION_NAMES, OptionError
from sshtui.ssh.config import DEFAULT_CIPHERS
from sshtui.store.hosts import Host, HostStore


def save(*hosts: Host) -> None:
    store = HostStore.load()
    for host in hosts:
        store.add(host)
    store.save()


def key_file(home: Path, name: str) -> Path:
    path = home / ".ssh" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a key file")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def destination(
    home: Path, dest: str = "db.internal", config: Path | None = None, **flags: Any
) -> ConnectionSettings:
    config_file = str(config) if config else "none"
    return resolve_settings(dest, home=home, config_file=config_file, system_config_file=None, **flags)


def test_saved_host_hop_uses_its_address_user_port_keys_and_algorithms(home: Path) -> None:
    bastion_key, dest_key = key_file(home, "bastion_key"), key_file(home, "dest_key")
    save(Host("bastion", "10.0.0.5", 2200, "ops", identity_files=(str(bastion_key),), ciphers="aes256-ctr"))
    known = home / "known"
    options = [f"UserKnownHostsFile={known}", "BatchMode=yes"]
    dest = destination(home, port="2222", identity_files=[str(dest_key)], options=options)
    hop = hop_settings(dest, "bastion")
    assert (hop.host, hop.port, hop.user) == ("10.0.0.5", 2200, "ops")
    assert hop.identity_files == (bastion_key,)
    assert hop.ciphers == ("aes256-ctr",)
    # What the saved host does not say stays as for the destination: trust files, BatchMode.
    assert hop.user_known_hosts_files == (known,) and hop.batch_mode
    assert dest.ciphers == DEFAULT_CIPHERS and dest.identity_files == (dest_key,)


def test_user_and_port_written_in_the_hop_win_over_the_saved_ones(home: Path) -> None:
    save(Host("bastion", "10.0.0.5", port=2200, user="ops"))
    hop = hop_settings(destination(home), "root@bastion:2022")
    assert (hop.host, hop.port, hop.user) == ("10.0.0.5", 2022, "root")


def test_ssh_config_host_is_used_when_no_saved_host_has_the_name(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host gw\n  HostName 10.1.1.1\n  User admin\n  Port 2201\n  IdentityFile ~/.ssh/gw_key\n"
        "  StrictHostKeyChecking accept-new\n"
    )
    gw_key = key_file(home, "gw_key")
    hop = hop_settings(destination(home, config=config), "gw")
    assert (hop.host, hop.port, hop.user) == ("10.1.1.1", 2201, "admin")
    assert hop.identity_files == (gw_key,) and hop.strict_host_key_checking == "accept-new"


def test_saved_hosts_come_before_ssh_config(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host gw\n  HostName 10.1.1.1\n  User admin\n")
    save(Host("gw", "10.2.2.2", user="saved"))
    hop = hop_settings(destination(home, config=config), "gw")
    assert (hop.host, hop.user) == ("10.2.2.2", "saved")


def test_unknown_hop_is_taken_as_written_with_the_destinations_keys(home: Path) -> None:
    dest_key = key_file(home, "dest_key")
    dest = destination(home, port="2222", identity_files=[str(dest_key)])
    hop = hop_settings(dest, "ops@203.0.113.9")
    assert (hop.host, hop.port, hop.user) == ("203.0.113.9", 22, "ops")  # not the destination's port
    assert hop.identity_files == (dest_key,)


def test_without_a_destination_the_users_own_files_are_read(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(home))
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text("Host gw\n  HostName 10.1.1.1\n  Port 2201\n")
    save(Host("bastion", "10.0.0.5", user="ops"))
    assert {k: hop_overrides("gw")[k] for k in ("host", "port")} == {"host": "10.1.1.1", "port": 2201}
    assert {k: hop_overrides("bastion")[k] for k in ("host", "user")} == {"host": "10.0.0.5", "user": "ops"}


def test_a_missing_key_of_a_saved_hop_is_named(home: Path) -> None:
    save(Host("bastion", "10.0.0.5", identity_files=(str(home / "gone"),)))
    with pytest.raises(OptionError) as failed:
        hop_settings(destination(home), "bastion")
    assert "jump host 'bastion'" in str(failed.value) and str(home / "gone") in str(failed.value)


def test_hops_reached_through_hops_come_after_them(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host edge\n  HostName 10.9.9.9\n  ProxyJump outer@203.0.113.1\n")
    save(Host("bastion", "10.0.0.5", jump_hosts=("edge",)))
    save(Host("inner", "10.0.0.6", jump_hosts=("bastion",)))
    dest = destination(home, "db", config=config, options=["ProxyJump=inner,gw2"])
    assert effective_jumps(dest, None) == ["outer@203.0.113.1", "edge", "bastion", "inner", "gw2"]
    assert effective_jumps(dest, "none") == []


def test_a_saved_host_naming_itself_as_jump_is_refused(home: Path) -> None:
    save(Host("bastion", "10.0.0.5", jump_hosts=("admin@bastion",)))
    with pytest.raises(OptionError) as failed:
        effective_jumps(destination(home), "bastion")
    assert "jump host 'admin@bastion' is to be reached through itself" in str(failed.value)


def test_a_loop_through_saved_hosts_is_named(home: Path) -> None:
    save(Host("a", "10.0.0.1", jump_hosts=("b",)), Host("b", "10.0.0.2", jump_hosts=("c",)),
         Host("c", "10.0.0.3", jump_hosts=("a",)))
    with pytest.raises(OptionError) as failed:
        effective_jumps(destination(home, "a"), None)
    assert "jump hosts form a loop: b -> c -> a -> b" in str(failed.value)


def test_a_host_pattern_giving_the_jump_host_its_own_proxyjump_is_explained(
    home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n  ProxyJump bastion\n")
    with pytest.raises(OptionError) as failed:
        effective_jumps(destination(home, config=config), None)
    message = str(failed.value)
    assert "'bastion' is to be reached through itself" in message and "Host pattern" in message
    config.write_text("Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n")
    assert effective_jumps(destination(home, config=config), None) == ["bastion"]


def test_the_same_host_twice_in_a_list_is_not_a_loop(home: Path) -> None:
    # Only a hop reached through itself loops; going through one host twice is merely odd.
    assert effective_jumps(destination(home, "127.0.0.1"), "127.0.0.1:2222,127.0.0.1:2223") == [
        "127.0.0.1:2222", "127.0.0.1:2223"
    ]


def test_endless_nesting_stops_at_the_limit(home: Path) -> None:
    hosts = [Host(f"h{i}", f"10.0.1.{i}", jump_hosts=(f"h{i + 1}",)) for i in range(MAX_JUMP_HOPS + 2)]
    save(*hosts)
    with pytest.raises(OptionError) as failed:
        effective_jumps(destination(home), "h0")
    assert f"more than {MAX_JUMP_HOPS} jump hosts" in str(failed.value)


def test_every_option_names_the_fields_a_jump_host_takes_from_it() -> None:
    assert set(OPTION_FIELDS) == set(OPTION_NAMES.values())
    fields = set(ConnectionSettings.__dataclass_fields__)
    assert all(set(names) <= fields for names in OPTION_FIELDS.values())


def test_exec_reports_a_jump_loop_on_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(Host("bastion", "10.0.0.5", jump_hosts=("bastion",)))
    code = cli.main(["exec", "-F", "none", "-J", "bastion", "db.internal", "true"])
    err = capsys.readouterr().err
    assert code == 255 and err.count("\n") == 1
    assert "reached through itself" in err and "Traceback" not in err
