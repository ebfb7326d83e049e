"""Asking the user for passwords, passphrases, keyboard-interactive answers (RFC 4256 §3.3) and
unknown host keys, on the controlling terminal like ssh(1) does.

Questions go to ``/dev/tty``, never to stdin or stdout, which carry the remote command's data;
secrets are read with echo off. ``SSHTUI_ASKPASS`` names a program that asks instead (as OpenSSH's
``SSH_ASKPASS`` with ``SSH_ASKPASS_REQUIRE=force``): it gets the prompt as its only argument, its
standard output minus the line end is the answer, and a non-zero exit means the user cancelled.
In BatchMode nothing is ever asked: every prompt is answered "cancelled" and unknown host keys
are refused.

Authentication tells the prompter what a password or passphrase is for (the account, the key file)
and then whether it worked (``secret_result``), so that a prompter can offer to remember it, as the
app's does with the keyring; this one remembers nothing.

Terminal prompts block the event loop on purpose: nothing else can usefully happen during
authentication, and Ctrl-C then interrupts the read directly so the echo setting is restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from sshtui.net.trust import UnknownHostQuestion

ASKPASS_ENV = "SSHTUI_ASKPASS"
TTY_PATH = "/dev/tty"
MAX_ANSWER_BYTES = 8192
MAX_CONFIRM_TRIES = 5


def read_tty(prompt: str, *, echo: bool, tty_path: str = TTY_PATH) -> str | None:
    """Ask on the terminal; None when there is no terminal, it went away, or it reached end of file."""
    try:
        fd = os.open(tty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    saved = None
    try:
        if not echo:
            # Echo goes off before the prompt appears, so nothing typed in answer is ever shown;
            # TCSAFLUSH drops typeahead that was meant for something else.
            try:
                saved = termios.tcgetattr(fd)
                quiet = list(saved)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
            except termios.error:
                saved = None
        os.write(fd, prompt.encode("utf-8", "replace"))
        return _read_line(fd)
    except OSError:
        return None
    finally:
        if saved is not None:
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
                os.write(fd, b"\n")  # the user's Enter was not echoed
        os.close(fd)


def _read_line(fd: int) -> str | None:
    data = bytearray()
    while not data.endswith(b"\n") and len(data) <= MAX_ANSWER_BYTES:
        chunk = os.read(fd, 1024)
        if not chunk:
            if not data:
                return None
            break
        data += chunk
    return data.decode("utf-8", "replace").rstrip("\r\n")


async def run_askpass(program: str, prompt: str) -> str | None:
    """The answer an askpass program printed; None when it failed or could not be started."""
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            prompt,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await process.communicate()
    except OSError as exc:
        print(f"sshtui: cannot run {ASKPASS_ENV} program {program}: {exc.strerror or exc}", file=sys.stderr)
        return None
    if process.returncode != 0:
        return None
    return output[:MAX_ANSWER_BYTES].decode("utf-8", "replace").rstrip("\r\n")


class Prompter:
    """The prompt callbacks ``AuthOptions`` and the host key trust policy call."""

    def __init__(
        self,
        *,
        batch_mode: bool = False,
        askpass: str | None = None,
        tty_path: str = TTY_PATH,
        messages: TextIO | None = None,
    ) -> None:
        self.batch_mode = batch_mode
        self.askpass = askpass
        self._tty_path = tty_path
        self._messages = messages

    @classmethod
    def from_environment(cls, *, batch_mode: bool) -> Prompter:
        return cls(batch_mode=batch_mode, askpass=os.environ.get(ASKPASS_ENV) or None)

    async def ask(self, prompt: str, *, echo: bool) -> str | None:
        """One question; None when it cannot be asked or the user cancelled."""
        if self.batch_mode:
            return None
        if self.askpass:
            return await run_askpass(self.askpass, prompt)
        return read_tty(prompt, echo=echo, tty_path=self._tty_path)

    async def password(self, prompt: str, *, account: str | None = None) -> str | None:
        """A login password; ``account`` (``user@host:port``) says whose, for prompters that
        remember passwords. This one does not: it asks every time."""
        return await self.ask(prompt, echo=False)

    async def passphrase(self, prompt: str, *, key_path: Path | None = None) -> str | None:
        """The passphrase of the private key in ``key_path``; asked every time here."""
        return await self.ask(prompt, echo=False)

    async def secret_result(self, secret_id: str, ok: bool) -> None:
        """The secret last given for ``secret_id`` (its keyring name: ``passphrase:/path`` or
        ``password:user@host:port``) decrypted the key or was accepted by the server (``ok``), or
        not. A prompter that remembers secrets stores or forgets it now; this one keeps nothing."""

    async def keyboard_interactive(
        self, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]
    ) -> Sequence[str] | None:
        if self.batch_mode:
            return None
        for text in (name, instruction):
            if text:
                self._say(text)
        answers = []
        for prompt, echo in prompts:
            answer = await self.ask(prompt, echo=echo)
            if answer is None:
                return None
            answers.append(answer)
        return answers

    async def confirm_host_key(self, question: UnknownHostQuestion) -> bool:
        """ssh(1)'s question about an unknown host key: yes, no, or the key's fingerprint."""
        if self.batch_mode:
            return False
        fingerprint = question.fingerprint
        prompt = question.prompt.rstrip() + " "
        for _ in range(MAX_CONFIRM_TRIES):
            answer = await self.ask(prompt, echo=True)
            if answer is None:
                return False
            word = answer.strip()
            if word.lower() == "yes" or (fingerprint and word == fingerprint):
                return True
            if word.lower() == "no":
                return False
            prompt = "Please type 'yes', 'no' or the fingerprint: "
        return False

    def banner(self, text: str) -> None:
        """Server banners (RFC 4252 §5.4) go to stderr as ssh(1) shows them; core escaped them."""
        self._say(text)

    def notice(self, text: str) -> None:
        """Something authentication wants the user to know, such as a key given up on after wrong
        passphrases; shown where banners go, so a prompter that shows banners elsewhere shows
        these there too."""
        shown = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
        self.banner(f"sshtui: {shown}")

    def _say(self, text: str) -> None:
        stream = self._messages or sys.stderr
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
