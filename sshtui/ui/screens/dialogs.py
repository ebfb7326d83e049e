"""Modal dialogs: host key trust (RFC 4251 §4.1), authentication prompts (RFC 4252 §8, RFC 4256 §3.2),
the host form, confirmations and error details.

Every text that comes from a server or a file is shown without markup, so a host cannot style
or forge what the dialog says. Secrets typed here are returned to the caller and kept nowhere.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from sshtui.net.trust import HostKeyRevoked, HostKeyTrustError, UnknownHostQuestion
from sshtui.ssh.crypto.randomart import key_randomart
from sshtui.ssh.errors import SSHError
from sshtui.store import known_hosts
from sshtui.store.hosts import Host, HostsError
from sshtui.ui.driver import HostKeyChoice
from sshtui.ui.models import parse_list, parse_tags


def plain(text: str) -> Text:
    """Text shown exactly as given: no markup, no highlighting."""
    return Text(text)


def _randomart(blob: bytes) -> str:
    try:
        return key_randomart(blob)
    except SSHError:
        return ""


class UnknownHostKeyDialog(ModalScreen[HostKeyChoice]):
    """First contact with a host: its key type, SHA256 fingerprint and randomart; save, once or cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('save')", "Accept and save", id="hostkey.save"),
        Binding("o", "choose('once')", "Accept once", id="hostkey.once"),
        Binding("escape,n", "choose('cancel')", "Cancel", id="hostkey.cancel"),
    ]

    def __init__(self, question: UnknownHostQuestion, key_blob: bytes) -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.key_blob = key_blob

    def compose(self) -> ComposeResult:
        q = self.question
        where = q.host if q.port == known_hosts.DEFAULT_PORT else f"{q.host} port {q.port}"
        with Vertical(id="dialog-box"):
            yield Label("Unknown host key", classes="dialog-title")
            yield Static(plain(f"The authenticity of {where} can't be established."), id="hostkey-intro")
            yield Static(plain(f"Host:        {where}"), id="hostkey-host")
            yield Static(plain(f"Key type:    {q.key_type}"), id="hostkey-type")
            yield Static(plain(f"Fingerprint: {q.fingerprint}"), id="hostkey-fingerprint")
            if q.known_types:
                yield Static(plain(f"Other key types already known for it: {', '.join(q.known_types)}"))
            art = _randomart(self.key_blob)
            if art:
                yield Static(plain(art), id="hostkey-randomart")
            yield Static(
                plain("Check the fingerprint with the server's administrator before trusting it."),
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Accept and save (s)", id="accept-save", variant="primary")
                yield Button("Accept once (o)", id="accept-once")
                yield Button("Cancel (esc)", id="cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_choose(self, choice: HostKeyChoice) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choices: dict[str | None, HostKeyChoice] = {"accept-save": "save", "accept-once": "once"}
        self.dismiss(choices.get(event.button.id, "cancel"))


class HostKeyRefusedScreen(ModalScreen[bool]):
    """A changed or revoked host key: the connection is refused. Shows both fingerprints and where
    the old key is written; removing the old key needs the host name typed out. Dismisses with
    True when old entries were removed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="refused.close")]

    def __init__(self, error: HostKeyTrustError, key_blob: bytes) -> None:
        super().__init__(classes="dialog danger")
        self.error = error
        self.key_blob = key_blob
        self.revoked = isinstance(error, HostKeyRevoked)

    @property
    def host_name(self) -> str:
        return self.error.decision.host

    def compose(self) -> ComposeResult:
        decision = self.error.decision
        with VerticalScroll(id="dialog-box"):
            title = "REVOKED HOST KEY" if self.revoked else "REMOTE HOST IDENTIFICATION HAS CHANGED"
            yield Label(f"WARNING: {title}", classes="dialog-title")
            yield Static(plain(f"Host: {decision.lookup_name}"), id="refused-host")
            yield Static(
                plain(f"Key sent now: {decision.key_type} {decision.fingerprint}"), id="refused-new"
            )
            if self.revoked and decision.matched is not None:
                yield Static(plain(f"Revoked at {decision.matched.location}"), id="refused-old")
            for entry in decision.conflicts:
                yield Static(
                    plain(f"Known key:    {entry.key_type} {entry.fingerprint}  ({entry.location})"),
                    classes="refused-old",
                )
            yield Static(
                plain(
                    "The connection was refused and nothing was sent to the server. Someone may be "
                    "intercepting this connection (a man-in-the-middle attack), or the server's key was "
                    "replaced. Ask the server's administrator for its new fingerprint before trusting it."
                ),
                id="refused-risk",
            )
            if not self.revoked and decision.conflicts:
                yield Label(plain(f"To remove the old key, type the host name ({self.host_name}):"))
                yield Input(placeholder=self.host_name, id="confirm-host")
            with Horizontal(classes="dialog-buttons"):
                if not self.revoked and decision.conflicts:
                    yield Button("Remove old key", id="remove-old", variant="error", disabled=True)
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Input.Changed, "#confirm-host")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#remove-old", Button).disabled = event.value.strip() != self.host_name

    @on(Button.Pressed, "#remove-old")
    def _remove(self) -> None:
        if self.query_one("#confirm-host", Input).value.strip() != self.host_name:
            return
        decision = self.error.decision
        removed = 0
        paths = dict.fromkeys(Path(entry.path) for entry in decision.conflicts)
        try:
            for path in paths:
                removed += known_hosts.remove(path, decision.host, decision.port)
        except SSHError as exc:
            self.notify(exc.message, title="Could not remove the old key", severity="error", markup=False)
            return
        self.notify(
            f"Removed {removed} old key line(s) for {decision.lookup_name}. Reconnect to check the new key.",
            markup=False,
        )
        self.dismiss(True)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(False)


class SecretDialog(ModalScreen[str | None]):
    """One question: a password, a passphrase, or a prompt whose answer may be shown (``echo``)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, prompt: str, *, echo: bool = False) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.prompt = prompt
        self.echo = echo

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Label(plain(self.prompt), id="prompt-text")
            yield Input(password=not self.echo, id="answer")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        self.dismiss(self.query_one("#answer", Input).value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class KeyboardInteractiveDialog(ModalScreen[list[str] | None]):
    """RFC 4256 §3.2 INFO_REQUEST: name, instruction and each prompt with its echo flag."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="kbdint.cancel")]

    def __init__(self, title: str, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.name_text = name
        self.instruction = instruction
        self.prompts = list(prompts)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(self.name_text or self.title_text), classes="dialog-title")
            if self.instruction:
                yield Static(plain(self.instruction), id="instruction")
            for index, (prompt, echo) in enumerate(self.prompts):
                yield Label(plain(prompt))
                yield Input(password=not echo, id=f"answer-{index}", classes="kbdint-answer")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        answers = self.query(".kbdint-answer")
        (answers.first() if answers else self.query_one("#ok")).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        answers = list(self.query(".kbdint-answer").results(Input))
        index = answers.index(event.input)
        if index + 1 < len(answers):
            answers[index + 1].focus()
        else:
            self._submit()

    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        self.dismiss([answer.value for answer in self.query(".kbdint-answer").results(Input)])

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


FORM_FIELDS = (
    ("name", "Name", "web1"),
    ("hostname", "Host name", "web1.example.com"),
    ("port", "Port", "22"),
    ("user", "User", "(default: your login name)"),
    ("tags", "Tags", "prod, web"),
    ("identity_files", "Key files", "~/.ssh/id_ed25519, ..."),
    ("jump_hosts", "Jump hosts", "bastion, admin@gw:2200"),
    ("notes", "Notes", ""),
)


def host_from_form(values: dict[str, str], existing: Collection[str], original: Host | None) -> Host:
    """The host the form describes; ``HostsError`` names the first field that is wrong."""
    name = values.get("name", "").strip()
    if not name:
        raise HostsError("name: give the host a name")
    if name in existing and (original is None or name != original.name):
        raise HostsError(f'name: a host called "{name}" already exists')
    port_text = values.get("port", "").strip() or "22"
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise HostsError(f"port: must be a number from 1 to 65535, not {port_text!r:.20}")
    hostname = values.get("hostname", "").strip()
    if not hostname:
        raise HostsError("hostname: give a host name or IP address")
    return Host(
        name=name,
        hostname=hostname,
        port=int(port_text),
        user=values.get("user", "").strip() or None,
        tags=parse_tags(values.get("tags", "")),
        identity_files=parse_list(values.get("identity_files", "")),
        jump_hosts=parse_list(values.get("jump_hosts", "")),
        notes=values.get("notes", "").strip(),
        forwards=original.forwards if original is not None else (),
        color=original.color if original is not None else None,
    )


class HostFormDialog(ModalScreen[Host | None]):
    """Add, edit or duplicate a saved host; the host is checked before the dialog closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save"),
    ]

    def __init__(self, title: str, existing: Collection[str], host: Host | None = None, *,
                 editing: bool = False) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.existing = frozenset(existing)
        self.host = host
        self.editing = editing

    def _initial(self, field_name: str) -> str:
        host = self.host
        if host is None:
            return ""
        value = getattr(host, field_name)
        if field_name == "name" and not self.editing:
            value = f"{host.name}-copy"
        if isinstance(value, tuple):
            return ", ".join(value)
        return "" if value is None else str(value)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            for field_name, label, placeholder in FORM_FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(self._initial(field_name), placeholder=placeholder, id=f"field-{field_name}")
            yield Static("", id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#field-name", Input).focus()

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#field-{name}", Input).value for name, _, _ in FORM_FIELDS}

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        original = self.host if self.editing else None
        try:
            host = host_from_form(self.values(), self.existing, original)
        except HostsError as exc:
            self.query_one("#form-error", Static).update(plain(exc.message))
            self.add_class("invalid")
            return
        self.dismiss(host)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", id="confirm.no"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(plain(self.question), id="question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (esc)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class DetailDialog(ModalScreen[None]):
    """The whole text behind a one-line error or notice."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close", id="detail.close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(plain(self.text), id="detail-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
