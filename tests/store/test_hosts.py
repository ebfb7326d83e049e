"""Saved hosts (``hosts.toml``): every field survives a save and a load, saving is crash-safe and keeps
a backup, bad files are refused with a message naming the file, host and field."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.store.hosts import Host, HostsError, HostsFileError, HostStore, resolve_dest
from sshtui.store.ssh_config import SshConfig

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)


def clock_at(*times: datetime) -> Callable[[], datetime]:
    moments = iter(times)
    last = [times[0]]

    def now() -> datetime:
        last[0] = next(moments, last[0])
        return last[0]

    return now


def full_host() -> Host:
    return Host(
        name="web-1.prod",
        hostname="web1.example.com",
        port=2222,
        user="deploy",
        identity_files=("~/.ssh/id_ed25519", "/keys/deploy key"),
        jump_hosts=("bastion", "admin@gw.example.com:2200", "[2001:db8::1]:22"),
        forwards=("-L 8080:localhost:80", "-R 9000:127.0.0.1:9000", "-D 1080", "-L [::1]:5432:db:5432"),
        tags=("prod", "web"),
        color="#ff8800",
        notes='Maintenance window: "Sunday"\nCall ops first.\n',
        kex_algorithms="+diffie-hellman-group14-sha256",
        ciphers="aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
        macs="-hmac-sha1*",
        host_key_algorithms="^ssh-ed25519",
        created=T0,
        updated=T1,
        extra={"future_field": {"nested": [1, 2]}},
    )


@pytest.fixture
def hosts_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "sshtui" / "hosts.toml"


def saved(path: Path, *hosts: Host) -> HostStore:
    store = HostStore.load(path, clock=clock_at(T0))
    for host in hosts:
        store.add(host)
    store.save()
    return store


# --- round trip ------------------------------------------------------------------------------------


def test_every_field_survives_save_and_load(hosts_path: Path) -> None:
    original = full_host()
    saved(hosts_path, original, Host(name="db", hostname="10.0.0.5"))

    loaded = HostStore.load(hosts_path)

    assert [h.name for h in loaded] == ["web-1.prod", "db"]
    assert loaded.get("web-1.prod") == original
    assert loaded.get("db") == Host(name="db", hostname="10.0.0.5", created=T0, updated=T0)
    assert loaded.warnings == [f'{hosts_path}: host "web-1.prod": unknown field "future_field" kept as it is']


def test_file_is_plain_toml_another_reader_understands(hosts_path: Path) -> None:
    saved(hosts_path, full_host())

    document = tomllib.loads(hosts_path.read_text())  # independent of our loader

    table = document["hosts"]["web-1.prod"]
    assert document["version"] == 1
    assert table["port"] == 2222
    assert table["forwards"][2] == "-D 1080"
    assert table["created"] == T0
    assert table["future_field"] == {"nested": [1, 2]}
    assert table["color"] == "#ff8800"


def test_hand_written_file_with_unknown_keys_is_kept_on_save(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text(
        'version = 1\ntheme = "dark"\n\n[hosts.box]\nhostname = "box.lan"\nshell = "zsh"\n'
    )
    store = HostStore.load(hosts_path, clock=clock_at(T0))
    store.add(Host(name="other", hostname="other.lan"))
    store.save()

    document = tomllib.loads(hosts_path.read_text())
    assert document["theme"] == "dark"
    assert document["hosts"]["box"]["shell"] == "zsh"
    assert any('unknown top-level key "theme"' in w for w in store.warnings)


@settings(max_examples=60, deadline=None)
@given(notes=st.text(st.characters(codec="utf-8"), max_size=200))
def test_any_notes_text_round_trips(tmp_path_factory: pytest.TempPathFactory, notes: str) -> None:
    path = tmp_path_factory.mktemp("notes") / "hosts.toml"
    saved(path, Host(name="n", hostname="n.example", notes=notes))

    assert HostStore.load(path).require("n").notes == notes


# --- crash safety, backup, permissions --------------------------------------------------------------


def test_crash_before_rename_leaves_the_old_file_intact(
    hosts_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(hosts_path, Host(name="old", hostname="old.example"))
    before = hosts_path.read_bytes()
    store = HostStore.load(hosts_path)
    store.add(Host(name="new", hostname="new.example"))

    real_replace = os.replace

    def crash(src: str, dst: str) -> None:
        if Path(dst).name == "hosts.toml":  # the backup goes through; the new file's rename fails
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(HostsFileError, match="cannot write"):
        store.save()
    monkeypatch.undo()

    assert hosts_path.read_bytes() == before
    assert [h.name for h in HostStore.load(hosts_path)] == ["old"]
    assert sorted(p.name for p in hosts_path.parent.iterdir()) == ["hosts.toml", "hosts.toml.bak"]


def test_previous_version_is_kept_as_bak(hosts_path: Path) -> None:
    saved(hosts_path, Host(name="first", hostname="one.example"))
    first = hosts_path.read_bytes()
    store = HostStore.load(hosts_path)
    store.remove("first")
    store.save()

    backup = hosts_path.with_name("hosts.toml.bak")
    assert backup.read_bytes() == first
    assert [h.name for h in HostStore.load(backup)] == ["first"]
    assert len(HostStore.load(hosts_path)) == 0


def test_files_are_private(hosts_path: Path) -> None:
    saved(hosts_path, Host(name="a", hostname="a.example"))
    os.chmod(hosts_path, 0o644)  # loosened by hand
    store = HostStore.load(hosts_path)
    store.add(Host(name="b", hostname="b.example"))
    store.save()

    assert stat.S_IMODE(hosts_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(hosts_path.with_name("hosts.toml.bak").stat().st_mode) == 0o600
    assert stat.S_IMODE(hosts_path.parent.stat().st_mode) == 0o700


def test_change_on_disk_since_load_is_not_overwritten(hosts_path: Path) -> None:
    saved(hosts_path, Host(name="a", hostname="a.example"))
    store = HostStore.load(hosts_path)
    other = HostStore.load(hosts_path)
    other.add(Host(name="from-elsewhere", hostname="b.example"))
    other.save()

    store.add(Host(name="mine", hostname="c.example"))
    with pytest.raises(HostsFileError, match="changed on disk"):
        store.save()
    assert "from-elsewhere" in HostStore.load(hosts_path)


def test_missing_file_is_an_empty_store(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path)
    assert len(store) == 0
    assert store.get("anything") is None
    assert not hosts_path.exists()


# --- validation on load ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "field", "shown"),
    [
        ('hostname = "h"\nport = "abc"', "port must be an integer 1-65535", '"abc"'),
        ('hostname = "h"\nport = 70000', "port must be an integer 1-65535", "70000"),
        ('port = 22', "hostname is missing", ""),
        ('hostname = "bad host"', "hostname must be a host name", '"bad host"'),
        ('hostname = "-oProxyJump"', "hostname must not start with '-'", ""),
        ('hostname = "h"\ntags = "prod"', "tags must be a list", '"prod"'),
        ('hostname = "h"\nforwards = ["-L 80"]', "forwards has a bad entry", "-L 80"),
        ('hostname = "h"\nforwards = ["8080:db:5432"]', "forwards must be a list", '"8080:db:5432"'),
        ('hostname = "h"\njump_hosts = ["a b"]', "jump_hosts must be a list", '"a b"'),
        ('hostname = "h"\ncolor = "not a color!"', "color must be a color name", ""),
        ('hostname = "h"\nkex_algorithms = "a,,b"', "kex_algorithms must be an OpenSSH algorithm list", ""),
        ('hostname = "h"\ncreated = "yesterday"', "created must be a date and time", '"yesterday"'),
        ('hostname = "h"\nuser = 5', "user must be a user name", "5"),
    ],
)
def test_invalid_field_names_file_host_and_field(
    hosts_path: Path, table: str, field: str, shown: str
) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text(f'[hosts.web1]\n{table}\n')

    with pytest.raises(HostsFileError) as caught:
        HostStore.load(hosts_path)

    message = caught.value.message
    assert message.startswith(f'{hosts_path}: host "web1": {field}')
    assert shown in message


def test_invalid_host_name_is_refused(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text('[hosts."web 1"]\nhostname = "h"\n')
    with pytest.raises(HostsFileError, match=r'host "web 1": name must be letters, digits'):
        HostStore.load(hosts_path)


def test_toml_syntax_error_names_line_and_column(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text('version = 1\n\n[hosts.web1]\nhostname = web1.example.com\n')

    with pytest.raises(HostsFileError) as caught:
        HostStore.load(hosts_path)

    assert caught.value.message.startswith(f"{hosts_path}: invalid TOML at line 4, column ")


def test_host_defined_twice_is_a_toml_error_with_its_line(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text('[hosts.a]\nhostname = "x"\n\n[hosts.a]\nhostname = "y"\n')
    with pytest.raises(HostsFileError, match="line 4"):
        HostStore.load(hosts_path)


def test_hosts_that_is_not_a_table_is_refused(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text('hosts = ["a", "b"]\n')
    with pytest.raises(HostsFileError, match='"hosts" must be a table'):
        HostStore.load(hosts_path)


# --- the store's operations ---------------------------------------------------------------------------


def test_add_stamps_times_and_refuses_a_taken_name(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path, clock=clock_at(T0))
    host = store.add(Host(name="a", hostname="a.example"))
    assert (host.created, host.updated) == (T0, T0)
    with pytest.raises(HostsError, match='host "a" already exists'):
        store.add(Host(name="a", hostname="other.example"))


def test_update_changes_fields_keeps_created_and_position(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path, clock=clock_at(T0, T0, T1))
    store.add(Host(name="a", hostname="a.example"))
    store.add(Host(name="b", hostname="b.example"))

    host = store.update("a", name="alpha", port=2200, tags=("x",))

    assert [h.name for h in store] == ["alpha", "b"]
    assert (host.port, host.tags, host.created, host.updated) == (2200, ("x",), T0, T1)
    assert store.get("a") is None


def test_update_validates_and_names_problems(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path)
    store.add(Host(name="a", hostname="a.example"))
    store.add(Host(name="b", hostname="b.example"))
    with pytest.raises(HostsError, match='host "a": port must be an integer'):
        store.update("a", port=0)
    with pytest.raises(HostsError, match='host "b" already exists'):
        store.update("a", name="b")
    with pytest.raises(HostsError, match="cannot change password"):
        store.update("a", password="x")
    with pytest.raises(HostsError, match='no saved host named "zzz"'):
        store.update("zzz", port=1)
    assert store.require("a").port == 22


def test_remove_reports_hosts_that_jump_through_it(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path)
    store.add(Host(name="bastion", hostname="gw.example"))
    store.add(Host(name="inner", hostname="10.1.1.1", jump_hosts=("bastion",)))
    assert store.jump_users("bastion") == ["inner"]
    assert store.remove("bastion").hostname == "gw.example"
    with pytest.raises(HostsError):
        store.remove("bastion")


def test_same_destination_is_found_whatever_the_case(hosts_path: Path) -> None:
    store = HostStore.load(hosts_path)
    store.add(Host(name="a", hostname="Web.Example", port=22, user="me"))
    assert store.find_same("web.example", 22, "me") is not None
    assert store.find_same("web.example", 22, "root") is None
    assert store.find_same("web.example", 2222, "me") is None


def test_host_as_ssh_options() -> None:
    options = full_host().ssh_options()
    assert options == [
        "IdentityFile=~/.ssh/id_ed25519",
        "IdentityFile=/keys/deploy key",
        "KexAlgorithms=+diffie-hellman-group14-sha256",
        "Ciphers=aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
        "MACs=-hmac-sha1*",
        "HostKeyAlgorithms=^ssh-ed25519",
    ]


def test_destination_brackets_ipv6() -> None:
    assert Host(name="v6", hostname="2001:db8::5", port=2200, user="u").destination == "u@[2001:db8::5]:2200"


def test_resolve_dest_finds_saved_names_only(hosts_path: Path) -> None:
    saved(hosts_path, Host(name="web1", hostname="web1.example.com", user="deploy"))
    host = resolve_dest("web1", hosts_path)
    assert host is not None and host.hostname == "web1.example.com"
    assert resolve_dest("web2", hosts_path) is None
    assert resolve_dest("deploy@web1", hosts_path) is None


def test_resolve_dest_reports_a_broken_file(hosts_path: Path) -> None:
    hosts_path.parent.mkdir(parents=True)
    hosts_path.write_text("[hosts.web1\n")
    with pytest.raises(HostsFileError, match="line 1"):
        resolve_dest("web1", hosts_path)


# --- import from ssh_config --------------------------------------------------------------------------

SSH_CONFIG = """\
Host web1 web1-alias
    HostName web1.example.com
    User deploy
    Port 2222
    IdentityFile ~/.ssh/id_web
    LocalForward 8080 localhost:80
    DynamicForward 1080
    Ciphers aes256-gcm@openssh.com

