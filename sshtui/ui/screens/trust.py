"""The trust manager: every known_hosts entry (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT") from every
file, searchable, removable line by line after a confirmation, and checkable against the key a
server presents now (RFC 4251 §4.1). Host key rotations learned through UpdateHostKeys (OpenSSH
PROTOCOL §2.5) are listed when the app passes them in.

The screen never connects by itself: checking calls the ``fetch_host_key`` callback the app gives,
so the app decides how (ssh_config, jump hosts, timeouts). Errors become notifications.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from sshtui.net.hostkey_rotation import LearnedRotation
from sshtui.ssh.errors import SSHError
from sshtui.store import known_hosts
from sshtui.store.known_hosts import KnownHosts, TrustDecision
from sshtui.store.known_hosts_format import KnownHostEntry, KnownHostsError
from sshtui.ui.screens.dialogs import ConfirmDialog, SecretDialog

# Fetch the host key a server presents now: (host, port) -> key blob. Raise SSHError or OSError.
HostKeyFetcher = Callable[[str, int], Awaitable[bytes]]
SYSTEM_FILES = (Path("/etc/ssh/ssh_known_hosts"), Path("/etc/ssh/ssh_known_hosts2"))
USER_FILE_NAMES = ("known_hosts", "known_hosts2")
HASHED_LABEL = "(hashed name)"
PANELS_CSS = Path(__file__).resolve().parent.parent / "panels.tcss"


def default_files(home: Path | None = None) -> list[Path]:
    """The user's files (as UserKnownHostsFile) then the system ones (GlobalKnownHostsFile)."""
    ssh_dir = (home if home is not None else Path.home()) / ".ssh"
    return [ssh_dir / name for name in USER_FILE_NAMES] + list(SYSTEM_FILES)


def hosts_label(entry: KnownHostEntry) -> str:
    return HASHED_LABEL if entry.hosts.hashed else entry.hosts.text


def matches_search(entry: KnownHostEntry, query: str) -> bool:
    """Text search over what the row shows; a host name also finds the hashed lines for it."""
    query = query.strip().lower()
    if not query:
        return True
    shown = " ".join((entry.location, hosts_label(entry), entry.marker or "", entry.key_type,
                      entry.fingerprint, entry.comment)).lower()
    if query in shown:
        return True
    try:
        host, port = known_hosts.split_host_port(query)
    except KnownHostsError:
        return False
    return entry.hosts.hashed and entry.matches(host, port)


def concrete_host(entry: KnownHostEntry) -> tuple[str, int] | None:
    """The first plain host name of a line (no wildcard, not negated), to check it live."""
    for negated, pattern, wild in entry.hosts.patterns:
        if not negated and not wild:
            try:
                return known_hosts.split_host_port(pattern)
            except KnownHostsError:
                continue
    return None


def describe_check(decision: TrustDecision) -> Text:
    name = decision.lookup_name
    head = f"{name} presents {decision.key_type} {decision.fingerprint}: "
    if decision.status == "trusted" and decision.matched is not None:
        return Text(head + f"trusted by {decision.matched.location}", style="green")
    if decision.status == "revoked" and decision.matched is not None:
        return Text(head + f"REVOKED at {decision.matched.location}", style="bold red")
    if decision.status == "changed":
        where = ", ".join(f"{e.location} ({e.fingerprint})" for e in decision.conflicts)
        return Text(head + f"CHANGED: known_hosts holds another key at {where}", style="bold red")
    others = ", ".join(sorted(decision.known_types))
    extra = f" (keys of other types are known: {others})" if others else ""
    return Text(head + "not in known_hosts" + extra, style="yellow")


