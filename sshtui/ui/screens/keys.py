"""The keys screen: the user's key files (OpenSSH PROTOCOL.key private keys, RFC 4253 §6.6 public
key blobs), their fingerprints and randomart; generate a key, change its passphrase, copy or export
its public key (the ``authorized_keys`` line).

All file work goes through ``sshtui.store.keys``; the slow parts (key generation, the bcrypt KDF)
run off the event loop. Passphrases typed here are handed to the store and kept nowhere.
Errors become notifications.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from sshtui.ssh.crypto.randomart import key_randomart
from sshtui.ssh.errors import SSHError
from sshtui.store import keys as keystore
from sshtui.store.keys import KeyInfo
from sshtui.ui.screens.dialogs import DetailDialog

PANELS_CSS = Path(__file__).resolve().parent.parent / "panels.tcss"


def _problem(exc: Exception) -> str:
    return exc.message if isinstance(exc, SSHError) else (getattr(exc, "strerror", None) or str(exc))


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    path: Path
    kind: str
    comment: str
    passphrase: bytes | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class PassphraseChange:
    old: bytes | None = field(repr=False)
    new: bytes | None = field(repr=False)


class KeyFormDialog(ModalScreen[object]):
    """Base of the two forms: a title, fields, an error line, OK and Cancel."""

    CSS_PATH = str(PANELS_CSS)
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="keyform.cancel")]
    title_text = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="key-form"):
            yield Label(self.title_text, classes="panel-title")
            yield from self.fields()
            yield Static(id="form-error", classes="form-error", markup=False)
            with Horizontal(classes="form-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def fields(self) -> ComposeResult:
        yield from ()

    def value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def fail(self, message: str) -> None:
        self.query_one("#form-error", Static).update(message)

    def result(self) -> object | None:
        """The form's answer, or None after ``fail`` said what is wrong."""
        return None

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        answer = self.result()
        if answer is not None:
            self.dismiss(answer)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def _new_passphrase(self) -> tuple[bool, bytes | None]:
        """Whether both entries agree, and the new passphrase (None for none)."""
        new, again = self.value("#new-passphrase"), self.value("#new-passphrase-again")
        if new != again:
            self.fail("the passphrases do not match")
            return False, None
        return True, new.encode() if new else None


class GenerateKeyDialog(KeyFormDialog):
    title_text = "Generate a key"

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home

    def fields(self) -> ComposeResult:
        yield Label("Type")
        yield Select([(kind, kind) for kind in keystore.KEY_KINDS], value="ed25519", allow_blank=False,
                     id="key-kind")
        yield Label("File")
        yield Input(str(keystore.default_key_path("ed25519", self.home)), id="key-path")
        yield Label("Comment")
        yield Input(keystore.default_comment(), id="key-comment")
        yield Label("Passphrase (empty for none)")
        yield Input(password=True, id="new-passphrase")
        yield Input(password=True, placeholder="again", id="new-passphrase-again")

    @on(Select.Changed, "#key-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#key-path", Input)
        defaults = {str(keystore.default_key_path(kind, self.home)) for kind in keystore.KEY_KINDS}
        if path.value in defaults:  # follow the type only while the user kept a default name
            path.value = str(keystore.default_key_path(str(event.value), self.home))

    def result(self) -> GenerateRequest | None:
        agreed, passphrase = self._new_passphrase()
        if not agreed:
            return None
        path_text = self.value("#key-path").strip()
        if not path_text:
            self.fail("a file name is needed")
            return None
        kind = str(self.query_one("#key-kind", Select).value)
        path = Path(path_text).expanduser()
        return GenerateRequest(path, kind, self.value("#key-comment"), passphrase)


class PassphraseDialog(KeyFormDialog):
    title_text = "Change the passphrase"

    def __init__(self, key: KeyInfo) -> None:
        super().__init__()
        self.key = key

    def fields(self) -> ComposeResult:
        yield Label(str(self.key.path))
        if self.key.encrypted:
            yield Label("Current passphrase")
            yield Input(password=True, id="old-passphrase")
        yield Label("New passphrase (empty to remove it)")
        yield Input(password=True, id="new-passphrase")
        yield Input(password=True, placeholder="again", id="new-passphrase-again")

    def result(self) -> PassphraseChange | None:
        agreed, new = self._new_passphrase()
        if not agreed:
            return None
        old = self.value("#old-passphrase").encode() if self.key.encrypted else None
        return PassphraseChange(old, new)


