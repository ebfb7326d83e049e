"""Protocol version exchange (RFC 4253 §4.2).

A client accepts up to ``MAX_PREAMBLE_LINES`` other lines before the server's
``SSH-`` line; a server requires the client's first line to be its version. Only
protocol 2.0 (and 1.99, which means "2.0 too") is accepted.
"""

from __future__ import annotations

from sshtui.ssh.errors import VersionError

MAX_PREAMBLE_LINES = 1024
MAX_LINE_LENGTH = 8192


def escape_line(raw: bytes, limit: int = 200) -> str:
    """Peer text made safe to print: non-printable bytes become escapes."""
    text = raw[:limit].decode("utf-8", "backslashreplace")
    out = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return out + ("…" if len(raw) > limit else "")


def make_version_line(software_version: str, comment: str = "") -> bytes:
    line = f"SSH-2.0-{software_version}" + (f" {comment}" if comment else "")
    encoded = line.encode("ascii")
    if len(encoded) > 253 or any(c < 0x21 or c > 0x7E for c in software_version.encode("ascii")):
        raise ValueError("software version must be printable ASCII without spaces and short")
    return encoded


class VersionParser:
    """Accumulates bytes until the peer's version line; leftover bytes belong to the packets.

    ``expect_preamble`` is True on the client: servers may send other lines first.
    """

    def __init__(self, expect_preamble: bool):
        self.expect_preamble = expect_preamble
        self.buffer = bytearray()
        self.preamble: list[str] = []
        self.version: bytes | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """Returns the version line (without CR LF) once complete, else None."""
        self.buffer += data
        while True:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                if len(self.buffer) > MAX_LINE_LENGTH:
                    raise VersionError(
                        f"peer sent a line longer than {MAX_LINE_LENGTH} bytes before its version"
                    )
                return None
            if newline + 1 > MAX_LINE_LENGTH:
                raise VersionError(f"peer sent a line longer than {MAX_LINE_LENGTH} bytes before its version")
            line = bytes(self.buffer[:newline])
            del self.buffer[: newline + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.startswith(b"SSH-"):
                self._check(line)
                self.version = line
                return line
            if not self.expect_preamble:
                raise VersionError(f"peer did not start with an SSH version line: {escape_line(line)!r}")
            if len(self.preamble) >= MAX_PREAMBLE_LINES:
                raise VersionError(f"peer sent more than {MAX_PREAMBLE_LINES} lines before its version")
            self.preamble.append(escape_line(line))

    def leftover(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    @staticmethod
    def _check(line: bytes) -> None:
        if b"\x00" in line:
            raise VersionError("peer version line contains a NUL byte")
        parts = line.split(b"-", 2)
        if len(parts) < 3 or not parts[2]:
            raise VersionError(f"malformed version line {escape_line(line)!r}: expected SSH-2.0-software")
        proto = parts[1]
        if proto not in (b"2.0", b"1.99"):
            raise VersionError(
                f"peer speaks SSH protocol {escape_line(proto)!r}; only 2.0 is supported"
                f" ({escape_line(line)!r})"
            )
