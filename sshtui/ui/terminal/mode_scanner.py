"""The side scanner that gives a fast emulator core what it lacks: mode tracking, replies, title and bell.

A native emulator core (see ``avt_backend.py``) draws the screen far faster than any Python parser, but
it does not track the xterm private modes the widget needs (mouse tracking 1000/1002/1003 and SGR
encoding 1006, focus reporting 1004, bracketed paste 2004, synchronized output 2026, the alternate
screen 47/1047/1049), nor answer actions. This scanner finds just those sequences in the same text,
with C-speed substring checks first so a flood with none of them costs almost nothing:

- DECSET/DECRST ``CSI ? Pm h`` / ``CSI ? Pm l`` (xterm ctlseqs, "DEC Private Mode Set/Reset");
- DSR ``CSI 5 n`` / ``CSI 6 n`` and DECXCPR ``CSI ? 6 n`` (ECMA-48 §8.3.35; the cursor report needs
  the screen state at the query's position, so the scanner reports where in the text each query ends);
- DA ``CSI c`` (ECMA-48 §8.3.24) and secondary DA ``CSI > c``; DECRQM ``CSI ? Ps $ p``;
- OSC 0/2 window titles, BEL outside strings (ECMA-48 §8.3.6), RIS ``ESC c`` and ED 3 ``CSI 3 J``.

A sequence split across two reads is found once the rest arrives: an unfinished tail is carried over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

MAX_CARRY = 4096  # an unfinished OSC longer than this is not a title anyone wants to see
SYNCHRONIZED_OUTPUT = 2026
TRACKED_MODES = frozenset({1004, 1006, 1000, 1002, 1003, 2004, SYNCHRONIZED_OUTPUT, 47, 1047, 1049})
ALTERNATE_SCREEN_MODES = frozenset({47, 1047, 1049})
# Modes whose DECRQM answer we know: the tracked ones plus those the core applies and reports elsewhere.
KNOWN_MODES = TRACKED_MODES | {1, 7, 25}

# Cheap pre-checks: if none of these substrings is present (and nothing was carried), the text holds no
# sequence the scanner cares about and the regular expression never runs.
_MARKERS = (
    "\x1b[?", "\x1b]", "\x07", "\x1bc", "\x1b[5n", "\x1b[6n", "\x1b[c", "\x1b[0c", "\x1b[>", "\x1b[3J",
)
_SEQUENCE = re.compile(
    r"\x1b\[\?(?P<modes>[0-9;]*)(?P<set>[hl])"
    r"|\x1b\[\?(?P<query>[0-9]*)\$p"
    r"|\x1b\[(?P<xcpr>\?)?(?P<status>[0-9]*)n"
    r"|(?P<attributes>\x1b\[(?P<secondary>>)?0?c)"
    r"|\x1b\](?P<osc>[^\x07\x1b]*)(?:\x07|\x1b\\)"
    # DCS and other strings, skipped so a BEL inside is not a bell; one still open at the end of a read
    # continues in the next (sixel images run to megabytes).
    r"|(?P<string>\x1b[PX^_][^\x1b]*)(?P<string_end>\x1b\\)?"
    r"|(?P<clear>\x1b\[3J)"
    r"|(?P<reset>\x1bc)"
    r"|(?P<bell>\x07)",
)
# The start of a sequence the scanner tracks, cut off at the end of a read. Other unfinished sequences
# (the usual case: an SGR split by the read size) are not carried, so they cost nothing.
_UNFINISHED = re.compile(
    r"\x1b(?:\[(?:\?[0-9;]*\$?|>0?|0|[356])?|\][^\x07\x1b]*\x1b?|[PX^_][^\x1b]*\x1b?)?\Z"
)


class Action(Enum):
    """What must happen at a point in the text: actions are answered from the screen state there."""

    STATUS = "status"  # DSR 5: "are you OK?"
    CURSOR = "cursor"  # DSR 6: cursor position report
    CURSOR_EXTENDED = "cursor-extended"  # DECXCPR (CSI ? 6 n)
    PRIMARY_ATTRIBUTES = "primary-attributes"
    SECONDARY_ATTRIBUTES = "secondary-attributes"
    MODE = "mode"  # DECRQM for a private mode
    CLEAR_HISTORY = "clear-history"  # ED 3: drop the saved lines written so far, not later ones


@dataclass(frozen=True, slots=True)
class Anchored:
    action: Action
    end: int  # offset in the scanned text just past the sequence
    mode: int = 0  # the mode asked about, for DECRQM


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one chunk of text held, in order of appearance; offsets are into that chunk."""

    actions: tuple[Anchored, ...] = ()
    titles: tuple[str, ...] = ()
    bells: int = 0


EMPTY = ScanResult()