Host bastion
    HostName gw.example.com

Host inner
    HostName 10.1.1.1
    ProxyJump bastion,admin@gw2.example.com:2200

Host legacy
    ProxyCommand nc %h %p

Host *.corp !secret.corp
    User corp

Host *
    ServerAliveInterval 30
"""


def ssh_config(tmp_path: Path, text: str = SSH_CONFIG) -> SshConfig:
    return SshConfig.from_text(text, tmp_path / "ssh_config", home=tmp_path / "home")


def test_import_adds_concrete_hosts_with_their_settings(hosts_path: Path, tmp_path: Path) -> None:
    store = HostStore.load(hosts_path, clock=clock_at(T0))

    added, skipped = store.import_from_ssh_config(ssh_config(tmp_path))

    assert [h.name for h in added] == ["web1", "bastion", "inner"]
    web1 = store.require("web1")
    assert (web1.hostname, web1.port, web1.user) == ("web1.example.com", 2222, "deploy")
    assert web1.identity_files == ("~/.ssh/id_web",)
    assert web1.forwards == ("-L 8080:localhost:80", "-D 1080")
    assert web1.ciphers == "aes256-gcm@openssh.com"
    assert store.require("bastion").user is None  # not set in the file: the login name decides later
    assert store.require("inner").jump_hosts == ("bastion", "admin@gw2.example.com:2200")
    reasons = {s.name: s.reason for s in skipped}
    assert reasons == {
        "web1-alias": 'same host name, port and user as saved host "web1"',
        "legacy": "uses ProxyCommand, which a saved host cannot express",
    }
    assert not hosts_path.exists()  # nothing written before save()


def test_import_twice_adds_nothing_new(hosts_path: Path, tmp_path: Path) -> None:
    store = HostStore.load(hosts_path)
    store.add(Host(name="gateway", hostname="GW.example.com"))  # same place as "bastion", other name
    store.import_from_ssh_config(ssh_config(tmp_path))
    store.save()

    again = HostStore.load(hosts_path)
    added, skipped = again.import_from_ssh_config(ssh_config(tmp_path))

    assert added == []
    assert [h.name for h in again] == ["gateway", "web1", "inner"]
    assert {s.name for s in skipped} == {"web1", "web1-alias", "bastion", "inner", "legacy"}


def test_import_skips_entries_that_cannot_be_saved(hosts_path: Path, tmp_path: Path) -> None:
    text = "Host has+plus\n  HostName a.example\n\nHost badfwd\n  HostName b.example\n  RemoteForward 9000\n"
    added, skipped = HostStore.load(hosts_path).import_from_ssh_config(ssh_config(tmp_path, text))
    assert added == []
    assert skipped[0].name == "has+plus" and "letters, digits" in skipped[0].reason
    assert skipped[1].name == "badfwd" and skipped[1].reason.startswith("forwards has a bad entry")
