"""``sshtui exec`` option handling: DEST forms, ``-o`` names and values as ssh_config(5) spells them,
the OpenSSH list syntax (+, -, ^), RekeyLimit, precedence, and the prompts' non-terminal paths."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui import cli
from sshtui.exec_command import request_from_args
from sshtui.net.trust import UnknownHostQuestion
from sshtui.options import ConnectionSettings, resolve_settings
from sshtui.options_client import host_key_offer
from sshtui.options_syntax import (
    Destination,
    OptionError,
    parse_destination,
    parse_rekey_limit,
    parse_time,
    split_option,
)
from sshtui.prompts import Prompter, read_tty
from sshtui.ssh.config import (
    DEFAULT_CIPHERS,
    DEFAULT_HOST_KEY_ALGORITHMS,
    DEFAULT_KEX,
    DEFAULT_MACS,
    DEFAULT_REKEY_BYTES,
    DEFAULT_REKEY_SECONDS,
)

MIB = 1024 * 1024


def settings(*options: str, home: Path) -> ConnectionSettings:
    return resolve_settings("example.org", options=options, home=home)


# --- DEST --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org", Destination("example.org")),
        ("alice@example.org", Destination("example.org", "alice")),
        ("example.org:2222", Destination("example.org", None, 2222)),
        ("alice@10.0.0.1:22", Destination("10.0.0.1", "alice", 22)),
        ("[::1]:2222", Destination("::1", None, 2222)),
        ("bob@[2001:db8::7]:65535", Destination("2001:db8::7", "bob", 65535)),
        ("[fe80::1%eth0]", Destination("fe80::1%eth0")),
        ("::1", Destination("::1")),  # a bare IPv6 address: its colons are not a port
        ("me@corp.example@host", Destination("host", "me@corp.example")),
        ("ssh://carol@example.org:2200", Destination("example.org", "carol", 2200)),
    ],
)
def test_destination_forms(text: str, expected: Destination) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    "text", ["", "@host", "host:", "host:0", "host:65536", "host:ssh", "[::1", "[::1]2222", "[]:22", "a b"]
)
def test_bad_destinations_name_the_destination(text: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_destination(text)
    assert repr(text) in str(info.value)


@given(
    user=st.none() | st.from_regex(r"[a-z_][a-z0-9_.-]{0,15}", fullmatch=True),
    address=st.ip_addresses(),
    port=st.none() | st.integers(1, 65535),
)
def test_destination_round_trips(user: str | None, address: ipaddress.IPv4Address, port: int | None) -> None:
    host = str(address)
    shown = f"[{host}]" if ":" in host and port is not None else host
    text = (f"{user}@" if user else "") + shown + (f":{port}" if port is not None else "")
    assert parse_destination(text) == Destination(host, user, port)


# --- -o names and values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Ciphers=aes128-ctr", "ciphers aes128-ctr", "CIPHERS = aes128-ctr", " Ciphers\taes128-ctr "]
)
def test_option_names_are_case_insensitive_with_either_separator(text: str) -> None:
    assert split_option(text) == ("Ciphers", "aes128-ctr")


def test_unknown_option_and_missing_value_are_named() -> None:
    with pytest.raises(OptionError, match="'Compressionn'"):
        split_option("Compressionn=yes")
    with pytest.raises(OptionError, match="'Ciphers='"):
        split_option("Ciphers=")


def test_list_syntax_replace_append_remove_prepend(tmp_path: Path) -> None:
    assert settings("Ciphers=aes128-ctr,aes256-ctr", home=tmp_path).ciphers == ("aes128-ctr", "aes256-ctr")
    assert settings("MACs=+hmac-sha1", home=tmp_path).macs == (*DEFAULT_MACS, "hmac-sha1")
    removed = settings("KexAlgorithms=-diffie-hellman-*", home=tmp_path).kex_algorithms
    assert removed == tuple(k for k in DEFAULT_KEX if not k.startswith("diffie-hellman-"))
    moved = settings("Ciphers=^aes128-ctr", home=tmp_path).ciphers
    assert moved == ("aes128-ctr", *(c for c in DEFAULT_CIPHERS if c != "aes128-ctr"))
    appended = settings("HostKeyAlgorithms=+ssh-rsa", home=tmp_path)
    assert appended.host_key_algorithms == (*DEFAULT_HOST_KEY_ALGORITHMS, "ssh-rsa")
    assert appended.host_key_algorithms_set
    accepted = settings("PubkeyAcceptedKeyTypes=-rsa-sha2-*", home=tmp_path).pubkey_accepted_algorithms
    assert not [a for a in accepted if a.startswith("rsa-")] and "ssh-ed25519" in accepted


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        ("Ciphers=aes128-cbc", "aes128-cbc"),
        ("MACs=+hmac-md5", "hmac-md5"),
        ("KexAlgorithms=-*", "leaves no algorithm"),
        ("HostKeyAlgorithms=", "HostKeyAlgorithms="),
    ],
)
def test_bad_algorithm_lists_name_the_option(tmp_path: Path, option: str, needle: str) -> None:
    with pytest.raises(OptionError) as info:
        settings(option, home=tmp_path)
    assert option.split("=")[0] in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1M 10s", (MIB, 10.0)),
        ("default none", (DEFAULT_REKEY_BYTES, None)),
        ("default default", (DEFAULT_REKEY_BYTES, DEFAULT_REKEY_SECONDS)),
        ("2G", (2 * 1024 * MIB, DEFAULT_REKEY_SECONDS)),
        ("512k 1h30m", (512 * 1024, 5400.0)),
        ("1.5M", (MIB + MIB // 2, DEFAULT_REKEY_SECONDS)),
        ("0 0", (DEFAULT_REKEY_BYTES, None)),  # zero means "the default" for bytes and "never" for time
        ("16 1W", (16, 7 * 86400.0)),
    ],
)
def test_rekey_limit_forms(value: str, expected: tuple[int, float | None]) -> None:
    assert parse_rekey_limit(value) == expected


@pytest.mark.parametrize("value", ["1X", "15", "none", "1M 5x", "1M 2s 3", "", "-1M", "1M h"])
def test_bad_rekey_limits_are_refused(value: str) -> None:
    with pytest.raises(OptionError, match="RekeyLimit"):
        parse_rekey_limit(value)


def test_rekey_limit_reaches_the_transport_config(tmp_path: Path) -> None:
    chosen = settings("RekeyLimit=1M 30s", home=tmp_path)
    assert (chosen.rekey_bytes, chosen.rekey_seconds) == (MIB, 30.0)


@pytest.mark.parametrize(
    ("value", "seconds"), [("30", 30), ("10s", 10), ("5M", 300), ("1h30", 3630), ("2d", 172800)]
)
def test_time_values(value: str, seconds: float) -> None:
    assert parse_time(value, "ServerAliveInterval") == seconds


@pytest.mark.parametrize(
    "option",
    [
        "StrictHostKeyChecking=maybe",
        "IdentitiesOnly=perhaps",
        "BatchMode=1",
        "ServerAliveCountMax=three",
        "ServerAliveInterval=1.5h",
        "ConnectTimeout=soon",
        "Port=0",
        "UserKnownHostsFile='unterminated",
    ],
)
def test_bad_values_name_option_and_value(tmp_path: Path, option: str) -> None:
    name, value = option.split("=", 1)
    with pytest.raises(OptionError) as info:
        settings(option, home=tmp_path)
    message = str(info.value)
    assert name in message and value in message


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("yes", "yes"),
        ("TRUE", "yes"),
        ("no", "no"),
        ("off", "no"),
        ("accept-new", "accept-new"),
        ("ask", "ask"),
    ],
)
def test_strict_host_key_checking_values(tmp_path: Path, value: str, mode: str) -> None:
    assert settings(f"StrictHostKeyChecking={value}", home=tmp_path).strict_host_key_checking == mode


def test_scalar_options(tmp_path: Path) -> None:
    chosen = settings(
        "ServerAliveInterval=15",
        "ServerAliveCountMax=5",
        "ConnectTimeout=7",
        "IdentitiesOnly=yes",
        "BatchMode=true",
        home=tmp_path,
    )
    assert chosen.server_alive_interval == 15.0
    assert chosen.server_alive_count_max == 5
    assert chosen.connect_timeout == 7.0
    assert chosen.identities_only and chosen.batch_mode
    assert settings("ConnectTimeout=none", home=tmp_path).connect_timeout is None


def test_known_hosts_files_default_expand_and_none(tmp_path: Path) -> None:
    default = settings(home=tmp_path).user_known_hosts_files
    assert default == (tmp_path / ".ssh" / "known_hosts", tmp_path / ".ssh" / "known_hosts2")
    listed = settings('UserKnownHostsFile=~/a "/srv/with space/b"', home=tmp_path).user_known_hosts_files
    assert listed == (tmp_path / "a", Path("/srv/with space/b"))
    assert settings("UserKnownHostsFile=none", home=tmp_path).user_known_hosts_files == ()


# --- precedence ----------------------------------------------------------------------------------


def test_first_option_wins_and_flags_beat_options_and_dest(tmp_path: Path) -> None:
    chosen = resolve_settings(
        "dave@example.org:2000",
        options=["Port=3000", "port=4000", "User=erin", "Ciphers=aes128-ctr", "Ciphers=aes256-ctr"],
        home=tmp_path,
    )
    assert (chosen.port, chosen.user, chosen.ciphers) == (3000, "erin", ("aes128-ctr",))
    flagged = resolve_settings(
        "dave@example.org:2000", port="5000", user="frank", options=["Port=3000", "User=erin"], home=tmp_path
    )
    assert (flagged.port, flagged.user) == (5000, "frank")
    assert resolve_settings("dave@example.org:2000", home=tmp_path).port == 2000


def test_default_identities_only_when_none_named(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    for name in ("id_ed25519", "id_rsa"):
        (ssh_dir / name).write_text("key")
    assert settings(home=tmp_path).identity_files == (ssh_dir / "id_rsa", ssh_dir / "id_ed25519")
    mine = tmp_path / "mine"
    mine.write_text("key")
    chosen = resolve_settings(
        "h", identity_files=["~/mine"], options=["IdentityFile=~/.ssh/id_rsa"], home=tmp_path
    )
    assert chosen.identity_files == (mine, ssh_dir / "id_rsa")


def test_missing_identity_and_config_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(OptionError, match=str(missing)):
        resolve_settings("h", identity_files=[str(missing)], home=tmp_path)
    with pytest.raises(OptionError, match=str(missing)):
        resolve_settings("h", config_file=str(missing), home=tmp_path)
    config = tmp_path / "config"
    config.write_text("Host *\n")
    assert resolve_settings("h", config_file=str(config), home=tmp_path).config_file == config


def test_host_key_offer_prefers_key_types_known_for_the_host(tmp_path: Path) -> None:
    default = settings(home=tmp_path)
    assert host_key_offer(default, set()) == DEFAULT_HOST_KEY_ALGORITHMS
    ecdsa_first = host_key_offer(default, {"ecdsa-sha2-nistp256"})
    assert ecdsa_first == ("ecdsa-sha2-nistp256", *DEFAULT_HOST_KEY_ALGORITHMS)
    rsa_first = host_key_offer(default, {"ssh-rsa"})
    assert rsa_first[:2] == ("rsa-sha2-512", "rsa-sha2-256") and set(rsa_first) == set(
        DEFAULT_HOST_KEY_ALGORITHMS
    )
    explicit = settings("HostKeyAlgorithms=ssh-ed25519", home=tmp_path)
    assert host_key_offer(explicit, {"ecdsa-sha2-nistp256"}) == ("ssh-ed25519",)


# --- the command line ----------------------------------------------------------------------------


def test_command_words_are_joined_and_flags_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    args = cli.build_parser().parse_args(
        [
            "exec",
            "-p",
            "2022",
            "-l",
            "gus",
            "-t",
            "-o",
            "BatchMode=yes",
            "--stats-json",
            "s.json",
            "example.org",
            "--",
            "ls",
            "-l",
            "/tmp dir",
        ]
    )
    request = request_from_args(args)
    assert request.command == "ls -l /tmp dir"
    assert request.pty and request.stats_json == Path("s.json")
    assert (request.settings.port, request.settings.user, request.settings.batch_mode) == (2022, "gus", True)
    words = cli.build_parser().parse_args(["exec", "-T", "h", "echo", "-n", "x"])
    assert request_from_args(words).command == "echo -n x" and not request_from_args(words).pty


def test_cli_reports_bad_options_on_one_line_with_exit_255(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exec", "-o", "RekeyLimit=lots", "example.org", "true"]) == 255
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sshtui: ") and "RekeyLimit" in err and "lots" in err
    assert cli.main(["exec", "example.org"]) == 255
    assert "no command" in capsys.readouterr().err


# --- prompts without a terminal -------------------------------------------------------------------


def _askpass(tmp_path: Path, body: str) -> str:
    script = tmp_path / "askpass"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_batch_mode_never_asks(tmp_path: Path) -> None:
    marker = tmp_path / "asked"
    prompter = Prompter(batch_mode=True, askpass=_askpass(tmp_path, f"touch {marker}; echo yes"))
    question = UnknownHostQuestion("h", 22, "ssh-ed25519", "SHA256:x")
    assert asyncio.run(prompter.password("pw: ")) is None
    assert asyncio.run(prompter.confirm_host_key(question)) is False
    assert asyncio.run(prompter.keyboard_interactive("", "", [("code: ", True)])) is None
    assert not marker.exists()


def test_askpass_gets_the_prompt_and_returns_its_output(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prompter = Prompter(askpass=_askpass(tmp_path, f'printf "%s\\n" "$1" >> {log}; echo "s3cret word"'))
    assert asyncio.run(prompter.password("alice's password: ")) == "s3cret word"
    assert log.read_text() == "alice's password: \n"
    failing = Prompter(askpass=_askpass(tmp_path, "exit 1"))
    assert asyncio.run(failing.passphrase("passphrase: ")) is None


@pytest.mark.parametrize(
    ("answer", "accepted"), [("yes", True), ("no", False), ("SHA256:abc", True), ("", False)]
)
def test_host_key_question_accepts_yes_or_the_fingerprint(
    tmp_path: Path, answer: str, accepted: bool
) -> None:
    prompter = Prompter(askpass=_askpass(tmp_path, f"echo '{answer}'"))
    question = UnknownHostQuestion("h", 2222, "ssh-ed25519", "SHA256:abc")
    assert asyncio.run(prompter.confirm_host_key(question)) is accepted


def test_terminal_prompt_reads_a_line_without_echo() -> None:
    master, slave = os.openpty()
    try:
        result: list[str | None] = []
        reader = threading.Thread(
            target=lambda: result.append(read_tty("Password: ", echo=False, tty_path=os.ttyname(slave)))
        )
        reader.start()
        shown = b""
        while b"Password: " not in shown:
            shown += os.read(master, 100)
        os.write(master, b"hunter2\n")
        reader.join(10)
        assert result == ["hunter2"]
        os.write(slave, b"END")
        after = b""
        while not after.endswith(b"END"):
            after += os.read(master, 100)
        assert b"hunter2" not in shown + after
    finally:
        os.close(master)
        os.close(slave)


def test_no_terminal_means_no_answer(tmp_path: Path) -> None:
    assert read_tty("Password: ", echo=False, tty_path=str(tmp_path / "no-tty")) is None


def test_proxy_jump_from_ssh_config_is_followed(tmp_path: Path) -> None:
    from sshtui.options import effective_jumps, resolve_settings

    config = tmp_path / "config"
    config.write_text("Host inner\n  HostName 10.9.9.9\n  ProxyJump bastion,ops@gw:2200\n")
    settings = resolve_settings("inner", home=tmp_path, config_file=str(config), system_config_file=None)
    assert settings.host == "10.9.9.9"
    assert effective_jumps(settings, None) == ["bastion", "ops@gw:2200"]
    # -o ProxyJump on the command line wins over the file (first value obtained wins).
    settings = resolve_settings(
        "inner", home=tmp_path, config_file=str(config), system_config_file=None, options=["ProxyJump=none"]
    )
    assert effective_jumps(settings, None) == []
