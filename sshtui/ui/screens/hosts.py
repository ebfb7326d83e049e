"""The hosts screen: saved hosts (``hosts.toml``) and ssh_config(5) aliases in one searchable list.

Grouped by tag, each host with its connection state. Typing filters (any printable key that is not a
binding starts the filter); Enter connects; a filter that reads as ``[user@]host[:port]`` offers a
quick connect at the top. Saved hosts can be added, edited, duplicated and deleted through a form
that checks every field before anything is written. ssh_config entries are read-only here:
duplicating one saves a copy to ``hosts.toml``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, OptionList
from textual.widgets.option_list import Option

from sshtui.options_syntax import OptionError, parse_destination
from sshtui.store.hosts import Host, HostsError, HostStore
from sshtui.ui.driver import ConnectionView, ConnState
from sshtui.ui.models import (
    ConnectTarget,
    HostEntry,
    build_entries,
    filter_entries,
    group_entries,
    quick_entry,
)
from sshtui.ui.screens.dialogs import ConfirmDialog, DetailDialog, HostFormDialog

if TYPE_CHECKING:
    from sshtui.ui.app import SshtuiApp

QUICK_PREFIX = "quick:"
STATE_STYLES = {
    ConnState.CONNECTING: "yellow",
    ConnState.CONNECTED: "green",
    ConnState.FAILED: "red",
    ConnState.DROPPED: "red",
    ConnState.CLOSED: "dim",
}


def quick_target(text: str) -> ConnectTarget | None:
    """A quick-connect target when ``text`` reads as ``[user@]host[:port]`` (one word)."""
    text = text.strip()
    if not text or " " in text:
        return None
    try:
        dest = parse_destination(text)
    except OptionError:
        return None
    if not dest.host or dest.host.startswith("-"):
        return None
    return ConnectTarget(text, dest.host, dest.port, dest.user)


class HostList(OptionList):
    """The list itself; printable keys that are not bindings go to the filter."""

    def on_key(self, event: events.Key) -> None:
        bound = {key for binding in self.screen.BINDINGS if isinstance(binding, Binding)
                 for key in binding.key.split(",")}
        if event.is_printable and event.character and event.key not in bound:
            event.stop()
            screen = self.screen
            if isinstance(screen, HostsScreen):
                screen.start_filter(event.character)


class HostsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="hosts.add"),
        Binding("e", "edit", "Edit", id="hosts.edit"),
        Binding("c", "duplicate", "Duplicate", id="hosts.duplicate"),
        Binding("d,delete", "delete", "Delete", id="hosts.delete"),
        Binding("r", "reconnect", "Reconnect", id="hosts.reconnect"),
        Binding("i", "details", "Details", id="hosts.details"),
        Binding("s", "sessions", "Sessions", id="hosts.sessions"),
        Binding("slash", "focus_filter", "Filter", id="hosts.filter"),
        Binding("ctrl+t", "app.trust", "Trust", id="hosts.trust"),
        Binding("ctrl+k", "app.keys", "Keys", id="hosts.keys"),
        Binding("ctrl+f", "app.forwards", "Forwards", id="hosts.forwards"),
    ]

    def __init__(self, store: HostStore, config_aliases: list[str], *, writable: bool = True) -> None:
        super().__init__(id="hosts")
        self.store = store
        self.config_aliases = config_aliases
        self.writable = writable
        self.entries: list[HostEntry] = []
        self.quick: dict[str, HostEntry] = {}  # destinations typed in the filter and connected to
        self.states: dict[str, ConnectionView] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="Filter hosts, or type user@host:port and press Enter", id="filter",
                    select_on_focus=False)
        yield HostList(id="host-list")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "sshtui"
        self.sub_title = "hosts"
        self.reload()
        self.host_list.focus()

    @property
    def sshtui(self) -> SshtuiApp:
        return cast("SshtuiApp", self.app)

    @property
    def host_list(self) -> OptionList:
        return self.query_one("#host-list", OptionList)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#filter", Input)

    # -- the list

    def reload(self) -> None:
        self.entries = build_entries(self.store, self.config_aliases, self.quick.values())
        self.refresh_list()

    def visible_entries(self) -> list[HostEntry]:
        return filter_entries(self.entries, self.filter_input.value)

    def refresh_list(self) -> None:
        host_list = self.host_list
        previous = self.selected_key()
        host_list.clear_options()
        query = self.filter_input.value
        options: list[Option] = []
        visible = self.visible_entries()
        quick = quick_target(query)
        # A bare word is a filter first; it becomes a destination when it matches no host.
        if quick is not None and (any(c in query for c in "@.:") or not visible):
            options.append(Option(Text.assemble(("⚡ Connect to ", "bold"), query.strip()),
                                  id=QUICK_PREFIX + query.strip()))
        for group, entries in group_entries(visible):
            options.append(Option(Text(f"── {group} ──", style="bold"), disabled=True))
            options += [Option(self._prompt(entry), id=f"{group}|{entry.key}") for entry in entries]
        host_list.add_options(options)
        keys = [option.id for option in options]
        target = next((k for k in keys if k and previous and k.split("|", 1)[-1] == previous), None)
        if target is None:
            target = next((o.id for o in options if not o.disabled), None)
        if target is not None:
            host_list.highlighted = keys.index(target)

    def _prompt(self, entry: HostEntry) -> Text:
        text = Text.assemble((f"{entry.name:<20}", "bold"), " ", (f"{entry.address:<32}", ""))
        text.append(f" {entry.source}", style="dim")
        view = self.states.get(entry.key)
        if view is not None:
            text.append(f"  ● {view.status}", style=STATE_STYLES.get(view.state, ""))
        return text

    def selected_key(self) -> str | None:
        host_list = self.host_list
        index = host_list.highlighted
        if index is None or index >= host_list.option_count:
            return None
        option_id = host_list.get_option_at_index(index).id
        return option_id.split("|", 1)[-1] if option_id else None

    def selected_entry(self) -> HostEntry | None:
        key = self.selected_key()
        return next((entry for entry in self.entries if entry.key == key), None)

    def remember_quick(self, target: ConnectTarget) -> None:
        """List a quick-connect destination (once), highlighted, so its state and details show."""
        entry = quick_entry(target)
        if entry.key not in self.quick:
            self.quick[entry.key] = entry
            self.filter_input.value = ""
            self.reload()
        self.highlight(entry.key)

    def highlight(self, key: str) -> None:
        for index in range(self.host_list.option_count):
            option_id = self.host_list.get_option_at_index(index).id
            if option_id and option_id.split("|", 1)[-1] == key:
                self.host_list.highlighted = index
                return

    def connection_updated(self, view: ConnectionView) -> None:
        self.states[view.key] = view
        if not self.query("#host-list"):
            return  # not composed yet, or being torn down: the list is built from ``states`` later
        for index in range(self.host_list.option_count):
            option = self.host_list.get_option_at_index(index)
            if option.id and option.id.split("|", 1)[-1] == view.key:
                entry = next((e for e in self.entries if e.key == view.key), None)
                if entry is not None:
                    self.host_list.replace_option_prompt_at_index(index, self._prompt(entry))

    # -- filtering

    def start_filter(self, character: str) -> None:
        field = self.filter_input
        field.value += character
        field.cursor_position = len(field.value)
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.refresh_list()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self._connect_highlighted()

    def on_key(self, event: events.Key) -> None:
        if self.focused is self.filter_input:
            if event.key == "escape":
                event.stop()
                self.filter_input.value = ""
                self.host_list.focus()
            elif event.key in ("down", "up"):
                event.stop()
                self.host_list.focus()
                if event.key == "down":
                    self.host_list.action_cursor_down()
                else:
                    self.host_list.action_cursor_up()

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    # -- connecting

    @on(OptionList.OptionSelected, "#host-list")
    def _selected(self) -> None:
        self._connect_highlighted()

    def _connect_highlighted(self) -> None:
        host_list = self.host_list
        index = host_list.highlighted
        if index is None or index >= host_list.option_count:
            return
        option_id = host_list.get_option_at_index(index).id or ""
        if option_id.startswith(QUICK_PREFIX):
            target = quick_target(option_id.removeprefix(QUICK_PREFIX))
            if target is not None:
                self.sshtui.connect_quick(target)
            return
        entry = self.selected_entry()
        if entry is not None:
            self.sshtui.connect_target(entry.key, entry.target)

    def action_reconnect(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.sshtui.connect_target(entry.key, entry.target, reuse=True)

    def action_details(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        view = self.states.get(entry.key)
        lines = [f"{entry.name}: {entry.address} ({entry.source})"]
        if entry.tags:
            lines.append(f"tags: {', '.join(entry.tags)}")
        if entry.notes:
            lines.append(entry.notes)
        if view is not None:
            lines += ["", f"state: {view.status}"]
            if view.detail:
                lines += ["", view.detail]
        self.app.push_screen(DetailDialog(entry.name, "\n".join(lines)))

    async def action_sessions(self) -> None:
        await self.sshtui.show_sessions()

    # -- editing

    def _check_writable(self) -> bool:
        if not self.writable:
            self.notify(f"{self.store.path} could not be read, so it is not changed", severity="error",
                        markup=False)
        return self.writable

    def _save(self, what: str) -> bool:
        try:
            self.store.save()
        except HostsError as exc:
            self.notify(exc.message, title=f"Could not save: {what}", severity="error", markup=False)
            try:
                self.store = HostStore.load(self.store.path)
            except HostsError:
                self.writable = False
            self.reload()
            return False
        self.notify(f"Saved: {what}", markup=False)
        return True

    def action_add(self) -> None:
        if self._check_writable():
            self.app.push_screen(HostFormDialog("Add host", [h.name for h in self.store]), self._added)

    def action_duplicate(self) -> None:
        entry = self.selected_entry()
        if entry is None or not self._check_writable():
            return
        host = entry.host or Host(name=entry.name, hostname=entry.name)
        self.app.push_screen(HostFormDialog(f"Duplicate {entry.name}", [h.name for h in self.store], host),
                             self._added)

    def _added(self, host: Host | None) -> None:
        if host is None:
            return
        try:
            self.store.add(host)
        except HostsError as exc:
            self.notify(exc.message, severity="error", markup=False)
            return
        self._save(f"added {host.name}")
        self.reload()

    def action_edit(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        if entry.host is None:
            self.notify(f"{entry.name} comes from ssh_config; press c to save an editable copy",
                        severity="warning", markup=False)
            return
        if self._check_writable():
            original = entry.host
            names = [h.name for h in self.store]
            self.app.push_screen(
                HostFormDialog(f"Edit {original.name}", names, original, editing=True),
                lambda host: self._edited(original, host),
            )

    def _edited(self, original: Host, host: Host | None) -> None:
        if host is None:
            return
        skip = {"created", "updated", "extra"}
        changes = {f.name: getattr(host, f.name) for f in dataclasses.fields(Host) if f.name not in skip}
        try:
            self.store.update(original.name, **changes)
        except HostsError as exc:
            self.notify(exc.message, severity="error", markup=False)
            return
        self._save(f"edited {host.name}")
        self.reload()

    def action_delete(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        if entry.host is None:
            self.notify(f"{entry.name} comes from ssh_config; remove it there", severity="warning",
                        markup=False)
            return
        if not self._check_writable():
            return
        name = entry.host.name

        def answered(yes: bool | None) -> None:
            if yes:
                try:
                    self.store.remove(name)
                except HostsError as exc:
                    self.notify(exc.message, severity="error", markup=False)
                    return
                self._save(f"deleted {name}")
                self.reload()

        self.app.push_screen(ConfirmDialog(f"Delete the saved host {name}?", "Delete"), answered)
