"""The password and passphrase dialog that can remember what is typed (RFC 4252 §7 and §8 secrets).

It is ``SecretDialog`` (the answer field stays masked) with a "remember" checkbox, off by default
and reached with Tab, toggled with Space; its label says where a remembered secret would go: the
keyring, or memory until sshtui exits. A note above the prompt says when a remembered secret
failed and was forgotten. The dialog only reports the choice: storing waits until the secret
has worked (``sshtui.ui.dialog_prompter``).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static

from sshtui.ui.screens.dialogs import SecretDialog, plain


class RememberSecretDialog(SecretDialog):
    """A password or passphrase, plus ``remember``: whether the user ticked the checkbox."""

    DEFAULT_CSS = """
    RememberSecretDialog #remember { margin: 1 0 0 0; }
    RememberSecretDialog #secret-note { color: $warning; margin: 0 0 1 0; }
    """

    def __init__(self, title: str, prompt: str, *, remember_label: str, note: str = "") -> None:
        super().__init__(title, prompt, echo=False)
        self.remember_label = remember_label
        self.note = note
        self.remember = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            if self.note:
                yield Static(plain(self.note), id="secret-note")
            yield Label(plain(self.prompt), id="prompt-text")
            yield Input(password=True, id="answer")
            yield Checkbox(plain(self.remember_label), value=False, id="remember")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    @on(Checkbox.Changed, "#remember")
    def _remember_changed(self, event: Checkbox.Changed) -> None:
        self.remember = event.value
