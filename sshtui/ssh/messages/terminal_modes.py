"""Terminal modes, the encoded ``modes`` string of a pty-req (RFC 4254 §8; IUTF8 from RFC 8160)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum

from sshtui.ssh.errors import LocalProtocolError
from sshtui.ssh.messages.connection_fields import check_range
from sshtui.ssh.wire import WireReader

_Buffer = bytes | bytearray | memoryview


class TerminalMode(IntEnum):
    TTY_OP_END = 0
    VINTR = 1
    VQUIT = 2
    VERASE = 3
    VKILL = 4
    VEOF = 5
    VEOL = 6
    VEOL2 = 7
    VSTART = 8
    VSTOP = 9
    VSUSP = 10
    VDSUSP = 11
    VREPRINT = 12
    VWERASE = 13
    VLNEXT = 14
    VFLUSH = 15
    VSWTCH = 16
    VSTATUS = 17
    VDISCARD = 18
    IGNPAR = 30
    PARMRK = 31
    INPCK = 32
    ISTRIP = 33
    INLCR = 34
    IGNCR = 35
    ICRNL = 36
    IUCLC = 37
    IXON = 38
    IXANY = 39
    IXOFF = 40
    IMAXBEL = 41
    IUTF8 = 42
    ISIG = 50
    ICANON = 51
    XCASE = 52
    ECHO = 53
    ECHOE = 54
    ECHOK = 55
    ECHONL = 56
    NOFLSH = 57
    TOSTOP = 58
    IEXTEN = 59
    ECHOCTL = 60
    ECHOKE = 61
    PENDIN = 62
    OPOST = 70
    OLCUC = 71
    ONLCR = 72
    OCRNL = 73
    ONOCR = 74
    ONLRET = 75
    CS7 = 90
    CS8 = 91
    PARENB = 92
    PARODD = 93
    TTY_OP_ISPEED = 128
    TTY_OP_OSPEED = 129


# Opcodes from here on are undefined and, per RFC 4254 §8, stop parsing.
_FIRST_UNDEFINED_OPCODE = 160
_MODE = struct.Struct(">BI")


def encode_terminal_modes(modes: Mapping[int, int]) -> bytes:
    out = bytearray()
    for opcode, value in modes.items():
        if not 0 < opcode < _FIRST_UNDEFINED_OPCODE:
            raise LocalProtocolError(f"terminal mode opcode {opcode} is outside 1..159")
        out += _MODE.pack(opcode, check_range(value, f"terminal mode {opcode} value"))
    out.append(TerminalMode.TTY_OP_END)
    return bytes(out)


def decode_terminal_modes(encoded: _Buffer) -> dict[int, int]:
    """Opcode to value. Parsing stops at TTY_OP_END, at an undefined opcode (160 and up),
    or at the end of the string; whatever follows is ignored as RFC 4254 §8 prescribes,
    so this decoder deliberately does not call ``check_end``."""
    r = WireReader(encoded, "pty-req terminal modes")
    modes: dict[int, int] = {}
    while r.remaining:
        opcode = r.byte("opcode")
        if opcode == TerminalMode.TTY_OP_END or opcode >= _FIRST_UNDEFINED_OPCODE:
            break
        modes[opcode] = r.uint32(f"value of mode {opcode}")
    return modes