class TrustScreen(Screen[None]):
    """All known_hosts entries; / to search, d to remove, c to check against the live server."""

    CSS_PATH = str(PANELS_CSS)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_search", "Search", id="trust.search"),
        Binding("d,delete", "remove", "Remove", id="trust.remove"),
        Binding("c", "check", "Check live", id="trust.check"),
        Binding("r", "reload", "Reload", id="trust.reload"),
        Binding("escape", "close", "Close", id="trust.close"),
    ]

    def __init__(
        self,
        files: Sequence[Path] | None = None,
        *,
        fetch_host_key: HostKeyFetcher | None = None,
        rotations: Sequence[LearnedRotation] = (),
    ) -> None:
        super().__init__(id="trust-screen")
        self.files = list(files) if files is not None else default_files()
        self.fetch_host_key = fetch_host_key
        self.rotations = tuple(rotations)
        self.known = KnownHosts()
        self.shown: list[KnownHostEntry] = []

    def compose(self) -> ComposeResult:
        yield Label("Known hosts", classes="panel-title")
        yield Input(placeholder="search: host, key type, fingerprint, file", id="trust-search")
        table: DataTable[Text] = DataTable(id="trust-table", cursor_type="row", zebra_stripes=True)
        for key, label in (("location", "File:line"), ("hosts", "Hosts"), ("marker", "Marker"),
                           ("type", "Key type"), ("fingerprint", "Fingerprint")):
            table.add_column(label, key=key)
        yield table
        yield Static(id="trust-check", markup=False)
        yield Static(id="trust-warnings", markup=False)
        yield Static(id="trust-rotations", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self._show_rotations()
        self.query_one("#trust-table", DataTable).focus()

    # -- the list

    def reload(self) -> None:
        self.known = KnownHosts.load(self.files)
        warnings = "\n".join(str(w) for w in self.known.warnings[:20])
        more = len(self.known.warnings) - 20
        if more > 0:
            warnings += f"\n… and {more} more skipped lines"
        self.query_one("#trust-warnings", Static).update(Text(warnings, style="yellow"))
        self._fill()

    def _fill(self) -> None:
        query = self.query_one("#trust-search", Input).value
        self.shown = [e for e in self.known.entries if matches_search(e, query)]
        table = self.query_one("#trust-table", DataTable)
        table.clear()
        for entry in self.shown:
            hosts = Text(hosts_label(entry), style="italic" if entry.hosts.hashed else "")
            marker = Text(entry.marker or "", style="bold red" if entry.marker == known_hosts.REVOKED else "")
            table.add_row(Text(entry.location), hosts, marker, Text(entry.key_type), Text(entry.fingerprint),
                          key=entry.location)

    def _show_rotations(self) -> None:
        if not self.rotations:
            return
        text = Text("Learned host key rotations\n", style="bold")
        for rotation in self.rotations:
            text.append(rotation.describe() + "\n")
        self.query_one("#trust-rotations", Static).update(text)

    @on(Input.Changed, "#trust-search")
    def _search(self) -> None:
        self._fill()

    @on(Input.Submitted, "#trust-search")
    def _search_done(self) -> None:
        self.query_one("#trust-table", DataTable).focus()

    def selected(self) -> KnownHostEntry | None:
        table = self.query_one("#trust-table", DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def rows(self) -> list[list[str]]:
        """The table as shown, one list of cell texts per row."""
        table = self.query_one("#trust-table", DataTable)
        return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]

    # -- actions

    def action_focus_search(self) -> None:
        self.query_one("#trust-search", Input).focus()

    def action_close(self) -> None:
        if self.query_one("#trust-search", Input).has_focus:
            self.query_one("#trust-table", DataTable).focus()
            return
        self.dismiss(None)

    def action_reload(self) -> None:
        self.reload()

    def action_remove(self) -> None:
        entry = self.selected()
        if entry is None:
            self.notify("no entry selected", severity="warning")
            return
        question = (
            f"Remove this line from {entry.path}?\n\n{entry.location}\n{hosts_label(entry)}\n"
            f"{entry.marker + ' ' if entry.marker else ''}{entry.key_type} {entry.fingerprint}\n\n"
            f"The previous file is kept as {entry.path.name}.old."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._remove(entry)

        self.app.push_screen(ConfirmDialog(question, yes="Remove"), answered)

    def _remove(self, entry: KnownHostEntry) -> None:
        try:
            removed = known_hosts.remove_entry(entry)
        except KnownHostsError as exc:
            self.notify(exc.message, title="Not removed", severity="error", markup=False)
            return
        if removed:
            self.notify(f"removed {entry.location}", markup=False)
        else:
            self.notify(f"{entry.path} changed since it was read; nothing removed, list reloaded",
                        severity="warning", markup=False)
        self.reload()

    def action_check(self) -> None:
        if self.fetch_host_key is None:
            self.notify("checking a live server is not available here", severity="warning")
            return
        entry = self.selected()
        target = concrete_host(entry) if entry is not None else None
        if target is not None:
            self._check(*target)
            return

        def answered(text: str | None) -> None:
            if not text:
                return
            try:
                host, port = known_hosts.split_host_port(text.strip())
            except KnownHostsError as exc:
                self.notify(exc.message, severity="error", markup=False)
                return
            self._check(host, port)

        self.app.push_screen(SecretDialog("Check a host", "Host to check (host or [host]:port)", echo=True),
                             answered)

    @work(exclusive=True, group="trust-check", exit_on_error=False)
    async def _check(self, host: str, port: int) -> None:
        fetch = self.fetch_host_key
        assert fetch is not None
        result = self.query_one("#trust-check", Static)
        result.update(Text(f"checking {known_hosts.host_lookup_name(host, port)} …", style="dim"))
        try:
            blob = await fetch(host, port)
            decision = KnownHosts.load(self.files).check(host, port, blob)
        except Exception as exc:  # whatever the connection raised, it is a notification
            message = exc.message if isinstance(exc, SSHError) else str(exc) or type(exc).__name__
            result.update(Text(f"{host}: {message}", style="red"))
            self.notify(f"{host}: {message}", title="Check failed", severity="error", markup=False)
            return
        result.update(describe_check(decision))
