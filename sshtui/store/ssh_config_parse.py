"""Reading ssh_config(5) files: lines, words, quoting, comments and ``Include``.

A line is ``Keyword value``, ``Keyword=value`` or ``Keyword = value``; keywords are
case-insensitive; values are split into words as OpenSSH does (``"`` and ``'`` quote, a backslash
escapes a quote, a backslash or, outside quotes, a space; a word starting with ``#`` ends the line).
``Include`` expands globs at the point where it appears (relative paths are under ``~/.ssh`` for
user files and ``/etc/ssh`` for the system file), nested at most 16 deep as in OpenSSH. Files are
parsed into a host-independent tree, so one parse serves every host that is resolved later.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sshtui.ssh.errors import SSHError
from sshtui.store.ssh_config_keywords import CANONICAL, CHECKS, WHOLE_LINE, WHOLE_LINE_CHECKS, BadValue

MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
MAX_FILES = 1024  # a glob fan-out far beyond any real setup; keeps a hostile tree from exploding
MAX_FILE_BYTES = 4 * 1024 * 1024
SYSTEM_DIR = Path("/etc/ssh")

_LINE_END_SPACE = " \t\r\n\f"
_NON_EMPTY_WORDS = frozenset({"Host", "Include", *CHECKS})
_KEYWORD = re.compile(r"[ \t\r\n]*([^ \t\r\n=]*)[ \t\r\n]*(?:=[ \t\r\n]*)?")


class SshConfigError(SSHError):
    """An ssh_config file that OpenSSH would refuse too: the message names file:line, option and value."""

    def __init__(self, message: str, path: Path | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Directive:
    """One ``Keyword arguments`` line; ``Include`` lines carry the files they pulled in."""

    keyword: str  # canonical spelling; for an unknown keyword, as written
    args: tuple[str, ...]  # the words, unquoted; for whole-line keywords the line itself
    text: str  # the value as written after the keyword and its separator
    path: Path
    line: int
    known: bool = True
    included: tuple[ConfigFile, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class ConfigFile:
    path: Path
    directives: tuple[Directive, ...]


def split_words(text: str) -> list[str]:
    """OpenSSH's argument splitting; raises ``BadValue`` on an unclosed quote."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break  # a comment, but only where a word would start
        word: list[str] = []
        quote = ""
        while i < n:
            char = text[i]
            if char == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                word.append(text[i + 1])
                i += 2
                continue
            if not quote and char in " \t":
                break
            if not quote and char in "'\"":
                quote = char
            elif quote and char == quote:
                quote = ""
            else:
                word.append(char)
            i += 1
        if quote:
            raise BadValue("unclosed quote")
        words.append("".join(word))
    return words