class KeysScreen(Screen[None]):
    """The key list with the selected key's randomart and public line."""

    CSS_PATH = str(PANELS_CSS)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "generate", "Generate", id="keys.generate"),
        Binding("p", "passphrase", "Passphrase", id="keys.passphrase"),
        Binding("y", "copy", "Copy public key", id="keys.copy"),
        Binding("e", "export", "Export public key", id="keys.export"),
        Binding("r", "reload", "Reload", id="keys.reload"),
        Binding("escape", "close", "Close", id="keys.close"),
    ]

    def __init__(self, directories: Sequence[Path] | None = None, *, home: Path | None = None) -> None:
        super().__init__(id="keys-screen")
        self.home = home
        self.directories = list(directories) if directories is not None else keystore.default_key_dirs(home)
        self.keys: tuple[KeyInfo, ...] = ()

    def compose(self) -> ComposeResult:
        yield Label("Keys", classes="panel-title")
        with Horizontal(id="keys-body"):
            table: DataTable[Text] = DataTable(id="keys-table", cursor_type="row", zebra_stripes=True)
            for key, label in (("file", "File"), ("type", "Type"), ("fingerprint", "Fingerprint"),
                               ("passphrase", "Passphrase"), ("comment", "Comment")):
                table.add_column(label, key=key)
            yield table
            with VerticalScroll(id="keys-detail"):
                yield Static(id="keys-randomart", markup=False)
                yield Static(id="keys-public", markup=False)
        yield Static(id="keys-notes", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#keys-table", DataTable).focus()

    def reload(self, select: Path | None = None) -> None:
        listing = keystore.list_keys(self.directories)
        self.keys = listing.keys
        table = self.query_one("#keys-table", DataTable)
        table.clear()
        for info in self.keys:
            state = "public only" if not info.has_private else ("yes" if info.encrypted else "none")
            table.add_row(Text(str(info.path)), Text(info.label), Text(info.fingerprint), Text(state),
                          Text(info.comment), key=str(info.path))
        notes = [f"{info.path}: {note}" for info in self.keys for note in info.notes]
        notes += [str(skipped) for skipped in listing.skipped]
        self.query_one("#keys-notes", Static).update("\n".join(notes[:20]))
        paths = [info.path for info in self.keys]
        if select in paths:
            table.move_cursor(row=paths.index(select))
        self._show_selected()

    def selected(self) -> KeyInfo | None:
        table = self.query_one("#keys-table", DataTable)
        if not self.keys or not 0 <= table.cursor_row < len(self.keys):
            return None
        return self.keys[table.cursor_row]

    def rows(self) -> list[list[str]]:
        table = self.query_one("#keys-table", DataTable)
        return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]

    @on(DataTable.RowHighlighted, "#keys-table")
    def _show_selected(self) -> None:
        info = self.selected()
        art = public = ""
        if info is not None:
            try:
                art = key_randomart(info.public_blob)
            except SSHError:
                art = ""
            public = info.public_line
        self.query_one("#keys-randomart", Static).update(art)
        self.query_one("#keys-public", Static).update(public)

    # -- actions

    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.reload()

    def action_copy(self) -> None:
        info = self.selected()
        if info is None:
            self.notify("no key selected", severity="warning")
            return
        self.app.copy_to_clipboard(info.public_line)
        self.notify(f"copied the public key of {info.path.name}", markup=False)

    def action_export(self) -> None:
        info = self.selected()
        if info is None:
            self.notify("no key selected", severity="warning")
            return
        try:
            line = keystore.export_public_key(info.path) if info.has_private else info.public_line
        except (SSHError, OSError) as exc:
            line = info.public_line  # an encrypted PEM key without .pub: the listing already knows it
            self.notify(_problem(exc), severity="warning", markup=False)
        self.app.push_screen(DetailDialog(f"Public key of {info.path}", line))

    def action_generate(self) -> None:
        def answered(request: object) -> None:
            if isinstance(request, GenerateRequest):
                self._generate(request)

        self.app.push_screen(GenerateKeyDialog(self.home), answered)

    @work(exclusive=True, group="keys", exit_on_error=False)
    async def _generate(self, request: GenerateRequest) -> None:
        self.notify(f"generating {request.kind} key {request.path} …", markup=False)
        try:
            info = await asyncio.to_thread(
                keystore.generate_key, request.path, request.kind, None, request.comment, request.passphrase
            )
        except (SSHError, OSError) as exc:
            self.notify(_problem(exc), title="Key not generated", severity="error", markup=False)
            return
        self.notify(f"generated {info.path} ({info.fingerprint})", markup=False)
        if info.path.parent not in self.directories:
            self.directories.append(info.path.parent)
        self.reload(select=info.path)

    def action_passphrase(self) -> None:
        info = self.selected()
        if info is None or not info.has_private:
            self.notify("select a private key to change its passphrase", severity="warning")
            return

        def answered(change: object) -> None:
            if isinstance(change, PassphraseChange):
                self._change_passphrase(info, change)

        self.app.push_screen(PassphraseDialog(info), answered)

    @work(exclusive=True, group="keys", exit_on_error=False)
    async def _change_passphrase(self, info: KeyInfo, change: PassphraseChange) -> None:
        try:
            await asyncio.to_thread(keystore.change_passphrase, info.path, change.old, change.new)
        except (SSHError, OSError) as exc:
            self.notify(_problem(exc), title="Passphrase not changed", severity="error", markup=False)
            return
        state = "set" if change.new else "removed"
        self.notify(f"passphrase of {info.path.name} {state}", markup=False)
        self.reload(select=info.path)