class _Found:
    """What a scan collects before it is frozen into a ``ScanResult``."""

    __slots__ = ("actions", "bells", "titles")

    def __init__(self) -> None:
        self.actions: list[Anchored] = []
        self.titles: list[str] = []
        self.bells = 0

    def result(self) -> ScanResult:
        if not (self.actions or self.titles or self.bells):
            return EMPTY
        return ScanResult(tuple(self.actions), tuple(self.titles), self.bells)


class ModeScanner:
    """Tracks the private modes set in a text stream and collects the actions, titles and bells in it."""

    def __init__(self) -> None:
        self.modes: set[int] = set()
        self._carry = ""

    def reset(self) -> None:
        """RIS: every mode back to its default."""
        self.modes.clear()

    def scan(self, text: str) -> ScanResult:
        found = _Found()
        start = self._finish_carried(text, found) if self._carry else 0
        if start is None:
            return found.result()  # the whole read continued the carried sequence
        last = None
        if any(marker in text for marker in _MARKERS):
            for last in _SEQUENCE.finditer(text, start):
                self._handle(last, 0, found)
        if last is not None and last.lastgroup == "string" and last.end() == len(text):
            self._carry = last.group()[:2]  # inside a string only the introducer matters
        else:
            self._carry = _unfinished_tail(text, last.end() if last is not None else start)
        return found.result()

    def _finish_carried(self, text: str, found: _Found) -> int | None:
        """Complete the sequence cut off at the end of the last read; where the rest of ``text`` starts."""
        carry, self._carry = self._carry, ""
        if _is_string(carry):
            return self._finish_string(carry, text)
        seam = carry + text[:MAX_CARRY]
        match = _SEQUENCE.match(seam)
        if match is not None and match.end() > len(carry):
            if match.lastgroup == "string":
                return self._finish_string(match.group()[:2], text)
            self._handle(match, len(carry), found)
            return match.end() - len(carry)
        if len(seam) == len(carry) + len(text) and len(seam) <= MAX_CARRY and _UNFINISHED.match(seam):
            self._carry = seam
            return None
        return 0  # not a sequence we track after all: scan the read from its start

    def _finish_string(self, carried: str, text: str) -> int | None:
        if carried.endswith("\x1b") and text.startswith("\\"):
            return 1  # the terminator was cut between its two characters
        end = text.find("\x1b\\")
        if end >= 0:
            return end + 2
        self._carry = carried[:2] + ("\x1b" if text.endswith("\x1b") else "")
        return None

    def _handle(self, match: re.Match[str], shift: int, found: _Found) -> None:
        end = match.end() - shift
        group = match.lastgroup
        if group == "set":
            self._apply_modes(match.group("modes"), enable=match.group("set") == "h")
        elif group == "query":
            found.actions.append(Anchored(Action.MODE, end, _number(match.group("query"))))
        elif group == "status":
            kind = _status_kind(match.group("status"), extended=match.group("xcpr") is not None)
            if kind is not None:
                found.actions.append(Anchored(kind, end))
        elif group == "attributes":
            secondary = match.group("secondary") is not None
            found.actions.append(
                Anchored(Action.SECONDARY_ATTRIBUTES if secondary else Action.PRIMARY_ATTRIBUTES, end)
            )
        elif group == "osc":
            code, _, value = match.group("osc").partition(";")
            if code in ("0", "2"):
                found.titles.append(value)
        elif group == "clear":
            found.actions.append(Anchored(Action.CLEAR_HISTORY, end))
        elif group == "reset":
            self.reset()
        elif group == "bell":
            found.bells += 1

    def _apply_modes(self, parameters: str, *, enable: bool) -> None:
        for field in parameters.split(";"):
            mode = _number(field)
            if mode in TRACKED_MODES:
                if mode in ALTERNATE_SCREEN_MODES:
                    self.modes.difference_update(ALTERNATE_SCREEN_MODES)
                if enable:
                    self.modes.add(mode)
                else:
                    self.modes.discard(mode)

    @property
    def alternate_screen(self) -> bool:
        return not self.modes.isdisjoint(ALTERNATE_SCREEN_MODES)


def _number(text: str) -> int:
    return int(text[:5]) if text else 0


def _status_kind(status: str, *, extended: bool) -> Action | None:
    if status == "6":
        return Action.CURSOR_EXTENDED if extended else Action.CURSOR
    if status == "5" and not extended:
        return Action.STATUS
    return None


def _is_string(carry: str) -> bool:
    """A carried string introducer (plus the ESC of a terminator cut in two)."""
    return 2 <= len(carry) <= 3 and carry[1] in "PX^_" and carry[2:] in ("", "\x1b")


def _unfinished_tail(text: str, scanned_to: int) -> str:
    low = max(scanned_to, len(text) - MAX_CARRY)
    last = text.rfind("\x1b", low)
    if last < 0:
        return ""
    # A string cut between the ESC and the backslash of its terminator starts at the ESC before.
    before = text.rfind("\x1b", low, last)
    for start in (before, last):
        if start >= 0 and _UNFINISHED.match(text, start):
            return text[start:]
    return ""
