"""``-L``/``-R``/``-D``/``-J`` arguments as ssh(1) documents them: what each form listens on and where
it connects, loopback by default, and bad specifications rejected with a message that quotes them."""

from __future__ import annotations

import argparse
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sshtui.forward_spec import (
    ForwardKind,
    ForwardSpec,
    ForwardSpecError,
    add_forward_options,
    forwards_from_args,
    parse_forward,
    parse_forwards,
    parse_jump_hosts,
    split_fields,
)


def test_local_forward_binds_loopback_by_default() -> None:
    spec = parse_forward("local", "8080:db.internal:5432")
    assert (spec.listen_host, spec.listen_port) == ("127.0.0.1", 8080)
    assert (spec.target_host, spec.target_port, spec.target_path) == ("db.internal", 5432, "")
    assert spec.bind_host == "127.0.0.1"
    assert spec.label == "-L 8080:db.internal:5432"
    assert (spec.listen, spec.target) == ("127.0.0.1:8080", "db.internal:5432")


@pytest.mark.parametrize("bind", ["", "*"])
def test_empty_or_star_bind_means_every_interface(bind: str) -> None:
    spec = parse_forward("local", f"{bind}:8080:db:5432")
    assert spec.bind_host is None
    assert spec.listen == "*:8080"


def test_named_bind_address_is_kept() -> None:
    spec = parse_forward("local", "localhost:8080:db:5432")
    assert spec.bind_host == "localhost"


def test_ipv6_addresses_in_brackets() -> None:
    spec = parse_forward("local", "[::1]:8080:[2001:db8::7]:443")
    assert (spec.listen_host, spec.listen_port) == ("::1", 8080)
    assert (spec.target_host, spec.target_port) == ("2001:db8::7", 443)
    assert (spec.listen, spec.target) == ("[::1]:8080", "[2001:db8::7]:443")


def test_local_forward_to_a_remote_unix_socket() -> None:
    spec = parse_forward("local", "2375:/var/run/docker.sock")
    assert (spec.listen_host, spec.listen_port, spec.target_path) == (
        "127.0.0.1",
        2375,
        "/var/run/docker.sock",
    )
    assert spec.target == "/var/run/docker.sock"
    with_bind = parse_forward("local", "[::1]:0:/tmp/odd:name.sock")
    assert (with_bind.listen_host, with_bind.listen_port, with_bind.target_path) == (
        "::1",
        0,
        "/tmp/odd:name.sock",
    )


def test_remote_forward_with_port_zero_lets_the_server_choose() -> None:
    spec = parse_forward("remote", "0:localhost:22")
    assert (spec.kind, spec.listen_host, spec.listen_port) == ("remote", "127.0.0.1", 0)
    assert (spec.target_host, spec.target_port) == ("localhost", 22)
    assert spec.label == "-R 0:localhost:22"


def test_dynamic_forward() -> None:
    assert parse_forward("dynamic", "1080") == ForwardSpec("dynamic", "127.0.0.1", 1080, text="1080")
    spec = parse_forward("dynamic", "[::1]:1080")
    assert (spec.listen_host, spec.listen_port, spec.target) == ("::1", 1080, "SOCKS")
    assert parse_forward("dynamic", "*:1080").bind_host is None


@pytest.mark.parametrize(
    ("kind", "text", "why"),
    [
        ("local", "8080", "3 or 4"),
        ("local", "a:b:c:d:e", "3 or 4"),
        ("local", "70000:db:5432", "listen port '70000'"),
        ("local", "8080:db:0", "target port '0'"),
        ("local", "8080:db:http", "target port 'http'"),
        ("local", "-1:db:22", "listen port '-1'"),
        ("local", "8080::22", "empty target host"),
        ("local", "8080:bad host:22", "target host"),
        ("local", "[::1:8080:db:22", "unclosed '['"),
        ("local", "[::1]x:8080:db:22", "after ']'"),
        ("local", "/tmp/listen.sock:db:22", "Unix socket is not supported"),
        ("local", "", "empty"),
        ("remote", "8080", "remote dynamic"),
        ("dynamic", "1:2:3", "too many"),
        ("dynamic", "socks", "port 'socks'"),
    ],
)
def test_bad_specifications_are_named_with_the_reason(kind: ForwardKind, text: str, why: str) -> None:
    flag = {"local": "-L", "remote": "-R", "dynamic": "-D"}[kind]
    with pytest.raises(ForwardSpecError) as caught:
        parse_forward(kind, text)
    message = str(caught.value)
    assert f"'{flag} {text}'" in message
    assert why in message
    assert "\n" not in message


def test_parse_forwards_keeps_the_good_and_reports_each_bad_one() -> None:
    specs, errors = parse_forwards(local=["8080:db:5432", "oops"], remote=["0:localhost:22"], dynamic=["x"])
    assert [s.label for s in specs] == ["-L 8080:db:5432", "-R 0:localhost:22"]
    assert len(errors) == 2
    assert "'-L oops'" in errors[0] and "'-D x'" in errors[1]


def test_command_line_flags_are_repeatable() -> None:
    parser = argparse.ArgumentParser()
    add_forward_options(parser)
    args = parser.parse_args(
        ["-L", "1:a:2", "-L", "3:b:4", "-R", "0:c:5", "-D", "1080", "-J", "j1,me@j2:2222"]
    )
    specs, errors = forwards_from_args(args)
    assert errors == []
    assert [s.label for s in specs] == ["-L 1:a:2", "-L 3:b:4", "-R 0:c:5", "-D 1080"]
    assert parse_jump_hosts(args.jump_hosts) == ["j1", "me@j2:2222"]


@pytest.mark.parametrize("text", ["", ",", "a,,b", "a,"])
def test_bad_jump_host_lists(text: str) -> None:
    with pytest.raises(ForwardSpecError, match="jump host"):
        parse_jump_hosts(text)


def test_split_fields_removes_brackets_only_around_whole_fields() -> None:
    assert split_fields("[::1]:80:[fe80::1%eth0]:22") == ["::1", "80", "fe80::1%eth0", "22"]
    assert split_fields(":80") == ["", "80"]
    assert split_fields("80:") == ["80", ""]


# Property: whatever hosts and ports the user writes, in any of the accepted forms, come back unchanged.

hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
ipv6 = st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(a).compressed)
ipv4 = st.ip_addresses(v=4).map(str)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.integers(min_value=1, max_value=65535)


def written(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@given(
    kind=st.sampled_from(["local", "remote"]),
    bind=st.one_of(st.none(), hosts),
    listen_port=st.integers(min_value=0, max_value=65535),
    target=hosts,
    target_port=ports,
)
def test_tcp_forward_fields_round_trip(
    kind: ForwardKind, bind: str | None, listen_port: int, target: str, target_port: int
) -> None:
    prefix = "" if bind is None else f"{written(bind)}:"
    text = f"{prefix}{listen_port}:{written(target)}:{target_port}"
    spec = parse_forward(kind, text)
    assert spec.listen_host == (bind if bind is not None else "127.0.0.1")
    assert (spec.listen_port, spec.target_host, spec.target_port) == (listen_port, target, target_port)
    assert parse_forward(kind, spec.canonical) == ForwardSpec(
        spec.kind, spec.listen_host, spec.listen_port, spec.target_host, spec.target_port, text=spec.canonical
    )


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_forward_spec_error(text: str) -> None:
    for kind in ("local", "remote", "dynamic"):
        try:
            spec = parse_forward(kind, text)
        except ForwardSpecError:
            continue
        assert 0 <= spec.listen_port <= 65535
