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
    r"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS and other strings: skipped so a BEL inside is not a bell
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


class ModeScanner:
    """Tracks the private modes set in a text stream and collects the actions, titles and bells in it."""

    def __init__(self) -> None:
        self.modes: set[int] = set()
        self._carry = ""

    def reset(self) -> None:
        """RIS: every mode back to its default."""
        self.modes.clear()

    def scan(self, text: str) -> ScanResult:
        carry = self._carry
        if not carry and not any(marker in text for marker in _MARKERS):
            return EMPTY
        # The carried tail was already fed to the core; offsets must be relative to ``text``.
        combined = carry + text if carry else text
        shift = len(carry)
        actions: list[Anchored] = []
        titles: list[str] = []
        bells = 0
        last_end = 0
        for match in _SEQUENCE.finditer(combined):
            last_end = match.end()
            group = match.lastgroup
            if group == "set":
                self._apply_modes(match.group("modes"), enable=match.group("set") == "h")
            elif group == "query":
                actions.append(Anchored(Action.MODE, last_end - shift, _number(match.group("query"))))
            elif group == "status":
                kind = _status_kind(match.group("status"), extended=match.group("xcpr") is not None)
                if kind is not None:
                    actions.append(Anchored(kind, last_end - shift))
            elif group == "attributes":
                secondary = match.group("secondary") is not None
                kind = Action.SECONDARY_ATTRIBUTES if secondary else Action.PRIMARY_ATTRIBUTES
                actions.append(Anchored(kind, last_end - shift))
            elif group == "osc":
                code, _, value = match.group("osc").partition(";")
                if code in ("0", "2"):
                    titles.append(value)
            elif group == "clear":
                actions.append(Anchored(Action.CLEAR_HISTORY, last_end - shift))
            elif group == "reset":
                self.reset()
            elif group == "bell":
                bells += 1
        self._carry = _unfinished_tail(combined, last_end)
        if not (actions or titles or bells):
            return EMPTY
        return ScanResult(tuple(actions), tuple(titles), bells)

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


def _unfinished_tail(text: str, scanned_to: int) -> str:
    start = text.rfind("\x1b", max(scanned_to, len(text) - MAX_CARRY))
    if start < 0:
        return ""
    tail = text[start:]
    return tail if _UNFINISHED.match(tail) else ""
