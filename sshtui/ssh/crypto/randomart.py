"""Fingerprint "randomart", the drunken-bishop picture ``ssh-keygen -lv`` and VisualHostKey draw.

No RFC describes it; the reference is OpenSSH's own output and the analysis in "The drunken bishop:
An analysis of the OpenSSH fingerprint visualization algorithm" (Loss, Limmer, von Gernler, 2009).
A bishop starts in the centre of a 17 x 9 board and, for every byte of the fingerprint digest,
makes four diagonal moves (two bits each, least significant pair first), sliding along a wall it
would cross. Each square shows how often it was visited; the start is ``S`` and the end ``E``.
The top border names the key type and size, the bottom one the digest, both centred as OpenSSH
centres them (an odd leftover dash goes to the right).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from sshtui.ssh.crypto.hostkeys import KeyFormatError, public_key_from_blob, public_key_type

BOARD_WIDTH = 17
BOARD_HEIGHT = 9
# Visit counts 0..14 use the first fifteen symbols; the last two mark the start and the end.
SYMBOLS = " .o+=*BOX@%&#/^SE"
_MAX_VISITS = len(SYMBOLS) - 3
_START = len(SYMBOLS) - 2
_END = len(SYMBOLS) - 1
# ssh-keygen's title buffer holds BOARD_WIDTH bytes including the C string terminator.
_MAX_LABEL = BOARD_WIDTH - 1

DIGESTS: Mapping[str, Callable[[bytes], bytes]] = MappingProxyType(
    {
        "SHA256": lambda data: hashlib.sha256(data).digest(),
        "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
    }
)

# The short names ssh-keygen prints in the border and after the fingerprint.
_KEY_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "ssh-ed25519": "ED25519",
        "ecdsa-sha2-nistp256": "ECDSA",
        "ecdsa-sha2-nistp384": "ECDSA",
        "ecdsa-sha2-nistp521": "ECDSA",
        "ssh-rsa": "RSA",
    }
)
_FIXED_BITS: Mapping[str, int] = MappingProxyType(
    {
        "ssh-ed25519": 256,
        "ecdsa-sha2-nistp256": 256,
        "ecdsa-sha2-nistp384": 384,
        "ecdsa-sha2-nistp521": 521,
    }
)


def key_label(blob: bytes) -> str:
    """The upper-case key family ssh-keygen shows: ``ED25519``, ``ECDSA`` or ``RSA``."""
    key_type = public_key_type(blob)
    label = _KEY_LABELS.get(key_type)
    if label is None:
        raise KeyFormatError(f"unsupported public key type {key_type!r:.64}")
    return label


def key_bits(blob: bytes) -> int:
    """The key size ssh-keygen reports: the curve size, or the RSA modulus length in bits."""
    key_type = public_key_type(blob)
    if key_type in _FIXED_BITS:
        return _FIXED_BITS[key_type]
    key = public_key_from_blob(blob)
    return key.key_size  # type: ignore[union-attr]  # only RSA keys are left here


def randomart(digest: bytes, title: str, hash_name: str) -> str:
    """The framed picture of ``digest``, without a trailing newline."""
    visits = [[0] * BOARD_HEIGHT for _ in range(BOARD_WIDTH)]
    x, y = BOARD_WIDTH // 2, BOARD_HEIGHT // 2
    for byte in digest:
        for _ in range(4):
            x = min(max(x + (1 if byte & 1 else -1), 0), BOARD_WIDTH - 1)
            y = min(max(y + (1 if byte & 2 else -1), 0), BOARD_HEIGHT - 1)
            if visits[x][y] < _MAX_VISITS:
                visits[x][y] += 1
            byte >>= 2
    visits[BOARD_WIDTH // 2][BOARD_HEIGHT // 2] = _START
    visits[x][y] = _END
    rows = ["|" + "".join(SYMBOLS[visits[col][row]] for col in range(BOARD_WIDTH)) + "|"
            for row in range(BOARD_HEIGHT)]
    return "\n".join([_border(f"[{title}]"), *rows, _border(f"[{hash_name}]")])


def _border(label: str) -> str:
    label = label[:_MAX_LABEL]
    left = (BOARD_WIDTH - len(label)) // 2
    return "+" + "-" * left + label + "-" * (BOARD_WIDTH - left - len(label)) + "+"


def key_title(blob: bytes) -> str:
    """``ED25519 256``: the text of the top border, as ssh-keygen writes it."""
    title = f"{key_label(blob)} {key_bits(blob)}"
    # ssh-keygen drops the size when "[type size]" does not fit the border.
    return title if len(title) + 2 <= BOARD_WIDTH else key_label(blob)


def key_randomart(blob: bytes, hash_name: str = "SHA256") -> str:
    """The picture ``ssh-keygen -lv -E hash`` draws for a public key blob."""
    digest = DIGESTS.get(hash_name)
    if digest is None:
        raise KeyFormatError(f"unknown fingerprint hash {hash_name!r:.20}; use SHA256 or MD5")
    return randomart(digest(blob), key_title(blob), hash_name)
