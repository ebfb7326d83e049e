"""ssh_config(5): parsing, Host matching, Include, tokens and provenance, checked against OpenSSH's own
``ssh -G`` (and ``ssh -v`` for the expanded key paths) wherever the two are meant to agree; plus how
``sshtui exec`` resolves DEST through the files."""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshtui import cli
from sshtui.options import resolve_settings
from sshtui.options_syntax import OptionError
from sshtui.store.ssh_config import (
    LocalContext,
    ResolvedHost,
    SshConfig,
    SshConfigError,
    load_ssh_config,
)

SSH = shutil.which("ssh")
needs_openssh = pytest.mark.skipif(SSH is None, reason="the OpenSSH client (ssh) is not installed")
PASSWD = pwd.getpwuid(os.getuid())
COMPARED = ("hostname", "port", "user", "identityfile", "proxyjump", "serveraliveinterval")


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def openssh_view(config: Path, host: str, home: Path) -> dict[str, list[str]]:
    """What ``ssh -G`` says about the COMPARED options (relative Includes are under $HOME/.ssh)."""
    assert SSH is not None
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [SSH, "-G", "-F", str(config), host], env=env, capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, done.stderr
    view: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in COMPARED:
            view.setdefault(key, []).append(value)
    return view


def our_view(resolved: ResolvedHost) -> dict[str, list[str]]:
    view = {
        "hostname": [resolved.hostname],
        "port": [str(resolved.port)],
        "user": [resolved.user],
        "serveraliveinterval": [str(resolved.server_alive_interval)],
        "identityfile": [value.args[0] for value in resolved.all("IdentityFile")],  # -G shows them as written
    }
    if resolved.proxy_jump is not None:
        view["proxyjump"] = [resolved.proxy_jump]
    return view