class _Parser:
    def __init__(self, home: Path, user_config: bool) -> None:
        self.home = home
        self.user_config = user_config
        self.files_read = 0

    def parse_file(self, path: Path, depth: int, *, check_permissions: bool) -> ConfigFile | None:
        text = read_config_text(path, check_permissions=check_permissions)
        return None if text is None else self.parse_text(text, path, depth)

    def parse_text(self, text: str, path: Path, depth: int) -> ConfigFile:
        self.files_read += 1
        if self.files_read > MAX_FILES:
            raise SshConfigError(f"{path}: more than {MAX_FILES} configuration files included", path)
        directives = []
        for number, line in enumerate(text.split("\n"), 1):
            directive = self._parse_line(line, path, number, depth)
            if directive is not None:
                directives.append(directive)
        return ConfigFile(path, tuple(directives))

    def _parse_line(self, line: str, path: Path, number: int, depth: int) -> Directive | None:
        line = line.rstrip(_LINE_END_SPACE)
        match = _KEYWORD.match(line)
        assert match is not None  # every part of the pattern may be empty
        written, rest = match.group(1), line[match.end() :]
        if not written or written.startswith("#"):
            return None  # a blank line or a comment
        if "\x00" in line:
            raise SshConfigError(f"{path}:{number}: NUL character in the line", path, number)
        keyword = CANONICAL.get(written.lower())
        if keyword is None:
            return Directive(written, (), rest, path, number, known=False)
        if not rest:
            raise SshConfigError(f"{path}:{number}: no argument after keyword {keyword}", path, number)
        try:
            words = tuple(split_words(rest))
            if not words:
                raise BadValue("missing argument")
            if not words[0]:
                raise BadValue("empty argument")
            if keyword in _NON_EMPTY_WORDS and not all(words):
                raise BadValue("empty argument")
            if keyword in WHOLE_LINE:
                words = (self._whole_line(keyword, rest),)
            elif keyword in CHECKS:
                CHECKS[keyword](words)
        except BadValue as exc:
            raise SshConfigError(f"{path}:{number}: bad {keyword} {rest!r}: {exc}", path, number) from None
        if keyword == "Include":
            included = self._include(words, path, number, depth)
            return Directive(keyword, words, rest, path, number, included=included)
        return Directive(keyword, words, rest, path, number)

    @staticmethod
    def _whole_line(keyword: str, rest: str) -> str:
        value = rest.lstrip(" \t=")
        if keyword == "ProxyJump":
            value = value.partition("#")[0].rstrip(_LINE_END_SPACE)
        check = WHOLE_LINE_CHECKS.get(keyword)
        if check is not None:
            check(value)
        return value

    def _include(
        self, patterns: tuple[str, ...], path: Path, number: int, depth: int
    ) -> tuple[ConfigFile, ...]:
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise SshConfigError(
                f"{path}:{number}: Include nested more than {MAX_INCLUDE_DEPTH} deep (an Include loop?)",
                path,
                number,
            )
        files = []
        for pattern in patterns:
            try:
                anchored = self._anchor(pattern)
            except BadValue as exc:
                message = f"{path}:{number}: bad Include {pattern!r}: {exc}"
                raise SshConfigError(message, path, number) from None
            for name in sorted(glob.glob(anchored)):
                parsed = self.parse_file(Path(name), depth + 1, check_permissions=True)
                if parsed is not None:
                    files.append(parsed)
        return tuple(files)

    def _anchor(self, pattern: str) -> str:
        """An absolute glob pattern; the directories we prepend are escaped, not globbed."""
        if pattern.startswith("~"):
            if not self.user_config:
                raise BadValue("'~' is not allowed in the system-wide file")
            head, sep, tail = pattern.partition("/")
            home = str(self.home) if head == "~" else os.path.expanduser(head)
            if home.startswith("~"):
                raise BadValue(f"no such user {head[1:]!r}")
            return glob.escape(home) + sep + tail
        if os.path.isabs(pattern):
            return pattern
        base = self.home / ".ssh" if self.user_config else SYSTEM_DIR
        return glob.escape(str(base)) + os.sep + pattern


def read_config_text(path: Path, *, check_permissions: bool) -> str | None:
    """The file's text; None when it does not exist. Directories read as empty, as in OpenSSH.

    With ``check_permissions`` the file must belong to us or root and not be writable by others
    (OpenSSH refuses such user files: someone else could otherwise choose our options)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SshConfigError(f"cannot read config file {path}: {exc.strerror or exc}", path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return ""
        if not stat.S_ISREG(info.st_mode):
            raise SshConfigError(f"config file {path} is not a regular file", path)
        if check_permissions and (info.st_uid not in (0, os.getuid()) or info.st_mode & 0o022):
            raise SshConfigError(
                f"bad owner or permissions on {path}: it must be yours (or root's) "
                "and not writable by group or others",
                path,
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SshConfigError(f"cannot read config file {path}: {exc.strerror or exc}", path) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise SshConfigError(f"config file {path} is larger than {MAX_FILE_BYTES} bytes", path)
    return data.decode("utf-8", "surrogateescape")


def parse_config_file(
    path: Path, *, home: Path, user_config: bool = True, check_permissions: bool = False
) -> ConfigFile | None:
    """Parse one top-level file and everything it includes; None when the file does not exist."""
    return _Parser(home, user_config).parse_file(path, 0, check_permissions=check_permissions)


def parse_config_text(text: str, path: Path, *, home: Path, user_config: bool = True) -> ConfigFile:
    """Parse text as if read from ``path`` (which names it in messages); Include still reads files."""
    return _Parser(home, user_config).parse_text(text, path, 0)
