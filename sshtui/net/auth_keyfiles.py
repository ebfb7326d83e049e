"""Identity files for authentication: which can be offered, and unlocking them (RFC 4252 §7).

A key's public half comes from the ``.pub`` beside it or from the key file; an encrypted file that
hides it too (PEM, PKCS#8) is offered only after it is unlocked. A passphrase is asked at most
``MAX_PASSPHRASE_TRIES`` times, and whoever asked can hear whether each one decrypted the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sshtui.ssh.crypto.hostkeys import KeyFormatError, PrivateKey
from sshtui.ssh.crypto.userkeys import PassphraseRequired, WrongPassphrase
from sshtui.store.keyfiles import KeyFileError, read_private_key, read_public_half, read_public_key

PasswordPrompt = Callable[[str], Awaitable[str | None]]
SecretWorked = Callable[[bool], Awaitable[None]]
MAX_PASSPHRASE_TRIES = 3


class PassphraseTriesExhausted(KeyFileError):
    """Every passphrase typed for a key was wrong."""


@dataclass(frozen=True, slots=True)
class KeyFile:
    """An identity file, loaded only when it is to sign. ``blob`` is None while the public half is
    unknown: the file is encrypted and hides it, so the key is unlocked before it is offered."""

    path: Path
    blob: bytes | None = field(repr=False)


def key_files(paths: Sequence[Path]) -> tuple[list[KeyFile], list[str]]:
    """The identity files that may be offered, and ``"path: reason"`` for those that may not.

    The public half comes from the ``.pub`` beside the key or, failing that, from the key file."""
    usable: list[KeyFile] = []
    skipped: list[str] = []
    for path in paths:
        pub = path.with_name(path.name + ".pub")
        try:
            if pub.exists():
                usable.append(KeyFile(path, read_public_key(pub)[0]))
                continue
        except KeyFormatError:
            pass  # a damaged .pub: the key file itself may still say what its public half is
        try:
            usable.append(KeyFile(path, read_public_half(path)))
        except PassphraseRequired:
            usable.append(KeyFile(path, None))
        except KeyFormatError as exc:
            skipped.append(exc.message)
    return usable, skipped


async def unlock_key_file(
    path: Path, prompt: PasswordPrompt | None, worked: SecretWorked | None = None
) -> PrivateKey:
    """The private key in ``path``, asking for its passphrase when it has one, at most
    ``MAX_PASSPHRASE_TRIES`` times; ``worked`` hears whether each passphrase given decrypted it.
    Raises ``KeyFormatError`` whose message says why it cannot be used: cancelled, no passphrase
    typed, wrong every time (``PassphraseTriesExhausted``), ..."""
    passphrase: bytes | None = None
    question = f"Enter passphrase for key '{path}': "
    for attempt in range(MAX_PASSPHRASE_TRIES + 1):
        try:
            key = await asyncio.to_thread(read_private_key, path, passphrase)
        except PassphraseRequired:
            pass
        except WrongPassphrase:
            if worked is not None and passphrase is not None:
                await worked(False)
            if attempt == MAX_PASSPHRASE_TRIES:
                reason = f"wrong passphrase {MAX_PASSPHRASE_TRIES} times"
                raise PassphraseTriesExhausted(path, reason) from None
            question = f"Bad passphrase, try again for key '{path}': "
        else:
            if worked is not None and passphrase is not None:
                await worked(True)
            return key
        if prompt is None:
            raise KeyFileError(path, "encrypted, and no passphrase can be asked for here (BatchMode)")
        answer = await prompt(question)
        if answer is None:
            raise KeyFileError(path, "passphrase entry cancelled")
        if not answer:  # as ssh(1): an empty answer means "skip this key"
            raise KeyFileError(path, "no passphrase given")
        passphrase = answer.encode()
    raise AssertionError("unreachable: the last try returns or raises")
