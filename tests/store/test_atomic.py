"""Crash-safe writes: whole-file replacement keeps the old file until the new one is complete, and
appending a line never changes a byte that was already there."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sshtui.store.atomic import append_line, atomic_write

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_the_content(tmp_path: Path) -> None:
    target = tmp_path / "known_hosts"
    target.write_bytes(b"old line\n")
    atomic_write(target, b"new line\n")
    assert target.read_bytes() == b"new line\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_hosts"]


@posix_only
def test_atomic_write_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "shared_known_hosts"
    target.write_bytes(b"x\n")
    target.chmod(0o644)
    atomic_write(target, b"y\n")
    assert mode_of(target) == 0o644


@posix_only
def test_atomic_write_creates_new_files_private(tmp_path: Path, usual_umask: None) -> None:
    target = tmp_path / "fresh"
    atomic_write(target, b"content\n")
    assert mode_of(target) == 0o600
    assert target.read_bytes() == b"content\n"


def test_a_crash_before_the_rename_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "known_hosts"
    target.write_bytes(b"precious\n")

    def power_cut(source: object, destination: object) -> None:
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write(target, b"half-written replacement\n")
    assert target.read_bytes() == b"precious\n"
    # The temporary file is cleaned up rather than left to accumulate next to the real one.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_hosts"]


@posix_only
def test_atomic_write_through_a_symlink_updates_the_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_bytes(b"old\n")
    link = tmp_path / "known_hosts"
    link.symlink_to(real)
    atomic_write(link, b"new\n")
    assert link.is_symlink()
    assert real.read_bytes() == b"new\n"


def test_append_to_a_file_without_final_newline_adds_exactly_one_line(tmp_path: Path) -> None:
    target = tmp_path / "known_hosts"
    target.write_bytes(b"# comment\nhost1 ssh-ed25519 AAAA")
    append_line(target, b"host2 ssh-ed25519 BBBB")
    assert target.read_bytes() == b"# comment\nhost1 ssh-ed25519 AAAA\nhost2 ssh-ed25519 BBBB\n"


def test_append_to_a_file_with_final_newline_adds_no_blank_line(tmp_path: Path) -> None:
    target = tmp_path / "known_hosts"
    original = b"a\r\n\n  \n# last\n"
    target.write_bytes(original)
    append_line(target, b"b")
    assert target.read_bytes() == original + b"b\n"


@posix_only
def test_append_creates_a_private_file_and_directory(tmp_path: Path, usual_umask: None) -> None:
    target = tmp_path / "home" / ".ssh" / "known_hosts"
    append_line(target, b"first")
    assert target.read_bytes() == b"first\n"
    assert mode_of(target) == 0o600
    assert mode_of(target.parent) == 0o700


@posix_only
def test_append_leaves_the_mode_of_an_existing_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "known_hosts"
    target.write_bytes(b"")
    target.chmod(0o644)
    append_line(target, b"line")
    assert mode_of(target) == 0o644
    assert target.read_bytes() == b"line\n"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_append_to_dev_null_is_accepted() -> None:
    # UserKnownHostsFile=/dev/null is a common way to not remember hosts; it must not fail.
    append_line(Path("/dev/null"), b"host ssh-ed25519 AAAA")


def test_append_refuses_text_that_would_become_several_lines(tmp_path: Path) -> None:
    target = tmp_path / "f"
    with pytest.raises(ValueError, match="single line"):
        append_line(target, b"one\ntwo")
    assert not target.exists()
