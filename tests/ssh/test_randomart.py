"""Randomart must be the very picture OpenSSH's ``ssh-keygen -lv`` draws, for every key type."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sshtui.ssh.crypto.hostkeys import parse_openssh_public_line
from sshtui.ssh.crypto.randomart import (
    BOARD_HEIGHT,
    BOARD_WIDTH,
    key_bits,
    key_label,
    key_randomart,
    randomart,
)

SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
needs_keygen = pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="OpenSSH ssh-keygen is not installed")

KEY_SPECS = [
    ("ed25519", None, "ED25519", 256),
    ("ecdsa", 256, "ECDSA", 256),
    ("ecdsa", 384, "ECDSA", 384),
    ("ecdsa", 521, "ECDSA", 521),
    ("rsa", 3072, "RSA", 3072),
]


def keygen(directory: Path, kind: str, bits: int | None) -> Path:
    path = directory / f"id_{kind}_{bits or 0}"
    size = ["-b", str(bits)] if bits else []
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, *size, "-N", "", "-C", "art@test", "-f", str(path)],
        check=True, capture_output=True,
    )
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int | None], Path]:
    if not Path(SSH_KEYGEN).exists():
        pytest.skip("OpenSSH ssh-keygen is not installed")
    directory = tmp_path_factory.mktemp("randomart")
    return {(kind, bits): keygen(directory, kind, bits) for kind, bits, _, _ in KEY_SPECS}


@needs_keygen
@pytest.mark.parametrize("hash_name", ["SHA256", "MD5"])
@pytest.mark.parametrize(("kind", "bits", "label", "size"), KEY_SPECS)
def test_picture_matches_ssh_keygen(
    keys: dict[tuple[str, int | None], Path],
    kind: str,
    bits: int | None,
    label: str,
    size: int,
    hash_name: str,
) -> None:
    path = keys[(kind, bits)]
    output = subprocess.run(
        [SSH_KEYGEN, "-lv", "-E", hash_name.lower(), "-f", f"{path}.pub"],
        check=True, capture_output=True, text=True,
    ).stdout
    summary, *picture = output.rstrip("\n").split("\n")
    blob, _ = parse_openssh_public_line(Path(f"{path}.pub").read_text())

    assert key_randomart(blob, hash_name) == "\n".join(picture)
    assert summary.split()[0] == str(key_bits(blob)) == str(size)
    assert summary.endswith(f"({key_label(blob)})") and key_label(blob) == label


def test_all_zero_digest_walks_into_the_top_left_corner() -> None:
    # Every two-bit step of a zero byte moves up and left; the walls stop the bishop in the corner.
    picture = randomart(bytes(4), "TEST 1", "X").split("\n")
    rows = [row[1:-1] for row in picture[1:-1]]
    centre_x, centre_y = BOARD_WIDTH // 2, BOARD_HEIGHT // 2
    visited = {(centre_x - step, centre_y - step) for step in range(1, centre_y + 1)}
    visited |= {(x, 0) for x in range(1, centre_x - centre_y + 1)}
    for y, row in enumerate(rows):
        for x, symbol in enumerate(row):
            if (x, y) == (0, 0):
                expected = "E"
            elif (x, y) == (centre_x, centre_y):
                expected = "S"
            else:
                expected = "." if (x, y) in visited else " "
            assert symbol == expected, (x, y)


def test_frame_names_key_and_hash_centred() -> None:
    picture = randomart(bytes(32), "ED25519 256", "SHA256").split("\n")
    assert picture[0] == "+--[ED25519 256]--+"
    assert picture[-1] == "+----[SHA256]-----+"
    assert all(len(line) == BOARD_WIDTH + 2 for line in picture)
    assert len(picture) == BOARD_HEIGHT + 2