def openssh_accepts(config: Path) -> bool | None:
    """Whether ``ssh -G`` takes the file; None without OpenSSH."""
    if SSH is None:
        return None
    done = subprocess.run([SSH, "-G", "-F", str(config), "h"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def resolve(config: Path, host: str, home: Path) -> ResolvedHost:
    local = LocalContext(home=home, user=PASSWD.pw_name, uid=os.getuid(), host_name=socket.gethostname())
    return load_ssh_config(home, config).resolve(host, local)


# Each case: files under a fake home (the config is ``config``; relative Includes are under .ssh/),
# and the hosts to resolve. Every one is compared with ssh -G.
TRICKY = {
    "first-match-wins-and-negation": (
        {
            "config": """\
Host web-* !web-test
    User deploy
    Port 2201
Host web-?? web-test
    Port 2202
    User other
    IdentityFile ~/.ssh/id_%h
Host *.example.org
    HostName %h.internal
    ServerAliveInterval 1m
Host web-test
    HostName %%h-%h
Host *
    Port 2299
    User fallback
    ServerAliveInterval 15
    IdentityFile ~/.ssh/id_%h
    IdentityFile ~/.ssh/shared
""",
        },
        ["web-01", "web-ab", "web-test", "WEB-01", "db.example.org", "DB.Example.ORG", "other"],
    ),
    "separators-quotes-comments": (
        {
            "config": """\
# a comment, then a blank line

HOST=alpha beta
  user = "al ice"
  Port=2022   # a trailing comment
  IdentityFile "~/.ssh/with space"
  IdentityFile ~/.ssh/second
  IdentityFile ~/.ssh/second
  ProxyJump jump@bastion:2200,other
\tServerAliveInterval=1h30m
Host gamma
  ProxyCommand none
  ProxyJump ignored-after-proxycommand
Host delta
  User a#b
  ProxyJump none
Host *
  ProxyJump last-resort
""",
        },
        ["alpha", "beta", "gamma", "delta", "epsilon"],
    ),
    "include-glob-relative-and-state": (
        {
            "config": """\
Host included
    Include conf.d/*.conf
Host skipped
    Include extra.conf
Host *
    User main-user
    Port 2400
    Include ~/.ssh/tail.conf
""",
            ".ssh/conf.d/10-a.conf": "User from-a\nHost included\n    Port 2410\nHost other\n    Port 2411\n",
            ".ssh/conf.d/20-b.conf": "ServerAliveInterval 20\nHost nothing\n    User nobody\n",
            ".ssh/conf.d/ignored.txt": "User never-globbed\n",
            ".ssh/extra.conf": "Host *\n    User from-extra\n    HostName extra.example\n",
            ".ssh/tail.conf": "IdentityFile ~/.ssh/from-tail\nHost included\n    ProxyJump j.example:2222\n",
        },
        ["included", "other", "skipped", "nothing"],
    ),
}


@needs_openssh
@pytest.mark.parametrize("case", sorted(TRICKY))
def test_resolution_agrees_with_openssh(tmp_path: Path, case: str) -> None:
    files, hosts = TRICKY[case]
    write_tree(tmp_path, files)
    config = tmp_path / "config"
    for host in hosts:
        theirs = openssh_view(config, host, tmp_path)
        ours = our_view(resolve(config, host, tmp_path))
        if not ours["identityfile"]:
            # Without any IdentityFile OpenSSH lists its defaults; sshtui's caller adds its own.
            assert all(name.startswith("~/.ssh/id_") for name in theirs.pop("identityfile"))
            del ours["identityfile"]
        assert ours == theirs, host


@needs_openssh
def test_expanded_key_and_known_hosts_paths_agree_with_openssh(tmp_path: Path) -> None:
    """Tokens and ~ as OpenSSH expands them: ssh -v lists the key files it will try (a ProxyCommand
    of ``false`` ends the attempt before any network use), ssh -G the known_hosts files."""
    config = tmp_path / "config"
    config.write_text(
        """\
Host tok*
    HostName Real-%h.Example
    Port 2345
    User remote
    IdentityFile ~/.ssh/k_%h_%p_%r
    IdentityFile %d/k_%u_%n_%k_%i
    IdentityFile /nonexistent/k_%l_%L_%C_%%
    IdentityFile ${SSHTUI_TEST_KEYS}/k_env
    UserKnownHostsFile ~/kh_%h "%d/kh two" /k/%n_%%
"""
    )
    env = {**os.environ, "SSHTUI_TEST_KEYS": str(tmp_path / "keys")}
    assert SSH is not None
    done = subprocess.run(
        [SSH, "-v", "-F", str(config), "-o", "ProxyCommand=false", "-o", "BatchMode=yes", "tokHost", "true"],
        env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False,
    )
    tried = re.findall(r"identity file (\S+) type", done.stderr)
    theirs_keys = [Path(p) for p in tried if not p.endswith("-cert")]
    home = Path(PASSWD.pw_dir)  # ssh expands ~ and %d from the password database, not $HOME
    local = LocalContext(home, PASSWD.pw_name, os.getuid(), socket.gethostname(), environ=env)
    resolved = SshConfig(load_ssh_config(home, config).files).resolve("tokHost", local)
    assert resolved.identity_files == tuple(theirs_keys)
    theirs_known = openssh_view_raw(config, "tokHost", env)["userknownhostsfile"]
    assert " ".join(map(str, resolved.user_known_hosts_files)) == theirs_known


def openssh_view_raw(config: Path, host: str, env: dict[str, str]) -> dict[str, str]:
    assert SSH is not None
    done = subprocess.run(
        [SSH, "-G", "-F", str(config), host], env=env, capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL, check=True,
    )
    return dict(line.partition(" ")[::2] for line in done.stdout.splitlines())


def test_connection_hash_and_host_tokens_computed_independently(tmp_path: Path) -> None:
    config = SshConfig.from_text(
        "Host *\n HostName Target.Example\n IdentityFile /k/%C\n IdentityFile /k/%n-%h-%L-%l-%j\n",
        tmp_path / "config",
        home=tmp_path,
    )
    local = LocalContext(tmp_path, "me", 1000, "box.local.lan")
    resolved = config.resolve("Alias", local, port=2200, user="ops")
    digest = hashlib.sha1(b"box.local.lan" + b"target.example" + b"2200" + b"ops").hexdigest()
    named = Path("/k/Alias-target.example-box-box.local.lan-")  # %j is empty without ProxyJump
    assert resolved.identity_files == (Path(f"/k/{digest}"), named)
    assert (resolved.port, resolved.user) == (2200, "ops")
    assert resolved.options["Port"].location == "the command line"


# --- errors OpenSSH also refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("Host nomatch\n    Port abc\n", 2, "'abc'"),  # checked even where the block does not apply
        ("Port 0\n", 1, "'0'"),
        ("ServerAliveInterval 1.5\n", 1, "'1.5'"),
        ("ServerAliveCountMax -1\n", 1, "'-1'"),
        ('User "unterminated\n', 1, "unclosed quote"),
        ("Port 22 33\n", 1, "extra arguments"),
        ("IdentitiesOnly maybe\n", 1, "'maybe'"),
        ("StrictHostKeyChecking sometimes\n", 1, "'sometimes'"),
        ("LocalForward 8080\n", 1, "'8080'"),
        ("DynamicForward x:y:z\n", 1, "'x:y:z'"),
        ("ProxyJump a:0\n", 1, "'a:0'"),
        ("ProxyJump ,a\n", 1, "',a'"),
        ('Host ""\n', 1, "empty argument"),
        ("User #only-a-comment\n", 1, "missing argument"),
        ("Ciphers\n", 1, "no argument"),
        ("\n\nRekeyLimit 1X\n", 3, "'1X'"),
        ("BatchMode off\n", 1, "'off'"),
    ],
)
def test_bad_values_are_refused_naming_file_line_option_and_value(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    with pytest.raises(SshConfigError) as info:
        load_ssh_config(tmp_path, config)
    message = str(info.value)
    assert message.startswith(f"{config}:{line}: ") and needle in message
    assert (info.value.path, info.value.line) == (config, line)
    assert openssh_accepts(config) in (False, None)  # the same file makes OpenSSH give up too


@pytest.mark.parametrize(
    "text",
    [
        "Port ssh\n",
        "StrictHostKeyChecking off\n",
        "ConnectTimeout none\n",
        "RekeyLimit 1G 1h\n",
        "RemoteForward 8080\n",
        "LocalForward [::1]:8080 [::1]:80\n",
        "IdentityFile none\n",
        "UserKnownHostsFile none\n",
        "Ciphers +aes128-cbc\n",
        "ProxyJump ssh://u@h:2,[::1]:22\n",
        "SendEnv LANG LC_*\nGSSAPIAuthentication yes\nProtocol 2\n",
    ],
)
def test_values_openssh_accepts_are_accepted_without_warnings(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    assert load_ssh_config(tmp_path, config).resolve("h").warnings == ()
    assert openssh_accepts(config) in (True, None)


def test_include_loop_stops_at_depth_16(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(f"Include {config}\n")
    with pytest.raises(SshConfigError, match=r"nested more than 16 deep") as info:
        load_ssh_config(tmp_path, config)
    assert info.value.line == 1
    assert openssh_accepts(config) in (False, None)


def test_included_files_writable_by_others_are_refused(tmp_path: Path) -> None:
    included = tmp_path / "inc.conf"
    included.write_text("User x\n")
    included.chmod(0o666)
    config = tmp_path / "config"
    config.write_text(f"Include {included}\n")
    with pytest.raises(SshConfigError, match="bad owner or permissions"):
        load_ssh_config(tmp_path, config)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SshConfigError, match="no such file"):
        load_ssh_config(tmp_path, tmp_path / "missing")
    # No ~/.ssh/config and no system file: nothing applies, and that is fine.
    empty = load_ssh_config(tmp_path, system_file=tmp_path / "no-system-file").resolve("h")
    assert (empty.hostname, empty.port, empty.options, empty.warnings) == ("h", 22, {}, ())
    assert load_ssh_config(tmp_path, "none").files == ()


# --- what sshtui does differently, and says so ----------------------------------------------------


def test_match_blocks_are_skipped_with_a_warning_naming_file_and_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {".ssh/inc.conf": "Match all\n  User from-match\n"})
    config = tmp_path / "config"
    config.write_text("Include inc.conf\nUser after-include\nMatch host h\n  Port 3\nHost *\n  Port 4\n")
    resolved = load_ssh_config(tmp_path, config).resolve("h")
    assert (resolved.port, resolved.user) == (4, "after-include")  # the Match in inc.conf ends with it
    problem = "'Match' is not supported: options up to the next 'Host' are ignored"
    assert [str(w) for w in resolved.warnings] == [
        f"{tmp_path / '.ssh/inc.conf'}:1: {problem}",
        f"{config}:3: {problem}",
    ]


def test_unknown_keywords_warn_unless_ignore_unknown_names_them(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Frobnicate yes\nIgnoreUnknown UseKeychain,Add*\nUseKeychain yes\nAddFoo 1\nPort 7\n")
    resolved = load_ssh_config(tmp_path, config).resolve("h")
    assert resolved.port == 7
    assert [(w.path, w.line) for w in resolved.warnings] == [(config, 1)]
    assert "'Frobnicate'" in str(resolved.warnings[0]) and "OpenSSH would refuse" in str(resolved.warnings[0])
    if SSH is not None:  # OpenSSH agrees on which lines are the problem
        done = subprocess.run(
            [SSH, "-G", "-F", str(config), "h"], capture_output=True, text=True, timeout=30, check=False
        )
        assert "line 1" in done.stderr and "line 3" not in done.stderr and "line 4" not in done.stderr


def test_each_value_remembers_its_file_and_line(tmp_path: Path) -> None:
    web = "# web\nHost web\n  Port 2222\n  IdentityFile ~/.ssh/web\n"
    write_tree(tmp_path, {".ssh/hosts.d/web.conf": web})
    config = tmp_path / "config"
    config.write_text("Include hosts.d/*.conf\nHost *\n  User me\n  Port 22\n  IdentityFile ~/.ssh/all\n")
    resolved = load_ssh_config(tmp_path, config).resolve("web")
    web_conf = tmp_path / ".ssh/hosts.d/web.conf"
    assert (resolved.options["Port"].file, resolved.options["Port"].line) == (web_conf, 3)
    assert resolved.get("user") is not None and resolved.get("user").location == f"{config}:3"  # type: ignore[union-attr]
    assert [(v.file, v.line) for v in resolved.all("identityfile")] == [(web_conf, 4), (config, 5)]
    assert resolved.identity_files == (tmp_path / ".ssh/web", tmp_path / ".ssh/all")


def test_token_errors_name_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host a\n  IdentityFile /k/%z\nHost b\n  HostName x%py\nHost c\n  IdentityFile ${SSHTUI_UNSET_VAR}\n"
    )
    parsed = load_ssh_config(tmp_path, config)
    with pytest.raises(SshConfigError, match=rf"{config}:2: .*%z"):
        parsed.resolve("a")
    with pytest.raises(SshConfigError, match=rf"{config}:4: .*%p"):  # HostName only knows %h and %%
        parsed.resolve("b")
    with pytest.raises(SshConfigError, match=rf"{config}:6: .*SSHTUI_UNSET_VAR"):
        parsed.resolve("c", LocalContext(tmp_path, "me", 1, "box", environ={}))


def test_typed_accessors(tmp_path: Path) -> None:
    config = SshConfig.from_text(
        "Host *\n IdentitiesOnly yes\n BatchMode true\n StrictHostKeyChecking off\n ConnectTimeout 1m\n"
        " ServerAliveCountMax 5\n HashKnownHosts yes\n UpdateHostKeys ask\n Compression yes\n"
        " LocalForward 8080 localhost:80\n RemoteForward 9000\n DynamicForward 1080\n"
        " ProxyCommand nc %h %p\n ProxyJump ignored\n",
        tmp_path / "config",
        home=tmp_path,
    )
    resolved = config.resolve("h")
    assert resolved.identities_only and resolved.batch_mode
    assert resolved.hash_known_hosts and resolved.compression
    assert (resolved.strict_host_key_checking, resolved.update_host_keys) == ("no", "ask")
    assert (resolved.connect_timeout, resolved.server_alive_count_max) == (60, 5)
    assert resolved.local_forwards == ("8080 localhost:80",)
    assert (resolved.remote_forwards, resolved.dynamic_forwards) == (("9000",), ("1080",))
    assert (resolved.proxy_command, resolved.proxy_jump) == ("nc %h %p", None)


def test_host_names_lists_concrete_hosts_in_order(tmp_path: Path) -> None:
    write_tree(tmp_path, {".ssh/more.conf": "Host gamma alpha\n"})
    config = SshConfig.from_text(
        "Host alpha beta* !gamma\nHost *\nInclude more.conf\nHost delta\n", tmp_path / "c", home=tmp_path
    )
    assert config.host_names() == ["alpha", "gamma", "delta"]


# --- robustness ----------------------------------------------------------------------------------

_KEYWORDS = st.sampled_from(
    ["Host", "Match", "Port", "User", "HostName", "IdentityFile", "ProxyJump", "LocalForward", "RekeyLimit",
     "ServerAliveInterval", "UserKnownHostsFile", "IgnoreUnknown", "Include", "Ciphers", "Bogus", "#"]
)
_WORDS = st.text(alphabet="ab*?!%hpr{}$~/:,@[]\"'\\= \t#0123456789", max_size=12)
_LINES = st.lists(st.tuples(_KEYWORDS, st.sampled_from([" ", "=", " = ", "\t"]), _WORDS), max_size=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(max_size=300) | _LINES.map(lambda ls: "\n".join(k + s + v for k, s, v in ls)),
       host=st.text(min_size=1, max_size=20))
def test_any_text_gives_a_result_or_a_config_error(tmp_path: Path, text: str, host: str) -> None:
    home = tmp_path / "empty-home"  # relative Includes find nothing here
    local = LocalContext(home, "me", 1000, "box", environ={"HOME": "/h"})
    try:
        resolved = SshConfig.from_text(text, tmp_path / "fuzzed", home=home).resolve(host, local)
    except SshConfigError as exc:
        assert str(tmp_path / "fuzzed") in str(exc)
        return
    assert isinstance(resolved.port, int) and 1 <= resolved.port <= 65535
    assert all(str(w).startswith(f"{tmp_path / 'fuzzed'}:") for w in resolved.warnings)


# --- sshtui exec: DEST through the config ---------------------------------------------------------


@pytest.fixture
def exec_config(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/web").write_text("key")
    config = tmp_path / "config"
    config.write_text(
        f"""\
Host web
    HostName web.example.org
    Port 2222
    User deploy
    IdentityFile {tmp_path}/keys/web
    IdentityFile {tmp_path}/keys/missing
    Ciphers aes256-ctr
    ServerAliveInterval 30
    UserKnownHostsFile ~/kh_%h
Host jumpy
    ProxyJump bastion.example:2200
Host cmd
    ProxyCommand nc %h %p
Host badcipher
    Ciphers aes128-cbc
Host matchy
    User before
Match host matchy
    Port 7
"""
    )
    return config


def test_exec_takes_host_port_user_keys_and_options_from_the_config(
    tmp_path: Path, exec_config: Path
) -> None:
    chosen = resolve_settings("web", config_file=str(exec_config), home=tmp_path)
    assert (chosen.host, chosen.port, chosen.user) == ("web.example.org", 2222, "deploy")
    assert chosen.identity_files == (tmp_path / "keys/web",)  # missing config keys are skipped, as in ssh
    assert chosen.ciphers == ("aes256-ctr",) and chosen.server_alive_interval == 30.0
    assert chosen.user_known_hosts_files == (tmp_path / "kh_web.example.org",)
    assert chosen.config_file == exec_config
    assert [w.partition(": ")[0] for w in chosen.config_warnings] == [f"{exec_config}:18"]  # the Match line


def test_exec_command_line_wins_over_the_config(tmp_path: Path, exec_config: Path) -> None:
    config = str(exec_config)
    flagged = resolve_settings(
        "web", port="2000", user="cli", options=["Ciphers=aes128-ctr"], config_file=config, home=tmp_path
    )
    assert (flagged.port, flagged.user, flagged.ciphers) == (2000, "cli", ("aes128-ctr",))
    from_dest = resolve_settings("dest@web:2100", config_file=str(exec_config), home=tmp_path)
    assert (from_dest.host, from_dest.port, from_dest.user) == ("web.example.org", 2100, "dest")
    by_option = resolve_settings("web", options=["Port=2300", "User=opt"], config_file=config, home=tmp_path)
    assert (by_option.port, by_option.user) == (2300, "opt")


def test_exec_reads_the_user_config_unless_told_otherwise(tmp_path: Path) -> None:
    write_tree(tmp_path, {".ssh/config": "Host short\n  HostName long.example\n  Port 2022\n"})
    default = resolve_settings("short", home=tmp_path, system_config_file=None)
    assert (default.host, default.port) == ("long.example", 2022)
    ignored = resolve_settings("short", config_file="none", home=tmp_path, system_config_file=None)
    assert (ignored.host, ignored.port) == ("short", 22)


def test_exec_config_problems(tmp_path: Path, exec_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OptionError, match=rf"{exec_config}:15: .*aes128-cbc"):
        resolve_settings("badcipher", config_file=str(exec_config), home=tmp_path)
    with pytest.raises(OptionError, match=rf"{exec_config}:13: ProxyCommand is not supported"):
        resolve_settings("cmd", config_file=str(exec_config), home=tmp_path)
    jumpy = resolve_settings("jumpy", config_file=str(exec_config), home=tmp_path)
    assert jumpy.proxy_jump == "bastion.example:2200"
    matchy = resolve_settings("matchy", config_file=str(exec_config), home=tmp_path)
    assert (matchy.user, matchy.port) == ("before", 22)
    assert any(w.startswith(f"{exec_config}:18: 'Match'") for w in matchy.config_warnings)
    assert f"sshtui: warning: {exec_config}:18: 'Match'" in capsys.readouterr().err


def test_exec_reports_a_bad_config_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n  Port abc\n")
    assert cli.main(["exec", "-F", str(config), "example.org", "true"]) == 255
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sshtui: {config}:2: ") and "Port" in err and "abc" in err
